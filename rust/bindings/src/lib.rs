//! `clipbranches._core`: the native module behind the `clipbranches` Python package.
//!
//! This file is a table of contents. Each class lives in its own file; the work happens in the
//! pure crates (`clipbranches-store`, ...); this crate only converts arguments, releases the
//! interpreter around long calls and maps errors.

// PyO3 extracts arguments as owned values (`PathBuf`, `PyReadonlyArray2`), so taking them by
// value is how a `#[pyfunction]` is written, not a missed borrow.
#![allow(clippy::needless_pass_by_value)]

mod boxes;
mod catalog;
mod errors;
mod hybrid;
mod index;
mod learn;
mod quantize;
mod writer;

use pyo3::prelude::*;

/// The native core of clipbranches (private: use the `clipbranches` package).
#[pymodule]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::boxes::PyBoxSet;
    #[pymodule_export]
    use crate::catalog::PyCatalog;
    #[pymodule_export]
    use crate::hybrid::PyHybrid;
    #[pymodule_export]
    use crate::index::{PyBlockIndex, linear_accept, nearest, query_boxes, scan_boxes};
    #[pymodule_export]
    use crate::learn::{fit_branch, fit_ensemble, original_subsets};
    #[pymodule_export]
    use crate::quantize::{quantize_calibrated, quantize_fixed};
    #[pymodule_export]
    use crate::writer::PyCatalogWriter;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        // Items per block of an index unless told otherwise: the one value Python uses too.
        m.add("DEFAULT_BLOCK_ITEMS", clipbranches_index::DEFAULT_BLOCK_ITEMS)?;
        crate::errors::register(m)
    }
}

/// Runs `work` with the interpreter released, then maps its error and honours Ctrl-C.
///
/// Every long call goes through here so that other Python threads (the TUI's event loop)
/// keep running while Rust works, and a pending `KeyboardInterrupt` surfaces right after.
pub(crate) fn detached<T, E, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, E> + Send,
    T: Send,
    E: errors::ToPyErr + Send,
{
    let result = py.detach(work).map_err(errors::ToPyErr::to_pyerr);
    py.check_signals()?;
    result
}
