//! Linear scores over uint8 codes: `w · code + b` for every row, keeping the rows above a
//! threshold, in row order.
//!
//! The scan behind the linear models (logistic regression on the codes): one pass over the
//! catalog, parallel over chunks of rows, compiled per SIMD level. The weights are scaled to
//! i16 fixed point, so each row's dot product is exact integer arithmetic that vectorises like
//! the top-k distances (`pmaddwd` under AVX2), with no float reassociation to work around; a
//! scratch comparison against an f32 dot product with eight accumulators found it no slower
//! (the machine was shared, so no figure is given). The rounding of the
//! weights moves a score by at most `dim x 255 x max|w| / 32767 / 2`; rows that close to the
//! threshold may fall either side. Only the accepted rows leave a chunk.

use rayon::prelude::*;

use crate::error::{IndexError, IndexResult};
use crate::pool;
use crate::simd::multiversion;

const ROWS_PER_TASK: usize = 1 << 16;
const ROWS_PER_STEP: usize = 1 << 10;
/// Largest fixed-point weight: 32 dims x 255 x 32767 stays far inside i32.
const WEIGHT_SCALE: f32 = 32767.0;

/// Rows whose score `weights · code + bias` is above `threshold`: `(rows, scores)`, ascending
/// by row.
pub fn accept(
    codes: &[u8],
    dim: usize,
    weights: &[f32],
    bias: f32,
    threshold: f32,
) -> IndexResult<(Vec<u32>, Vec<f32>)> {
    if dim == 0 || codes.len() % dim != 0 || weights.len() != dim {
        return Err(IndexError::Dimension(format!(
            "codes ({} bytes) must be whole rows of {dim} and weights ({}) one per dim",
            codes.len(),
            weights.len()
        )));
    }
    if codes.len() / dim > u32::MAX as usize {
        return Err(IndexError::InvalidArgument("more rows than u32 row numbers can name".into()));
    }
    if !weights.iter().chain([&bias, &threshold]).all(|v| v.is_finite()) {
        return Err(IndexError::InvalidArgument("weights, bias and threshold must be finite".into()));
    }
    if dim > 1 << 16 {
        return Err(IndexError::InvalidArgument("at most 65,536 dims (i32 sums of i16 x u8)".into()));
    }
    let (fixed, unscale) = fixed_point(weights);
    let linear = Linear { weights: &fixed, unscale, bias, threshold };
    let parts: Vec<(Vec<u32>, Vec<f32>)> = pool::install(|| {
        codes
            .par_chunks(ROWS_PER_TASK * dim)
            .enumerate()
            .map(|(task, chunk)| accept_in_chunk(chunk, &linear, task * ROWS_PER_TASK))
            .collect()
    });
    Ok(concat(parts))
}

/// The `(rows, scores)` of parallel tasks, in task order, as one pair.
pub(crate) fn concat(parts: Vec<(Vec<u32>, Vec<f32>)>) -> (Vec<u32>, Vec<f32>) {
    let total = parts.iter().map(|p| p.0.len()).sum();
    let (mut rows, mut scores) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for (r, s) in parts {
        rows.extend_from_slice(&r);
        scores.extend_from_slice(&s);
    }
    (rows, scores)
}

/// Weights scaled to i16 fixed point (the largest to 32767) and the factor that undoes the
/// scaling: `weights . row ~= (fixed . row) x unscale`.
fn fixed_point(weights: &[f32]) -> (Vec<i16>, f32) {
    let largest = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
    let scale = if largest > 0.0 { WEIGHT_SCALE / largest } else { 1.0 };
    #[allow(clippy::cast_possible_truncation)] // |w| * scale <= 32767 by construction
    let fixed = weights.iter().map(|w| (w * scale).round() as i16).collect();
    (fixed, 1.0 / scale)
}

/// The fixed-point model: `score = (fixed weights . row) x unscale + bias`.
struct Linear<'a> {
    weights: &'a [i16],
    unscale: f32,
    bias: f32,
    threshold: f32,
}

