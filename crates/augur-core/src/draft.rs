//! Where drafts come from: the one [`Drafter`] interface every way of drafting
//! implements (a draft model, prompt lookup, lookahead's window, an
//! application's callback, a pipelined draft thread).
//!
//! Each step the driver ([`crate::DraftVerify`]) asks the drafter for a
//! [`Proposal`] ([`Drafter::propose`]), cuts it to the prefix the shared
//! [`crate::CostModel`] says pays best, verifies it in one target pass
//! ([`crate::StepContext::verify`]) and hands the drafter the
//! [`VerifyOutcome`] ([`Drafter::on_verdict`]). A drafter that needs more of
//! the target's pass than one chain of drafts (lookahead's Jacobi window on
//! sequences of its own, several candidate continuations) says so through
//! [`Drafter::sequences`], [`Proposal::branches`] and [`Proposal::side`],
//! never by running a loop of its own.

use crate::cost::CostModel;
use crate::error::CoreError;
use crate::model::{SeqId, TokenId};
use crate::rng::Rng;
use crate::sampling::{SamplingParams, SparseDist};
use crate::stats::RunStats;

/// What a drafter is asked for at one step.
#[derive(Debug, Clone, Copy)]
pub struct DraftRequest<'a> {
    /// Prompt and generated text; the last token is the target's pending one.
    pub tokens: &'a [TokenId],
    /// The most drafts worth proposing on the main chain now (tokens still
    /// wanted, room in the context, the strategy's draft cap).
    pub max: usize,
    /// Tokens the generation may still emit (at least 1).
    pub remaining: usize,
    /// Positions left in the target's context after the pending token:
    /// entries a proposal places must stay below `pending + 1 + room`.
    pub room: usize,
    /// Sampling settings: a drafter that samples draws from
    /// `sampling.distribution(..)`, the same filters as the target's.
    pub sampling: &'a SamplingParams,
    /// The shared cost model, to decide how much drafting pays.
    pub costs: &'a CostModel,
    /// Draft `max` tokens (a fixed draft length): a drafter that can stop
    /// mid-draft when one more token would not pay
    /// ([`CostModel::drafting_more_pays`]) does not; it still stops where it
    /// has nothing more to draft.
    pub draft_all: bool,
}

/// A continuation verified beside the main chain, on a KV sequence of its own
/// (greedy only): the target's output follows it while it agrees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Branch {
    /// The sequence its tokens join (1.. below [`Drafter::sequences`]).
    pub seq: SeqId,
    /// The drafted tokens, following the pending token.
    pub tokens: Vec<TokenId>,
    /// Which drafter made it, for the per-drafter statistics (`None`: the
    /// same as the main chain's).
    pub source: Option<&'static str>,
}

/// An entry the drafter wants evaluated in the target's pass without it being
/// verified (lookahead's window): its argmax comes back in
/// [`VerifyOutcome::side_argmax`] when `logits` is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideEntry {
    /// The token.
    pub token: TokenId,
    /// Its position, as an offset after the pending token's (≥ 1).
    pub offset: usize,
    /// The sequences its KV cell joins (all below [`Drafter::sequences`]).
    pub seqs: Vec<SeqId>,
    /// Whether its logits are wanted.
    pub logits: bool,
}

/// Drafted tokens with the distributions they were drawn from, the drafter's
/// estimate of each one's chance of acceptance, and what it cost to make.
#[derive(Debug, Clone, Default)]
pub struct Proposal {
    /// The main chain's drafted tokens, in order, on sequence 0.
    pub tokens: Vec<TokenId>,
    /// q_i for each drafted token (same length as `tokens`); one-hot for
    /// deterministic drafters.
    pub q: Vec<SparseDist>,
    /// `confidence[i]`: the drafter's estimate of the chance that draft i is
    /// accepted given that the ones before it were (learned online from
    /// whatever the drafter knows: copy run length, acceptance by position,
    /// n-gram evidence). Missing entries count as 0.
    pub confidence: Vec<f64>,
    /// Verify the main chain whole: the driver does not cut it to its best
    /// prefix (a fixed draft length, an exploration that measures acceptance).
    pub keep_whole: bool,
    /// Further candidates beside the main chain (greedy only).
    pub branches: Vec<Branch>,
    /// Entries evaluated in the same pass but not verified.
    pub side: Vec<SideEntry>,
    /// Model passes drafting took (0 for model-free drafters).
    pub draft_passes: u64,
    /// Seconds drafting took: the drafter's own figure where it has one (a
    /// draft made on another thread), else the driver's timing of
    /// [`Drafter::propose`].
    pub draft_seconds: f64,
    /// Which drafter made it, for the per-drafter statistics, when the
    /// drafter asked is a choice among several ([`crate::BestOf`]); `None`:
    /// the drafter asked.
    pub source: Option<&'static str>,
    /// What the drafter learned in hindsight while making it: how often its
    /// first guess would have been right on text it caught up on without
    /// drafting (a draft model after plain steps or another drafter's
    /// steps). Greedy only: there, a first draft is accepted exactly when it
    /// is the target's token.
    pub hindsight: Hindsight,
}

