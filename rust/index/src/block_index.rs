//! The block index: items in the leaf order of a k-d tree, column-major in fixed-size blocks,
//! with each block's per-dimension bounds.
//!
//! Why this layout (the index issue's closing note has the measurements): one tree over all
//! dims serves boxes on *any* subset of dims; the index costs about 36 bytes per item (a u32
//! id and the code, transposed) instead of one tree per subset; and a partially covered block
//! is tested with byte-wide compares on contiguous columns, 32 or 64 items per instruction,
//! with its counters in L1. The tree splits each node on the dimension of widest spread, at a
//! multiple of the block size, so every block is exactly one leaf.
//!
//! The whole index is one buffer in the file layout of [`crate::format`], owned after a build
//! and memory-mapped after a load, so both run the same query code.

use std::path::Path;

use rayon::prelude::*;

use crate::boxes::BoxQuery;
use crate::error::{IndexError, IndexResult};
use crate::format::{
    IDS_AT, Layout, Storage, as_u32s, as_u32s_mut, map, read_header, seal, verify_payload, write_atomically,
    write_header,
};
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

/// A block index over the codes of one catalog.
pub struct BlockIndex {
    layout: Layout,
    storage: Storage,
    codes_checksum: String,
}

impl BlockIndex {
    /// Builds the index over row-major `codes` of width `dim`, in parallel. `codes_checksum`
    /// (the catalog's BLAKE3 of `codes.u8`, hex) ties the index to its catalog.
    pub fn build(codes: &[u8], dim: usize, codes_checksum: &str, options: BuildOptions) -> IndexResult<Self> {
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
        let layout = Layout { dim, count, block_items: b };
        let mut storage = Storage::zeroed(layout.len());
        let bytes = storage.bytes_mut();
        write_header(bytes, layout, codes_checksum)?;
        let (head, rest) = bytes.split_at_mut(layout.bounds_at());
        let ids = as_u32s_mut(&mut head[IDS_AT..IDS_AT + count * 4]);
        for (slot, id) in ids.iter_mut().zip(0..count_u32) {
            *slot = id;
        }
        pool::install(|| split(codes, dim, b, ids));
        let (bounds, columns) = rest.split_at_mut(layout.columns_at() - layout.bounds_at());
        pool::install(|| {
            columns
                .par_chunks_mut(dim * b)
                .zip(bounds[..layout.blocks() * 2 * dim].par_chunks_mut(2 * dim))
                .enumerate()
                .for_each(|(block, (cols, bnd))| {
                    let rows = &ids[block * b..((block + 1) * b).min(count)];
                    fill_block(codes, dim, b, rows, cols, bnd);
                });
        });
        seal(storage.bytes_mut());
        Ok(Self { layout, storage, codes_checksum: codes_checksum.to_string() })
    }

    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> IndexResult<()> {
        write_atomically(path, self.storage.bytes())
    }

    /// Maps the index at `path`, checks its header, its checksum (reads the file once) and
    /// that it was built for the catalog whose codes checksum is `codes_checksum`.
    pub fn open(path: &Path, codes_checksum: &str) -> IndexResult<Self> {
        let map = map(path)?;
        let (layout, recorded) = read_header(&map, path)?;
        if recorded != codes_checksum {
            return Err(IndexError::Stale {
                path: path.to_path_buf(),
                expected: codes_checksum.to_string(),
                found: recorded,
            });
        }
        verify_payload(&map, path)?;
        Ok(Self { layout, storage: Storage::Mapped(map), codes_checksum: recorded })
    }

    /// The BLAKE3 of the catalog codes this index was built for.
    #[must_use]
    pub fn codes_checksum(&self) -> &str {
        &self.codes_checksum
    }

    /// Size of the index in bytes (in memory and on disk).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.layout.len()
    }

    fn ids(&self) -> &[u32] {
        let at = IDS_AT;
        as_u32s(&self.storage.bytes()[at..at + self.layout.count * 4])
    }

    fn bounds(&self) -> &[u8] {
        let at = self.layout.bounds_at();
        &self.storage.bytes()[at..at + self.layout.blocks() * 2 * self.layout.dim]
    }

    fn columns(&self) -> &[u8] {
        &self.storage.bytes()[self.layout.columns_at()..]
    }

    /// Code width.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.layout.dim
    }

    /// Number of items indexed.
    #[must_use]
    pub fn count(&self) -> usize {
        self.layout.count
    }

    /// Items per block.
    #[must_use]
    pub fn block_items(&self) -> usize {
        self.layout.block_items
    }

    /// Number of blocks.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.layout.blocks()
    }

    /// Applies a box query to every indexed item.
    pub fn query(&self, query: &BoxQuery) -> IndexResult<Hits> {
        if query.dim() != self.dim() {
            return Err(IndexError::Dimension(format!(
                "the query is for dim {}, the index has {}",
                query.dim(),
                self.dim()
            )));
        }
        let groups_of: Vec<u32> = query.boxes().iter().map(|b| b.group).collect();
        let n_tasks = self.blocks().div_ceil(BLOCKS_PER_TASK);
        let mut parts: Vec<Vec<(u32, u32, u32)>> = pool::install(|| {
            (0..n_tasks)
                .into_par_iter()
                .map(|task| {
                    let mut scratch = Scratch::new(self.block_items());
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
        let (dim, b) = (self.dim(), self.block_items());
        let bounds = &self.bounds()[block * 2 * dim..(block + 1) * 2 * dim];
        let (lo_bound, hi_bound) = bounds.split_at(dim);
        let cols = &self.columns()[block * dim * b..(block + 1) * dim * b];
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
            let valid = b.min(self.count() - block * b);
            let ids = &self.ids()[block * b..block * b + valid];
            for ((&id, &count), &groups) in ids.iter().zip(&s.counts).zip(&s.groups) {
                if count > 0 {
                    out.push((id, count, groups));
                }
            }
        }
    }

    /// Puts per-task hits (in tree order) into ascending id order: a scatter into dense
    /// per-item slots when many items hit, a sort of the few hits otherwise.
    fn to_hits(&self, parts: &mut [Vec<(u32, u32, u32)>]) -> Hits {
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut hits = Hits::default();
        if total * 16 > self.count() {
            let mut dense = vec![(0u32, 0u32); self.count()];
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
