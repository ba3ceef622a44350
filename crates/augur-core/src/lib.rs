//! augur-core: everything a decoding strategy needs, and nothing of llama.cpp.
//!
//! - [`Model`]: the interface a strategy talks to (batched evaluation with
//!   positions, sequence ids and logit flags; KV rollback; end-of-generation).
//! - [`sampling`]: sampling settings, the filters (top-k, top-p, min-p,
//!   temperature) and the softmax, done in Rust so every backend shares them.
//! - [`verify`]: greedy and rejection-sampling verification as pure functions,
//!   the one place where exactness lives.
//! - [`Strategy`] and [`generate`]: the step-wise driver every strategy runs under.
//! - [`stats`]: what every run reports.
//! - [`testing`]: a tiny deterministic in-memory model with known probabilities.

pub mod chisq;
pub mod error;
pub mod generate;
pub mod model;
pub mod rng;
pub mod sampling;
pub mod stats;
pub mod strategy;
pub mod testing;
pub mod verify;

pub use error::{CoreError, ModelError};
pub use generate::{generate, generate_reusing, GenerateParams, Generation, StopReason};
pub use model::{Batch, LogitRows, Model, SeqId, TokenId};
pub use rng::Rng;
pub use sampling::{SamplingParams, SparseDist};
pub use stats::RunStats;
pub use strategy::{Exactness, StepContext, Strategy};
pub use verify::{Proposal, Verdict};
