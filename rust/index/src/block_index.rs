//! The block index: items in the leaf order of a k-d tree, column-major in fixed-size blocks,
//! with each block's per-dimension bounds.
//!
//! Why this layout (the index issue's closing note has the measurements): one tree over all
//! dims serves boxes on *any* subset of dims; the index costs about 36 bytes per item (a u32
//! row and the code, transposed) instead of one tree per subset; and a partially covered block
//! is tested with byte-wide compares on contiguous columns, 32 or 64 items per instruction,
//! with its counters in L1. The tree splits each node on the dimension of widest spread, at a
//! multiple of the block size, so every block is exactly one leaf.
//!
//! The whole index is one buffer in the file layout of [`crate::format`], owned after a build
//! and memory-mapped after a load, so both run the same query code.

use std::path::Path;

use rayon::prelude::*;

use crate::boxes::{BoxQuery, BoxSpec};
use crate::error::{IndexError, IndexResult};
use crate::format::{
    Layout, ROWS_AT, Storage, as_u32s, as_u32s_mut, map, read_header, seal, verify_payload, write_atomically,
    write_header,
};
use crate::hits::Hits;
use crate::pool;
use crate::simd::multiversion;

/// Items per block (a multiple of 128, so the column loops have no remainder). Measured at 10M
/// (`benchmarks/block_size.py`): 512 → 4096 makes box queries 1.1-2.1x faster, level beyond; the boxes
/// a learner makes cut few blocks either way, so the per-block work (classifying every box,
/// folding counters) is what the size trades against. 4096 keeps a block's counters (24 KB)
/// in L1.
pub const DEFAULT_BLOCK_ITEMS: usize = 4096;
/// Rows sampled per node to choose the split dimension.
const SPREAD_SAMPLE: usize = 512;
/// Blocks per parallel query task.
const BLOCKS_PER_TASK: usize = 16;

