//! The hybrid model's scan: a linear score plus the distances to the nearest labelled positive
//! and negative, for every row, in one pass over the codes.
//!
//! Score of a row `x` (the Python model documents why):
//! `(f - mf) / sf - alpha (d+ - md) / sd - w- max(0, d+ - d-) / sd`, with `f = w . x + b`,
//! `d+` / `d-` the Euclidean distances to the nearest positive / negative.
//!
//! Rows are taken in blocks of [`BLOCK`], transposed to f32 columns once, and every labelled
//! code is a dot product against the block (`|x - p|^2 = |x|^2 + |p|^2 - 2 x . p`), so the inner
//! loop is a fused multiply-add over `BLOCK` lanes that stays in vector registers. Codes are
//! bytes, so every product and sum of the distances is an integer below 2^24: f32 holds them
//! exactly, and the distances equal the brute-force ones bit for bit.
//!
//! With a threshold, the negatives' distances (which only lower a score) are computed only for
//! blocks that can still pass on the other terms. Through a block index, whole blocks are
//! skipped by their bounds ([`Hybrid::accept_indexed`]). A bound for the scan without an index
//! (the distance to the positives' centroid minus their radius) was tried and dropped: in 32
//! dims the radius of even an item's ten nearest neighbours is most of a typical distance, and
//! in a scratch measurement on a synthetic catalog it skipped no block.
use rayon::prelude::*;

use crate::block_index::BlockIndex;
use crate::error::{IndexError, IndexResult};
use crate::linear::concat;
use crate::pool;
use crate::simd::multiversion;

/// Rows per block (the lanes of the inner loop: four AVX-512 or eight AVX2 registers).
pub const BLOCK: usize = 64;
/// Index blocks per parallel task.
const BLOCKS_PER_TASK: usize = 4;
const ROWS_PER_TASK: usize = 1 << 14;

/// A fitted hybrid model over codes of `dim` bytes.
#[derive(Clone, Debug)]
pub struct Hybrid {
    dim: usize,
    weights: Vec<f32>,
    bias: f32,
    /// Positives then negatives, as f32, row-major.
    refs: Vec<f32>,
    norms: Vec<f32>,
    positives: usize,
    /// `mf, sf, md, sd`: the z-score statistics of the linear score and of `d+`.
    stats: [f32; 4],
    alpha: f32,
    negative_weight: f32,
}

/// The raw terms of every row: linear score, distance to the nearest positive, to the nearest
/// negative (`inf` without negatives).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Terms {
    /// `w . x + b`.
    pub linear: Vec<f32>,
    /// Distance to the nearest positive.
    pub positive: Vec<f32>,
    /// Distance to the nearest negative.
    pub negative: Vec<f32>,
}

