//! Errors of the bench harness.

use thiserror::Error;

/// Errors of the bench harness.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A line of a prompts file is not a JSON object with string "id" and "prompt".
    #[error("{file}:{line}: {reason}")]
    PromptLine {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A strategy list, a setting or a sweep is malformed.
    #[error("{0}")]
    Spec(String),
    /// The run's settings do not fit together.
    #[error("{0}")]
    Config(String),
    /// A workload has no prompts.
    #[error("workload '{0}' has no prompts")]
    EmptyWorkload(String),
    /// Generation failed.
    #[error("{strategy} on prompt {prompt}: {source}")]
    Generate {
        /// The strategy's label.
        strategy: String,
        /// The prompt's id.
        prompt: String,
        /// The underlying error (boxed: it is large and rare).
        source: Box<augur::AugurError>,
    },
    /// The engine failed outside a generation (tokenization, loading).
    #[error(transparent)]
    Augur(Box<augur::AugurError>),
}

impl From<augur::AugurError> for BenchError {
    fn from(e: augur::AugurError) -> Self {
        BenchError::Augur(Box::new(e))
    }
}
