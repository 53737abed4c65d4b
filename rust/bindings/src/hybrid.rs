//! `_core.Hybrid`: the hybrid model's native scan (linear score plus distances to the
//! labelled codes), built once per round and applied to the sample and the catalog.

use clipbranches_index::IndexError;
use clipbranches_index::hybrid::Hybrid;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::detached;
use crate::errors::ToPyErr;
use crate::index::PyBlockIndex;

/// `(linear, positive, negative)` terms of every row.
type TermArrays<'py> = (Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>);

/// `(rows, scores)` the scan accepted.
type Accepted<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);

fn slice<'a, T: numpy::Element>(array: &'a PyReadonlyArray1<'_, T>, what: &str) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| IndexError::InvalidArgument(format!("{what} must be contiguous")).to_pyerr())
}

fn rows<'a>(array: &'a PyReadonlyArray2<'_, u8>, what: &str) -> PyResult<&'a [u8]> {
    array.as_slice().map_err(|_| IndexError::InvalidArgument(format!("{what} must be C-contiguous")).to_pyerr())
}

/// A fitted hybrid model over codes of one width.
#[pyclass(name = "Hybrid", module = "clipbranches._core", frozen)]
pub struct PyHybrid {
    inner: Hybrid,
    dim: usize,
}

#[pymethods]
impl PyHybrid {
    #[new]
    #[pyo3(signature = (weights, bias, positives, negatives, stats, alpha, negative_weight))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        weights: PyReadonlyArray1<'_, f32>,
        bias: f32,
        positives: PyReadonlyArray2<'_, u8>,
        negatives: PyReadonlyArray2<'_, u8>,
        stats: [f32; 4],
        alpha: f32,
        negative_weight: f32,
    ) -> PyResult<Self> {
        let dim = positives.shape()[1];
        if negatives.shape()[1] != dim && negatives.shape()[0] > 0 {
            return Err(IndexError::Dimension(format!(
                "negatives have {} dims, positives {dim}",
                negatives.shape()[1]
            ))
            .to_pyerr());
        }
        let inner = Hybrid::new(
            dim,
            slice(&weights, "weights")?,
            bias,
            rows(&positives, "positives")?,
            rows(&negatives, "negatives")?,
            stats,
            alpha,
            negative_weight,
        )
        .map_err(ToPyErr::to_pyerr)?;
        Ok(Self { inner, dim })
    }

    /// `(linear, positive, negative)`: the raw terms of every row of `codes` (float32).
    fn terms<'py>(&self, py: Python<'py>, codes: PyReadonlyArray2<'py, u8>) -> PyResult<TermArrays<'py>> {
        self.check(&codes)?;
        let bytes = rows(&codes, "codes")?;
        let terms = detached(py, || self.inner.terms(bytes))?;
        Ok((terms.linear.into_pyarray(py), terms.positive.into_pyarray(py), terms.negative.into_pyarray(py)))
    }

    /// `(rows uint32, scores float32)`: the rows of `codes` scoring above `threshold`, ascending.
    fn accept<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray2<'py, u8>,
        threshold: f32,
    ) -> PyResult<Accepted<'py>> {
        self.check(&codes)?;
        let bytes = rows(&codes, "codes")?;
        let (rows, scores) = detached(py, || self.inner.accept(bytes, threshold))?;
        Ok((rows.into_pyarray(py), scores.into_pyarray(py)))
    }

    /// Like `accept`, through the catalog's block index (rows in index order).
    fn accept_indexed<'py>(
        &self,
        py: Python<'py>,
        index: PyRef<'py, PyBlockIndex>,
        threshold: f32,
    ) -> PyResult<Accepted<'py>> {
        let index = index.inner.clone();
        let (rows, scores) = detached(py, || self.inner.accept_indexed(&index, threshold))?;
        Ok((rows.into_pyarray(py), scores.into_pyarray(py)))
    }
}

impl PyHybrid {
    fn check(&self, codes: &PyReadonlyArray2<'_, u8>) -> PyResult<()> {
        if codes.shape()[1] != self.dim {
            return Err(IndexError::Dimension(format!("codes have {} dims, the model {}", codes.shape()[1], self.dim))
                .to_pyerr());
        }
        Ok(())
    }
}