/// First-guess agreement measured on text a drafter saw only afterwards
/// ([`Proposal::hindsight`]): `agreed` of `seen` positions where the
/// drafter's most likely next token was the one the target chose. A tuner
/// counts each as a trial of the first draft position, so one catch-up after
/// a long plain stretch says whether drafting would have paid there, which a
/// single exploration (one draft, accepted or not) cannot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hindsight {
    /// Positions where the drafter's guess was the target's token.
    pub agreed: usize,
    /// Positions judged.
    pub seen: usize,
}

impl Proposal {
    /// An empty proposal: a plain step.
    pub fn new() -> Self {
        Self::default()
    }

    /// A deterministic proposal: every q is one-hot at its token, and every
    /// confidence 1 (callers with an estimate set [`Proposal::confidence`]).
    pub fn deterministic(tokens: &[TokenId]) -> Self {
        Self {
            tokens: tokens.to_vec(),
            q: tokens.iter().map(|&t| SparseDist::one_hot(t)).collect(),
            confidence: vec![1.0; tokens.len()],
            ..Self::default()
        }
    }

    /// Appends one drafted token with its q and the drafter's confidence.
    pub fn push(&mut self, token: TokenId, q: SparseDist, confidence: f64) {
        self.tokens.push(token);
        self.q.push(q);
        self.confidence.push(confidence);
    }

    /// Number of drafted tokens on the main chain.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when nothing at all was proposed (a plain step).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.branches.is_empty() && self.side.is_empty()
    }

    /// Drops everything after the first `n` drafts of the main chain.
    pub fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
        self.q.truncate(n);
        self.confidence.truncate(n);
    }

    /// Empties the proposal, keeping its allocations.
    pub fn clear(&mut self) {
        self.truncate(0);
        self.keep_whole = false;
        self.branches.clear();
        self.side.clear();
        self.draft_passes = 0;
        self.draft_seconds = 0.0;
        self.source = None;
        self.hindsight = Hindsight::default();
    }

    /// True when every drafted token is deterministic (one-hot q): cutting
    /// such a proposal after the fact cannot bias sampling, since its tokens
    /// are a function of the text before them.
    pub fn is_deterministic(&self) -> bool {
        self.tokens
            .iter()
            .zip(&self.q)
            .all(|(&t, q)| q.support_len() == 1 && q.prob(t) >= 1.0)
    }
}

/// What a drafter expects of proposing now, asked before [`Drafter::propose`]
/// by a driver choosing among several drafters ([`crate::BestOf`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forecast {
    /// Proposing costs next to nothing (a lookup in the text): just ask, and
    /// judge the proposal by its confidences.
    Free,
    /// Proposing costs model time and is not expected to pay now.
    Skip,
    /// Proposing costs model time; drafting `tokens` is expected to speed
    /// the step up by `speedup` over a plain one, its drafting time counted
    /// ([`crate::cost::speedup`]). `exploring`: the proposal would measure
    /// acceptance rather than pay.
    Draft {
        /// Tokens it would draft.
        tokens: usize,
        /// Expected speedup over a plain step.
        speedup: f64,
        /// It would explore rather than exploit.
        exploring: bool,
    },
}

/// What one verification pass did, as the drafter and the strategy see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyOutcome {
    /// Drafts of the winning chain accepted.
    pub accepted: usize,
    /// The token emitted after them (correction or bonus).
    pub next: TokenId,
    /// The winning chain: `None` for the main chain, `Some(b)` for
    /// `branches[b]`.
    pub branch: Option<usize>,
    /// Main-chain drafts that were verified (after cuts).
    pub verified: usize,
    /// Tokens in the target pass.
    pub pass_size: usize,
    /// Seconds the target pass took.
    pub seconds: f64,
    /// Whether the pass size is known to give logits bit-identical to
    /// one-token passes.
    pub exact: bool,
    /// What the pass cost in one-token passes by the shared cost model
    /// (`None` when it has no measurements).
    pub relative_cost: Option<f64>,
    /// The argmax of each side entry that asked for logits, in order.
    pub side_argmax: Vec<TokenId>,
}

impl VerifyOutcome {
    /// Tokens this step emitted: the accepted drafts and `next`.
    pub fn emitted(&self) -> usize {
        self.accepted + 1
    }
}

