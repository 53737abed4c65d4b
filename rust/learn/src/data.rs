//! The training data of one fit: codes, labels and weights, validated and pre-sorted per dim.

use crate::error::{LearnError, LearnResult};

/// Labelled training rows, borrowed: row-major uint8 `codes` of width `dim`, a label per row
/// (`true` = positive) and a non-negative weight per row (a repeated negative is one row of
/// weight k; a bootstrap sample reweights rows by how often they were drawn).
#[derive(Clone, Copy, Debug)]
pub struct TrainingSet<'a> {
    pub(crate) codes: &'a [u8],
    pub(crate) dim: usize,
    pub(crate) positive: &'a [bool],
    pub(crate) weight: &'a [f64],
}

impl<'a> TrainingSet<'a> {
    /// Validates the shapes and weights; at least one positive of positive weight is required.
    pub fn new(codes: &'a [u8], dim: usize, positive: &'a [bool], weight: &'a [f64]) -> LearnResult<Self> {
        if dim == 0 || codes.len() % dim != 0 {
            return Err(LearnError::Dimension(format!("{} bytes of codes are not rows of {dim}", codes.len())));
        }
        let n = codes.len() / dim;
        if positive.len() != n || weight.len() != n {
            return Err(LearnError::InvalidArgument(format!(
                "{n} rows of codes but {} labels and {} weights",
                positive.len(),
                weight.len()
            )));
        }
        if n > u32::MAX as usize {
            return Err(LearnError::InvalidArgument(format!("{n} training rows; at most 2^32 - 1")));
        }
        if let Some(i) = weight.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(LearnError::InvalidArgument(format!("weight {} of row {i} is not finite and >= 0", weight[i])));
        }
        if !positive.iter().zip(weight).any(|(&p, &w)| p && w > 0.0) {
            return Err(LearnError::InvalidArgument("the training set has no positive (of positive weight)".into()));
        }
        Ok(Self { codes, dim, positive, weight })
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.positive.len()
    }

    /// Whether there are no rows (never true for a validated set: it holds a positive).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.positive.is_empty()
    }

    /// Code width.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The same rows with other weights (e.g. a bootstrap sample's counts).
    pub(crate) fn reweighted<'b>(&self, weight: &'b [f64]) -> TrainingSet<'b>
    where
        'a: 'b,
    {
        TrainingSet { codes: self.codes, dim: self.dim, positive: self.positive, weight }
    }

    pub(crate) fn row(&self, row: usize) -> &'a [u8] {
        &self.codes[row * self.dim..(row + 1) * self.dim]
    }

    pub(crate) fn value(&self, row: usize, d: usize) -> u8 {
        self.codes[row * self.dim + d]
    }
}

/// Rows sorted by value, per dim (a counting sort: values are bytes; stable, so equal values
/// keep row order), shared by every member of an ensemble.
pub(crate) struct Sorted {
    n: usize,
    rows: Vec<u32>,
}

impl Sorted {
    pub(crate) fn new(data: &TrainingSet<'_>) -> Self {
        let (n, dim) = (data.len(), data.dim);
        let mut rows = vec![0u32; n * dim];
        for d in 0..dim {
            let mut start = [0u32; 257];
            for r in 0..n {
                start[usize::from(data.value(r, d)) + 1] += 1;
            }
            for v in 1..257 {
                start[v] += start[v - 1];
            }
            let mut next: Vec<u32> = start[..256].to_vec();
            let out = &mut rows[d * n..(d + 1) * n];
            for r in 0..n {
                let v = usize::from(data.value(r, d));
                out[next[v] as usize] = r as u32;
                next[v] += 1;
            }
        }
        Self { n, rows }
    }

    /// Rows in ascending order of their value on dim `d`.
    pub(crate) fn column(&self, d: usize) -> &[u32] {
        &self.rows[d * self.n..(d + 1) * self.n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_columns_are_sorted_and_complete() {
        let codes = [5u8, 1, 0, 9, 5, 3, 255, 0];
        let labels = [true, false, false, true];
        let weights = [1.0; 4];
        let data = TrainingSet::new(&codes, 2, &labels, &weights).unwrap();
        let s = Sorted::new(&data);
        // Rows (5, 1), (0, 9), (5, 3), (255, 0).
        assert_eq!(s.column(0), &[1, 0, 2, 3]);
        assert_eq!(s.column(1), &[3, 0, 2, 1]);
    }

    #[test]
    fn bad_sets_are_rejected() {
        let w = [1.0, 1.0];
        assert!(TrainingSet::new(&[1, 2, 3], 2, &[true, false], &w).is_err());
        assert!(TrainingSet::new(&[1, 2], 1, &[true], &w).is_err());
        assert!(TrainingSet::new(&[1, 2], 1, &[false, false], &w).is_err(), "no positive");
        assert!(TrainingSet::new(&[1, 2], 1, &[true, false], &[0.0, 1.0]).is_err(), "positive of weight 0");
        assert!(TrainingSet::new(&[1, 2], 1, &[true, false], &[1.0, f64::NAN]).is_err());
        assert!(TrainingSet::new(&[1, 2], 1, &[true, false], &[1.0, -1.0]).is_err());
    }
}