impl Hybrid {
    /// Validates and prepares a model. `positives` and `negatives` are row-major codes of
    /// `dim` bytes (at least one positive).
    ///
    /// # Errors
    /// [`IndexError::Dimension`] for lengths that are not whole rows of `dim`;
    /// [`IndexError::InvalidArgument`] for no positive, a non-finite parameter or a
    /// non-positive spread.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        weights: &[f32],
        bias: f32,
        positives: &[u8],
        negatives: &[u8],
        stats: [f32; 4],
        alpha: f32,
        negative_weight: f32,
    ) -> IndexResult<Self> {
        if dim == 0 || weights.len() != dim || positives.len() % dim != 0 || negatives.len() % dim != 0 {
            return Err(IndexError::Dimension(format!(
                "weights ({}), positives ({} bytes) and negatives ({} bytes) must be whole rows of {dim}",
                weights.len(),
                positives.len(),
                negatives.len()
            )));
        }
        if positives.is_empty() {
            return Err(IndexError::InvalidArgument("the hybrid model needs at least one positive".into()));
        }
        let params = weights.iter().chain(&stats).chain([&bias, &alpha, &negative_weight]);
        if !params.clone().all(|v| v.is_finite()) {
            return Err(IndexError::InvalidArgument("weights, bias and statistics must be finite".into()));
        }
        if stats[1] <= 0.0 || stats[3] <= 0.0 || alpha < 0.0 || negative_weight < 0.0 {
            return Err(IndexError::InvalidArgument("spreads must be > 0, alpha and the weight >= 0".into()));
        }
        let refs: Vec<f32> = positives.iter().chain(negatives).map(|&c| f32::from(c)).collect();
        let norms = refs.chunks_exact(dim).map(|r| r.iter().map(|v| v * v).sum()).collect();
        Ok(Self {
            dim,
            weights: weights.to_vec(),
            bias,
            refs,
            norms,
            positives: positives.len() / dim,
            stats,
            alpha,
            negative_weight,
        })
    }

    /// The combined score of raw terms.
    #[must_use]
    pub fn combine(&self, linear: f32, positive: f32, negative: f32) -> f32 {
        let [mf, sf, md, sd] = self.stats;
        let penalty =
            if negative.is_finite() { self.negative_weight * (positive - negative).max(0.0) / sd } else { 0.0 };
        (linear - mf) / sf - self.alpha * (positive - md) / sd - penalty
    }

    fn check(&self, codes: &[u8]) -> IndexResult<()> {
        if codes.len() % self.dim != 0 {
            return Err(IndexError::Dimension(format!(
                "codes ({} bytes) must be whole rows of {}",
                codes.len(),
                self.dim
            )));
        }
        if codes.len() / self.dim > u32::MAX as usize {
            return Err(IndexError::InvalidArgument("more rows than u32 row numbers can name".into()));
        }
        Ok(())
    }

    /// The raw terms of every row of `codes`.
    ///
    /// # Errors
    /// [`IndexError::Dimension`] when `codes` is not whole rows.
    pub fn terms(&self, codes: &[u8]) -> IndexResult<Terms> {
        self.check(codes)?;
        let parts: Vec<Terms> = pool::install(|| {
            codes
                .par_chunks(ROWS_PER_TASK * self.dim)
                .map(|chunk| {
                    let mut out = Terms::default();
                    let mut scratch = Scratch::new(self.dim);
                    for rows in chunk.chunks(BLOCK * self.dim) {
                        let n = rows.len() / self.dim;
                        self.block(rows, &mut scratch);
                        self.positive_distances(&mut scratch);
                        self.negative_distances(&mut scratch);
                        out.linear.extend_from_slice(&scratch.linear[..n]);
                        out.positive.extend(scratch.positive[..n].iter().map(|d2| d2.sqrt()));
                        out.negative.extend(scratch.negative[..n].iter().map(|d2| d2.sqrt()));
                    }
                    out
                })
                .collect()
        });
        let mut all = Terms::default();
        for part in parts {
            all.linear.extend(part.linear);
            all.positive.extend(part.positive);
            all.negative.extend(part.negative);
        }
        Ok(all)
    }

    /// Rows scoring above `threshold`, ascending, with their scores.
    ///
    /// # Errors
    /// [`IndexError::Dimension`] when `codes` is not whole rows; a NaN threshold.
    pub fn accept(&self, codes: &[u8], threshold: f32) -> IndexResult<(Vec<u32>, Vec<f32>)> {
        self.check(codes)?;
        if threshold.is_nan() {
            return Err(IndexError::InvalidArgument("the threshold is NaN".into()));
        }
        let parts: Vec<(Vec<u32>, Vec<f32>)> = pool::install(|| {
            codes
                .par_chunks(ROWS_PER_TASK * self.dim)
                .enumerate()
                .map(|(task, chunk)| self.accept_in_chunk(chunk, threshold, task * ROWS_PER_TASK))
                .collect()
        });
        Ok(concat(parts))
    }

    /// [`Hybrid::accept`] through a block index of the same codes: rows come back in index
    /// order. The index's columns need no transposing, and each block's per-dim bounds give a
    /// bound on its best score (the linear score's maximum over the block's box, the
    /// distance from the box to the nearest positive), so blocks that cannot pass are never read.
    ///
    /// # Errors
    /// [`IndexError::Dimension`] for an index of another width; a NaN threshold.
    pub fn accept_indexed(&self, index: &BlockIndex, threshold: f32) -> IndexResult<(Vec<u32>, Vec<f32>)> {
        if index.dim() != self.dim {
            return Err(IndexError::Dimension(format!("the index has {} dims, the model {}", index.dim(), self.dim)));
        }
        if threshold.is_nan() {
            return Err(IndexError::InvalidArgument("the threshold is NaN".into()));
        }
        let tasks = index.blocks().div_ceil(BLOCKS_PER_TASK);
        let parts: Vec<(Vec<u32>, Vec<f32>)> = pool::install(|| {
            (0..tasks)
                .into_par_iter()
                .map(|task| {
                    let mut out = (Vec::new(), Vec::new());
                    let mut scratch = Scratch::new(self.dim);
                    for block in task * BLOCKS_PER_TASK..((task + 1) * BLOCKS_PER_TASK).min(index.blocks()) {
                        let (lo, hi) = index.block_bounds(block);
                        if self.box_bound(lo, hi) <= threshold {
                            continue;
                        }
                        let (columns, rows) = index.block_data(block);
                        self.accept_columns(columns, index.block_items(), rows, threshold, &mut scratch, &mut out);
                    }
                    out
                })
                .collect()
        });
        Ok(concat(parts))
    }

    /// The best score any code inside the box `lo..=hi` can reach.
    fn box_bound(&self, lo: &[u8], hi: &[u8]) -> f32 {
        let [mf, sf, md, sd] = self.stats;
        let linear: f32 = self.bias
            + self
                .weights
                .iter()
                .zip(lo.iter().zip(hi))
                .map(|(&w, (&l, &h))| (w * f32::from(l)).max(w * f32::from(h)))
                .sum::<f32>();
        let nearest = self.refs[..self.positives * self.dim]
            .chunks_exact(self.dim)
            .map(|p| {
                p.iter()
                    .zip(lo.iter().zip(hi))
                    .map(|(&v, (&l, &h))| {
                        let gap = (f32::from(l) - v).max(v - f32::from(h)).max(0.0);
                        gap * gap
                    })
                    .sum::<f32>()
            })
            .fold(f32::INFINITY, f32::min)
            .sqrt();
        // Float sums of up to `dim` terms, summed in another order than the kernel's: a
        // relative slack keeps the bound a bound.
        let linear = linear + 1e-3 * (1.0 + linear.abs());
        let nearest = (nearest * (1.0 - 1e-4) - 1e-3).max(0.0);
        (linear - mf) / sf - self.alpha * (nearest - md) / sd
    }

    /// Scores one index block (`columns`: `dim` columns of `stride` bytes) in sub-blocks of
    /// [`BLOCK`] rows, keeping the rows (catalog rows from `rows`) above `threshold`.
    fn accept_columns(
        &self,
        columns: &[u8],
        stride: usize,
        rows: &[u32],
        threshold: f32,
        scratch: &mut Scratch,
        out: &mut (Vec<u32>, Vec<f32>),
    ) {
        for start in (0..rows.len()).step_by(BLOCK) {
            let n = BLOCK.min(rows.len() - start);
            for (d, column) in scratch.columns.iter_mut().enumerate() {
                widen_into(&columns[d * stride + start..d * stride + start + BLOCK.min(stride - start)], column);
            }
            linear_into(&scratch.columns, &self.weights, self.bias, &mut scratch.linear);
            self.positive_distances(scratch);
            let may_pass = (0..n)
                .any(|row| self.combine(scratch.linear[row], scratch.positive[row].sqrt(), f32::INFINITY) > threshold);
            if !may_pass {
                continue;
            }
            self.negative_distances(scratch);
            for row in 0..n {
                let score =
                    self.combine(scratch.linear[row], scratch.positive[row].sqrt(), scratch.negative[row].sqrt());
                if score > threshold {
                    out.0.push(rows[start + row]);
                    out.1.push(score);
                }
            }
        }
    }

    fn accept_in_chunk(&self, chunk: &[u8], threshold: f32, first_row: usize) -> (Vec<u32>, Vec<f32>) {
        let (mut rows, mut kept) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::new(self.dim);
        for (step, block) in chunk.chunks(BLOCK * self.dim).enumerate() {
            let n = block.len() / self.dim;
            self.block(block, &mut scratch);
            self.positive_distances(&mut scratch);
            let may_pass = (0..n).any(|row| {
                // The negatives' term only lowers a score: without it, this is an upper bound.
                self.combine(scratch.linear[row], scratch.positive[row].sqrt(), f32::INFINITY) > threshold
            });
            if !may_pass {
                continue;
            }
            self.negative_distances(&mut scratch);
            for row in 0..n {
                let score =
                    self.combine(scratch.linear[row], scratch.positive[row].sqrt(), scratch.negative[row].sqrt());
                if score > threshold {
                    rows.push(u32::try_from(first_row + step * BLOCK + row).expect("checked: rows fit u32"));
                    kept.push(score);
                }
            }
        }
        (rows, kept)
    }

    /// Transposes a block into `scratch` and computes its linear scores.
    fn block(&self, rows: &[u8], scratch: &mut Scratch) {
        transpose_into(rows, &mut scratch.columns);
        linear_into(&scratch.columns, &self.weights, self.bias, &mut scratch.linear);
    }

    /// Squared distances of the block's rows to their nearest positive.
    fn positive_distances(&self, scratch: &mut Scratch) {
        let split = self.positives * self.dim;
        nearest_into(&scratch.columns, &self.refs[..split], &self.norms[..self.positives], &mut scratch.positive);
    }

    /// Squared distances of the block's rows to their nearest negative (`inf` without any).
    fn negative_distances(&self, scratch: &mut Scratch) {
        let split = self.positives * self.dim;
        if split == self.refs.len() {
            scratch.negative.fill(f32::INFINITY);
        } else {
            nearest_into(&scratch.columns, &self.refs[split..], &self.norms[self.positives..], &mut scratch.negative);
        }
    }
}

