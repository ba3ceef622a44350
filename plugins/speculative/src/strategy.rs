//! The draft-then-verify step, generic over where drafts come from.

use std::time::Instant;

use augur_core::strategy::Exactness;
use augur_core::{CoreError, Proposal, StepContext, Strategy};

use crate::config::SpeculativeConfig;
use crate::costs::Costs;
use crate::drafter::Drafter;
use crate::tuner::Tuner;

/// Draft timings count as draft-step samples only when the drafter is this
/// few steps behind (a longer catch-up pass is a prefill, not a draft step).
const MAX_TIMED_CATCH_UP: usize = 2;

/// Sequential speculative decoding with any [`Drafter`]: each step drafts
/// (or not, as the [`Tuner`] decides), verifies the proposal in one target
/// pass through the shared exact verifier ([`StepContext::verify_proposal`]),
/// and tells the drafter the verdict.
///
/// Measured costs carry over from one generation to the next (same machine,
/// same models); acceptance estimates start afresh with every generation, so
/// a generation's text depends only on its own seed and prompt.
#[derive(Debug)]
pub struct DraftVerify<Dr: Drafter> {
    name: &'static str,
    drafter: Dr,
    config: SpeculativeConfig,
    tuner: Tuner,
    proposal: Proposal,
    /// Steps since the drafter last drafted (its next catch-up pass covers
    /// about this many tokens, so only small values give fair draft-step
    /// timings).
    steps_since_draft: usize,
    largest_pass: usize,
    all_passes_exact: bool,
}

impl<Dr: Drafter> DraftVerify<Dr> {
    /// A strategy called `name` drafting with `drafter`.
    pub fn new(name: &'static str, drafter: Dr, config: SpeculativeConfig) -> Self {
        let tuner = Tuner::new(config.mode, config.initial_costs.clone());
        Self {
            name,
            drafter,
            config,
            tuner,
            proposal: Proposal::new(),
            steps_since_draft: 0,
            largest_pass: 0,
            all_passes_exact: true,
        }
    }

    /// The drafter.
    pub fn drafter(&self) -> &Dr {
        &self.drafter
    }

    /// The drafter, mutably.
    pub fn drafter_mut(&mut self) -> &mut Dr {
        &mut self.drafter
    }

    /// Gives the drafter back.
    pub fn into_drafter(self) -> Dr {
        self.drafter
    }

    /// The settings.
    pub fn config(&self) -> &SpeculativeConfig {
        &self.config
    }

    /// The current cost estimates (to persist for the next run on this
    /// machine, models and thread count).
    pub fn costs(&self) -> Costs {
        self.tuner.costs().clone()
    }

    /// The draft-length tuner (acceptance estimates, explorations).
    pub fn tuner(&self) -> &Tuner {
        &self.tuner
    }

    /// The largest target pass (tokens) of the last generation.
    pub fn largest_pass(&self) -> usize {
        self.largest_pass
    }
}

impl<Dr: Drafter> Strategy for DraftVerify<Dr> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.config.validate()?;
        let n_vocab = ctx.target.n_vocab();
        self.drafter.start(ctx.tokens, n_vocab)?;
        self.tuner.new_generation();
        self.steps_since_draft = 0;
        self.largest_pass = 0;
        self.all_passes_exact = true;
        Ok(())
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let cap = self.config.draft_cap().min(ctx.max_drafts());
        let gamma = self.tuner.plan(self.config.draft_min, cap);

        self.proposal.truncate(0);
        let drafted = gamma > 0;
        if drafted {
            let t0 = Instant::now();
            let passes = self.drafter.propose(
                ctx.tokens,
                gamma,
                ctx.sampling,
                ctx.rng,
                &mut self.proposal,
            )?;
            let seconds = t0.elapsed().as_secs_f64();
            ctx.stats.draft_seconds += seconds;
            ctx.stats.draft_passes += passes;
            if self.steps_since_draft <= MAX_TIMED_CATCH_UP {
                self.tuner.record_draft(seconds, passes);
            }
            self.proposal.truncate(gamma);
            // Dropping a short proposal is exact only at temperature 0: with
            // sampling, whether it came out short depends on the drafts drawn.
            if ctx.sampling.is_greedy() && self.proposal.len() < self.config.draft_min {
                self.proposal.truncate(0);
            }
        }

        let size = 1 + self.proposal.len().min(ctx.max_drafts());
        let verify_before = ctx.stats.verify_seconds;
        let verdict = ctx.verify_proposal(&self.proposal)?;
        self.tuner
            .record_target_pass(size, ctx.stats.verify_seconds - verify_before);
        if size > 1 {
            self.tuner.record_verdict(size - 1, verdict.accepted);
        }
        self.largest_pass = self.largest_pass.max(size);
        self.all_passes_exact &= self.config.pass_is_exact(size);

        if drafted {
            self.drafter.on_verdict(ctx.tokens, verdict.accepted)?;
        }
        self.steps_since_draft = if drafted {
            0
        } else {
            self.steps_since_draft + 1
        };
        Ok(())
    }

    fn exactness(&self) -> Exactness {
        if self.all_passes_exact {
            Exactness::BitIdentical
        } else {
            Exactness::KernelLevel
        }
    }
}
