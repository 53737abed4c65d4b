//! The ensemble: branch models on bootstrap samples, trained in parallel; an item's score is
//! the fraction of members whose union contains it.

use clipbranches_index::{BoxSpec, pool};
use rayon::prelude::*;

use crate::branch::{BranchParams, DecisionBranch, check_dims, fit_sorted};
use crate::data::{Sorted, TrainingSet};
use crate::error::{LearnError, LearnResult};
use crate::rng::Rng;
use crate::subsets::Subsets;

/// Bootstrap draws tried per member before giving up on getting a positive into its sample.
const MAX_REDRAWS: usize = 10_000;

/// Parameters of [`fit_ensemble`].
#[derive(Clone, Debug)]
pub struct EnsembleParams {
    /// Number of members.
    pub members: usize,
    /// Each member's parameters (`seed` is the ensemble's seed; member `i` draws from stream `i`).
    pub branch: BranchParams,
    /// Every member keeps every positive (bootstrap over the negatives only). With a handful
    /// of positives a plain bootstrap leaves each member a different few, so their unions rarely
    /// agree on a majority; see the learner issue's quality tables.
    pub keep_positives: bool,
}

impl Default for EnsembleParams {
    fn default() -> Self {
        Self { members: 25, branch: BranchParams { max_evals: 0.5, ..BranchParams::default() }, keep_positives: false }
    }
}

/// Members' models; score = fraction of members accepting an item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BranchEnsemble {
    /// One model per member, in member order.
    pub members: Vec<DecisionBranch>,
}

impl BranchEnsemble {
    /// Fraction of members whose union contains `row` (the brute-force twin of the index's
    /// group counts divided by the number of members).
    #[must_use]
    pub fn score(&self, row: &[u8]) -> f64 {
        let accepting = self.members.iter().filter(|m| m.count(row) > 0).count();
        accepting as f64 / self.members.len().max(1) as f64
    }

    /// Every member's boxes as index query boxes, group = member index.
    #[must_use]
    pub fn box_specs(&self) -> Vec<BoxSpec> {
        self.members.iter().zip(0u32..).flat_map(|(m, g)| m.box_specs(g)).collect()
    }
}

/// Fits the ensemble: member `i` trains on a bootstrap sample (drawn with probability
/// proportional to the rows' weights, as many draws as the total weight, redrawn until it holds
/// a positive) with its own random stream; members run in parallel on the library's pool.
pub fn fit_ensemble(data: &TrainingSet<'_>, subsets: &Subsets, params: &EnsembleParams) -> LearnResult<BranchEnsemble> {
    if params.members == 0 || params.members > usize::from(u16::MAX) {
        return Err(LearnError::InvalidArgument(format!("members must be in 1..=65535, got {}", params.members)));
    }
    crate::branch::fit_branch_params_check(&params.branch)?;
    check_dims(data, subsets)?;
    let sorted = Sorted::new(data);
    let members = pool::install(|| {
        (0..params.members)
            .into_par_iter()
            .map(|i| {
                let mut rng = Rng::new(params.branch.seed, i as u64 + 1);
                let weights = bootstrap(data, &mut rng, params.keep_positives)?;
                Ok(fit_sorted(data.reweighted(&weights), &sorted, subsets, &params.branch, rng))
            })
            .collect::<LearnResult<Vec<_>>>()
    })?;
    Ok(BranchEnsemble { members })
}

/// One bootstrap sample as per-row draw counts (with `keep_positives`: the positives keep
/// their weights and only the negatives are drawn).
fn bootstrap(data: &TrainingSet<'_>, rng: &mut Rng, keep_positives: bool) -> LearnResult<Vec<f64>> {
    // Kept rows enter with their weight; the rest is drawn, as many draws as its total weight.
    let kept: Vec<f64> =
        data.weight.iter().zip(data.positive).map(|(&w, &p)| if keep_positives && p { w } else { 0.0 }).collect();
    let mut cumulative = Vec::with_capacity(data.len());
    let mut sum = 0.0;
    for (&w, &k) in data.weight.iter().zip(&kept) {
        sum += w - k;
        cumulative.push(sum);
    }
    let draws = if sum > 0.0 { (sum.round() as usize).max(1) } else { 0 };
    let mut counts = kept.clone();
    for _ in 0..MAX_REDRAWS {
        counts.copy_from_slice(&kept);
        for _ in 0..draws {
            let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * sum;
            counts[cumulative.partition_point(|&c| c <= x).min(data.len() - 1)] += 1.0;
        }
        if counts.iter().zip(data.positive).any(|(&c, &p)| p && c > 0.0) {
            return Ok(counts);
        }
    }
    Err(LearnError::InvalidArgument(format!(
        "no positive in {MAX_REDRAWS} bootstrap samples: the positives' weight is too small"
    )))
}