/// One block's transposed codes (one `BLOCK`-wide column per dim) and results.
struct Scratch {
    columns: Vec<[f32; BLOCK]>,
    linear: [f32; BLOCK],
    positive: [f32; BLOCK],
    negative: [f32; BLOCK],
}

impl Scratch {
    fn new(dim: usize) -> Self {
        Self { columns: vec![[0.0; BLOCK]; dim], linear: [0.0; BLOCK], positive: [0.0; BLOCK], negative: [0.0; BLOCK] }
    }
}

// The kernels below index fixed-size columns in plain loops: iterator adapters (zip, chunks)
// were not inlined into the `#[target_feature]` copies, which left them scalar.

multiversion! {
    fn transpose_into(rows: &[u8], columns: &mut [[f32; BLOCK]]) -> () => transpose_body
}

/// The block's rows as f32 columns (rows past the end of a short block read as zero). Each
/// row is widened 16 bytes at a time into a fixed-size buffer (vectorised), then stored
/// across the columns.
#[inline(always)]
fn transpose_body(rows: &[u8], columns: &mut [[f32; BLOCK]]) {
    let dim = columns.len();
    let n = (rows.len() / dim.max(1)).min(BLOCK);
    for (r, code) in rows.chunks_exact(dim).take(n).enumerate() {
        for (part, bytes) in columns.chunks_mut(16).zip(code.chunks(16)) {
            let mut wide = [0f32; 16];
            for (w, &b) in wide.iter_mut().zip(bytes) {
                *w = f32::from(b);
            }
            for (column, &w) in part.iter_mut().zip(&wide) {
                column[r] = w;
            }
        }
    }
    for column in columns.iter_mut() {
        for value in &mut column[n..] {
            *value = 0.0;
        }
    }
}

