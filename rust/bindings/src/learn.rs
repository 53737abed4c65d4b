//! `_core.fit_branch`, `_core.fit_ensemble`, `_core.original_subsets`: the learners.
//!
//! Models cross the boundary as boxes in the compressed form of `BoxQuery::from_csr`
//! (offsets, dims, lo, hi, groups), which the Python facade turns into `Box` objects.

use clipbranches_learn::{
    BranchParams, DecisionBranch, EnsembleParams, LearnError, Subsets, TrainingSet, fit_branch as fit_one,
    fit_ensemble as fit_many,
};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::detached;
use crate::errors::ToPyErr;

/// `(offsets, dims, lo, hi, groups)` of a model's boxes.
type BoxArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<u16>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<u32>>,
);

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

fn box_arrays<'py>(py: Python<'py>, models: &[DecisionBranch]) -> BoxArrays<'py> {
    let mut offsets = vec![0i64];
    let (mut dims, mut lo, mut hi, mut groups) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (model, group) in models.iter().zip(0u32..) {
        for b in &model.boxes {
            dims.extend_from_slice(&b.dims);
            lo.extend_from_slice(&b.lo);
            hi.extend_from_slice(&b.hi);
            groups.push(group);
            offsets.push(i64::try_from(dims.len()).unwrap_or(i64::MAX));
        }
    }
    (offsets.into_pyarray(py), dims.into_pyarray(py), lo.into_pyarray(py), hi.into_pyarray(py), groups.into_pyarray(py))
}

/// Fits one decision-branch model; returns its boxes (all of group 0).
#[pyfunction]
#[pyo3(signature = (codes, labels, weights, subsets, *, max_boxes, min_pts, max_evals, open_sides, max_failures, seed))]
#[allow(clippy::too_many_arguments)]
pub fn fit_branch<'py>(
    py: Python<'py>,
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
) -> PyResult<BoxArrays<'py>> {
    let b = borrow(&codes, &labels, &weights)?;
    let params = branch_params(max_boxes, min_pts, max_evals, open_sides, max_failures, seed);
    let model = detached(py, || {
        let data = TrainingSet::new(b.codes, b.dim, b.labels, b.weights)?;
        fit_one(&data, &Subsets::new(b.dim, subsets)?, &params)
    })?;
    Ok(box_arrays(py, std::slice::from_ref(&model)))
}

/// Fits an ensemble of `members` branch models in parallel; returns every member's boxes,
/// group = member index.
#[pyfunction]
#[pyo3(signature = (codes, labels, weights, subsets, *, members, keep_positives, max_boxes, min_pts, max_evals, open_sides, max_failures, seed))]
#[allow(clippy::too_many_arguments)]
pub fn fit_ensemble<'py>(
    py: Python<'py>,
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
) -> PyResult<BoxArrays<'py>> {
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
    Ok(box_arrays(py, &model.members))
}

/// The original CLIP-Branches subset configuration (64 x 4, 32 x 6, 8 x 8 dims) for `dim`.
#[pyfunction]
#[pyo3(signature = (dim, seed = 0))]
pub fn original_subsets(dim: usize, seed: u64) -> PyResult<Vec<Vec<u16>>> {
    Ok(Subsets::original(dim, seed).map_err(ToPyErr::to_pyerr)?.sets().to_vec())
}
