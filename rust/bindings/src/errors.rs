//! The Python exception tree and the one mapping from Rust errors to it.
//!
//! The classes carry `__module__ = "clipbranches.exceptions"`, where the package re-exports
//! them, so tracebacks show the public name.

use clipbranches_store::StoreError;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

create_exception!(
    clipbranches.exceptions,
    ClipBranchesError,
    PyException,
    "Root of every error raised by clipbranches."
);
create_exception!(
    clipbranches.exceptions,
    CatalogError,
    ClipBranchesError,
    "A catalog cannot be created, opened or read."
);
create_exception!(
    clipbranches.exceptions,
    CatalogNotFoundError,
    CatalogError,
    "The catalog directory (or its parent) does not exist."
);
create_exception!(
    clipbranches.exceptions,
    CatalogExistsError,
    CatalogError,
    "The target exists and overwrite was not requested."
);
create_exception!(
    clipbranches.exceptions,
    CatalogFormatError,
    CatalogError,
    "A catalog file is missing, truncated or not in a supported format."
);
create_exception!(
    clipbranches.exceptions,
    ChecksumError,
    CatalogError,
    "A data file does not match its recorded checksum."
);
create_exception!(
    clipbranches.exceptions,
    CatalogIOError,
    CatalogError,
    "The operating system refused a read or write."
);
create_exception!(
    clipbranches.exceptions,
    DimensionMismatchError,
    ClipBranchesError,
    "Data whose shape does not fit the catalog or argument it meets."
);
create_exception!(
    clipbranches.exceptions,
    InvalidArgumentError,
    ClipBranchesError,
    "An argument that cannot be right (wrong dtype, bad parameter)."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ClipBranchesError", py.get_type::<ClipBranchesError>())?;
    m.add("CatalogError", py.get_type::<CatalogError>())?;
    m.add("CatalogNotFoundError", py.get_type::<CatalogNotFoundError>())?;
    m.add("CatalogExistsError", py.get_type::<CatalogExistsError>())?;
    m.add("CatalogFormatError", py.get_type::<CatalogFormatError>())?;
    m.add("ChecksumError", py.get_type::<ChecksumError>())?;
    m.add("CatalogIOError", py.get_type::<CatalogIOError>())?;
    m.add("DimensionMismatchError", py.get_type::<DimensionMismatchError>())?;
    m.add("InvalidArgumentError", py.get_type::<InvalidArgumentError>())?;
    Ok(())
}

/// Maps a store error to its Python exception, keeping the message.
pub(crate) fn to_pyerr(err: StoreError) -> PyErr {
    let message = err.to_string();
    match err {
        StoreError::NotFound { .. } => CatalogNotFoundError::new_err(message),
        StoreError::AlreadyExists { .. } => CatalogExistsError::new_err(message),
        StoreError::Format { .. } => CatalogFormatError::new_err(message),
        StoreError::Checksum { .. } => ChecksumError::new_err(message),
        StoreError::Dimension { .. } => DimensionMismatchError::new_err(message),
        StoreError::InvalidArgument(_) => InvalidArgumentError::new_err(message),
        StoreError::Io { .. } => CatalogIOError::new_err(message),
    }
}
