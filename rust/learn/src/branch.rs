//! One decision-branch model (Lülf et al., PVLDB 2023): a union of boxes found by sequential
//! covering.

use clipbranches_index::BoxSpec;

use crate::data::{Sorted, TrainingSet};
use crate::error::{LearnError, LearnResult};
use crate::grow::{Grower, inside};
use crate::rng::Rng;
use crate::subsets::Subsets;

/// Parameters of [`fit_branch`].
#[derive(Clone, Debug)]
pub struct BranchParams {
    /// Most boxes in the union.
    pub max_boxes: usize,
    /// Values tried per box side; `None`: `min(50, 1.5 x number of positives)`.
    pub min_pts: Option<usize>,
    /// Fraction of the subsets tried per box (1.0: all; the ensemble's members use 0.5).
    pub max_evals: f64,
    /// Sides with nothing beyond them stay open (0 / 255); `false`: stop one step past the
    /// furthest value taken (the original's `stop_infinite`).
    pub open_sides: bool,
    /// Consecutive seeds without a valid box after which training stops.
    pub max_failures: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for BranchParams {
    fn default() -> Self {
        Self { max_boxes: 30, min_pts: None, max_evals: 1.0, open_sides: true, max_failures: 5, seed: 0 }
    }
}

impl BranchParams {
    fn validate(&self) -> LearnResult<()> {
        let bad = |what: String| Err(LearnError::InvalidArgument(what));
        if self.max_boxes == 0 || self.max_boxes > usize::from(u16::MAX) {
            return bad(format!("max_boxes must be in 1..=65535, got {}", self.max_boxes));
        }
        if self.min_pts == Some(0) {
            return bad("min_pts must be at least 1".into());
        }
        if !(self.max_evals > 0.0 && self.max_evals <= 1.0) {
            return bad(format!("max_evals must be in (0, 1], got {}", self.max_evals));
        }
        if self.max_failures == 0 {
            return bad("max_failures must be at least 1".into());
        }
        Ok(())
    }
}

/// One learned box: inclusive bounds on the dims of one subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedBox {
    /// The subset's dims (sorted).
    pub dims: Vec<u16>,
    /// Lower bounds (inclusive), per dim.
    pub lo: Vec<u8>,
    /// Upper bounds (inclusive), per dim.
    pub hi: Vec<u8>,
}

impl LearnedBox {
    /// Whether a row of codes is inside.
    #[must_use]
    pub fn contains(&self, row: &[u8]) -> bool {
        inside(row, &self.dims, &self.lo, &self.hi)
    }
}

/// A union of boxes; an item is accepted when some box contains it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecisionBranch {
    /// The boxes, in the order they were found.
    pub boxes: Vec<LearnedBox>,
}

impl DecisionBranch {
    /// Number of boxes containing `row` (the brute-force twin of a box query).
    #[must_use]
    pub fn count(&self, row: &[u8]) -> usize {
        self.boxes.iter().filter(|b| b.contains(row)).count()
    }

    /// The boxes as index query boxes of group `group`.
    #[must_use]
    pub fn box_specs(&self, group: u32) -> Vec<BoxSpec> {
        self.boxes.iter().map(|b| BoxSpec { dims: b.dims.clone(), lo: b.lo.clone(), hi: b.hi.clone(), group }).collect()
    }
}

/// Fits one decision-branch model.
pub fn fit_branch(data: &TrainingSet<'_>, subsets: &Subsets, params: &BranchParams) -> LearnResult<DecisionBranch> {
    params.validate()?;
    check_dims(data, subsets)?;
    let sorted = Sorted::new(data);
    Ok(fit_sorted(*data, &sorted, subsets, params, Rng::new(params.seed, 0)))
}

pub(crate) fn fit_branch_params_check(params: &BranchParams) -> LearnResult<()> {
    params.validate()
}

pub(crate) fn check_dims(data: &TrainingSet<'_>, subsets: &Subsets) -> LearnResult<()> {
    if subsets.dim() != data.dim() {
        return Err(LearnError::Dimension(format!(
            "the subsets are for {} dims, the codes have {}",
            subsets.dim(),
            data.dim()
        )));
    }
    Ok(())
}

/// Sequential covering: while positives remain and boxes are left, grow a box around a random
/// uncovered positive on each candidate subset, keep the purest (ties: fewer dims), and remove
/// what it covers. A seed whose best box holds more negative than positive mass is a failure.
pub(crate) fn fit_sorted(
    data: TrainingSet<'_>,
    sorted: &Sorted,
    subsets: &Subsets,
    params: &BranchParams,
    mut rng: Rng,
) -> DecisionBranch {
    let positives: Vec<usize> = (0..data.len()).filter(|&r| data.positive[r] && data.weight[r] > 0.0).collect();
    let min_pts = params.min_pts.unwrap_or_else(|| 50.min((positives.len() * 3 / 2).max(1)));
    let mut grower = Grower::new(data, sorted, min_pts, params.open_sides);
    let mut seeds = positives;
    rng.shuffle(&mut seeds);
    let tried = ((subsets.len() as f64 * params.max_evals).ceil() as usize).clamp(1, subsets.len());
    let mut order: Vec<usize> = (0..subsets.len()).collect();
    let mut model = DecisionBranch::default();
    let mut failures = 0;
    for seed in seeds {
        if model.boxes.len() == params.max_boxes || failures == params.max_failures {
            break;
        }
        if !grower.active[seed] {
            continue; // covered by an earlier box
        }
        if tried < order.len() {
            rng.shuffle(&mut order);
        }
        let mut best: Option<(f64, usize, usize, crate::grow::Grown)> = None;
        for &s in &order[..tried] {
            let dims = &subsets.sets()[s];
            let grown = grower.grow(seed, dims);
            let key = (grown.impurity, dims.len(), s);
            if best.as_ref().is_none_or(|b| key < (b.0, b.1, b.2)) {
                best = Some((key.0, key.1, key.2, grown));
            }
        }
        let Some((_, _, s, grown)) = best else { break };
        if grown.pos > grown.neg {
            let dims = subsets.sets()[s].clone();
            grower.cover(&dims, &grown.lo, &grown.hi);
            model.boxes.push(LearnedBox { dims, lo: grown.lo, hi: grown.hi });
            failures = 0;
        } else {
            failures += 1;
        }
    }
    model
}
