//! The block index: items in the leaf order of a k-d tree, column-major in fixed-size blocks,
//! with each block's per-dimension bounds.
//!
//! Why this layout (see the closing note of the index issue for the measurements): one tree
//! over all dims serves boxes on *any* subset of dims, the index costs 36 bytes per item (u32 id
//! + the code, transposed) instead of one tree per subset, and a partially covered block is
//! tested with byte-wide compares on contiguous columns, 32 or 64 items per instruction, with
//! its counters in L1. The tree splits at each node on the dimension of widest spread, at a
//! multiple of the block size, so every block is exactly one leaf.

use rayon::prelude::*;

use crate::boxes::BoxQuery;
use crate::error::{IndexError, IndexResult};
use crate::hits::Hits;
use crate::pool;
use crate::simd::multiversion;

/// Items per block (a multiple of 64, so the column loops have no remainder).
pub const DEFAULT_BLOCK_ITEMS: usize = 512;
/// Rows sampled per node to choose the split dimension.
const SPREAD_SAMPLE: usize = 512;
/// Blocks per parallel query task.
const BLOCKS_PER_TASK: usize = 16;

/// Options of [`BlockIndex::build`].
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Items per block (leaf); a multiple of 64.
    pub block_items: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self { block_items: DEFAULT_BLOCK_ITEMS }
    }
}

/// A built block index (owned buffers; see `format` for the file form).
pub struct BlockIndex {
    pub(crate) dim: usize,
    pub(crate) count: usize,
    pub(crate) block_items: usize,
    /// Catalog row of each position in tree order.
    pub(crate) ids: Vec<u32>,
    /// Per block, `dim` lower then `dim` upper bounds.
    pub(crate) bounds: Vec<u8>,
    /// Per block, `dim` columns of `block_items` bytes.
    pub(crate) columns: Vec<u8>,
}

impl BlockIndex {
    /// Builds the index over row-major `codes` of width `dim`, in parallel.
    pub fn build(codes: &[u8], dim: usize, options: BuildOptions) -> IndexResult<Self> {
        let b = options.block_items;
        if b == 0 || b % 64 != 0 || b > 1 << 16 {
            return Err(IndexError::InvalidQuery(format!("block_items must be a multiple of 64 up to 65536, got {b}")));
        }
        if dim == 0 || codes.len() % dim != 0 {
            return Err(IndexError::Dimension(format!("{} bytes of codes are not rows of {dim}", codes.len())));
        }
        let count = codes.len() / dim;
        let Ok(count_u32) = u32::try_from(count) else {
            return Err(IndexError::InvalidQuery(format!("{count} items exceed the index's limit of 2^32 - 1")));
        };
        let mut ids: Vec<u32> = (0..count_u32).collect();
        pool::install(|| split(codes, dim, b, &mut ids));
        let n_blocks = count.div_ceil(b);
        let mut columns = vec![0u8; n_blocks * dim * b];
        let mut bounds = vec![0u8; n_blocks * 2 * dim];
        pool::install(|| {
            columns.par_chunks_mut(dim * b).zip(bounds.par_chunks_mut(2 * dim)).enumerate().for_each(
                |(block, (cols, bnd))| {
                    let rows = &ids[block * b..((block + 1) * b).min(count)];
                    fill_block(codes, dim, b, rows, cols, bnd);
                },
            );
        });
        Ok(Self { dim, count, block_items: b, ids, bounds, columns })
    }

    /// Code width.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of items indexed.
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Items per block.
    #[must_use]
    pub fn block_items(&self) -> usize {
        self.block_items
    }

    /// Number of blocks.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.count.div_ceil(self.block_items)
    }

    /// Applies a box query to every indexed item.
    pub fn query(&self, query: &BoxQuery) -> IndexResult<Hits> {
        if query.dim() != self.dim {
            return Err(IndexError::Dimension(format!("the query is for dim {}, the index has {}", query.dim(), self.dim)));
        }
        let groups_of: Vec<u32> = query.boxes().iter().map(|b| b.group).collect();
        let n_tasks = self.blocks().div_ceil(BLOCKS_PER_TASK);
        let mut parts: Vec<Vec<(u32, u32, u32)>> = pool::install(|| {
            (0..n_tasks)
                .into_par_iter()
                .map(|task| {
                    let mut scratch = Scratch::new(self.block_items);
                    let mut out = Vec::new();
                    let first = task * BLOCKS_PER_TASK;
                    for block in first..(first + BLOCKS_PER_TASK).min(self.blocks()) {
                        self.query_block(block, query, &groups_of, &mut scratch, &mut out);
                    }
                    out
                })
                .collect()
        });
        Ok(self.to_hits(&mut parts))
    }

    fn query_block(
        &self,
        block: usize,
        query: &BoxQuery,
        groups_of: &[u32],
        s: &mut Scratch,
        out: &mut Vec<(u32, u32, u32)>,
    ) {
        let (dim, b) = (self.dim, self.block_items);
        let lo_bound = &self.bounds[block * 2 * dim..block * 2 * dim + dim];
        let hi_bound = &self.bounds[block * 2 * dim + dim..(block + 1) * 2 * dim];
        let cols = &self.columns[block * dim * b..(block + 1) * dim * b];
        let mut touched = false;
        for (bx, &group) in query.boxes().iter().zip(groups_of) {
            let mut disjoint = false;
            let mut covered = true;
            for ((&d, &lo), &hi) in bx.dims.iter().zip(&bx.lo).zip(&bx.hi) {
                let (bmin, bmax) = (lo_bound[d as usize], hi_bound[d as usize]);
                disjoint |= bmax < lo || bmin > hi;
                covered &= bmin >= lo && bmax <= hi;
            }
            if disjoint {
                continue;
            }
            if !touched {
                s.reset();
                touched = true;
            }
            if covered {
                s.mask.fill(1);
            } else {
                s.mask.fill(1);
                for ((&d, &lo), &hi) in bx.dims.iter().zip(&bx.lo).zip(&bx.hi) {
                    let col = &cols[d as usize * b..(d as usize + 1) * b];
                    and_in_range(&mut s.mask, col, lo, hi - lo);
                }
            }
            accumulate(&s.mask, group, &mut s.counts, &mut s.groups, &mut s.last);
        }
        if touched {
            let valid = b.min(self.count - block * b);
            let ids = &self.ids[block * b..block * b + valid];
            for i in 0..valid {
                if s.counts[i] > 0 {
                    out.push((ids[i], s.counts[i], s.groups[i]));
                }
            }
        }
    }

    /// Puts per-task hits (in tree order) into ascending id order: a scatter into dense
    /// per-item slots when many items hit, a sort of the few hits otherwise.
    fn to_hits(&self, parts: &mut [Vec<(u32, u32, u32)>]) -> Hits {
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut hits = Hits::default();
        if total * 16 > self.count {
            let mut dense = vec![(0u32, 0u32); self.count];
            for &(id, c, g) in parts.iter().flatten() {
                dense[id as usize] = (c, g);
            }
            for (id, &(c, g)) in dense.iter().enumerate() {
                if c > 0 {
                    hits.push(id as u64, c, g);
                }
            }
        } else {
            let mut all: Vec<(u32, u32, u32)> = parts.iter_mut().flat_map(std::mem::take).collect();
            all.sort_unstable_by_key(|h| h.0);
            for (id, c, g) in all {
                hits.push(u64::from(id), c, g);
            }
        }
        hits
    }
}

