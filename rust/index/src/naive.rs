//! The brute-force twins of every engine: plain loops, no cleverness, for tests.

use crate::boxes::BoxQuery;
use crate::hits::Hits;

/// Box query by testing every box on every item, counting groups with a set.
#[must_use]
pub fn query(codes: &[u8], query: &BoxQuery) -> Hits {
    let dim = query.dim();
    let mut hits = Hits::default();
    for (row, code) in codes.chunks_exact(dim).enumerate() {
        let mut boxes = 0u16;
        let mut groups = std::collections::BTreeSet::new();
        for b in query.boxes() {
            let inside = b.dims.iter().enumerate().all(|(k, &d)| (b.lo[k]..=b.hi[k]).contains(&code[d as usize]));
            if inside {
                boxes += 1;
                groups.insert(b.group);
            }
        }
        if boxes > 0 {
            hits.push(row as u32, boxes, groups.len() as u16);
        }
    }
    hits
}

/// Exact top-k by squared L2, ties broken by smaller row; returns `(distance, row)` pairs.
#[must_use]
pub fn nearest(codes: &[u8], dim: usize, query: &[u8], k: usize) -> Vec<(u32, u64)> {
    let mut all: Vec<(u32, u64)> = codes
        .chunks_exact(dim)
        .enumerate()
        .map(|(row, code)| {
            let d = code.iter().zip(query).map(|(&a, &b)| (i32::from(a) - i32::from(b)).pow(2)).sum::<i32>();
            (d as u32, row as u64)
        })
        .collect();
    all.sort_unstable();
    all.truncate(k);
    all
}
