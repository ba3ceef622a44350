//! augur-core: everything a decoding strategy needs, and nothing of llama.cpp.
//!
//! # How drafting works
//!
//! Every way of drafting — a draft model, prompt lookup, lookahead's Jacobi
//! window, an application's callback — is a [`Drafter`]: `start` at the
//! beginning of a generation, `propose` each step, `on_verdict` after it. A
//! proposal ([`Proposal`]) is a chain of drafted tokens, each with the
//! distribution it was drawn from and the drafter's own estimate of its
//! chance of acceptance (by whatever the drafter knows: how long a copy has
//! run, acceptance by position, n-gram evidence). A drafter that needs more
//! of the target's pass says so in the same proposal: candidate branches on
//! KV sequences of their own ([`Branch`]), entries evaluated but not verified
//! ([`SideEntry`], lookahead's window), the sequences it uses
//! ([`Drafter::sequences`]).
//!
//! One strategy drives them all, [`DraftVerify`]: each step it asks the
//! drafter for a proposal, cuts it to the prefix that buys the most expected
//! tokens per unit of time ([`CostModel::best_prefix`], wherever a cut cannot
//! bias sampling), and hands it to the one verify step,
//! [`StepContext::verify`]. That step makes ONE target pass, decides by the
//! shared exact rule ([`verify`]: rejection sampling, or greedy over every
//! chain), rolls the cache back, and returns a [`VerifyOutcome`] with the
//! verdict, the pass size, its time and whether that size is known to be
//! bit-exact. The run's guarantee is derived once, by [`generate`], from the
//! largest pass made and the calibrated bit-exact size ([`Exactness::of`]).
//!
//! One cost model, [`CostModel`], says what a target pass of k tokens costs
//! (calibrated per machine, model and thread count, or measured during the
//! run), what a draft step costs, which pass sizes are bit-exact and how much
//! drafting can overlap verification. Calibrated costs follow the context
//! (passes of several tokens grow with the KV cache faster than one-token
//! passes, timed at two contexts: [`ContextGrowth`]; the driver sets the
//! context each step) and, at temperature 0, the machine's drift from its
//! calibration, per pass size ([`PhaseDrift`]).
//! Every policy asks it the same
//! questions: [`cost::speedup`] (expected speedup of drafting γ tokens with
//! acceptance α), [`CostModel::best_prefix`], and, for a drafter that can
//! stop mid-draft, [`CostModel::drafting_more_pays`] (a draft model stops
//! when its calibrated confidence, [`ConfidenceMap`], says one more token
//! would not pay for its draft step). The [`Tuner`] (with
//! [`Tuned`]) chooses the draft length of drafters that pay for every token
//! they draft, exploring now and then where drafting has stopped paying, and
//! learning from a drafter's [`Hindsight`] (how often its guesses matched the
//! target on text it caught up on without drafting).
//! [`BestOf`] puts several drafters behind one: each step it asks the free
//! ones (lookups in the text) for proposals and runs a costly one (a draft
//! model) only when its forecast ([`Drafter::forecast`]) pays and beats them
//! or they are unsure, and the
//! strategy `auto` is that choice under the same driver.
//!
//! Strategies are built from the one settings table ([`SettingKey`]) through
//! [`StrategyPlugin`], which every plugin implements for its settings.
//!
//! # Modules
//!
//! - [`Model`]: the interface a strategy talks to (batched evaluation with
//!   positions, sequence ids and logit flags; KV rollback; end-of-generation).
//! - [`sampling`]: sampling settings, the filters (top-k, top-p, min-p,
//!   temperature) and the softmax, done in Rust so every backend shares them.
//! - [`verify`]: greedy and rejection-sampling verification as pure functions,
//!   the one place where exactness lives.
//! - [`draft`], [`draft_verify`], [`cost`], [`tuner`], [`confidence`]: the
//!   drafting engine described above.
//! - [`Strategy`] and [`generate`]: the step-wise driver every strategy runs under.
//! - [`settings`]: the one table of strategy settings, and [`StrategyPlugin`].
//! - [`stats`]: what every run reports.
//! - `testing` (the `testing` feature, for tests only): a tiny deterministic
//!   in-memory model with known probabilities, a scripted model, the
//!   chi-square harness.

pub mod best_of;
#[cfg(any(test, feature = "testing"))]
pub mod chisq;
pub mod confidence;
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

pub use best_of::BestOf;
pub use confidence::ConfidenceMap;
pub use cost::{ContextGrowth, CostModel, PhaseDrift};
pub use draft::{
    Branch, DraftRequest, Drafter, Forecast, Hindsight, NoDrafter, Proposal, SideEntry,
    VerifyOutcome,
};
pub use draft_verify::{DraftSettings, DraftVerify};
pub use error::{CoreError, ModelError};
pub use generate::{generate, generate_reusing, GenerateParams, Generation, StopReason};
pub use model::{Batch, LogitRows, Model, SeqId, TokenId};
pub use rng::Rng;
pub use sampling::{SamplingParams, SparseDist};
pub use settings::{BuildEnv, Built, SettingKey, StrategyPlugin};
pub use stats::{DrafterStats, RunStats};
pub use strategy::{Exactness, StepContext, Strategy};
pub use tuner::{DraftLength, Tuned, Tuner};
pub use verify::Verdict;
