//! `_core.fit_branch`, `_core.fit_ensemble`, `_core.original_subsets`: the learners.
//!
//! A fitted model crosses the boundary as a `_core.BoxSet` (its boxes, validated, with the
//! query built once), which the Python facade keeps and hands back to every query.

use clipbranches_index::{BoxSet, BoxSpec};
use clipbranches_learn::{
    BranchParams, EnsembleParams, LearnError, Subsets, TrainingSet, fit_branch as fit_one, fit_ensemble as fit_many,
};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::boxes::PyBoxSet;
use crate::detached;
use crate::errors::ToPyErr;

/// The training data, borrowed from numpy arrays (C-contiguous).
struct Borrowed<'a> {
    codes: &'a [u8],
    dim: usize,
    labels: &'a [bool],
    weights: &'a [f64],
}

fn borrow<'a>(
    codes: &'a PyReadonlyArray2<'_, u8>,
    labels: &'a PyReadonlyArray1<'_, bool>,
    weights: &'a PyReadonlyArray1<'_, f64>,
) -> PyResult<Borrowed<'a>> {
    let contiguous = |what: &str| LearnError::InvalidArgument(format!("{what} must be C-contiguous")).to_pyerr();
    Ok(Borrowed {
        codes: codes.as_slice().map_err(|_| contiguous("codes"))?,
        dim: codes.shape()[1],
        labels: labels.as_slice().map_err(|_| contiguous("labels"))?,
        weights: weights.as_slice().map_err(|_| contiguous("weights"))?,
    })
}

fn branch_params(
    max_boxes: usize,
    min_pts: Option<usize>,
    max_evals: f64,
    open_sides: bool,
    max_failures: usize,
    seed: u64,
) -> BranchParams {
    BranchParams { max_boxes, min_pts, max_evals, open_sides, max_failures, seed }
}

/// A fitted model's boxes over codes of width `dim`, as the set Python holds.
fn box_set(dim: usize, boxes: Vec<BoxSpec>) -> PyResult<PyBoxSet> {
    Ok(BoxSet::new(dim, boxes).map_err(ToPyErr::to_pyerr)?.into())
}

/// Fits one decision-branch model; returns its boxes (all of group 0), in the order found.
#[pyfunction]
#[pyo3(signature = (codes, labels, weights, subsets, *, max_boxes, min_pts, max_evals, open_sides, max_failures, seed))]
#[allow(clippy::too_many_arguments)]
pub fn fit_branch(
    py: Python<'_>,
    codes: PyReadonlyArray2<'_, u8>,
    labels: PyReadonlyArray1<'_, bool>,
    weights: PyReadonlyArray1<'_, f64>,
    subsets: Vec<Vec<u16>>,
    max_boxes: usize,
    min_pts: Option<usize>,
    max_evals: f64,
    open_sides: bool,
    max_failures: usize,
    seed: u64,
) -> PyResult<PyBoxSet> {
    let b = borrow(&codes, &labels, &weights)?;
    let params = branch_params(max_boxes, min_pts, max_evals, open_sides, max_failures, seed);
    let model = detached(py, || {
        let data = TrainingSet::new(b.codes, b.dim, b.labels, b.weights)?;
        fit_one(&data, &Subsets::new(b.dim, subsets)?, &params)
    })?;
    box_set(b.dim, model.box_specs(0))
}

/// Fits an ensemble of `members` branch models in parallel; returns every member's boxes,
/// member after member, group = member index.
#[pyfunction]
#[pyo3(signature = (codes, labels, weights, subsets, *, members, keep_positives, max_boxes, min_pts, max_evals, open_sides, max_failures, seed))]
#[allow(clippy::too_many_arguments)]
pub fn fit_ensemble(
    py: Python<'_>,
    codes: PyReadonlyArray2<'_, u8>,
    labels: PyReadonlyArray1<'_, bool>,
    weights: PyReadonlyArray1<'_, f64>,
    subsets: Vec<Vec<u16>>,
    members: usize,
    keep_positives: bool,
    max_boxes: usize,
    min_pts: Option<usize>,
    max_evals: f64,
    open_sides: bool,
    max_failures: usize,
    seed: u64,
) -> PyResult<PyBoxSet> {
    let b = borrow(&codes, &labels, &weights)?;
    let params = EnsembleParams {
        members,
        branch: branch_params(max_boxes, min_pts, max_evals, open_sides, max_failures, seed),
        keep_positives,
    };
    let model = detached(py, || {
        let data = TrainingSet::new(b.codes, b.dim, b.labels, b.weights)?;
        fit_many(&data, &Subsets::new(b.dim, subsets)?, &params)
    })?;
    box_set(b.dim, model.box_specs())
}

/// The original CLIP-Branches subset configuration (64 x 4, 32 x 6, 8 x 8 dims) for `dim`.
#[pyfunction]
#[pyo3(signature = (dim, seed = 0))]
pub fn original_subsets(dim: usize, seed: u64) -> PyResult<Vec<Vec<u16>>> {
    Ok(Subsets::original(dim, seed).map_err(ToPyErr::to_pyerr)?.sets().to_vec())
}
