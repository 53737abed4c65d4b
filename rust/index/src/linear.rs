//! Linear scores over uint8 codes: `w · code + b` for every row, keeping the rows above a
//! threshold, in row order.
//!
//! The scan behind the linear models (logistic regression on the codes): one pass over the
//! catalog, parallel over chunks of rows, each row's dot product in f32 with eight independent
//! accumulators (so it vectorises without reassociating one long sum), compiled per SIMD level.
//! Only the accepted rows leave a chunk, so the output is as small as the answer.

use rayon::prelude::*;

use crate::error::{IndexError, IndexResult};
use crate::pool;
use crate::simd::multiversion;

const ROWS_PER_TASK: usize = 1 << 16;
const ROWS_PER_STEP: usize = 1 << 10;
const LANES: usize = 8;

/// Rows whose score `weights · code + bias` is above `threshold`: `(rows, scores)`, ascending
/// by row.
pub fn accept(codes: &[u8], dim: usize, weights: &[f32], bias: f32, threshold: f32) -> IndexResult<(Vec<u32>, Vec<f32>)> {
    if dim == 0 || codes.len() % dim != 0 || weights.len() != dim {
        return Err(IndexError::Dimension(format!(
            "codes ({} bytes) must be whole rows of {dim} and weights ({}) one per dim",
            codes.len(),
            weights.len()
        )));
    }
    if codes.len() / dim > u32::MAX as usize {
        return Err(IndexError::InvalidArgument("more rows than u32 ids can name".into()));
    }
    if !weights.iter().chain([&bias, &threshold]).all(|v| v.is_finite()) {
        return Err(IndexError::InvalidArgument("weights, bias and threshold must be finite".into()));
    }
    let parts: Vec<(Vec<u32>, Vec<f32>)> = pool::install(|| {
        codes
            .par_chunks(ROWS_PER_TASK * dim)
            .enumerate()
            .map(|(task, chunk)| accept_in_chunk(chunk, dim, weights, bias, threshold, task * ROWS_PER_TASK))
            .collect()
    });
    let total = parts.iter().map(|p| p.0.len()).sum();
    let (mut rows, mut scores) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for (r, s) in parts {
        rows.extend_from_slice(&r);
        scores.extend_from_slice(&s);
    }
    Ok((rows, scores))
}

fn accept_in_chunk(
    chunk: &[u8],
    dim: usize,
    weights: &[f32],
    bias: f32,
    threshold: f32,
    first_row: usize,
) -> (Vec<u32>, Vec<f32>) {
    let (mut rows, mut kept) = (Vec::new(), Vec::new());
    let mut scores = vec![0f32; ROWS_PER_STEP];
    for (step, block) in chunk.chunks(ROWS_PER_STEP * dim).enumerate() {
        let n = block.len() / dim;
        scores_into(block, weights, bias, &mut scores[..n]);
        let base = first_row + step * ROWS_PER_STEP;
        for (row, &s) in scores[..n].iter().enumerate() {
            if s > threshold {
                rows.push(u32::try_from(base + row).expect("checked: rows fit u32"));
                kept.push(s);
            }
        }
    }
    (rows, kept)
}

multiversion! {
    fn scores_into(codes: &[u8], weights: &[f32], bias: f32, out: &mut [f32]) -> () => scores_body
}

/// `weights · row + bias` per row; the dims are taken eight at a time into eight lanes.
#[inline(always)]
fn scores_body(codes: &[u8], weights: &[f32], bias: f32, out: &mut [f32]) {
    let dim = weights.len();
    let whole = dim - dim % LANES;
    for (slot, code) in out.iter_mut().zip(codes.chunks_exact(dim)) {
        let mut acc = [0f32; LANES];
        for (c, w) in code[..whole].chunks_exact(LANES).zip(weights[..whole].chunks_exact(LANES)) {
            for lane in 0..LANES {
                acc[lane] += f32::from(c[lane]) * w[lane];
            }
        }
        let tail: f32 = code[whole..].iter().zip(&weights[whole..]).map(|(&c, &w)| f32::from(c) * w).sum();
        *slot = acc.iter().sum::<f32>() + tail + bias;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn naive(codes: &[u8], dim: usize, weights: &[f32], bias: f32) -> Vec<f64> {
        codes
            .chunks_exact(dim)
            .map(|row| row.iter().zip(weights).map(|(&c, &w)| f64::from(c) * f64::from(w)).sum::<f64>() + f64::from(bias))
            .collect()
    }

    proptest! {
        /// Every row the scan accepts scores above the threshold by the f64 twin, every row it
        /// rejects does not, up to f32 rounding, and the scores agree.
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
            let tolerance = 1e-3 * (1.0 + 255.0 * dim as f64);
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
