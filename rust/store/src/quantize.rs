//! Float embeddings to uint8 codes.
//!
//! Two schemes, both stored in the manifest so queries are quantized exactly like the catalog:
//! - `fixed` (the paper's): `q = trunc(clip(x * scale + offset, 0, 255))`, with scale 127.5 and
//!   offset 128 mapping unit-norm coordinates in [-1, 1] onto 0..=255.
//! - `calibrated`: a per-dimension range `[low, high]` measured on data,
//!   `q = clip(round_half_even((x - low) * (255 / (high - low))), 0, 255)`, which spends all
//!   256 levels on the values a dimension actually takes.
//!
//! The arithmetic is written operation for operation like the numpy twin in
//! `clipbranches/quantize.py` (f32 throughout, no fused multiply-add), so both give the same
//! bytes; a property test holds them to it.

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};

/// Parameters of a quantizer, as stored in `manifest.json` under `"quantizer"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum QuantizerParams {
    /// The paper's fixed affine map, truncated.
    Fixed {
        /// Multiplier (127.5 in the paper).
        scale: f32,
        /// Added after scaling (128 in the paper).
        offset: f32,
    },
    /// A per-dimension range, rounded.
    Calibrated {
        /// Value mapped to code 0, one per dimension.
        low: Vec<f32>,
        /// Value mapped to code 255, one per dimension.
        high: Vec<f32>,
    },
}

impl QuantizerParams {
    /// The paper's parameters.
    #[must_use]
    pub fn paper() -> Self {
        Self::Fixed { scale: 127.5, offset: 128.0 }
    }

    /// Checks the parameters against a code width.
    pub fn validate(&self, dim: usize) -> StoreResult<()> {
        match self {
            Self::Fixed { scale, offset } => {
                if !(scale.is_finite() && *scale > 0.0 && offset.is_finite()) {
                    return Err(StoreError::InvalidArgument(format!(
                        "fixed quantizer needs a finite scale > 0 and a finite offset, got scale={scale}, offset={offset}"
                    )));
                }
            }
            Self::Calibrated { low, high } => {
                if low.len() != dim || high.len() != dim {
                    return Err(StoreError::Dimension {
                        what: format!(
                            "calibrated quantizer has {} lows and {} highs for {dim} dimensions",
                            low.len(),
                            high.len()
                        ),
                    });
                }
                if let Some(d) = (0..dim).find(|&d| !(low[d].is_finite() && high[d].is_finite() && high[d] > low[d])) {
                    return Err(StoreError::InvalidArgument(format!(
                        "calibrated quantizer dimension {d}: need finite low < high, got [{}, {}]",
                        low[d], high[d]
                    )));
                }
            }
        }
        Ok(())
    }

    /// Quantizes row-major `values` (rows of `dim` floats) into `out` (same length).
    ///
    /// NaN has no code: it is rejected with its position rather than silently mapped to 0.
    pub fn quantize_into(&self, values: &[f32], dim: usize, out: &mut [u8]) -> StoreResult<()> {
        self.validate(dim)?;
        if dim == 0 || values.len() % dim != 0 || out.len() != values.len() {
            return Err(StoreError::Dimension {
                what: format!("{} values do not form rows of {dim} (or the output holds {})", values.len(), out.len()),
            });
        }
        if let Some(i) = values.iter().position(|v| v.is_nan()) {
            return Err(StoreError::InvalidArgument(format!(
                "NaN at row {}, dimension {}: embeddings must be numbers",
                i / dim,
                i % dim
            )));
        }
        match self {
            Self::Fixed { scale, offset } => {
                for (q, &x) in out.iter_mut().zip(values) {
                    *q = (x * scale + offset).clamp(0.0, 255.0) as u8;
                }
            }
            Self::Calibrated { low, high } => {
                let inv: Vec<f32> = low.iter().zip(high).map(|(l, h)| 255.0 / (h - l)).collect();
                for (qrow, xrow) in out.chunks_exact_mut(dim).zip(values.chunks_exact(dim)) {
                    // Zipped iterators, not indices: no bounds checks, so the loop vectorises.
                    for ((q, &x), (&l, &s)) in qrow.iter_mut().zip(xrow).zip(low.iter().zip(&inv)) {
                        *q = round_half_even_0_255(((x - l) * s).clamp(0.0, 255.0));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Rounds `t` in `[0, 255]` half to even, as `np.rint` does.
///
/// Adding and subtracting 2^23 leaves no fraction bits, so the FPU's round-to-nearest-even
/// does the rounding: two adds that vectorise on any x86-64, where `round_ties_even` is a
/// libm call without SSE4.1. Clamping before rounding equals numpy's clip after rounding
/// because the bounds are integers.
#[inline]
fn round_half_even_0_255(t: f32) -> u8 {
    const SHIFT: f32 = 8_388_608.0; // 2^23
    ((t + SHIFT) - SHIFT) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_matches_the_paper_on_edges() {
        let q = QuantizerParams::paper();
        let x = [-1.0, -0.999, 0.0, 0.5, 0.999, 1.0, -5.0, 5.0, f32::INFINITY, f32::NEG_INFINITY];
        let mut out = [0u8; 10];
        q.quantize_into(&x, 1, &mut out).unwrap();
        assert_eq!(out, [0, 0, 128, 191, 255, 255, 0, 255, 255, 0]);
    }

    #[test]
    fn calibrated_uses_every_level_and_rounds_half_even() {
        let q = QuantizerParams::Calibrated { low: vec![0.0], high: vec![255.0] };
        let x = [0.0, 0.5, 1.5, 2.5, 254.6, 255.0, -3.0, 300.0];
        let mut out = [0u8; 8];
        q.quantize_into(&x, 1, &mut out).unwrap();
        assert_eq!(out, [0, 0, 2, 2, 255, 255, 0, 255]);
    }

    #[test]
    fn fast_rounding_matches_round_ties_even() {
        // Every float in [0.5, 1.5] (the first two ties), then the ties, their neighbours and
        // a fine grid in every unit interval up to 255.
        let mut t = 0.5f32;
        let mut cases = Vec::new();
        while t <= 1.5 {
            cases.push(t);
            t = t.next_up();
        }
        for k in 0..=255u16 {
            let tie = f32::from(k) + 0.5;
            cases.extend([f32::from(k), tie, tie.next_up(), tie.next_down()]);
            cases.extend((0..1000u16).map(|i| f32::from(k) + f32::from(i) / 1000.0));
        }
        for t in cases.into_iter().filter(|t| *t <= 255.0) {
            assert_eq!(round_half_even_0_255(t), t.round_ties_even() as u8, "{t}");
        }
    }

    #[test]
    fn rejects_nan_bad_params_and_ragged_rows() {
        let mut out = [0u8; 4];
        let err = QuantizerParams::paper().quantize_into(&[0.0, 0.0, f32::NAN, 0.0], 2, &mut out).unwrap_err();
        assert!(err.to_string().contains("row 1, dimension 0"), "{err}");
        let bad = QuantizerParams::Calibrated { low: vec![1.0, 0.0], high: vec![1.0, 1.0] };
        assert!(bad.quantize_into(&[0.0; 4], 2, &mut out).unwrap_err().to_string().contains("dimension 0"));
        let short = QuantizerParams::Calibrated { low: vec![0.0], high: vec![1.0] };
        assert!(matches!(short.validate(2), Err(StoreError::Dimension { .. })));
        assert!(QuantizerParams::paper().quantize_into(&[0.0; 3], 2, &mut out[..3]).is_err());
    }
}
