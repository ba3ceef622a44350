//! The `Strategy` trait and the per-step context a strategy works in.

use std::time::Instant;

use crate::error::CoreError;
use crate::model::{Batch, LogitRows, Model, TokenId};
use crate::rng::Rng;
use crate::sampling::{argmax, SamplingParams, SparseDist};
use crate::stats::RunStats;
use crate::verify::{verify_greedy, verify_lazy, Proposal, Verdict};

/// Which exactness guarantee a run had (see the contract in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exactness {
    /// Every target pass had a size whose logits are bit-identical to one-token
    /// passes: greedy output equals the baseline's token for token.
    #[default]
    BitIdentical,
    /// Larger passes were used: greedy output equals the baseline's except where
    /// the kernels of a batched pass round differently.
    KernelLevel,
}

impl Exactness {
    /// The label used in reports: `bit-identical` or `kernel-level`.
    pub fn label(self) -> &'static str {
        match self {
            Exactness::BitIdentical => "bit-identical",
            Exactness::KernelLevel => "kernel-level",
        }
    }
}

/// A decoding strategy: each step appends at least one token.
///
/// Between steps the invariant is: the target's KV cache (sequence 0) holds
/// `tokens[..len-1]`, and the last token is pending — known, but not yet
/// evaluated. A step evaluates the pending token (plus whatever it drafted) and
/// appends the tokens it decides on.
pub trait Strategy {
    /// The strategy's name, as chosen on the command line.
    fn name(&self) -> &'static str;

    /// True if the strategy removes positions from the KV cache (all drafting
    /// strategies). Such strategies are refused on recurrent models.
    fn needs_rollback(&self) -> bool {
        true
    }

    /// Called once per generation after the target's prompt prefill.
    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let _ = ctx;
        Ok(())
    }

    /// Performs one step; must append at least one token to `ctx.tokens`.
    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError>;

    /// The guarantee this strategy's run had (asked after the run).
    fn exactness(&self) -> Exactness {
        Exactness::BitIdentical
    }

    /// Called once when a generation ends, however it ends (done, cancelled,
    /// or an error): release per-generation resources such as worker threads,
    /// and add what only the strategy knows to the run's statistics.
    fn finish(&mut self, stats: &mut RunStats) {
        let _ = stats;
    }
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn needs_rollback(&self) -> bool {
        (**self).needs_rollback()
    }
    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        (**self).start(ctx)
    }
    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        (**self).step(ctx)
    }
    fn exactness(&self) -> Exactness {
        (**self).exactness()
    }
    fn finish(&mut self, stats: &mut RunStats) {
        (**self).finish(stats)
    }
}

/// Everything a strategy step may use.
pub struct StepContext<'a> {
    /// The target model.
    pub target: &'a mut dyn Model,
    /// Prompt followed by the tokens generated so far; the last one is pending.
    pub tokens: &'a mut Vec<TokenId>,
    /// Prompt length.
    pub n_prompt: usize,
    /// Sampling settings (applied identically to target and draft).
    pub sampling: &'a SamplingParams,
    /// The generation's random stream.
    pub rng: &'a mut Rng,
    /// Statistics to update.
    pub stats: &'a mut RunStats,
    /// How many more tokens the generation may emit (at least 1).
    pub max_new: usize,
    /// Scratch batch, reused across steps.
    pub batch: &'a mut Batch,
    /// Scratch logit rows, reused across steps.
    pub logits: &'a mut LogitRows,
}

impl StepContext<'_> {
    /// The pending token (last of `tokens`).
    pub fn pending(&self) -> TokenId {
        self.tokens[self.tokens.len() - 1]
    }

    /// The position of the pending token.
    pub fn pending_pos(&self) -> usize {
        self.tokens.len() - 1
    }

    /// The most drafts worth verifying now: limited by the tokens still wanted
    /// and by the room left in the target's context.
    pub fn max_drafts(&self) -> usize {
        let room = self.target.n_ctx().saturating_sub(self.pending_pos() + 1);
        room.min(self.max_new.saturating_sub(1))
    }

    /// The target's filtered distribution for one logits row.
    pub fn target_dist(&self, row: usize) -> SparseDist {
        self.sampling.distribution(self.logits.row(row))
    }

    /// One target pass over `[pending, drafts...]` on sequence 0, verification
    /// by the shared rule, rollback of rejected positions, and the emitted tokens
    /// appended. An empty proposal is one step of plain decoding.
    pub fn verify_proposal(&mut self, proposal: &Proposal) -> Result<Verdict, CoreError> {
        let proposal_len = proposal.len().min(self.max_drafts());
        let pos = self.pending_pos();
        self.batch.clear();
        self.batch.add(self.pending(), pos, &[0], true);
        for (i, &t) in proposal.tokens[..proposal_len].iter().enumerate() {
            self.batch.add(t, pos + 1 + i, &[0], true);
        }
        let t0 = Instant::now();
        self.target.eval(self.batch, self.logits)?;
        self.stats.target_passes += 1;
        self.stats.largest_pass = self.stats.largest_pass.max(proposal_len + 1);
        let t1 = Instant::now();
        self.stats.verify_seconds += (t1 - t0).as_secs_f64();

        let verdict = if self.sampling.is_greedy() {
            // Argmax directly: no distributions over a large vocabulary.
            let argmaxes: Vec<TokenId> = (0..=proposal_len)
                .map(|i| argmax(self.logits.row(i)))
                .collect();
            verify_greedy(&proposal.tokens[..proposal_len], &argmaxes)
        } else {
            let (sampling, logits) = (self.sampling, &*self.logits);
            verify_lazy(
                &proposal.tokens[..proposal_len],
                &proposal.q[..proposal_len],
                |i| sampling.distribution(logits.row(i)),
                self.rng,
            )
        };
        self.stats.sample_seconds += t1.elapsed().as_secs_f64();
        self.stats.record_verdict(proposal_len, verdict.accepted);

        // Keep pending + accepted drafts in the cache; `next` becomes pending.
        if verdict.accepted < proposal_len {
            self.target.remove_from(0, pos + 1 + verdict.accepted)?;
        }
        self.tokens
            .extend_from_slice(&proposal.tokens[..verdict.accepted]);
        self.tokens.push(verdict.next);
        Ok(verdict)
    }
}
