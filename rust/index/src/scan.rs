//! The fused scan: every box tested on every item of the catalog's row-major codes in one pass.
//!
//! Needs no index, so it is the fallback when none is built and, next to [`crate::naive`], the
//! oracle the index is tested against. Parallel over chunks of rows; each chunk's hits come out
//! ascending, and chunks are concatenated in order, so no sort is needed.

use rayon::prelude::*;

use crate::boxes::BoxQuery;
use crate::error::{IndexError, IndexResult};
use crate::hits::Hits;
use crate::pool;
use crate::simd::multiversion;

/// Rows per parallel task: large enough to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 1 << 15;

/// Applies `query` to every row of `codes` (row-major, `query.dim()` bytes per row).
pub fn query(codes: &[u8], query: &BoxQuery) -> IndexResult<Hits> {
    let dim = query.dim();
    if codes.len() % dim != 0 {
        return Err(IndexError::Dimension(format!("{} bytes of codes are not rows of {dim}", codes.len())));
    }
    if codes.len() / dim > u32::MAX as usize {
        return Err(IndexError::InvalidArgument("box queries support at most 2^32 - 1 items".into()));
    }
    let parts: Vec<Hits> = pool::install(|| {
        codes
            .par_chunks(ROWS_PER_TASK * dim)
            .enumerate()
            .map(|(task, chunk)| scan_rows(chunk, (task * ROWS_PER_TASK) as u32, query))
            .collect()
    });
    Ok(Hits::concat(parts))
}

multiversion! {
    fn scan_rows(codes: &[u8], first_row: u32, query: &BoxQuery) -> Hits => scan_rows_body
}

#[inline(always)]
fn scan_rows_body(codes: &[u8], first_row: u32, query: &BoxQuery) -> Hits {
    let dim = query.dim();
    let boxes = query.boxes();
    // The first constrained dim of each box, tested alone first: most items miss most boxes
    // on their first dim, which saves the full-width test.
    let first: Vec<(usize, u8, u8)> = boxes.iter().map(|b| (b.dims[0] as usize, b.lo[0], b.hi[0] - b.lo[0])).collect();
    let mut hits = Hits::default();
    for (row, code) in codes.chunks_exact(dim).enumerate() {
        let (mut count, mut groups, mut last_group) = (0u16, 0u16, None);
        for (i, &(d, lo, width)) in first.iter().enumerate() {
            if code[d].wrapping_sub(lo) > width || !inside(code, query.full_lo(i), query.full_width(i)) {
                continue;
            }
            count += 1;
            // Boxes are sorted by group, so a new group is a change from the last one.
            if last_group != Some(boxes[i].group) {
                groups += 1;
                last_group = Some(boxes[i].group);
            }
        }
        if count > 0 {
            hits.push(first_row + row as u32, count, groups);
        }
    }
    hits
}

/// Whether `code` lies in the box given by full-width `lo` and `hi - lo`: `x - lo` (wrapping)
/// is at most the width exactly when `lo <= x <= hi`. Branch-free, so it vectorises.
#[inline(always)]
fn inside(code: &[u8], lo: &[u8], width: &[u8]) -> bool {
    code.iter().zip(lo).zip(width).fold(true, |ok, ((&x, &l), &w)| ok & (x.wrapping_sub(l) <= w))
}
