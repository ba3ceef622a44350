//! augur-llama: the GGUF backend over llama.cpp (through `llama-cpp-2`).
//!
//! - [`GgufModel`]: a loaded model (weights memory-mapped), shared by `Arc`;
//!   tokenization, detokenization, chat templates, end-of-generation tokens.
//! - [`LlamaSession`]: a llama.cpp context over a model, implementing
//!   [`augur_core::Model`]: batched evaluation with positions, several sequence
//!   ids per token and logit flags; KV rollback, copy and keep.
//! - [`Utf8Stream`]: streaming detokenization that never splits a character.
//! - [`quantize`]: re-quantize a GGUF file through `llama_model_quantize`.
//!
//! One llama.cpp backend exists per process ([`init_backend`]); llama.cpp's own
//! logging is silenced unless verbose logging is requested before the first load.

mod backend;
mod model;
mod quantize;
mod session;
mod utf8;

pub use backend::{init_backend, set_verbose};
pub use model::{GgufModel, LoadParams};
pub use quantize::{quantize, QuantType};
pub use session::{default_threads, ContextParams, LlamaSession};
pub use utf8::Utf8Stream;

use thiserror::Error;

/// Errors of the GGUF backend.
#[derive(Debug, Error)]
pub enum LlamaError {
    /// llama.cpp's backend could not be initialized.
    #[error("could not initialize llama.cpp: {0}")]
    Backend(String),
    /// The model file could not be loaded.
    #[error("could not load model {path}: {reason}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A context could not be created.
    #[error("could not create a llama.cpp context: {0}")]
    Context(String),
    /// Text could not be tokenized.
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    /// The model has no chat template, or applying it failed.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// Re-quantization failed.
    #[error("conversion failed: {0}")]
    Quantize(String),
    /// An invalid parameter.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}
