//! Speculative decoding with a draft model (Leviathan, Kalman & Matias,
//! "Fast Inference from Transformers via Speculative Decoding", 2022).
//!
//! Each step a small draft model proposes up to γ tokens, drawing each from
//! its distribution q_i after the target's sampling filters; the target scores
//! its pending token and the drafts in one pass; augur-core's shared verifier
//! accepts a prefix and emits one more token, so the output has exactly the
//! target's distribution (and, at temperature 0, the target's greedy text).
//!
//! This crate holds only what is particular to a draft model: two
//! [`augur_core::Drafter`]s, [`ModelDrafter`] (drafting on the caller's
//! thread) and [`PipelinedDrafter`] (drafting ahead on a thread of its own).
//! Both run under augur-core's one draft-then-verify driver
//! ([`augur_core::DraftVerify`]), their draft length chosen by
//! [`augur_core::Tuner`] against the shared [`augur_core::CostModel`].
//! [`Speculative`] and [`PipelinedSpeculative`] name the two assembled
//! strategies; [`build`] picks one from a [`SpeculativeConfig`].

mod config;
mod error;
mod model_drafter;
mod pipeline;

use augur_core::cost::{pipelined_speedup, speedup, Timing};
use augur_core::{
    CoreError, CostModel, DraftVerify, Model, RunStats, StepContext, Strategy, Tuned, Tuner,
};

pub use config::SpeculativeConfig;
pub use error::SpeculativeError;
pub use model_drafter::{top_probability, ModelDrafter};
pub use pipeline::{draft_rng, live_workers, PipelineStats, PipelinedDrafter};

/// The strategy's name on the command line.
pub const NAME: &str = "speculative";

/// Acceptance a good draft reaches, for asking whether overlapping drafting
/// with verification could pay at all on this machine.
const GOOD_DRAFT_ALPHA: f64 = 0.8;

/// Whether the pipelined drafter pays under `costs`: its best predicted
/// speedup with a good draft, against the sequential drafter's best, and the
/// reason in words. Where the draft and the target share the same compute
/// ([`CostModel::overlap`] 0: a CPU-only machine), the overlap hides nothing
/// and the draft thread's guess costs one more draft step, so it never pays.
pub fn pipeline_pays(costs: &CostModel, draft_max: usize) -> (bool, String) {
    let alpha = vec![GOOD_DRAFT_ALPHA; draft_max + 2];
    let best = |f: fn(&[f64], &CostModel, usize) -> Option<f64>| {
        (1..=draft_max)
            .filter_map(|g| f(&alpha, costs, g))
            .fold(1.0, f64::max)
    };
    let (seq, pipe) = (best(speedup), best(pipelined_speedup));
    if pipe > seq * 1.02 {
        (
            true,
            format!(
                "pipelined: predicted {pipe:.2}x over plain decoding against {seq:.2}x drafting \
                 sequentially (a draft accepted {:.0} % of the time)",
                GOOD_DRAFT_ALPHA * 100.0
            ),
        )
    } else {
        (
            false,
            format!(
                "sequential: the pipeline would not pay here (predicted {pipe:.2}x over plain \
                 decoding against {seq:.2}x sequentially{})",
                if costs.overlap <= 0.0 {
                    "; the draft and the target share the same cores, so drafting ahead hides \
                     nothing"
                } else {
                    ""
                }
            ),
        )
    }
}

/// The speculative strategy of `config` around a boxed draft model:
/// [`PipelinedSpeculative`] when `config.pipeline` is set and the cost model
/// predicts that the overlap pays ([`pipeline_pays`]), [`Speculative`]
/// otherwise. The decision and why come back as the second value.
pub fn build(
    draft: Box<dyn Model + Send>,
    config: SpeculativeConfig,
) -> (Box<dyn Strategy + Send>, Option<String>) {
    if !config.pipeline {
        return (Box::new(Speculative::new(draft, config)), None);
    }
    let (pays, why) = pipeline_pays(&config.cost_model(), config.draft_settings().draft_max);
    if pays {
        (
            Box::new(PipelinedSpeculative::new(draft, config)),
            Some(why),
        )
    } else {
        (Box::new(Speculative::new(draft, config)), Some(why))
    }
}

