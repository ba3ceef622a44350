//! The one draft-then-verify strategy, generic over where drafts come from.

use std::time::Instant;

use crate::cost::CostModel;
use crate::draft::{DraftRequest, Drafter, Proposal};
use crate::error::CoreError;
use crate::strategy::{StepContext, Strategy};

/// Draft timings count as draft-step samples only when the drafter is this
/// few steps behind (a longer catch-up pass is a prefill, not a draft step).
const MAX_TIMED_CATCH_UP: usize = 2;

/// Settings every drafting strategy shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DraftSettings {
    /// The most tokens drafted on the main chain per step.
    pub draft_max: usize,
    /// At temperature 0, a proposal shorter than this is dropped and the step
    /// is plain decoding. At temperature > 0 a short proposal is verified as
    /// it is: whether it came out short depends on the sampled drafts, so
    /// dropping it would bias the output.
    pub draft_min: usize,
    /// Bit-exact mode: passes never exceed the cost model's bit-exact size.
    pub exact: bool,
}

impl DraftSettings {
    /// The most main-chain drafts one verification may carry: `draft_max`,
    /// and in bit-exact mode no more than the bit-exact pass size allows.
    pub fn cap(&self, costs: &CostModel) -> usize {
        if self.exact {
            self.draft_max.min(costs.exact_pass().saturating_sub(1))
        } else {
            self.draft_max
        }
    }
}

impl Default for DraftSettings {
    fn default() -> Self {
        Self {
            draft_max: 8,
            draft_min: 0,
            exact: false,
        }
    }
}

/// Draft-then-verify decoding with any [`Drafter`]: each step the drafter
/// proposes (or not), the proposal is cut to the prefix the [`CostModel`]
/// says pays best, verified in one target pass through the shared exact
/// verifier ([`StepContext::verify`]), and the drafter sees the outcome.
///
/// The cost model carries over from one generation to the next (same
/// machine, same models); the drafter's own estimates start afresh with
/// every generation ([`Drafter::start`]), so a generation's text depends only
/// on its own seed and prompt.
#[derive(Debug)]
pub struct DraftVerify<D: Drafter> {
    name: &'static str,
    drafter: D,
    settings: DraftSettings,
    costs: CostModel,
    proposal: Proposal,
    /// Steps since the drafter last made model passes (its next catch-up
    /// covers about this many tokens, so only small values give fair
    /// draft-step timings).
    steps_since_draft: usize,
    /// The largest target pass of the current generation.
    largest_pass: usize,
    /// What the last step's verification did.
    last: Option<crate::VerifyOutcome>,
}

impl<D: Drafter> DraftVerify<D> {
    /// A strategy called `name` drafting with `drafter` under `settings`,
    /// judged by `costs`.
    pub fn new(name: &'static str, drafter: D, settings: DraftSettings, costs: CostModel) -> Self {
        Self {
            name,
            drafter,
            settings,
            costs,
            proposal: Proposal::new(),
            steps_since_draft: 0,
            largest_pass: 0,
            last: None,
        }
    }

