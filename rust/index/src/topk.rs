//! Exact k nearest neighbours by squared L2 over uint8 codes.
//!
//! Parallel over chunks of rows; every chunk is read once for all queries of a batch. Within a
//! chunk the distances go to a buffer, a selection finds the chunk's k-th smallest, and only
//! rows at or under it become candidates; the candidates of all chunks are merged per query.
//! Ties are broken by the smaller id, so the answer is deterministic.

use rayon::prelude::*;

use crate::error::{IndexError, IndexResult};
use crate::pool;
use crate::simd::multiversion;

const ROWS_PER_TASK: usize = 1 << 14;

/// The `k` nearest codes to each query: `(distances, ids)`, each `queries x k` row-major,
/// ascending by `(distance, id)`. With fewer than `k` items, rows are padded with
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
        return Err(IndexError::InvalidQuery("k must be at least 1".into()));
    }
    let n_queries = queries.len() / dim;
    let per_chunk: Vec<Vec<Vec<(u32, u64)>>> = pool::install(|| {
        codes
            .par_chunks(ROWS_PER_TASK * dim)
            .enumerate()
            .map(|(task, chunk)| {
                let mut distances = vec![0u32; chunk.len() / dim];
                queries
                    .chunks_exact(dim)
                    .map(|q| {
                        distances_into(chunk, q, &mut distances);
                        candidates(&distances, (task * ROWS_PER_TASK) as u64, k)
                    })
                    .collect()
            })
            .collect()
    });
    let mut out_d = vec![u32::MAX; n_queries * k];
    let mut out_i = vec![u64::MAX; n_queries * k];
    for q in 0..n_queries {
        let mut merged: Vec<(u32, u64)> = per_chunk.iter().flat_map(|c| c[q].iter().copied()).collect();
        merged.sort_unstable();
        for (j, (d, id)) in merged.into_iter().take(k).enumerate() {
            out_d[q * k + j] = d;
            out_i[q * k + j] = id;
        }
    }
    Ok((out_d, out_i))
}

/// Rows of a chunk whose distance is at most the chunk's k-th smallest (ties all kept).
fn candidates(distances: &[u32], first_row: u64, k: usize) -> Vec<(u32, u64)> {
    let threshold = if distances.len() > k {
        let mut copy = distances.to_vec();
        *copy.select_nth_unstable(k - 1).1
    } else {
        u32::MAX
    };
    distances
        .iter()
        .enumerate()
        .filter(|&(_, &d)| d <= threshold)
        .map(|(row, &d)| (d, first_row + row as u64))
        .collect()
}

multiversion! {
    fn distances_into(codes: &[u8], query: &[u8], out: &mut [u32]) -> () => distances_body
}

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
