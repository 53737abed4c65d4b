//! Quantizer kernels for `clipbranches.quantize` (the numpy code there is their twin).

use clipbranches_store::QuantizerParams;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::detached;

fn run<'py>(
    py: Python<'py>,
    params: &QuantizerParams,
    x: &PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let [rows, dim] = [x.shape()[0], x.shape()[1]];
    let values = x.as_slice().map_err(|_| {
        crate::errors::to_pyerr(clipbranches_store::StoreError::InvalidArgument(
            "embeddings must be C-contiguous".into(),
        ))
    })?;
    let codes = detached(py, || {
        let mut out = vec![0u8; values.len()];
        params.quantize_into(values, dim, &mut out)?;
        Ok::<_, clipbranches_store::StoreError>(out)
    })?;
    let array = Array2::from_shape_vec((rows, dim), codes).expect("output has rows * dim bytes");
    Ok(array.into_pyarray(py))
}

/// `trunc(clip(x * scale + offset, 0, 255))` of a C-contiguous float32 `(n, dim)` array.
#[pyfunction]
pub fn quantize_fixed<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    scale: f32,
    offset: f32,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    run(py, &QuantizerParams::Fixed { scale, offset }, &x)
}

/// `clip(rint((x - low) * (255 / (high - low))), 0, 255)` per dimension.
#[pyfunction]
pub fn quantize_calibrated<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    low: PyReadonlyArray1<'py, f32>,
    high: PyReadonlyArray1<'py, f32>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let params = QuantizerParams::Calibrated { low: low.as_array().to_vec(), high: high.as_array().to_vec() };
    run(py, &params, &x)
}