/// A source of drafts (see the module documentation).
///
/// Exactness at temperature > 0 asks two things of a drafter: each token is
/// drawn from the distribution recorded with it (after the same filters as
/// the target's, i.e. `sampling.distribution`), using `rng`; and whether it
/// drafts at position i may depend on the tokens before i, never on the token
/// it would draw there. Deterministic drafters record one-hot distributions
/// ([`Proposal::deterministic`]).
pub trait Drafter {
    /// The drafter's name in reports.
    fn name(&self) -> &'static str;

    /// KV sequences its proposals use in the target's pass (1: the main
    /// chain only). With more, the driver evaluates the pending token on all
    /// of them and keeps each holding the committed text between steps.
    fn sequences(&self) -> usize {
        1
    }

    /// True for a drafter that pays for every token it drafts and paces
    /// itself: its confidences are calibrated chances of acceptance and it
    /// stops mid-draft once one more token would not pay
    /// ([`DraftRequest::draft_all`] unset). A [`crate::Tuned`] wrapper in
    /// adaptive mode then decides only whether it drafts, and keeps its
    /// confidences; for other drafters it also picks the length and puts
    /// its own acceptance estimates by position in their place.
    fn paces_itself(&self) -> bool {
        false
    }

    /// True if its proposals are only exact at temperature 0 (branches
    /// checked against the argmax).
    fn greedy_only(&self) -> bool {
        false
    }

    /// Seconds this drafter expects to spend, before its next proposal,
    /// bringing itself up to `tokens` beyond what a usual step costs: a
    /// draft model's catch-up over a long stretch it did not see (another
    /// drafter's copy). 0 (the default) where drafting starts at once. Only
    /// asked at temperature 0, and a drafter answers 0 under sampling: a
    /// timed figure must not steer which drafter draws a seeded text.
    fn catch_up_seconds(&self, tokens: &[TokenId]) -> f64 {
        let _ = tokens;
        0.0
    }

    /// Called once per generation, after the target's prompt prefill, with the
    /// prompt (its last token is the target's pending token), the target's
    /// vocabulary size and the generation's sampling settings.
    fn start(
        &mut self,
        tokens: &[TokenId],
        target_n_vocab: usize,
        sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        let _ = (tokens, target_n_vocab, sampling);
        Ok(())
    }

    /// What proposing now is expected to bring, before anything is drafted
    /// (see [`Forecast`]). A drafter that answers [`Forecast::Draft`] and is
    /// then asked to [`Drafter::propose`] in the same step drafts what it
    /// forecast. The forecast may depend on the text and on earlier verdicts,
    /// never on tokens not yet drawn, so that choosing by it keeps sampling
    /// exact. The default: proposing is free.
    fn forecast(&mut self, req: &DraftRequest<'_>) -> Forecast {
        let _ = req;
        Forecast::Free
    }

    /// Fills `out` (empty on entry) with a proposal to follow `req.tokens`,
    /// or leaves it empty for a plain step.
    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError>;

    /// Called after every step, drafted or not: `tokens` now ends with the
    /// emitted tokens and the new pending one.
    fn on_verdict(&mut self, tokens: &[TokenId], outcome: &VerifyOutcome) -> Result<(), CoreError> {
        let _ = (tokens, outcome);
        Ok(())
    }

    /// Called once when a generation ends, however it ends: release
    /// per-generation resources (threads) and add what only the drafter
    /// knows to the statistics.
    fn finish(&mut self, stats: &mut RunStats) {
        let _ = stats;
    }
}

impl<T: Drafter + ?Sized> Drafter for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn sequences(&self) -> usize {
        (**self).sequences()
    }
    fn greedy_only(&self) -> bool {
        (**self).greedy_only()
    }
    fn paces_itself(&self) -> bool {
        (**self).paces_itself()
    }
    fn catch_up_seconds(&self, tokens: &[TokenId]) -> f64 {
        (**self).catch_up_seconds(tokens)
    }
    fn start(
        &mut self,
        tokens: &[TokenId],
        target_n_vocab: usize,
        sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        (**self).start(tokens, target_n_vocab, sampling)
    }
    fn forecast(&mut self, req: &DraftRequest<'_>) -> Forecast {
        (**self).forecast(req)
    }
    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        (**self).propose(req, rng, out)
    }
    fn on_verdict(&mut self, tokens: &[TokenId], outcome: &VerifyOutcome) -> Result<(), CoreError> {
        (**self).on_verdict(tokens, outcome)
    }
    fn finish(&mut self, stats: &mut RunStats) {
        (**self).finish(stats)
    }
}

/// The drafter of plain decoding: never proposes anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDrafter;

impl Drafter for NoDrafter {
    fn name(&self) -> &'static str {
        "baseline"
    }
    fn propose(
        &mut self,
        _req: &DraftRequest<'_>,
        _rng: &mut Rng,
        _out: &mut Proposal,
    ) -> Result<(), CoreError> {
        Ok(())
    }
}
