//! The `Strategy` trait and the per-step context a strategy works in.

use std::time::Instant;

use crate::cost::CostModel;
use crate::draft::{Proposal, VerifyOutcome};
use crate::error::CoreError;
use crate::model::{Batch, LogitRows, Model, SeqId, TokenId};
use crate::rng::Rng;
use crate::sampling::{argmax, SamplingParams, SparseDist};
use crate::stats::RunStats;
use crate::verify::{verify_greedy_chains, verify_lazy};

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
    /// The guarantee of a run whose largest target pass had `largest_pass`
    /// tokens, where passes up to `max_exact_pass` are known bit-identical to
    /// one-token passes: the one rule every strategy is judged by.
    pub fn of(largest_pass: usize, max_exact_pass: usize) -> Self {
        if largest_pass <= max_exact_pass.max(1) {
            Exactness::BitIdentical
        } else {
            Exactness::KernelLevel
        }
    }

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

    /// The largest target pass known to give logits bit-identical to
    /// one-token passes (the calibrated size of the strategy's
    /// [`CostModel`]). The driver derives the run's [`Exactness`] from it and
    /// the largest pass actually made, one rule for every strategy.
    fn max_exact_pass(&self) -> usize {
        1
    }

    /// Called once when a generation ends, however it ends (done, cancelled,
    /// or an error): release per-generation resources such as worker threads,
    /// and add what only the strategy knows to the run's statistics.
    fn finish(&mut self, stats: &mut RunStats) {
        let _ = stats;
    }
}