/// Options of [`BlockIndex::build`].
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Items per block (leaf); a multiple of 128.
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
        if b == 0 || b % STRIP != 0 || b > 1 << 16 {
            return Err(IndexError::InvalidArgument(format!(
                "block_items must be a multiple of {STRIP} up to 65536, got {b}"
            )));
        }
        if dim == 0 || codes.len() % dim != 0 {
            return Err(IndexError::Dimension(format!("{} bytes of codes are not rows of {dim}", codes.len())));
        }
        let count = codes.len() / dim;
        let Ok(count_u32) = u32::try_from(count) else {
            return Err(IndexError::InvalidArgument(format!("{count} items exceed the index's limit of 2^32 - 1")));
        };
        let layout = Layout { dim, count, block_items: b };
        let mut storage = Storage::zeroed(layout.len());
        let bytes = storage.bytes_mut();
        write_header(bytes, layout, codes_checksum)?;
        let (head, rest) = bytes.split_at_mut(layout.bounds_at());
        let rows = as_u32s_mut(&mut head[ROWS_AT..ROWS_AT + count * 4]);
        for (slot, row) in rows.iter_mut().zip(0..count_u32) {
            *slot = row;
        }
        pool::install(|| split(codes, dim, b, rows));
        let (bounds, columns) = rest.split_at_mut(layout.columns_at() - layout.bounds_at());
        pool::install(|| {
            columns
                .par_chunks_mut(dim * b)
                .zip(bounds[..layout.blocks() * 2 * dim].par_chunks_mut(2 * dim))
                .enumerate()
                .for_each(|(block, (cols, bnd))| {
                    let block_rows = &rows[block * b..((block + 1) * b).min(count)];
                    fill_block(codes, dim, b, block_rows, cols, bnd);
                });
        });
        seal(storage.bytes_mut());
        Ok(Self { layout, storage, codes_checksum: codes_checksum.to_string() })
    }

    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> IndexResult<()> {
        write_atomically(path, self.storage.bytes(), &|| Ok(()))
    }

    /// Writes the index to `path` atomically if `still_ours` (run just before the rename that
    /// installs it) agrees: a caller checks there that the catalog directory is still the one
    /// the index was built from, so an index is never installed into a catalog that replaced it.
    pub fn save_checked(&self, path: &Path, still_ours: &dyn Fn() -> IndexResult<()>) -> IndexResult<()> {
        write_atomically(path, self.storage.bytes(), still_ours)
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
        let index = Self { layout, storage: Storage::Mapped(map), codes_checksum: recorded };
        index.check_rows(path)?;
        Ok(index)
    }

    /// [`open`](Self::open), and checks that the index has the shape of its catalog:
    /// `count` items of width `dim` (a header stamped with the right checksum but another
    /// shape is refused, so no query can return a row past the catalog's end).
    pub fn open_for(path: &Path, codes_checksum: &str, count: usize, dim: usize) -> IndexResult<Self> {
        let index = Self::open(path, codes_checksum)?;
        if index.count() != count || index.dim() != dim {
            return Err(IndexError::format(
                path,
                format!(
                    "indexes {} items of dim {}, but its catalog has {count} items of dim {dim}: not this \
                     catalog's index; rebuild it",
                    index.count(),
                    index.dim()
                ),
            ));
        }
        Ok(index)
    }

    /// Every catalog row the index lists must be below its count (reads the rows once).
    fn check_rows(&self, path: &Path) -> IndexResult<()> {
        let count = self.count();
        match self.rows().iter().position(|&row| row as usize >= count) {
            None => Ok(()),
            Some(at) => Err(IndexError::format(
                path,
                format!("lists row {} at position {at}, past its {count} items: corrupt; rebuild it", self.rows()[at]),
            )),
        }
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

    /// Lower and upper bounds of `block`, `dim` bytes each.
    pub(crate) fn block_bounds(&self, block: usize) -> (&[u8], &[u8]) {
        let dim = self.dim();
        self.bounds()[block * 2 * dim..(block + 1) * 2 * dim].split_at(dim)
    }

    /// The columns of `block` (`dim` columns of `block_items` bytes; past the last item of a
    /// short final block they hold padding) and the catalog rows of its items.
    pub(crate) fn block_data(&self, block: usize) -> (&[u8], &[u32]) {
        let (dim, b) = (self.dim(), self.block_items());
        let valid = b.min(self.count() - block * b);
        (&self.columns()[block * dim * b..(block + 1) * dim * b], &self.rows()[block * b..block * b + valid])
    }

    fn rows(&self) -> &[u32] {
        let at = ROWS_AT;
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

    /// Applies a box query to every indexed item. Hits come in index (tree) order, which is
    /// deterministic for a given index; sort them if you need catalog order.
    pub fn query(&self, query: &BoxQuery) -> IndexResult<Hits> {
        if query.dim() != self.dim() {
            return Err(IndexError::Dimension(format!(
                "the query is for dim {}, the index has {}",
                query.dim(),
                self.dim()
            )));
        }
        let n_tasks = self.blocks().div_ceil(BLOCKS_PER_TASK);
        let parts: Vec<Hits> = pool::install(|| {
            (0..n_tasks)
                .into_par_iter()
                .map(|task| {
                    let mut scratch = Scratch::new(self.block_items());
                    let mut out = Hits::with_capacity(BLOCKS_PER_TASK * self.block_items());
                    let blocks = task * BLOCKS_PER_TASK..((task + 1) * BLOCKS_PER_TASK).min(self.blocks());
                    // Consecutive blocks are neighbouring leaves of the tree: a box that misses
                    // their joint bounds is dropped once here instead of once per block.
                    let live = self.boxes_meeting(blocks.clone(), query);
                    if !live.is_empty() {
                        for block in blocks {
                            self.query_block(block, &live, &mut scratch, &mut out);
                        }
                    }
                    out
                })
                .collect()
        });
        Ok(pool::install(|| Hits::concat(parts)))
    }

    /// The boxes of `query` (in query order) that meet the joint bounds of `blocks`.
    fn boxes_meeting<'q>(&self, blocks: std::ops::Range<usize>, query: &'q BoxQuery) -> Vec<&'q BoxSpec> {
        let dim = self.dim();
        let mut lo = vec![u8::MAX; dim];
        let mut hi = vec![0u8; dim];
        for block in blocks {
            let (block_lo, block_hi) = self.block_bounds(block);
            for d in 0..dim {
                lo[d] = lo[d].min(block_lo[d]);
                hi[d] = hi[d].max(block_hi[d]);
            }
        }
        query
            .boxes()
            .iter()
            .filter(|bx| {
                bx.dims.iter().zip(&bx.lo).zip(&bx.hi).all(|((&d, &l), &h)| hi[d as usize] >= l && lo[d as usize] <= h)
            })
            .collect()
    }

    fn query_block(&self, block: usize, boxes: &[&BoxSpec], s: &mut Scratch, out: &mut Hits) {
        let (dim, b) = (self.dim(), self.block_items());
        let (lo_bound, hi_bound) = self.block_bounds(block);
        let cols = &self.columns()[block * dim * b..(block + 1) * dim * b];
        let mut group = None;
        let mut boxes_in_group = 0u32;
        let mut any_hit = false;
        // Whether the current group's u8 counters hold anything to fold (a fold is a pass
        // over the block, wasted on the many blocks a selective box only grazes).
        let mut pending = false;
        for &bx in boxes {
            // Only the dims on which the block is not already inside the box need testing per
            // item; a box is skipped if any dim misses the block, taken whole if none remain.
            let mut disjoint = false;
            s.dims.clear();
            for ((&d, &lo), &hi) in bx.dims.iter().zip(&bx.lo).zip(&bx.hi) {
                let (bmin, bmax) = (lo_bound[d as usize], hi_bound[d as usize]);
                disjoint |= bmax < lo || bmin > hi;
                if bmin < lo || bmax > hi {
                    s.dims.push((d as usize * b, lo, hi - lo));
                }
            }
            if disjoint {
                continue;
            }
            if group != Some(bx.group) {
                if pending {
                    s.flush_group();
                    pending = false;
                }
                group = Some(bx.group);
                boxes_in_group = 0;
            } else if boxes_in_group == u32::from(u8::MAX) {
                s.flush_counts(); // the per-group u8 counters would overflow
                boxes_in_group = 0;
            }
            boxes_in_group += 1;
            if s.dims.is_empty() {
                add_all(&mut s.group_hits, &mut s.group_any);
                pending = true;
            } else {
                pending |= add_box(cols, &s.dims, &mut s.group_hits, &mut s.group_any);
            }
            any_hit |= pending;
        }
        if any_hit {
            if pending {
                s.flush_group();
            }
            let valid = b.min(self.count() - block * b);
            let rows = &self.rows()[block * b..block * b + valid];
            // Most partially covered blocks of a selective query hold few hits: skip runs of
            // 16 empty counters with one test.
            for ((rows, counts), groups) in rows.chunks(16).zip(s.counts.chunks(16)).zip(s.groups.chunks(16)) {
                if counts.iter().fold(0, |acc, &c| acc | c) == 0 {
                    continue;
                }
                for ((&row, &count), &groups) in rows.iter().zip(counts).zip(groups) {
                    if count > 0 {
                        out.push(row, count, groups);
                    }
                }
            }
            // Between blocks every counter is zero: the u8 ones were just folded (which
            // zeroes them), the u16 totals are reset here, and only in blocks that hit.
            s.counts.fill(0);
            s.groups.fill(0);
        }
    }
}

