//! `_core.BoxSet`: a model's boxes, held natively with their query built once.
//!
//! The learners return one; the Python facade builds one from `Box` objects
//! (`BoxSet.from_arrays`); `scan_boxes`, `query_boxes` and `BlockIndex.query_boxes/estimate`
//! take one. Python sees the boxes only through `arrays()`, for rules and display.

use clipbranches_index::{BoxSet, IndexError};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::ToPyErr;

/// `(offsets int64, dims uint16, lo uint8, hi uint8, groups uint32)` of a set's boxes.
pub type BoxArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<u16>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<u32>>,
);

/// A validated list of boxes in the order given (see `clipbranches_index::BoxSet`).
#[pyclass(name = "BoxSet", module = "clipbranches._core", frozen)]
pub struct PyBoxSet {
    pub(crate) inner: BoxSet,
}

#[pymethods]
impl PyBoxSet {
    /// Builds a set from the compressed form: box `i` constrains
    /// `dims[offsets[i]:offsets[i + 1]]` with the bounds at the same positions of `lo` and
    /// `hi`, and belongs to group `groups[i]`. Any 1-D integer arrays; `dim` (the code width
    /// the boxes are checked against) defaults to one more than the largest dim used.
    #[staticmethod]
    #[pyo3(signature = (offsets, dims, lo, hi, groups, dim = None))]
    fn from_arrays(
        offsets: &Bound<'_, PyAny>,
        dims: &Bound<'_, PyAny>,
        lo: &Bound<'_, PyAny>,
        hi: &Bound<'_, PyAny>,
        groups: &Bound<'_, PyAny>,
        dim: Option<usize>,
    ) -> PyResult<Self> {
        let inner = BoxSet::from_csr(
            dim,
            &integers(offsets, "offsets")?,
            &integers(dims, "dims")?,
            &integers(lo, "lo")?,
            &integers(hi, "hi")?,
            &integers(groups, "groups")?,
        )
        .map_err(ToPyErr::to_pyerr)?;
        Ok(Self { inner })
    }

    /// Number of boxes.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Number of distinct groups among the boxes: the most an item's group count can reach
    /// (an ensemble member that found no box has none).
    #[getter]
    fn groups(&self) -> usize {
        self.inner.groups()
    }

    /// Code width the boxes were checked against.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The boxes in compressed form, in the order given: `(offsets, dims, lo, hi, groups)`.
    fn arrays<'py>(&self, py: Python<'py>) -> BoxArrays<'py> {
        let csr = self.inner.to_csr();
        (
            csr.offsets.into_pyarray(py),
            csr.dims.into_pyarray(py),
            csr.lo.into_pyarray(py),
            csr.hi.into_pyarray(py),
            csr.groups.into_pyarray(py),
        )
    }

    fn __repr__(&self) -> String {
        format!("BoxSet(boxes={}, groups={}, dim={})", self.inner.len(), self.inner.groups(), self.inner.dim())
    }
}

impl From<BoxSet> for PyBoxSet {
    fn from(inner: BoxSet) -> Self {
        Self { inner }
    }
}

/// The values of a 1-D numpy array of any integer type, widened to `i64` (`uint64` values
/// beyond it saturate, and are then out of every field's range).
fn integers(array: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    macro_rules! widen {
        ($($t:ty),*) => {
            $(if let Ok(a) = array.cast::<PyArray1<$t>>() {
                let wide = |v: $t| i64::try_from(i128::from(v)).unwrap_or(i64::MAX);
                return Ok(a.readonly().as_array().iter().map(|&v| wide(v)).collect());
            })*
        };
    }
    widen!(i64, u16, u8, u32, i32, i16, i8, u64);
    let got = match array.cast::<PyUntypedArray>() {
        Ok(a) => format!("a {}-D array of {}", a.ndim(), a.dtype()),
        Err(_) => format!("a {}", array.get_type().name()?),
    };
    Err(IndexError::InvalidQuery(format!("box {name} must be a 1-D integer array, got {got}")).to_pyerr())
}
