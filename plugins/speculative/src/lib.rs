//! Speculative decoding with a draft model (Leviathan, Kalman & Matias,
//! "Fast Inference from Transformers via Speculative Decoding", 2022).
//!
//! Each step a small draft model proposes up to γ tokens, drawing each from
//! its distribution q_i after the target's sampling filters; the target scores
//! its pending token and the drafts in one pass; augur-core's shared verifier
//! accepts a prefix and emits one more token, so the output has exactly the
//! target's distribution (and, at temperature 0, the target's greedy text).
//!
//! - [`Speculative`]: the strategy, owning the draft model (any [`Model`],
//!   boxed or not).
//! - [`DraftVerify`] and [`Drafter`]: the same step with any draft source.
//! - [`SpeculativeConfig`]: draft length (fixed or adaptive), stopping rules,
//!   bit-exact mode, cached costs.
//! - [`PipelinedSpeculative`]: the same with a draft thread that drafts the
//!   next proposal while the target verifies this one ([`build`] picks either
//!   mode from [`SpeculativeConfig::pipeline`]).
//! - [`Costs`], [`choose_draft_len`], [`Tuner`]: the adaptive draft length,
//!   from measured acceptance and pass costs ([`pipelined_speedup`] for the
//!   pipeline).

mod config;
mod costs;
mod drafter;
mod error;
mod pipeline;
mod strategy;
mod tuner;

use augur_core::strategy::Exactness;
use augur_core::{CoreError, Model, StepContext, Strategy};

pub use config::{DraftLength, SpeculativeConfig};
pub use costs::{
    choose_draft_len, choose_draft_len_between, expected_tokens, pipelined_speedup, speedup,
    CostModel, Costs, UNMEASURED_DRAFT_RATIO,
};
pub use drafter::{top_probability, Drafter, ModelDrafter};
pub use error::SpeculativeError;
pub use pipeline::{draft_rng, live_workers, PipelineStats, PipelinedSpeculative};
pub use strategy::DraftVerify;
pub use tuner::Tuner;

/// The strategy's name on the command line.
pub const NAME: &str = "speculative";

/// The speculative strategy of `config` around a boxed draft model:
/// [`PipelinedSpeculative`] when `config.pipeline` is set, [`Speculative`]
/// otherwise.
pub fn build(draft: Box<dyn Model + Send>, config: SpeculativeConfig) -> Box<dyn Strategy + Send> {
    if config.pipeline {
        Box::new(PipelinedSpeculative::new(draft, config))
    } else {
        Box::new(Speculative::new(draft, config))
    }
}

/// Speculative decoding with a draft model `D` (a concrete model type, or
/// `Box<dyn Model + Send>`).
///
/// The draft must share the target's vocabulary; a different vocabulary size
/// is refused when the generation starts.
#[derive(Debug)]
pub struct Speculative<D: Model> {
    inner: DraftVerify<ModelDrafter<D>>,
}

impl<D: Model> Speculative<D> {
    /// Speculative decoding drafting with `draft` (sequentially:
    /// `config.pipeline` is not consulted; see [`build`]).
    pub fn new(draft: D, config: SpeculativeConfig) -> Self {
        let drafter = ModelDrafter::new(draft, config.draft_p_min);
        Self {
            inner: DraftVerify::new(NAME, drafter, config),
        }
    }

    /// The draft model.
    pub fn draft(&self) -> &D {
        self.inner.drafter().model()
    }

    /// Gives the draft model back.
    pub fn into_draft(self) -> D {
        self.inner.into_drafter().into_model()
    }

    /// The settings.
    pub fn config(&self) -> &SpeculativeConfig {
        self.inner.config()
    }

    /// The current cost estimates, to persist per model files, machine and
    /// thread count and pass back as [`SpeculativeConfig::initial_costs`].
    pub fn costs(&self) -> Costs {
        self.inner.costs()
    }

    /// The draft-length tuner (acceptance estimates by position).
    pub fn tuner(&self) -> &Tuner {
        self.inner.tuner()
    }

    /// The largest target pass (tokens) of the last generation.
    pub fn largest_pass(&self) -> usize {
        self.inner.largest_pass()
    }

    /// The generic strategy inside.
    pub fn inner(&self) -> &DraftVerify<ModelDrafter<D>> {
        &self.inner
    }
}

impl<D: Model> Strategy for Speculative<D> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.inner.start(ctx)
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.inner.step(ctx)
    }

    fn exactness(&self) -> Exactness {
        self.inner.exactness()
    }
}