/// Implements [`Strategy`] for a named strategy that wraps another in a
/// field (a plugin's strategy around the one [`crate::DraftVerify`] driver),
/// delegating every method: `delegate_strategy!(PromptLookup, inner, NAME)`.
/// With a fourth argument, a method of the type to call first at `start`
/// (to validate its settings).
#[macro_export]
macro_rules! delegate_strategy {
    ($ty:ident $(<$($gen:ident: $bound:path),*>)?, $field:ident, $name:expr $(, $check:ident)?) => {
        impl$(<$($gen: $bound),*>)? $crate::Strategy for $ty$(<$($gen),*>)? {
            fn name(&self) -> &'static str {
                $name
            }
            fn start(
                &mut self,
                ctx: &mut $crate::StepContext<'_>,
            ) -> Result<(), $crate::CoreError> {
                $(self.$check()?;)?
                self.$field.start(ctx)
            }
            fn step(
                &mut self,
                ctx: &mut $crate::StepContext<'_>,
            ) -> Result<(), $crate::CoreError> {
                self.$field.step(ctx)
            }
            fn max_exact_pass(&self) -> usize {
                self.$field.max_exact_pass()
            }
            fn finish(&mut self, stats: &mut $crate::RunStats) {
                self.$field.finish(stats)
            }
        }
    };
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
    fn max_exact_pass(&self) -> usize {
        (**self).max_exact_pass()
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

    /// The one verify step every strategy uses: ONE target pass over the
    /// pending token (on every one of `sequences` KV sequences), the
    /// proposal's main chain on sequence 0 (cut to what the context and the
    /// tokens still wanted allow), its branches and side entries; the verdict
    /// by the shared rule (rejection sampling on the main chain, or greedy
    /// over every chain); the rejected positions removed from the cache, every
    /// sequence left holding the committed text; the emitted tokens appended.
    /// The pass is timed into `costs` (which keeps calibrated costs fixed)
    /// and the statistics. An empty proposal is one step of plain decoding.
    ///
    /// Branches and several sequences need temperature 0: they are refused
    /// otherwise.
    pub fn verify(
        &mut self,
        proposal: &Proposal,
        sequences: usize,
        costs: &mut CostModel,
    ) -> Result<VerifyOutcome, CoreError> {
        let greedy = self.sampling.is_greedy();
        if !greedy && !proposal.branches.is_empty() {
            return Err(CoreError::InvalidParameter(
                "candidate branches can only be verified at temperature 0".into(),
            ));
        }
        let max_drafts = self.max_drafts();
        let main_len = proposal.len().min(max_drafts);
        let pos = self.pending_pos();
        let sequences = sequences.max(1);
        let n_ctx = self.target.n_ctx();
        self.batch.clear();
        let all: Vec<SeqId> = (0..sequences as SeqId).collect();
        self.batch.add(self.pending(), pos, &all, true);
        for (i, &t) in proposal.tokens[..main_len].iter().enumerate() {
            self.batch.add(t, pos + 1 + i, &[0], true);
        }
        // Rows of each branch's tokens (row 0 is the pending token's, then
        // the main chain's).
        let mut row = 1 + main_len;
        let mut branch_rows = Vec::with_capacity(proposal.branches.len());
        for branch in &proposal.branches {
            let start = row;
            for (v, &t) in branch.tokens.iter().enumerate() {
                if pos + 1 + v >= n_ctx {
                    break;
                }
                self.batch.add(t, pos + 1 + v, &[branch.seq], true);
                row += 1;
            }
            branch_rows.push(start);
        }
        let side_first_row = row;
        for entry in &proposal.side {
            if pos + entry.offset < n_ctx {
                self.batch
                    .add(entry.token, pos + entry.offset, &entry.seqs, entry.logits);
                row += usize::from(entry.logits);
            }
        }
        let pass_size = self.batch.len();
        let t0 = Instant::now();
        self.target.eval(self.batch, self.logits)?;
        let t1 = Instant::now();
        let seconds = (t1 - t0).as_secs_f64();
        self.stats.target_passes += 1;
        self.stats.largest_pass = self.stats.largest_pass.max(pass_size);
        self.stats.verify_seconds += seconds;
        self.stats.record_pass(pass_size, seconds);
        costs.observe_target(pass_size, seconds);

        let logits = &*self.logits;
        let (branch, accepted, next) = if greedy {
            let mut chains: Vec<&[TokenId]> = Vec::with_capacity(1 + proposal.branches.len());
            chains.push(&proposal.tokens[..main_len]);
            for (b, branch) in proposal.branches.iter().enumerate() {
                let next_start = branch_rows.get(b + 1).copied().unwrap_or(side_first_row);
                chains.push(&branch.tokens[..next_start - branch_rows[b]]);
            }
            let target = &*self.target;
            let (winner, accepted, next) = verify_greedy_chains(
                &chains,
                max_drafts,
                |at| match at {
                    None => argmax(logits.row(0)),
                    Some((0, i)) => argmax(logits.row(1 + i)),
                    Some((c, i)) => argmax(logits.row(branch_rows[c - 1] + i)),
                },
                |t| target.is_eog(t),
            );
            (winner.and_then(|c| c.checked_sub(1)), accepted, next)
        } else {
            let sampling = self.sampling;
            let v = verify_lazy(
                &proposal.tokens[..main_len],
                &proposal.q[..main_len],
                |i| sampling.distribution(logits.row(i)),
                self.rng,
            );
            (None, v.accepted, v.next)
        };
        let side_argmax: Vec<TokenId> = (side_first_row..row)
            .map(|r| argmax(logits.row(r)))
            .collect();
        self.stats.sample_seconds += t1.elapsed().as_secs_f64();
        let main_accepted = if branch.is_none() { accepted } else { 0 };
        self.stats.record_verdict(main_len, main_accepted);
        for (b, chain) in proposal.branches.iter().enumerate() {
            let used = if branch == Some(b) { accepted } else { 0 };
            self.stats.record_verdict(chain.tokens.len(), used);
        }

        // The cache: keep the pending token and the accepted drafts of the
        // winning chain, on every sequence.
        let new_pending = pos + 1 + accepted;
        if sequences == 1 {
            if pass_size > 1 + accepted {
                self.target.remove_from(0, new_pending)?;
            }
        } else {
            self.target.remove_from(-1, new_pending)?;
            let winner_seq = match branch {
                Some(b) => proposal.branches[b].seq,
                None => 0,
            };
            // Positions past the new pending one are gone everywhere; the
            // accepted ones exist on the winner's sequence only until copied.
            if accepted > 0 {
                for s in all.iter().copied().filter(|&s| s != winner_seq) {
                    self.target.remove_from(s, pos + 1)?;
                    self.target.copy_seq(winner_seq, s, pos + 1)?;
                }
            }
        }
        let emitted: &[TokenId] = match branch {
            Some(b) => &proposal.branches[b].tokens[..accepted],
            None => &proposal.tokens[..accepted],
        };
        self.tokens.extend_from_slice(emitted);
        self.tokens.push(next);
        Ok(VerifyOutcome {
            accepted,
            next,
            branch,
            verified: main_len,
            pass_size,
            seconds,
            exact: costs.pass_is_exact(pass_size),
            relative_cost: costs.measured_relative(pass_size),
            side_argmax,
        })
    }
}
