//! `_core.Catalog`: an open catalog, its manifest and a zero-copy view of its codes.

use std::path::PathBuf;
use std::sync::Arc;

use clipbranches_store::Catalog;
use numpy::npyffi::{self, NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, PY_ARRAY_API};
use numpy::{Element, PyArray2, PyArrayDescrMethods};
use pyo3::prelude::*;

use crate::detached;

/// An open, read-only catalog (the state behind `clipbranches.Catalog`).
#[pyclass(name = "Catalog", module = "clipbranches._core", frozen)]
pub struct PyCatalog {
    inner: Arc<Catalog>,
}

#[pymethods]
impl PyCatalog {
    /// Opens the catalog directory at `path` (manifest and sizes checked, codes mapped).
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detached(py, || Catalog::open(&path))?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The catalog directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// Number of items.
    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }

    /// Bytes per code.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The manifest as JSON text.
    fn manifest_json(&self) -> String {
        self.inner.manifest().to_json()
    }

    /// Checksums every data file (reads the whole catalog, interpreter released).
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.verify())
    }

    /// The codes as a read-only `(count, dim)` uint8 array over the memory map, no copy.
    ///
    /// The array's base is this object, so the map stays alive as long as any view does.
    fn codes<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray2<u8>> {
        let py = slf.py();
        let catalog = &slf.get().inner;
        // A mapped file is smaller than isize::MAX bytes, so both sides fit numpy's intp.
        let to_intp = |n: usize| npyffi::npy_intp::try_from(n).expect("mapped sizes fit isize");
        let dims = [to_intp(catalog.codes().len() / catalog.dim()), to_intp(catalog.dim())];
        let data = catalog.codes().as_ptr();
        // SAFETY: `data` points to `count * dim` bytes of the read-only memory map owned by
        // `slf`'s `Arc<Catalog>`, which the pyclass never replaces (it is frozen). The array is
        // created without NPY_ARRAY_WRITEABLE, so numpy never writes through the pointer, and
        // `PyArray_SetBaseObject` makes `slf` the array's base (stealing the new reference
        // from `into_ptr`), so the map outlives every view. With no strides given numpy
        // computes C-contiguous ones for the dims.
        unsafe {
            let array = PY_ARRAY_API.PyArray_NewFromDescr(
                py,
                npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
                u8::get_dtype(py).into_dtype_ptr(),
                2,
                dims.as_ptr().cast_mut(),
                std::ptr::null_mut(),
                data.cast_mut().cast(),
                NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED,
                std::ptr::null_mut(),
            );
            PY_ARRAY_API.PyArray_SetBaseObject(py, array.cast(), slf.clone().into_ptr());
            Bound::from_owned_ptr(py, array).cast_into_unchecked()
        }
    }

    fn __len__(&self) -> usize {
        self.inner.count() as usize
    }
}