multiversion! {
    fn widen_into(bytes: &[u8], column: &mut [f32; BLOCK]) -> () => widen_body
}

/// A contiguous run of bytes as f32 (zero past its end).
#[inline(always)]
fn widen_body(bytes: &[u8], column: &mut [f32; BLOCK]) {
    let n = bytes.len().min(BLOCK);
    for r in 0..n {
        column[r] = f32::from(bytes[r]);
    }
    for value in &mut column[n..] {
        *value = 0.0;
    }
}

multiversion! {
    fn linear_into(columns: &[[f32; BLOCK]], weights: &[f32], bias: f32, out: &mut [f32; BLOCK]) -> () => linear_body
}

/// `w . x + b` for the block's rows.
#[inline(always)]
fn linear_body(columns: &[[f32; BLOCK]], weights: &[f32], bias: f32, out: &mut [f32; BLOCK]) {
    let mut acc = [bias; BLOCK];
    let dim = columns.len().min(weights.len());
    for d in 0..dim {
        let (column, w) = (&columns[d], weights[d]);
        for r in 0..BLOCK {
            acc[r] += column[r] * w;
        }
    }
    *out = acc;
}

multiversion! {
    fn nearest_into(columns: &[[f32; BLOCK]], refs: &[f32], norms: &[f32], out: &mut [f32; BLOCK]) -> () => nearest_body
}

