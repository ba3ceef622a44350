//! augur-core: everything a decoding strategy needs, and nothing of llama.cpp.
//!
//! - [`Model`]: the interface a strategy talks to (batched evaluation with
//!   positions, sequence ids and logit flags; KV rollback; end-of-generation).
//! - [`sampling`]: sampling settings, the filters (top-k, top-p, min-p,
//!   temperature) and the softmax, done in Rust so every backend shares them.
//! - [`verify`]: greedy and rejection-sampling verification as pure functions,
//!   the one place where exactness lives.
//! - [`Drafter`]: the one interface every way of drafting implements, and
//!   [`DraftVerify`]: the one draft-then-verify strategy that drives them,
//!   through the one verify step ([`StepContext::verify`]).
//! - [`CostModel`]: what passes cost and which draft length pays, shared by
//!   every policy; [`Tuner`]: acceptance by position and exploration for
//!   drafters that pay per token.
//! - [`Strategy`] and [`generate`]: the step-wise driver every strategy runs under.
//! - [`settings`]: the one table of strategy settings, and
//!   [`StrategyPlugin`], through which every strategy takes them and is built.
//! - [`stats`]: what every run reports.
//! - `testing` (the `testing` feature, for tests only): a tiny deterministic
//!   in-memory model with known probabilities, a scripted model, the
//!   chi-square harness.

#[cfg(any(test, feature = "testing"))]
pub mod chisq;
pub mod cost;
pub mod draft;
pub mod draft_verify;
pub mod error;
pub mod generate;
pub mod model;
pub mod rng;
pub mod sampling;
pub mod settings;
pub mod stats;
pub mod strategy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tuner;
pub mod verify;

pub use cost::CostModel;
pub use draft::{Branch, DraftRequest, Drafter, NoDrafter, Proposal, SideEntry, VerifyOutcome};
pub use draft_verify::{DraftSettings, DraftVerify};
pub use error::{CoreError, ModelError};
pub use generate::{generate, GenerateParams, Generation, StopReason};
pub use model::{Batch, LogitRows, Model, SeqId, TokenId};
pub use rng::Rng;
pub use sampling::{SamplingParams, SparseDist};
pub use settings::{BuildEnv, Built, SettingKey, StrategyPlugin};
pub use stats::RunStats;
pub use strategy::{Exactness, StepContext, Strategy};
pub use tuner::{DraftLength, Tuned, Tuner};
pub use verify::Verdict;
