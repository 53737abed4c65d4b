//! The one error type of the store crate. Every variant names the file or argument at fault,
//! so the message alone tells a user what to fix.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything that can go wrong while creating, opening or verifying a catalog.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The catalog directory (or the parent a new catalog goes into) does not exist.
    #[error("catalog not found: {path} does not exist")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// The target of a create already exists and `overwrite` was not requested.
    #[error("{path} already exists; pass overwrite=True to replace it")]
    AlreadyExists {
        /// The existing path.
        path: PathBuf,
    },
    /// `overwrite` was requested but the target is not a catalog of ours (nor an empty
    /// directory): it is left untouched.
    #[error("refusing to replace {path}: it is not a clipbranches catalog ({reason}); nothing was changed")]
    NotACatalog {
        /// The existing path.
        path: PathBuf,
        /// Why it is not taken for a catalog.
        reason: String,
    },
    /// A file of the catalog is not in the format this build reads.
    #[error("{path}: {reason}")]
    Format {
        /// The offending file (or directory).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A data file does not match the checksum recorded in the manifest.
    #[error("{path}: checksum mismatch (manifest says blake3 {expected}, file has {found}); the file is corrupt")]
    Checksum {
        /// The corrupt file.
        path: PathBuf,
        /// The recorded checksum.
        expected: String,
        /// The checksum of the file as it is now.
        found: String,
    },
    /// Data whose width does not match the catalog's (or quantizer's) dimension.
    #[error("dimension mismatch: {what}")]
    Dimension {
        /// What was expected and what was found.
        what: String,
    },
    /// An argument that cannot be right whatever the files say.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An operating-system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Format { path: path.into(), reason: reason.into() }
    }

    /// Builds a closure that wraps an [`io::Error`] with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