    /// The same strategy under other settings.
    pub fn with_settings(mut self, settings: DraftSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The drafter.
    pub fn drafter(&self) -> &D {
        &self.drafter
    }

    /// The drafter, mutably.
    pub fn drafter_mut(&mut self) -> &mut D {
        &mut self.drafter
    }

    /// Gives the drafter back.
    pub fn into_drafter(self) -> D {
        self.drafter
    }

    /// The settings.
    pub fn settings(&self) -> &DraftSettings {
        &self.settings
    }

    /// The cost model (with what the runs measured, when not calibrated).
    pub fn costs(&self) -> &CostModel {
        &self.costs
    }

    /// The largest target pass (tokens) of the last generation.
    pub fn largest_pass(&self) -> usize {
        self.largest_pass
    }

    /// What the last step's verification did.
    pub fn last_outcome(&self) -> Option<&crate::VerifyOutcome> {
        self.last.as_ref()
    }

    /// The most main-chain drafts one verification may carry under these
    /// settings.
    pub fn draft_cap(&self) -> usize {
        self.settings.cap(&self.costs)
    }
}

impl<D: Drafter> Strategy for DraftVerify<D> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        if self.drafter.greedy_only() && !ctx.sampling.is_greedy() {
            return Err(CoreError::Unsupported {
                strategy: self.name,
                reason: format!(
                    "{} drafting is greedy only (temperature 0, got {}): its candidates are \
                     checked against the argmax, which cannot preserve the sampling \
                     distribution; use prompt-lookup or speculative for sampling",
                    self.drafter.name(),
                    ctx.sampling.temperature
                ),
            });
        }
        let sequences = self.drafter.sequences();
        let have = ctx.target.n_seq_max();
        if have < sequences {
            return Err(CoreError::Unsupported {
                strategy: self.name,
                reason: format!(
                    "{} drafting: its proposals need {sequences} KV sequences but the model \
                     context has {have}; raise the context's sequence count or lower the \
                     settings that add sequences",
                    self.drafter.name()
                ),
            });
        }
        self.costs.begin_generation(ctx.sampling.is_greedy());
        let n_vocab = ctx.target.n_vocab();
        self.drafter.start(ctx.tokens, n_vocab, ctx.sampling)?;
        if sequences > 1 {
            // The prefill wrote the committed text to sequence 0 only; every
            // other sequence attends to it too.
            let p = ctx.pending_pos();
            ctx.target.remove_from(-1, p)?;
            for s in 1..sequences as crate::SeqId {
                ctx.target.copy_seq(0, s, 0)?;
            }
        }
        self.steps_since_draft = 0;
        self.largest_pass = 0;
        self.last = None;
        Ok(())
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let room = ctx.target.n_ctx().saturating_sub(ctx.pending_pos() + 1);
        let max = self.draft_cap().min(ctx.max_drafts());
        // Costs at this context: passes of several tokens grow with it.
        self.costs.set_context(ctx.pending_pos());
        self.proposal.clear();
        let t0 = Instant::now();
        {
            let req = DraftRequest {
                tokens: ctx.tokens,
                max,
                remaining: ctx.max_new,
                room,
                sampling: ctx.sampling,
                costs: &self.costs,
                draft_all: false,
            };
            self.drafter.propose(&req, ctx.rng, &mut self.proposal)?;
        }
        let waited = t0.elapsed().as_secs_f64();
        if self.proposal.draft_seconds <= 0.0 {
            self.proposal.draft_seconds = waited;
        }
        ctx.stats.draft_seconds += waited;
        ctx.stats.draft_passes += self.proposal.draft_passes;
        if self.proposal.draft_passes > 0 {
            if self.steps_since_draft <= MAX_TIMED_CATCH_UP {
                self.costs
                    .observe_draft(self.proposal.draft_seconds / self.proposal.draft_passes as f64);
            }
            self.steps_since_draft = 0;
        } else {
            self.steps_since_draft += 1;
        }

        let proposal = &mut self.proposal;
        proposal.truncate(max);
        // Cut to the prefix that pays best, where a cut cannot bias sampling:
        // at temperature 0, or when the drafts are a function of the text.
        if !proposal.keep_whole && (ctx.sampling.is_greedy() || proposal.is_deterministic()) {
            let (k, _) = self.costs.best_prefix(&proposal.confidence, proposal.len());
            proposal.truncate(k);
        }
        // Dropping a short proposal is exact only at temperature 0: with
        // sampling, whether it came out short depends on the drafts drawn.
        if ctx.sampling.is_greedy() && proposal.len() < self.settings.draft_min {
            proposal.truncate(0);
        }
        if self.settings.exact {
            // Branches and side entries count towards the pass size too.
            let budget = self.costs.exact_pass();
            if 1 + proposal.len()
                + proposal
                    .branches
                    .iter()
                    .map(|b| b.tokens.len())
                    .sum::<usize>()
                + proposal.side.len()
                > budget
            {
                proposal.branches.clear();
                proposal.side.clear();
                proposal.truncate(budget.saturating_sub(1));
            }
        }
        let source = match self.proposal.source {
            Some(name) => name,
            None if self.proposal.is_empty() => crate::DrafterStats::NONE,
            None => self.drafter.name(),
        };
        let outcome = ctx.verify(&self.proposal, self.drafter.sequences(), &mut self.costs)?;
        // The step counts for the chain that won (a branch's own drafter
        // where it says which).
        let (source, drafted) = match outcome.branch.and_then(|b| self.proposal.branches.get(b)) {
            Some(b) => {
                ctx.stats.branch_wins += 1;
                (b.source.unwrap_or(source), b.tokens.len())
            }
            None => (source, outcome.verified),
        };
        ctx.stats
            .record_drafter(source, drafted, outcome.accepted, outcome.emitted(), waited);
        self.largest_pass = self.largest_pass.max(outcome.pass_size);
        self.drafter.on_verdict(ctx.tokens, &outcome)?;
        self.last = Some(outcome);
        Ok(())
    }

    fn max_exact_pass(&self) -> usize {
        self.costs.exact_pass()
    }

    fn finish(&mut self, stats: &mut crate::RunStats) {
        self.drafter.finish(stats);
    }
}