/// Per-task counters for one block, reused across blocks.
struct Scratch {
    mask: Vec<u8>,
    counts: Vec<u32>,
    groups: Vec<u32>,
    last: Vec<u32>,
}

impl Scratch {
    fn new(b: usize) -> Self {
        Self { mask: vec![0; b], counts: vec![0; b], groups: vec![0; b], last: vec![u32::MAX; b] }
    }

    fn reset(&mut self) {
        self.counts.fill(0);
        self.groups.fill(0);
        self.last.fill(u32::MAX);
    }
}

multiversion! {
    fn and_in_range(mask: &mut [u8], col: &[u8], lo: u8, width: u8) -> () => and_in_range_body
}

/// `mask[i] &= lo <= col[i] <= lo + width`, 32/64 items per instruction once vectorised.
#[inline(always)]
fn and_in_range_body(mask: &mut [u8], col: &[u8], lo: u8, width: u8) {
    for (m, &x) in mask.iter_mut().zip(col) {
        *m &= u8::from(x.wrapping_sub(lo) <= width);
    }
}

multiversion! {
    fn accumulate(mask: &[u8], group: u32, counts: &mut [u32], groups: &mut [u32], last: &mut [u32]) -> () => accumulate_body
}

/// Adds one box's mask to the counters; a group is counted once per item because boxes come
/// sorted by group.
#[inline(always)]
fn accumulate_body(mask: &[u8], group: u32, counts: &mut [u32], groups: &mut [u32], last: &mut [u32]) {
    for (((&m, c), g), l) in mask.iter().zip(counts.iter_mut()).zip(groups.iter_mut()).zip(last.iter_mut()) {
        let hit = u32::from(m);
        let new = hit & u32::from(*l != group);
        *c += hit;
        *g += new;
        *l = if new == 1 { group } else { *l };
    }
}

/// Orders `ids` along the leaves of a k-d tree: split at a multiple of `b` near the middle, on
/// the dimension whose sampled values spread widest.
fn split(codes: &[u8], dim: usize, b: usize, ids: &mut [u32]) {
    if ids.len() <= b {
        return;
    }
    let d = widest_dim(codes, dim, ids);
    let mid = (ids.len() / 2).div_ceil(b) * b;
    let mid = mid.min(ids.len() - 1);
    ids.select_nth_unstable_by_key(mid, |&id| codes[id as usize * dim + d]);
    let (left, right) = ids.split_at_mut(mid);
    if left.len() + right.len() > 1 << 16 {
        rayon::join(|| split(codes, dim, b, left), || split(codes, dim, b, right));
    } else {
        split(codes, dim, b, left);
        split(codes, dim, b, right);
    }
}

/// The dimension with the largest spread (max - min) over an even sample of `ids`.
fn widest_dim(codes: &[u8], dim: usize, ids: &[u32]) -> usize {
    let step = (ids.len() / SPREAD_SAMPLE).max(1);
    let mut lo = vec![u8::MAX; dim];
    let mut hi = vec![0u8; dim];
    for &id in ids.iter().step_by(step) {
        let row = &codes[id as usize * dim..(id as usize + 1) * dim];
        for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = (*l).min(x);
            *h = (*h).max(x);
        }
    }
    (0..dim).max_by_key(|&d| (hi[d] - lo[d], std::cmp::Reverse(d))).unwrap_or(0)
}

/// Transposes one block's rows into columns and records its bounds.
fn fill_block(codes: &[u8], dim: usize, b: usize, rows: &[u32], cols: &mut [u8], bounds: &mut [u8]) {
    let (lo, hi) = bounds.split_at_mut(dim);
    lo.fill(u8::MAX);
    hi.fill(0);
    for (i, &id) in rows.iter().enumerate() {
        let row = &codes[id as usize * dim..(id as usize + 1) * dim];
        for (d, &x) in row.iter().enumerate() {
            cols[d * b + i] = x;
            lo[d] = lo[d].min(x);
            hi[d] = hi[d].max(x);
        }
    }
}