/// The sequential draft-model drafter of `config`: [`ModelDrafter`] with its
/// draft length chosen by a [`Tuner`] (what [`Speculative`] drafts with, and
/// what a choice among drafters, such as the strategy `auto`, adds).
pub fn drafter<D: Model>(draft: D, config: &SpeculativeConfig) -> Tuned<ModelDrafter<D>> {
    Tuned::new(
        ModelDrafter::new(draft, config.draft_p_min),
        config.mode,
        config.draft_min,
    )
}

/// Speculative decoding with a draft model `D` (a concrete model type, or
/// `Box<dyn Model + Send>`), drafting on the caller's thread.
///
/// The draft must share the target's vocabulary; a different vocabulary size
/// is refused when the generation starts.
#[derive(Debug)]
pub struct Speculative<D: Model> {
    inner: DraftVerify<Tuned<ModelDrafter<D>>>,
    config: SpeculativeConfig,
}

impl<D: Model> Speculative<D> {
    /// Speculative decoding drafting with `draft` (sequentially:
    /// `config.pipeline` is not consulted; see [`build`]).
    pub fn new(draft: D, config: SpeculativeConfig) -> Self {
        let drafter = drafter(draft, &config);
        Self {
            inner: DraftVerify::new(NAME, drafter, config.draft_settings(), config.cost_model()),
            config,
        }
    }

    /// The draft model.
    pub fn draft(&self) -> &D {
        self.inner.drafter().inner().model()
    }

    /// Gives the draft model back.
    pub fn into_draft(self) -> D {
        self.inner.into_drafter().into_inner().into_model()
    }

    /// The settings.
    pub fn config(&self) -> &SpeculativeConfig {
        &self.config
    }

    /// The current cost estimates, to persist per model files, machine and
    /// thread count and pass back as [`SpeculativeConfig::initial_costs`].
    pub fn costs(&self) -> CostModel {
        self.inner.costs().clone()
    }

    /// The draft-length tuner (acceptance estimates by position).
    pub fn tuner(&self) -> &Tuner {
        self.inner.drafter().tuner()
    }

    /// The largest target pass (tokens) of the last generation.
    pub fn largest_pass(&self) -> usize {
        self.inner.largest_pass()
    }

    /// The draft-then-verify strategy inside.
    pub fn inner(&self) -> &DraftVerify<Tuned<ModelDrafter<D>>> {
        &self.inner
    }

    fn check_config(&self) -> Result<(), SpeculativeError> {
        self.config.validate()
    }
}

augur_core::delegate_strategy!(Speculative<D: Model>, inner, NAME, check_config);

/// Pipelined speculative decoding with a draft model `D`: the same driver as
/// [`Speculative`], with a [`PipelinedDrafter`] whose thread drafts the next
/// proposal while the target verifies this one. The draft length follows the
/// [`Tuner`] with the pipelined timing ([`Timing::Pipelined`]); with
/// [`SpeculativeConfig::initial_costs`] it depends on the text only.
/// `config.pipeline` is not consulted (see [`build`]).
#[derive(Debug)]
pub struct PipelinedSpeculative<D: Model + Send + 'static> {
    inner: DraftVerify<Tuned<PipelinedDrafter<D>>>,
    config: SpeculativeConfig,
}

