//! The one error type of the index crate.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type IndexResult<T> = Result<T, IndexError>;

/// Everything that can go wrong while building, loading or querying an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A box or query argument that cannot be right.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A build option or other argument that cannot be right.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Data whose width does not match.
    #[error("dimension mismatch: {0}")]
    Dimension(String),
    /// An index file that is missing, truncated, corrupt or in an unknown format.
    #[error("{path}: {reason}")]
    Format {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The index was built for another catalog (or another version of this one).
    #[error(
        "{path}: built for another catalog (codes checksum {found}, this catalog's is {expected}); rebuild the index"
    )]
    Stale {
        /// The index file.
        path: PathBuf,
        /// The catalog's codes checksum.
        expected: String,
        /// The checksum recorded in the index.
        found: String,
    },
    /// An error of the catalog store.
    #[error(transparent)]
    Store(#[from] clipbranches_store::StoreError),
    /// An operating-system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl IndexError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Format { path: path.into(), reason: reason.into() }
    }
}
