//! `_core.CatalogWriter`: streams codes into a staging directory, then installs the catalog.

use std::path::PathBuf;
use std::sync::Mutex;

use clipbranches_store::{CatalogWriter, ManifestMeta, StoreError, StoreResult};
use numpy::{PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::detached;

/// A catalog being written (the state behind `clipbranches.Catalog.create`).
#[pyclass(name = "CatalogWriter", module = "clipbranches._core", frozen)]
pub struct PyCatalogWriter {
    /// `None` once finished or aborted.
    inner: Mutex<Option<CatalogWriter>>,
    staging: PathBuf,
    dim: usize,
}

impl PyCatalogWriter {
    fn with_writer<T>(&self, work: impl FnOnce(&mut CatalogWriter) -> StoreResult<T>) -> StoreResult<T> {
        let mut guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let writer = guard
            .as_mut()
            .ok_or_else(|| StoreError::InvalidArgument("the catalog writer is already finished or aborted".into()))?;
        work(writer)
    }
}

#[pymethods]
impl PyCatalogWriter {
    /// Starts a catalog of `dim`-byte codes at `path` (refused if it exists, unless `overwrite`).
    #[new]
    #[pyo3(signature = (path, dim, overwrite = false))]
    fn new(py: Python<'_>, path: PathBuf, dim: usize, overwrite: bool) -> PyResult<Self> {
        let writer = detached(py, || CatalogWriter::create(&path, dim, overwrite))?;
        Ok(Self { staging: writer.staging_dir().to_path_buf(), dim, inner: Mutex::new(Some(writer)) })
    }

    /// Refuses (as `new` would) a `path` that exists without `overwrite`, or with it is neither
    /// a catalog of ours nor an empty directory; touches nothing.
    #[staticmethod]
    #[pyo3(signature = (path, overwrite = false))]
    fn check_target(py: Python<'_>, path: PathBuf, overwrite: bool) -> PyResult<()> {
        detached(py, || CatalogWriter::check_target(&path, overwrite))
    }

    /// Where to write `items.parquet` before `finish`.
    #[getter]
    fn staging_dir(&self) -> PathBuf {
        self.staging.clone()
    }

    /// Bytes per code.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    /// Rows appended so far.
    #[getter]
    fn count(&self) -> PyResult<u64> {
        self.with_writer(|w| Ok(w.count())).map_err(crate::errors::to_pyerr)
    }

    /// Appends a C-contiguous `(rows, dim)` uint8 array.
    fn append(&self, py: Python<'_>, codes: PyReadonlyArray2<'_, u8>) -> PyResult<()> {
        let shape = codes.shape();
        if shape[1] != self.dim {
            return Err(crate::errors::to_pyerr(StoreError::Dimension {
                what: format!("codes have {} columns, the catalog has dim {}", shape[1], self.dim),
            }));
        }
        let bytes = codes
            .as_slice()
            .map_err(|_| crate::errors::to_pyerr(StoreError::InvalidArgument("codes must be C-contiguous".into())))?;
        detached(py, || self.with_writer(|w| w.append(bytes)))
    }

    /// Checksums, writes the manifest from `meta_json` and installs the catalog.
    /// Returns the manifest as JSON text. The writer is spent afterwards, even on error.
    fn finish(&self, py: Python<'_>, meta_json: &str) -> PyResult<String> {
        let meta: ManifestMeta = serde_json::from_str(meta_json)
            .map_err(|e| crate::errors::to_pyerr(StoreError::InvalidArgument(format!("catalog metadata: {e}"))))?;
        let writer = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let writer = writer.ok_or_else(|| {
            crate::errors::to_pyerr(StoreError::InvalidArgument(
                "the catalog writer is already finished or aborted".into(),
            ))
        })?;
        detached(py, move || writer.finish(meta).map(|m| m.to_json()))
    }

    /// Abandons the catalog: removes the staging directory; the target is untouched.
    fn abort(&self, py: Python<'_>) {
        let writer = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        py.detach(move || drop(writer));
    }
}
