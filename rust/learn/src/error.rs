//! The learn crate's one error type.

use thiserror::Error;

/// Everything that can go wrong while fitting a model.
#[derive(Debug, Error)]
pub enum LearnError {
    /// The training data or parameters are unusable (the message names what and why).
    #[error("{0}")]
    InvalidArgument(String),
    /// Codes of the wrong width for the subsets or the model.
    #[error("{0}")]
    Dimension(String),
}

/// Result of this crate.
pub type LearnResult<T> = Result<T, LearnError>;
