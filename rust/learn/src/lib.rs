//! Learners that turn a few labels into box models the index applies to a whole catalog.
//!
//! - [`fit_branch`]: one decision-branch model (Lülf et al., PVLDB 2023): a union of at most
//!   `max_boxes` axis-aligned boxes, each on the dims of one feature subset, grown around a
//!   random uncovered positive by class-weighted Gini ([`grow`](crate::grow)) and added by
//!   sequential covering.
//! - [`fit_ensemble`]: members on bootstrap samples, trained in parallel; score = fraction of
//!   members accepting an item, which the index returns as the per-item group count.
//! - [`Subsets`]: the feature subsets boxes may use (the original's 64 x 4 + 32 x 6 + 8 x 8).
//!
//! The models are [`DecisionBranch`] and [`BranchEnsemble`], the names the Python package gives
//! its learners. Every fit is deterministic given its seed.

mod branch;
mod data;
mod ensemble;
mod error;
mod grow;
mod rng;
mod subsets;

pub use branch::{BranchParams, DecisionBranch, LearnedBox, fit_branch};
pub use data::TrainingSet;
pub use ensemble::{BranchEnsemble, EnsembleParams, fit_ensemble};
pub use error::{LearnError, LearnResult};
pub use rng::Rng;
pub use subsets::{ORIGINAL_SIZES, Subsets};
