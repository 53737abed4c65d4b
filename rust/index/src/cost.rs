//! Which engine answers a box query faster: a cost model fitted to this project's benchmarks.
//!
//! The block index pays per (box, block): the bounds check, then per dim the block is not inside
//! of, one pass over a column of the block. The fused scan pays per (item, box). The constants
//! are single-thread nanoseconds measured by `benchmarks/index.py` on the 2-core development
//! machine (AVX2): 750 boxes over 1M items took 259 ms through the index with one thread
//! (~30 ns per tested dim of a 512-item block once the bounds checks are counted apart), and
//! 43.3 s over 10M items through the scan with two (~11.5 ns per item and box). Only their
//! ratio matters for the choice; it holds across machines to well within the margins at which
//! the choice flips (tiny catalogs, where both take microseconds).

use crate::block_index::BlockIndex;
use crate::boxes::BoxQuery;

/// Bounds check of one dim of one box against one block.
const CHECK_NS_PER_DIM: f64 = 1.0;
/// One box covering a whole 512-item block (counters bumped, no test).
const COVERED_NS_PER_BLOCK512: f64 = 10.0;
/// One tested dim of one box over a 512-item block.
const TESTED_NS_PER_DIM_BLOCK512: f64 = 30.0;
/// One box tested on one item by the row-major fused scan.
const SCAN_NS_PER_ITEM_BOX: f64 = 11.5;
/// Blocks sampled for the estimate.
const SAMPLE_BLOCKS: usize = 256;

/// Predicted single-thread cost of a query, in nanoseconds, for each engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueryCost {
    /// Through the block index.
    pub index_ns: f64,
    /// Through the fused scan of the codes.
    pub scan_ns: f64,
}

impl QueryCost {
    /// Whether the scan is predicted to be faster.
    #[must_use]
    pub fn prefers_scan(&self) -> bool {
        self.scan_ns < self.index_ns
    }
}

impl BlockIndex {
    /// Predicts the cost of `query` by classifying its boxes against an even sample of blocks
    /// (at most 256, so the estimate costs a few microseconds per box).
    #[must_use]
    pub fn estimate(&self, query: &BoxQuery) -> QueryCost {
        let blocks = self.blocks();
        let scan_ns = self.count() as f64 * query.boxes().len() as f64 * SCAN_NS_PER_ITEM_BOX;
        if blocks == 0 {
            return QueryCost { index_ns: 0.0, scan_ns };
        }
        let step = blocks.div_ceil(SAMPLE_BLOCKS).max(1);
        let block_scale = self.block_items() as f64 / 512.0;
        let mut sampled = 0usize;
        let mut ns = 0.0;
        for block in (0..blocks).step_by(step) {
            sampled += 1;
            let (lo_bound, hi_bound) = self.block_bounds(block);
            for bx in query.boxes() {
                let mut disjoint = false;
                let mut tested = 0usize;
                for ((&d, &lo), &hi) in bx.dims.iter().zip(&bx.lo).zip(&bx.hi) {
                    let (bmin, bmax) = (lo_bound[d as usize], hi_bound[d as usize]);
                    disjoint |= bmax < lo || bmin > hi;
                    tested += usize::from(bmin < lo || bmax > hi);
                }
                ns += bx.dims.len() as f64 * CHECK_NS_PER_DIM;
                if !disjoint {
                    ns += block_scale
                        * if tested == 0 {
                            COVERED_NS_PER_BLOCK512
                        } else {
                            tested as f64 * TESTED_NS_PER_DIM_BLOCK512
                        };
                }
            }
        }
        QueryCost { index_ns: ns * blocks as f64 / sampled as f64, scan_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_index::BuildOptions;
    use crate::boxes::BoxSpec;

    const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn query(lo: u8, hi: u8) -> BoxQuery {
        BoxQuery::new(2, vec![BoxSpec { dims: vec![0, 1], lo: vec![lo, lo], hi: vec![hi, hi], group: 0 }]).unwrap()
    }

    #[test]
    fn large_catalogs_prefer_the_index_and_tiny_ones_the_scan() {
        let codes: Vec<u8> = (0..200_000u32).flat_map(|i| [(i % 256) as u8, (i / 781) as u8]).collect();
        let index = BlockIndex::build(&codes, 2, ZERO, BuildOptions::default()).unwrap();
        let cost = index.estimate(&query(10, 50));
        assert!(!cost.prefers_scan(), "{cost:?}");
        // One item: the scan tests one box once; the index still pays a block's check and pass.
        let tiny = BlockIndex::build(&[20, 20], 2, ZERO, BuildOptions::default()).unwrap();
        assert!(tiny.estimate(&query(10, 50)).prefers_scan());
    }

    #[test]
    fn a_box_missing_every_block_costs_only_its_checks() {
        let codes: Vec<u8> = (0..100_000u32).flat_map(|i| [(i % 200) as u8, (i % 100) as u8]).collect();
        let index = BlockIndex::build(&codes, 2, ZERO, BuildOptions::default()).unwrap();
        let miss = index.estimate(&query(250, 255));
        let hit = index.estimate(&query(10, 150));
        assert!((miss.index_ns - index.blocks() as f64 * 2.0 * CHECK_NS_PER_DIM).abs() < 1e-6, "{miss:?}");
        assert!(hit.index_ns > 2.0 * miss.index_ns, "{hit:?} vs {miss:?}");
    }
}
