//! Exact k nearest neighbours by squared L2 over uint8 codes.
//!
//! Parallel over chunks of rows; every chunk is read once for all queries of a batch. A chunk's
//! distances go to a small buffer (vectorised), then rows that beat the k-th best seen so far
//! enter a bounded heap; after the first few thousand rows almost none do, so the cost is the
//! distance computation. Ties are broken by the smaller row, so the answer is deterministic.

use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::error::{IndexError, IndexResult};
use crate::pool;
use crate::simd::multiversion;

const ROWS_PER_TASK: usize = 1 << 16;
const ROWS_PER_STEP: usize = 1 << 10;

/// The `k` nearest codes to each query: `(distances, rows)`, each `queries x k` row-major,
/// ascending by `(distance, row)`. With fewer than `k` items, rows are padded with
/// `u32::MAX` / `u64::MAX`.
pub fn nearest(codes: &[u8], dim: usize, queries: &[u8], k: usize) -> IndexResult<(Vec<u32>, Vec<u64>)> {
    if dim == 0 || codes.len() % dim != 0 || queries.len() % dim != 0 {
        return Err(IndexError::Dimension(format!(
            "codes ({} bytes) and queries ({} bytes) must be whole rows of {dim}",
            codes.len(),
            queries.len()
        )));
    }
    if k == 0 {
        return Err(IndexError::InvalidArgument("k must be at least 1".into()));
    }
    let n_queries = queries.len() / dim;
    let per_task: Vec<Vec<BinaryHeap<(u32, u64)>>> = pool::install(|| {
        codes
            .par_chunks(ROWS_PER_TASK * dim)
            .enumerate()
            .map(|(task, chunk)| best_in_chunk(chunk, dim, queries, k, (task * ROWS_PER_TASK) as u64))
            .collect()
    });
    let mut out_d = vec![u32::MAX; n_queries * k];
    let mut out_rows = vec![u64::MAX; n_queries * k];
    for q in 0..n_queries {
        let mut merged: Vec<(u32, u64)> = per_task.iter().flat_map(|heaps| heaps[q].iter().copied()).collect();
        merged.sort_unstable();
        for (j, (d, row)) in merged.into_iter().take(k).enumerate() {
            out_d[q * k + j] = d;
            out_rows[q * k + j] = row;
        }
    }
    Ok((out_d, out_rows))
}

/// The `k` best `(distance, row)` of one chunk for every query, as max-heaps.
fn best_in_chunk(chunk: &[u8], dim: usize, queries: &[u8], k: usize, first_row: u64) -> Vec<BinaryHeap<(u32, u64)>> {
    let mut heaps: Vec<BinaryHeap<(u32, u64)>> =
        (0..queries.len() / dim).map(|_| BinaryHeap::with_capacity(k + 1)).collect();
    let mut distances = vec![0u32; ROWS_PER_STEP];
    for (step, rows) in chunk.chunks(ROWS_PER_STEP * dim).enumerate() {
        let n = rows.len() / dim;
        let base = first_row + (step * ROWS_PER_STEP) as u64;
        for (query, heap) in queries.chunks_exact(dim).zip(heaps.iter_mut()) {
            distances_into(rows, query, &mut distances[..n]);
            for (row, &d) in distances[..n].iter().enumerate() {
                // Rows come in ascending order, so a tie never beats an earlier row: strict <.
                if heap.len() < k {
                    heap.push((d, base + row as u64));
                } else if d < heap.peek().map_or(u32::MAX, |top| top.0) {
                    heap.pop();
                    heap.push((d, base + row as u64));
                }
            }
        }
    }
    heaps
}

multiversion! {
    fn distances_into(codes: &[u8], query: &[u8], out: &mut [u32]) -> () => distances_body
}

/// Squared L2 of every row to the query (i32 lanes: `pmaddwd` under AVX2).
#[inline(always)]
fn distances_body(codes: &[u8], query: &[u8], out: &mut [u32]) {
    let dim = query.len();
    for (slot, code) in out.iter_mut().zip(codes.chunks_exact(dim)) {
        *slot = code
            .iter()
            .zip(query)
            .map(|(&a, &b)| {
                let d = i32::from(a) - i32::from(b);
                (d * d) as u32
            })
            .sum();
    }
}
