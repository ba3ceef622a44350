//! augur: exact, faster local LLM decoding over GGUF models.
//!
//! The facade users depend on: it re-exports the pieces and offers an
//! [`Engine`] that loads a target (and optionally a draft) model, builds the
//! chosen strategy from the registry, and streams generated text.
//!
//! ```no_run
//! use augur::{Engine, EngineOptions, GenerateParams};
//! let mut engine = Engine::new(EngineOptions::new("model.gguf"))?;
//! let prompt = engine.tokenize_prompt("Write a haiku.", true)?;
//! let out = engine.generate(&prompt, &GenerateParams::default(), &mut |_, piece| {
//!     print!("{piece}");
//!     true
//! })?;
//! eprintln!("{:.1} tokens/s", out.stats.tokens_per_second());
//! # Ok::<(), augur::AugurError>(())
//! ```

pub mod auto;
pub mod calibration;
mod engine;
pub mod limits;
pub mod preflight;
mod registry;

pub use augur_core::SettingKey;
/// Lookahead and prompt-lookup settings.
pub use augur_lookahead as lookahead;
pub use augur_prompt_lookup as prompt_lookup;
pub use augur_repeat_last as repeat_last;
/// Speculative decoding's settings and the application drafter trait.
pub use augur_speculative as speculative;
pub use engine::{load_model, pipeline_threads, Engine, EngineOptions};
pub use registry::{
    build_strategy, BuildOptions, DraftModel, ExactMode, StrategyConfig, StrategyKind,
};

pub use augur_core::{
    generate, Batch, CoreError, Exactness, GenerateParams, Generation, LogitRows, Model, RunStats,
    SamplingParams, StopReason, Strategy, TokenId,
};

/// The strategy-independent core (model interface, sampling, verification).
pub use augur_core as core;
/// GGUF header inspection and draft/target compatibility checks.
pub use augur_gguf as gguf;
/// The llama.cpp backend.
pub use augur_llama as llama;
/// The default models and their cache.
pub use augur_models as models;

use thiserror::Error;

/// Errors of the augur facade.
#[derive(Debug, Error)]
pub enum AugurError {
    /// A model file failed inspection or the draft does not fit the target.
    #[error(transparent)]
    Gguf(#[from] augur_gguf::GgufError),
    /// The llama.cpp backend failed.
    #[error(transparent)]
    Llama(#[from] augur_llama::LlamaError),
    /// Generation failed.
    #[error(transparent)]
    Core(#[from] augur_core::CoreError),
    /// A default model is missing or could not be fetched.
    #[error(transparent)]
    Models(#[from] augur_models::ModelsError),
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
}