/// Per-task counters for one block, reused across blocks.
///
/// Boxes arrive sorted by group; within a group, hits are counted in u8 lanes (`group_hits`,
/// and `group_any` for "some box of this group"), 32 items per AVX2 instruction, and folded
/// into the u16 totals when the group changes.
struct Scratch {
    /// The current box as (column offset in the block, lo, hi - lo) per constrained dim.
    dims: Vec<(usize, u8, u8)>,
    group_hits: Vec<u8>,
    group_any: Vec<u8>,
    counts: Vec<u16>,
    groups: Vec<u16>,
}

impl Scratch {
    fn new(b: usize) -> Self {
        Self {
            dims: Vec::with_capacity(64),
            group_hits: vec![0; b],
            group_any: vec![0; b],
            counts: vec![0; b],
            groups: vec![0; b],
        }
    }

    fn flush_counts(&mut self) {
        widen_add(&mut self.counts, &mut self.group_hits);
    }

    fn flush_group(&mut self) {
        self.flush_counts();
        widen_add(&mut self.groups, &mut self.group_any);
    }
}

multiversion! {
    fn add_box(cols: &[u8], dims: &[(usize, u8, u8)], hits: &mut [u8], any: &mut [u8]) -> bool => add_box_body
}

/// Items per strip of [`add_box_body`]: four AVX2 registers.
const STRIP: usize = 128;

