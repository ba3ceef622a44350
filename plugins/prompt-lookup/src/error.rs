//! Errors of this crate.

use augur_core::CoreError;
use thiserror::Error;

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A parameter is out of range or inconsistent with another.
    #[error("{strategy}: invalid configuration: {reason}")]
    InvalidConfig {
        /// The strategy's name.
        strategy: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn config(strategy: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            strategy,
            reason: reason.into(),
        }
    }
}

impl From<Error> for CoreError {
    fn from(e: Error) -> Self {
        CoreError::InvalidParameter(e.to_string())
    }
}