/// Squared distance of each of the block's rows to its nearest ref (`inf` without refs).
#[inline(always)]
fn nearest_body(columns: &[[f32; BLOCK]], refs: &[f32], norms: &[f32], out: &mut [f32; BLOCK]) {
    let dim = columns.len();
    let mut row_norms = [0f32; BLOCK];
    for column in columns {
        for r in 0..BLOCK {
            row_norms[r] += column[r] * column[r];
        }
    }
    let mut best = [f32::INFINITY; BLOCK];
    let n_refs = norms.len().min(refs.len() / dim.max(1));
    for j in 0..n_refs {
        let code = &refs[j * dim..(j + 1) * dim];
        let mut dot = [0f32; BLOCK];
        for d in 0..dim {
            let (column, c) = (&columns[d], code[d]);
            for r in 0..BLOCK {
                dot[r] += column[r] * c;
            }
        }
        let norm = norms[j];
        for r in 0..BLOCK {
            best[r] = best[r].min(row_norms[r] + norm - 2.0 * dot[r]);
        }
    }
    *out = best;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::BuildOptions;

    fn naive_d(x: &[u8], refs: &[u8], dim: usize) -> f64 {
        refs.chunks_exact(dim)
            .map(|r| x.iter().zip(r).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum::<f64>().sqrt())
            .fold(f64::INFINITY, f64::min)
    }

    fn random_codes(state: &mut u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                *state as u8
            })
            .collect()
    }

    proptest! {
        /// Every term equals the brute-force computation (distances exactly: integer sums in
        /// f32), and `accept` keeps exactly the rows whose combined score passes.
        #[test]
        fn terms_and_accept_match_brute_force(
            dim in 1usize..40,
            rows in 0usize..400,
            n_pos in 1usize..20,
            n_neg in 0usize..5,
            seed in any::<u64>(),
            threshold in -3f32..6f32,
            clustered in any::<bool>(),
        ) {
            let mut state = seed | 1;
            let mut codes = random_codes(&mut state, rows * dim);
            let mut pos = random_codes(&mut state, n_pos * dim);
            if clustered {
                // Positives (and a tenth of the rows) near one code: the bound then prunes
                // most blocks, and what it keeps must still be exactly the passing rows.
                let centre = random_codes(&mut state, dim);
                let near = |v: u8, c: u8| c.saturating_add(v % 9).saturating_sub(4);
                for (i, v) in pos.iter_mut().enumerate() { *v = near(*v, centre[i % dim]); }
                for (i, v) in codes.iter_mut().enumerate() { if (i / dim) % 10 == 0 { *v = near(*v, centre[i % dim]); } }
            }
            let neg = random_codes(&mut state, n_neg * dim);
            let weights: Vec<f32> = random_codes(&mut state, dim).iter().map(|&v| f32::from(v) / 255.0 - 0.5).collect();
            let model = Hybrid::new(dim, &weights, 0.3, &pos, &neg, [1.0, 2.0, 100.0, 30.0], 1.0, 2.0).unwrap();
            let terms = model.terms(&codes).unwrap();
            prop_assert_eq!(terms.linear.len(), rows);
            for (r, x) in codes.chunks_exact(dim).enumerate() {
                let f: f64 = x.iter().zip(&weights).map(|(&c, &w)| f64::from(c) * f64::from(w)).sum::<f64>() + 0.3;
                prop_assert!((f64::from(terms.linear[r]) - f).abs() < 1e-3 * (1.0 + f.abs()));
                prop_assert!((f64::from(terms.positive[r]) - naive_d(x, &pos, dim)).abs() < 1e-3);
                let dn = naive_d(x, &neg, dim);
                let negative_ok =
                    if dn.is_finite() { (f64::from(terms.negative[r]) - dn).abs() < 1e-3 } else { terms.negative[r].is_infinite() };
                prop_assert!(negative_ok, "row {}: negative distance {} vs {}", r, terms.negative[r], dn);
            }
            let (accepted, scores) = model.accept(&codes, threshold).unwrap();
            let expected: Vec<u32> = (0..rows)
                .filter(|&r| model.combine(terms.linear[r], terms.positive[r], terms.negative[r]) > threshold)
                .map(|r| r as u32)
                .collect();
            prop_assert_eq!(&accepted, &expected);
            if rows > 0 {
                // Through a block index (small blocks, so several, the last one short): the
                // same rows and scores, in index order.
                let index = BlockIndex::build(&codes, dim, &"0".repeat(64), BuildOptions { block_items: 128 }).unwrap();
                let (indexed, indexed_scores) = model.accept_indexed(&index, threshold).unwrap();
                let mut pairs: Vec<(u32, u32)> = indexed.iter().zip(&indexed_scores).map(|(&r, s)| (r, s.to_bits())).collect();
                pairs.sort_unstable();
                let expected_pairs: Vec<(u32, u32)> = accepted.iter().zip(&scores).map(|(&r, s)| (r, s.to_bits())).collect();
                prop_assert_eq!(pairs, expected_pairs);
            }
            for (&r, &s) in accepted.iter().zip(&scores) {
                let r = r as usize;
                prop_assert_eq!(s.to_bits(), model.combine(terms.linear[r], terms.positive[r], terms.negative[r]).to_bits());
            }
        }
    }

    #[test]
    fn distances_are_exact_at_the_extremes() {
        let dim = 32;
        let codes: Vec<u8> = [vec![0u8; dim], vec![255u8; dim]].concat();
        let model =
            Hybrid::new(dim, &vec![0.0; dim], 0.0, &vec![255u8; dim], &[], [0.0, 1.0, 0.0, 1.0], 1.0, 0.0).unwrap();
        let terms = model.terms(&codes).unwrap();
        assert_eq!(terms.positive, vec![(32.0f32 * 255.0 * 255.0).sqrt(), 0.0]);
        assert!(terms.negative.iter().all(|d| d.is_infinite()));
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let ok = |w: &[f32], p: &[u8], stats: [f32; 4]| Hybrid::new(2, w, 0.0, p, &[], stats, 1.0, 1.0);
        assert!(matches!(ok(&[1.0], &[1, 2], [0.0, 1.0, 0.0, 1.0]), Err(IndexError::Dimension(_))));
        assert!(matches!(ok(&[1.0, 1.0], &[], [0.0, 1.0, 0.0, 1.0]), Err(IndexError::InvalidArgument(_))));
        assert!(matches!(ok(&[f32::NAN, 1.0], &[1, 2], [0.0, 1.0, 0.0, 1.0]), Err(IndexError::InvalidArgument(_))));
        assert!(matches!(ok(&[1.0, 1.0], &[1, 2], [0.0, 0.0, 0.0, 1.0]), Err(IndexError::InvalidArgument(_))));
        let model = ok(&[1.0, 1.0], &[1, 2], [0.0, 1.0, 0.0, 1.0]).unwrap();
        assert!(matches!(model.terms(&[1, 2, 3]), Err(IndexError::Dimension(_))));
        assert!(matches!(model.accept(&[1, 2], f32::NAN), Err(IndexError::InvalidArgument(_))));
        assert_eq!(model.accept(&[], 0.0).unwrap(), (vec![], vec![]));
    }
}
