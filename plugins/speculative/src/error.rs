//! Errors of the speculative strategy.

use augur_core::CoreError;
use thiserror::Error;

/// Why speculative decoding cannot run with these models or settings.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SpeculativeError {
    /// The draft and the target have different vocabulary sizes, so draft
    /// token ids mean nothing to the target.
    #[error(
        "the draft model's vocabulary has {draft} tokens but the target's has {target}: \
         pick a draft model from the same family (same tokenizer)"
    )]
    VocabMismatch {
        /// The draft's vocabulary size.
        draft: usize,
        /// The target's vocabulary size.
        target: usize,
    },
    /// The draft's context cannot hold the prompt.
    #[error(
        "the prompt has {needed} tokens but the draft model's context holds only {n_ctx}: \
         give the draft the same context size as the target"
    )]
    DraftContextTooSmall {
        /// Tokens the draft must hold.
        needed: usize,
        /// The draft's context size.
        n_ctx: usize,
    },
    /// The draft model cannot roll back its cache.
    #[error("the draft model cannot roll back its KV cache (recurrent or hybrid architecture)")]
    DraftRollbackUnsupported,
    /// A setting is out of range.
    #[error("invalid speculative setting: {0}")]
    InvalidConfig(String),
}

impl From<SpeculativeError> for CoreError {
    fn from(e: SpeculativeError) -> Self {
        match e {
            SpeculativeError::InvalidConfig(reason) => CoreError::InvalidParameter(reason),
            other => CoreError::Unsupported {
                strategy: crate::NAME,
                reason: other.to_string(),
            },
        }
    }
}