fn accept_in_chunk(chunk: &[u8], linear: &Linear<'_>, first_row: usize) -> (Vec<u32>, Vec<f32>) {
    let dim = linear.weights.len();
    let (mut rows, mut kept) = (Vec::new(), Vec::new());
    let mut dots = vec![0i32; ROWS_PER_STEP];
    for (step, block) in chunk.chunks(ROWS_PER_STEP * dim).enumerate() {
        let n = block.len() / dim;
        dots_into(block, linear.weights, &mut dots[..n]);
        let base = first_row + step * ROWS_PER_STEP;
        for (row, &d) in dots[..n].iter().enumerate() {
            #[allow(clippy::cast_precision_loss)] // |d| < 2^31; f32 keeps 24 bits, as the scores need
            let score = d as f32 * linear.unscale + linear.bias;
            if score > linear.threshold {
                rows.push(u32::try_from(base + row).expect("checked: rows fit u32"));
                kept.push(score);
            }
        }
    }
    (rows, kept)
}

multiversion! {
    fn dots_into(codes: &[u8], weights: &[i16], out: &mut [i32]) -> () => dots_body
}

/// Integer dot product of every row with the weights (exact, so it vectorises freely).
#[inline(always)]
fn dots_body(codes: &[u8], weights: &[i16], out: &mut [i32]) {
    let dim = weights.len();
    for (slot, code) in out.iter_mut().zip(codes.chunks_exact(dim)) {
        *slot = code.iter().zip(weights).map(|(&c, &w)| i32::from(c) * i32::from(w)).sum();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn naive(codes: &[u8], dim: usize, weights: &[f32], bias: f32) -> Vec<f64> {
        codes
            .chunks_exact(dim)
            .map(|row| {
                row.iter().zip(weights).map(|(&c, &w)| f64::from(c) * f64::from(w)).sum::<f64>() + f64::from(bias)
            })
            .collect()
    }

    proptest! {
        /// Every row the scan accepts scores above the threshold by the f64 twin, every row it
        /// rejects does not, up to the fixed-point rounding, and the scores agree.
        #[test]
        fn accept_matches_the_naive_dot_product(
            dim in 1usize..40,
            rows in 0usize..3000,
            seed in any::<u64>(),
            bias in -200f32..200f32,
            threshold in -50f32..50f32,
        ) {
            let mut state = seed | 1;
            let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state };
            let codes: Vec<u8> = (0..rows * dim).map(|_| next() as u8).collect();
            let weights: Vec<f32> = (0..dim).map(|_| ((next() % 2001) as f32 - 1000.0) / 1000.0).collect();
            let (accepted, scores) = accept(&codes, dim, &weights, bias, threshold).unwrap();
            let exact = naive(&codes, dim, &weights, bias);
            // Fixed-point weights (max |w| <= 1 here): half a step of 1/32767 per dim, plus f32.
            let tolerance = 255.0 * dim as f64 / 32767.0 + 1e-3 * (1.0 + f64::from(bias.abs()));
            let mut next_accepted = accepted.iter().zip(&scores).peekable();
            for (row, &e) in exact.iter().enumerate() {
                if let Some((&r, &s)) = next_accepted.peek().copied() {
                    if r as usize == row {
                        prop_assert!((f64::from(s) - e).abs() <= tolerance);
                        prop_assert!(e > f64::from(threshold) - tolerance);
                        next_accepted.next();
                        continue;
                    }
                }
                prop_assert!(e <= f64::from(threshold) + tolerance, "row {} scores {} but was rejected", row, e);
            }
            prop_assert!(next_accepted.next().is_none());
        }
    }

    #[test]
    fn bad_shapes_and_values_are_typed_errors() {
        assert!(matches!(accept(&[1, 2, 3], 2, &[1.0, 1.0], 0.0, 0.0), Err(IndexError::Dimension(_))));
        assert!(matches!(accept(&[1, 2], 2, &[1.0], 0.0, 0.0), Err(IndexError::Dimension(_))));
        assert!(matches!(accept(&[1, 2], 2, &[f32::NAN, 1.0], 0.0, 0.0), Err(IndexError::InvalidArgument(_))));
        assert_eq!(accept(&[], 2, &[1.0, 1.0], 0.0, 0.0).unwrap(), (vec![], vec![]));
    }
}
