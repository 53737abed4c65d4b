//! Feature subsets: the low-dimensional views a box may constrain.
//!
//! Every box of a model constrains the dims of exactly one subset. The index answers a box on
//! any subset, so the subsets are a property of the model (each box carries its dims), chosen
//! once per catalog and passed to every fit so that models stay comparable across rounds.

use crate::error::{LearnError, LearnResult};
use crate::rng::Rng;

/// The original CLIP-Branches configuration: 64 subsets of 4 dims, 32 of 6 and 8 of 8.
pub const ORIGINAL_SIZES: [(usize, usize); 3] = [(4, 64), (6, 32), (8, 8)];

/// A validated list of subsets of `0..dim`, each a sorted list of distinct dims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subsets {
    dim: usize,
    sets: Vec<Vec<u16>>,
}

impl Subsets {
    /// Validates `sets` for codes of width `dim` (each set is sorted; duplicates within a set,
    /// dims out of range and empty sets are errors).
    pub fn new(dim: usize, sets: Vec<Vec<u16>>) -> LearnResult<Self> {
        if sets.is_empty() {
            return Err(LearnError::InvalidArgument("the subset list is empty".into()));
        }
        let mut clean = Vec::with_capacity(sets.len());
        for (i, mut set) in sets.into_iter().enumerate() {
            set.sort_unstable();
            if set.is_empty() {
                return Err(LearnError::InvalidArgument(format!("subset {i} is empty")));
            }
            if let Some(&d) = set.iter().find(|&&d| usize::from(d) >= dim) {
                return Err(LearnError::Dimension(format!("subset {i} names dim {d}, but codes have {dim} dims")));
            }
            if set.windows(2).any(|w| w[0] == w[1]) {
                return Err(LearnError::InvalidArgument(format!("subset {i} repeats a dim: {set:?}")));
            }
            clean.push(set);
        }
        Ok(Self { dim, sets: clean })
    }

    /// Random subsets in the given `(size, count)` proportions, drawn with `seed` (sizes above
    /// `dim` are clamped to `dim`; identical subsets are kept once).
    pub fn random(dim: usize, sizes: &[(usize, usize)], seed: u64) -> LearnResult<Self> {
        if dim == 0 || dim > usize::from(u16::MAX) {
            return Err(LearnError::Dimension(format!("codes of {dim} dims cannot have subsets")));
        }
        let mut rng = Rng::new(seed, 0x5B5E7);
        let mut sets: Vec<Vec<u16>> = Vec::new();
        let mut all: Vec<u16> = (0..dim as u16).collect();
        for &(size, count) in sizes {
            let size = size.clamp(1, dim);
            for _ in 0..count {
                rng.shuffle(&mut all);
                let mut set = all[..size].to_vec();
                set.sort_unstable();
                if !sets.contains(&set) {
                    sets.push(set);
                }
            }
        }
        Self::new(dim, sets)
    }

    /// The original's configuration ([`ORIGINAL_SIZES`]) for codes of width `dim`.
    pub fn original(dim: usize, seed: u64) -> LearnResult<Self> {
        Self::random(dim, &ORIGINAL_SIZES, seed)
    }

    /// Code width the subsets are for.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The subsets.
    #[must_use]
    pub fn sets(&self) -> &[Vec<u16>] {
        &self.sets
    }

    /// Number of subsets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Never true for a validated list (kept for API symmetry with `len`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_configuration_has_the_original_sizes() {
        let s = Subsets::original(32, 0).unwrap();
        let count = |k| s.sets().iter().filter(|set| set.len() == k).count();
        assert_eq!((count(4), count(6), count(8)), (64, 32, 8));
        assert_eq!(s, Subsets::original(32, 0).unwrap(), "deterministic");
        assert_ne!(s, Subsets::original(32, 1).unwrap());
    }

    #[test]
    fn small_dims_clamp_and_dedupe() {
        let s = Subsets::original(3, 0).unwrap();
        assert!(s.sets().iter().all(|set| set.len() <= 3));
        assert!(s.len() <= 7, "at most 2^3 - 1 distinct non-empty subsets");
    }

    #[test]
    fn bad_subsets_are_rejected() {
        assert!(Subsets::new(4, vec![]).is_err());
        assert!(Subsets::new(4, vec![vec![]]).is_err());
        assert!(matches!(Subsets::new(4, vec![vec![1, 4]]), Err(LearnError::Dimension(_))));
        assert!(Subsets::new(4, vec![vec![1, 1]]).is_err());
    }
}
