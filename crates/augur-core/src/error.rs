//! Error types of augur-core.

use thiserror::Error;

/// An error reported by a [`crate::Model`] implementation.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The backend failed to evaluate a batch.
    #[error("model evaluation failed: {0}")]
    Eval(String),
    /// A batch would run past the end of the context window.
    #[error("context window full: position {position} is outside the context of {n_ctx} tokens")]
    ContextFull {
        /// The first position that does not fit.
        position: usize,
        /// The context size.
        n_ctx: usize,
    },
    /// The model cannot remove positions from its cache (recurrent or hybrid architectures).
    #[error("this model cannot roll back its KV cache (recurrent or hybrid architecture)")]
    RollbackUnsupported,
    /// The KV cache operation failed.
    #[error("KV cache operation failed: {0}")]
    Cache(String),
    /// A batch was malformed (empty, or sequence id out of range).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
}

/// Errors from driving a generation.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Sampling parameters out of range.
    #[error("invalid sampling parameter: {0}")]
    InvalidSampling(String),
    /// A generation parameter out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The prompt does not leave room for a single new token.
    #[error("the prompt has {needed} tokens but the context holds only {n_ctx}: shorten the prompt or raise the context size (-c)")]
    ContextOverflow {
        /// Tokens the prompt needs.
        needed: usize,
        /// The context size.
        n_ctx: usize,
    },
    /// The prompt is empty.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// A token id outside the model's vocabulary.
    #[error("token id {token} is outside the vocabulary of {n_vocab} tokens")]
    TokenOutOfRange {
        /// The offending id.
        token: u32,
        /// The vocabulary size.
        n_vocab: usize,
    },
    /// A strategy cannot run with these settings or this model.
    #[error("strategy {strategy}: {reason}")]
    Unsupported {
        /// The strategy's name.
        strategy: &'static str,
        /// Why.
        reason: String,
    },
    /// A strategy broke its contract (a bug, reported instead of panicking).
    #[error("internal error in strategy {strategy}: {reason}")]
    Internal {
        /// The strategy's name.
        strategy: &'static str,
        /// What went wrong.
        reason: String,
    },
}