impl<D: Model + Send + 'static> PipelinedSpeculative<D> {
    /// Pipelined speculative decoding drafting with `draft`.
    pub fn new(draft: D, config: SpeculativeConfig) -> Self {
        let drafter = Tuned::new(
            PipelinedDrafter::new(draft, config.draft_p_min),
            config.mode,
            config.draft_min,
        )
        .with_timing(Timing::Pipelined);
        Self {
            inner: DraftVerify::new(NAME, drafter, config.draft_settings(), config.cost_model()),
            config,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_flaw(mut self, flaw: pipeline::Flaw) -> Self {
        self.inner.drafter_mut().inner_mut().flaw = flaw;
        self
    }

    fn pipeline(&self) -> &PipelinedDrafter<D> {
        self.inner.drafter().inner()
    }

    /// The draft model; `None` during a generation (it is on the draft
    /// thread) or if the draft thread panicked.
    pub fn draft(&self) -> Option<&D> {
        self.pipeline().draft()
    }

    /// Gives the draft model back (stopping a running draft thread first).
    pub fn into_draft(self) -> Option<D> {
        self.inner.into_drafter().into_inner().into_draft()
    }

    /// The settings.
    pub fn config(&self) -> &SpeculativeConfig {
        &self.config
    }

    /// The current cost estimates (the initial ones, if given).
    pub fn costs(&self) -> CostModel {
        self.inner.costs().clone()
    }

    /// The draft-length tuner.
    pub fn tuner(&self) -> &Tuner {
        self.inner.drafter().tuner()
    }

    /// The largest target pass (tokens) of the last generation.
    pub fn largest_pass(&self) -> usize {
        self.inner.largest_pass()
    }

    /// What the pipeline did in the last (or current) generation.
    pub fn pipeline_stats(&self) -> &PipelineStats {
        self.pipeline().pipeline_stats()
    }

    /// Seconds of drafting thrown away in the last generation.
    pub fn wasted_draft_seconds(&self) -> f64 {
        self.pipeline_stats().wasted_seconds
    }

    /// (guesses held, guesses tried) in the last generation.
    pub fn guesses(&self) -> (u64, u64) {
        let p = self.pipeline_stats();
        (p.guesses_held, p.guesses_tried)
    }

    /// True while a draft thread is running (during a generation).
    pub fn worker_running(&self) -> bool {
        self.pipeline().worker_running()
    }
}

impl<D: Model + Send + 'static> Strategy for PipelinedSpeculative<D> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.config.validate()?;
        self.inner.start(ctx)
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.inner.step(ctx)?;
        // The negative control: take the draft thread's guess for the bonus
        // token whenever every draft was accepted, unchecked.
        #[cfg(test)]
        {
            let outcome = self.inner.last_outcome().cloned();
            let p = self.inner.drafter_mut().inner_mut();
            if p.flaw == pipeline::Flaw::TrustGuess {
                if let (Some(g), Some(o)) = (p.guess.take(), outcome) {
                    if o.verified > 0 && o.accepted == o.verified {
                        ctx.tokens.pop();
                        ctx.tokens.push(g);
                    }
                }
            }
        }
        Ok(())
    }

    fn max_exact_pass(&self) -> usize {
        self.inner.max_exact_pass()
    }

    fn finish(&mut self, stats: &mut RunStats) {
        self.inner.finish(stats)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// F16 on 2 CPU cores after a 300-token context: seconds of a pass over
    /// 1..=9 tokens, and a draft step about a sixth of a one-token pass.
    fn f16(overlap: f64) -> CostModel {
        let relative = [1.0, 1.7, 1.89, 2.03, 2.14, 2.6, 2.9, 3.13, 3.4];
        let seconds: Vec<f64> = relative.iter().map(|r| r * 0.075).collect();
        let mut c = CostModel::calibrated(&seconds, 0.0125, 1);
        c.overlap = overlap;
        c
    }

    #[test]
    fn the_pipeline_runs_only_where_the_cost_model_says_the_overlap_pays() {
        // Separate hardware: drafting ahead hides the draft's time.
        let (pays, why) = pipeline_pays(&f16(1.0), 8);
        assert!(pays, "{why}");
        assert!(why.starts_with("pipelined"), "{why}");
        // The same cores: it cannot pay, and says why.
        let (pays, why) = pipeline_pays(&f16(0.0), 8);
        assert!(!pays, "{why}");
        assert!(why.contains("share the same cores"), "{why}");
        // Without a calibration the default overlap is assumed but nothing
        // is measured: no decision to pipeline on no evidence.
        let (pays, _) = pipeline_pays(&CostModel::measured(), 8);
        assert!(!pays);
        // `build` follows the decision.
        let draft: Box<dyn Model + Send> =
            Box::new(augur_core::testing::InMemoryModel::random(5, 1));
        let config = SpeculativeConfig {
            pipeline: true,
            initial_costs: Some(f16(0.0)),
            ..SpeculativeConfig::default()
        };
        let (_, why) = build(draft, config);
        assert!(why.unwrap().starts_with("sequential"));
    }
}