/// Adds one box's membership to its group's counters, strip by strip. Per constrained column,
/// `(x - lo) saturating_sub (hi - lo)` is zero exactly when `lo <= x <= hi`; OR-ing those
/// "violations" over the box's dims takes three byte-wide ops per 32 items and keeps the
/// strip in registers; one compare at the end turns it into the mask added to the counters.
/// Returns whether any item was inside.
#[inline(always)]
fn add_box_body(cols: &[u8], dims: &[(usize, u8, u8)], hits: &mut [u8], any: &mut [u8]) -> bool {
    let mut hit = 0u8;
    for (strip, (h, a)) in hits.chunks_exact_mut(STRIP).zip(any.chunks_exact_mut(STRIP)).enumerate() {
        let start = strip * STRIP;
        let mut violation = [0u8; STRIP];
        for &(offset, lo, width) in dims {
            let col: &[u8; STRIP] = cols[offset + start..offset + start + STRIP].try_into().expect("a full strip");
            for (v, &x) in violation.iter_mut().zip(col) {
                *v |= x.wrapping_sub(lo).saturating_sub(width);
            }
        }
        for ((h, a), &v) in h.iter_mut().zip(a.iter_mut()).zip(&violation) {
            let inside = u8::from(v == 0);
            *h += inside;
            *a |= inside;
            hit |= inside;
        }
    }
    hit != 0
}

multiversion! {
    fn add_all(hits: &mut [u8], any: &mut [u8]) -> () => add_all_body
}

/// A box covering the whole block.
#[inline(always)]
fn add_all_body(hits: &mut [u8], any: &mut [u8]) {
    for (h, a) in hits.iter_mut().zip(any.iter_mut()) {
        *h += 1;
        *a = 1;
    }
}

multiversion! {
    fn widen_add(total: &mut [u16], part: &mut [u8]) -> () => widen_add_body
}

/// `total += part; part = 0`.
#[inline(always)]
fn widen_add_body(total: &mut [u16], part: &mut [u8]) {
    for (t, p) in total.iter_mut().zip(part.iter_mut()) {
        *t += u16::from(*p);
        *p = 0;
    }
}

/// Orders `rows` along the leaves of a k-d tree: split at a multiple of `b` near the middle, on
/// the dimension whose sampled values spread widest.
fn split(codes: &[u8], dim: usize, b: usize, rows: &mut [u32]) {
    if rows.len() <= b {
        return;
    }
    let d = widest_dim(codes, dim, rows);
    let mid = (rows.len() / 2).div_ceil(b) * b;
    let mid = mid.min(rows.len() - 1);
    rows.select_nth_unstable_by_key(mid, |&row| codes[row as usize * dim + d]);
    let (left, right) = rows.split_at_mut(mid);
    if left.len() + right.len() > 1 << 16 {
        rayon::join(|| split(codes, dim, b, left), || split(codes, dim, b, right));
    } else {
        split(codes, dim, b, left);
        split(codes, dim, b, right);
    }
}

/// The dimension with the largest spread (max - min) over an even sample of `rows`.
fn widest_dim(codes: &[u8], dim: usize, rows: &[u32]) -> usize {
    let step = (rows.len() / SPREAD_SAMPLE).max(1);
    let mut lo = vec![u8::MAX; dim];
    let mut hi = vec![0u8; dim];
    for &r in rows.iter().step_by(step) {
        let row = &codes[r as usize * dim..(r as usize + 1) * dim];
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
    for (i, &r) in rows.iter().enumerate() {
        let row = &codes[r as usize * dim..(r as usize + 1) * dim];
        for (d, &x) in row.iter().enumerate() {
            cols[d * b + i] = x;
            lo[d] = lo[d].min(x);
            hi[d] = hi[d].max(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_index_listing_a_row_past_its_count_is_refused() {
        let codes: Vec<u8> = (0..300u32 * 4).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let sum = "c".repeat(64);
        let index = BlockIndex::build(&codes, 4, &sum, BuildOptions { block_items: 128 }).unwrap();
        let mut bytes = index.storage.bytes().to_vec();
        bytes[ROWS_AT..ROWS_AT + 4].copy_from_slice(&305u32.to_le_bytes());
        seal(&mut bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.cbi");
        std::fs::write(&path, &bytes).unwrap();
        let err = BlockIndex::open(&path, &sum).err().unwrap();
        assert!(matches!(err, IndexError::Format { .. }), "{err}");
        assert!(err.to_string().contains("lists row 305 at position 0, past its 300 items"), "{err}");
    }
}
