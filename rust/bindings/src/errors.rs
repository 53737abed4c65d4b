//! The exceptions Rust raises and the one mapping from Rust errors to them.
//!
//! Only the classes some `ToPyErr` mapping below raises (and their bases) are defined here;
//! the errors only Python code raises are defined in `clipbranches/exceptions.py`, on these
//! bases. The classes carry `__module__ = "clipbranches.exceptions"`, where the package
//! re-exports them, so tracebacks show the public name.

use clipbranches_index::IndexError;
use clipbranches_learn::LearnError;
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
create_exception!(
    clipbranches.exceptions,
    IndexFormatError,
    CatalogError,
    "An index file is truncated, corrupt or of an unsupported version."
);
create_exception!(
    clipbranches.exceptions,
    StaleIndexError,
    CatalogError,
    "The index was built for another catalog (or another version of it)."
);
create_exception!(
    clipbranches.exceptions,
    InvalidQueryError,
    InvalidArgumentError,
    "A box query that cannot be right (lo > hi, dims out of range, no boxes)."
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
    m.add("IndexFormatError", py.get_type::<IndexFormatError>())?;
    m.add("StaleIndexError", py.get_type::<StaleIndexError>())?;
    m.add("DimensionMismatchError", py.get_type::<DimensionMismatchError>())?;
    m.add("InvalidQueryError", py.get_type::<InvalidQueryError>())?;
    m.add("InvalidArgumentError", py.get_type::<InvalidArgumentError>())?;
    Ok(())
}

/// Errors of the pure crates, mapped to their Python exceptions (message kept).
pub(crate) trait ToPyErr {
    /// The Python exception for this error.
    fn to_pyerr(self) -> PyErr;
}

impl ToPyErr for StoreError {
    fn to_pyerr(self) -> PyErr {
        let message = self.to_string();
        match self {
            StoreError::NotFound { .. } => CatalogNotFoundError::new_err(message),
            StoreError::AlreadyExists { .. } | StoreError::NotACatalog { .. } => CatalogExistsError::new_err(message),
            StoreError::Format { .. } => CatalogFormatError::new_err(message),
            StoreError::Checksum { .. } => ChecksumError::new_err(message),
            StoreError::Dimension { .. } => DimensionMismatchError::new_err(message),
            StoreError::InvalidArgument(_) => InvalidArgumentError::new_err(message),
            StoreError::Io { .. } => CatalogIOError::new_err(message),
        }
    }
}

impl ToPyErr for IndexError {
    fn to_pyerr(self) -> PyErr {
        let message = self.to_string();
        match self {
            IndexError::InvalidQuery(_) => InvalidQueryError::new_err(message),
            IndexError::InvalidArgument(_) => InvalidArgumentError::new_err(message),
            IndexError::Dimension(_) => DimensionMismatchError::new_err(message),
            IndexError::Format { .. } => IndexFormatError::new_err(message),
            IndexError::Stale { .. } => StaleIndexError::new_err(message),
            IndexError::Store(e) => e.to_pyerr(),
            IndexError::Io { .. } => CatalogIOError::new_err(message),
        }
    }
}

impl ToPyErr for LearnError {
    fn to_pyerr(self) -> PyErr {
        let message = self.to_string();
        match self {
            LearnError::InvalidArgument(_) => InvalidArgumentError::new_err(message),
            LearnError::Dimension(_) => DimensionMismatchError::new_err(message),
        }
    }
}

/// Maps a store error to its Python exception (shorthand for `map_err`).
pub(crate) fn to_pyerr(err: StoreError) -> PyErr {
    err.to_pyerr()
}
