//! Pipelined speculative decoding: a draft thread drafts the next proposal
//! while the target verifies the current one.
//!
//! # The protocol
//!
//! The draft model lives on its own thread for the length of a generation
//! (moved there at `start`, handed back at `finish`); the target stays on the
//! caller's thread. They talk by request and reply over two bounded channels
//! of capacity one:
//!
//! - The target side sends one request per drafting step: the true text (as
//!   "your first `keep` tokens, then `tail`"), how many drafts it wants, and
//!   how far the draft thread may draft ahead. It then waits for the reply,
//!   and sends nothing else until the reply came.
//! - The draft thread brings its text in line with the true text, drafts
//!   until it has the drafts wanted (some may already be there), replies once,
//!   and then drafts on: a guess of the bonus token and the drafts after it,
//!   on the optimistic assumption that every draft will be accepted and the
//!   bonus will equal the guess. Between two draft steps it looks for the next
//!   request.
//!
//! Each channel holds at most one message and each side waits only for a
//! message the other always sends, so neither blocks forever. `finish` (and
//! `Drop`) send a stop request, drop both channel ends and join the thread,
//! which ends within one draft step. A failed draft pass is stored in a slot
//! the target side reads at its next step (a plain step may not wait for a
//! reply), and the thread ends.
//!
//! # Why the output is exactly the target's
//!
//! Only drafts made on the true text are verified: the draft thread keeps
//! `text = true text + chain of drafts`, and a request cuts the chain at the
//! first position where it differs from the true text (rolling the draft's KV
//! cache back there) before anything is proposed; a reply names the position
//! of its first draft, which must be the true text's length.
//!
//! The draft token at absolute position j is drawn from q_j with a random
//! stream of its own, [`draft_rng`]`(seed, j)`, never from the target's stream.
//! So a draft is a fixed function of (seed, true text before it, j): drafted
//! ahead or after the verdict, on any interleaving of the two threads, it is
//! the same token, and the pipelined output is token for token that of a
//! sequential draft-then-verify run with these draft streams. That run is
//! exact (Leviathan et al.): a draft at position j is verified at most once,
//! since the verdict fixes position j; the verdict of a proposal depends on
//! its drafts up to the first rejection only, so the streams of all later
//! positions have not influenced anything yet, and every proposal is drawn
//! from q afresh, independently of the target's random stream. Whether the
//! guess held (every draft accepted and the bonus, drawn by the target from
//! its own stream, equal to the guess) only decides whether the next proposal
//! is already drafted or drafted now, never what it is.
//!
//! # Same seed, same text
//!
//! The drafts do not depend on timing (above), nor do the draft lengths when
//! the costs are given ([`augur_core::Tuner`]). On real backends a pass's logits
//! can also round differently with its size, so which tokens share a draft
//! pass is fixed by the text too: each draft and each verdict's token alone,
//! the tokens of plain steps together, whether the draft thread had drafted
//! ahead or not.
//!
//! # What would break exactness
//!
//! Verifying a proposal drafted on a wrong prefix would not even break the
//! distribution (the verifier is exact for any q the drafts really came
//! from); what breaks it is letting the optimistic text into the output
//! (taking the guess for the bonus) or reusing draft randomness across
//! positions or seeds. The test-only controls do exactly those and fail.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use augur_core::model::RunLogits;
use augur_core::{
    Batch, CoreError, DraftRequest, Drafter, LogitRows, Model, Proposal, Rng, RunStats,
    SamplingParams, SparseDist, TokenId, VerifyOutcome,
};
use crossbeam::channel::{bounded, Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use serde::Serialize;

use crate::error::SpeculativeError;
use crate::model_drafter::top_probability;

/// Draft threads running now, in this process.
static LIVE_WORKERS: AtomicUsize = AtomicUsize::new(0);

/// How many draft threads of [`PipelinedDrafter`] are running in this
/// process. Every generation's thread is joined when the generation ends
/// (however it ends), so this is 0 whenever no generation is under way.
pub fn live_workers() -> usize {
    LIVE_WORKERS.load(Ordering::SeqCst)
}

/// Counts one live draft thread from its creation to its drop, which ends
/// the thread's closure (or a failed spawn).
struct LiveGuard;

impl LiveGuard {
    fn new() -> Self {
        LIVE_WORKERS.fetch_add(1, Ordering::SeqCst);
        LiveGuard
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        LIVE_WORKERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Salt separating the draft streams from every other use of the seed.
const DRAFT_STREAM: u64 = 0x6472_6166_745f_7271;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The random stream the pipelined strategy draws the draft token at
/// absolute text position `position` from, under sampling seed `seed`.
///
/// A function of (seed, position) only, so a draft does not depend on when
/// it was made, and apart from the target's stream (`Rng::new(seed)`).
pub fn draft_rng(seed: u64, position: usize) -> Rng {
    Rng::new(splitmix64(
        splitmix64(seed ^ DRAFT_STREAM).wrapping_add(position as u64),
    ))
}

/// What the pipeline did in one generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PipelineStats {
    /// Seconds the draft thread spent drafting (its passes and sampling; the
    /// prompt prefill excluded).
    pub draft_seconds: f64,
    /// Draft passes the draft thread made (the prompt prefill excluded).
    pub draft_passes: u64,
    /// Of `draft_seconds`, the time spent on drafts that were thrown away:
    /// drafted on a guess that did not hold, or past the end of the text.
    pub wasted_seconds: f64,
    /// Drafts thrown away.
    pub wasted_drafts: u64,
    /// Verdicts that found a guess of the bonus token already drafted.
    pub guesses_tried: u64,
    /// Of those, how many guesses held (every draft accepted and the bonus
    /// equal to the guess), so the drafting done ahead was kept.
    pub guesses_held: u64,
    /// Drafts already made when the target side asked for them.
    pub drafts_ready: u64,
    /// Seconds the target side waited for proposals (the part of drafting the
    /// pipeline did not hide).
    pub wait_seconds: f64,
}

impl PipelineStats {
    /// guesses_held / guesses_tried (0 when none was tried).
    pub fn hold_rate(&self) -> f64 {
        if self.guesses_tried == 0 {
            0.0
        } else {
            self.guesses_held as f64 / self.guesses_tried as f64
        }
    }
}

/// Test-only wrong variants (negative controls of the exactness tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// Correct.
    None,
    /// Takes the draft's guess for the bonus token whenever every draft was
    /// accepted, without checking that the guess held.
    TrustGuess,
    /// Draws drafts from a stream of the position alone, the same for every
    /// seed.
    SeedlessDraws,
}

/// The draft thread's cumulative counters, copied into every reply.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    draft_seconds: f64,
    draft_passes: u64,
    /// Draft steps of a one-token pass, for the tuner's draft cost.
    step_seconds: f64,
    steps: u64,
    wasted_seconds: f64,
    wasted_drafts: u64,
    guesses_tried: u64,
    guesses_held: u64,
    drafts_ready: u64,
}

enum Request {
    /// The true text is the draft thread's first `keep` tokens followed by
    /// `tail`; propose up to `want` drafts after it, then draft ahead until
    /// the text (true text and drafts) has `horizon` tokens.
    Draft {
        keep: usize,
        tail: Vec<TokenId>,
        want: usize,
        horizon: usize,
    },
    /// The generation is over; the true text (for the statistics) as above.
    Stop { keep: usize, tail: Vec<TokenId> },
}

struct Reply {
    /// Absolute position of the first draft (the true text's length).
    start: usize,
    tokens: Vec<TokenId>,
    q: Vec<SparseDist>,
    /// The draft after the proposal (the guess of its bonus token), if made.
    #[cfg(test)]
    guess: Option<TokenId>,
    totals: Totals,
}

/// What the draft thread leaves for the target side outside the
/// request-reply cycle.
#[derive(Default)]
struct Shared {
    /// The draft thread's failure; the thread ends after storing it.
    error: Mutex<Option<CoreError>>,
}

struct Drafted {
    /// The distribution the draft was drawn from; moved into the reply that
    /// proposes it (a large vocabulary makes copies costly).
    q: Option<SparseDist>,
    seconds: f64,
}

/// The draft thread's state.
struct Worker<D: Model> {
    model: D,
    sampling: SamplingParams,
    seed: u64,
    p_min: f64,
    n_ctx: usize,
    batch: Batch,
    logits: LogitRows,
    /// The true text as last synchronized, then the chain of drafts on it.
    text: Vec<TokenId>,
    /// `text[..n_true]` is the true text.
    n_true: usize,
    /// One entry per draft in the chain, for positions `n_true..text.len()`.
    chain: VecDeque<Drafted>,
    /// The draft's KV cache holds `text[..n_eval]`.
    n_eval: usize,
    /// Positions where a draft pass must end (see [`Worker::catch_up`]).
    boundaries: BTreeSet<usize>,
    /// Logits row 0 is the draft's prediction for position `n_eval`.
    fresh: bool,
    /// The chain cannot grow (an end-of-generation draft, p-min, context end).
    stopped: bool,
    /// Drafting ahead goes on until the text has this many tokens.
    horizon: usize,
    /// Position of the guess after the last proposal handed out.
    guess_at: Option<usize>,
    totals: Totals,
    /// Whether the prompt has been evaluated (with the first request).
    prompt_evaluated: bool,
    #[cfg(test)]
    flaw: Flaw,
}

impl<D: Model> Worker<D> {
    /// A draft thread's state for a generation whose true text is `text`
    /// (its last token pending); the draft's cache must be empty.
    fn new(model: D, sampling: &SamplingParams, p_min: f64, text: &[TokenId]) -> Self {
        let n_vocab = model.n_vocab();
        Self {
            n_ctx: model.n_ctx(),
            model,
            sampling: sampling.clone(),
            seed: sampling.seed,
            p_min,
            batch: Batch::new(),
            logits: LogitRows::new(n_vocab),
            text: text.to_vec(),
            n_true: text.len(),
            chain: VecDeque::new(),
            n_eval: 0,
            boundaries: BTreeSet::new(),
            fresh: false,
            stopped: false,
            horizon: 0,
            guess_at: None,
            totals: Totals::default(),
            prompt_evaluated: false,
            #[cfg(test)]
            flaw: Flaw::None,
        }
    }

    fn run(
        mut self,
        requests: Receiver<Request>,
        replies: Sender<Reply>,
        shared: &Shared,
    ) -> (D, Totals) {
        // The prompt is evaluated with the first draft request, not before:
        // while the target decodes plainly (drafting does not pay, as on a
        // compute-bound CPU) the draft model then takes no cores from it.
        loop {
            let request = if self.can_draft_ahead() {
                match requests.try_recv() {
                    Ok(r) => Some(r),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match requests.recv() {
                    Ok(r) => Some(r),
                    Err(_) => break,
                }
            };
            let result = match request {
                None => self.draft_one(),
                Some(Request::Draft {
                    keep,
                    tail,
                    want,
                    horizon,
                }) => match self
                    .evaluate_prompt()
                    .and_then(|()| self.serve(keep, &tail, want, horizon))
                {
                    Ok(reply) => {
                        if replies.send(reply).is_err() {
                            // The target side is gone: the generation ended.
                            break;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Some(Request::Stop { keep, tail }) => {
                    self.account_final(keep, &tail);
                    break;
                }
            };
            if let Err(e) = result {
                *shared.error.lock() = Some(e);
                break;
            }
        }
        self.finish()
    }

    /// Evaluates the prompt (everything through the pending token, so the
    /// first draft is one sample away) on the first call. Not counted as
    /// drafting.
    fn evaluate_prompt(&mut self) -> Result<(), CoreError> {
        if !self.prompt_evaluated {
            self.catch_up()?;
            self.prompt_evaluated = true;
        }
        Ok(())
    }

    /// Counts the drafts never used as wasted and hands back the model.
    fn finish(mut self) -> (D, Totals) {
        for d in self.chain.drain(..) {
            self.totals.wasted_seconds += d.seconds;
            self.totals.wasted_drafts += 1;
        }
        (self.model, self.totals)
    }

    fn can_draft_ahead(&self) -> bool {
        !self.stopped && self.text.len() < self.horizon
    }

    /// The length of the common prefix of `text` and `text[..keep] + tail`
    /// (at least `keep`).
    fn common_prefix(&self, keep: usize, tail: &[TokenId]) -> usize {
        keep + tail
            .iter()
            .zip(self.text.get(keep..).unwrap_or(&[]))
            .take_while(|(a, b)| a == b)
            .count()
    }

    fn check_keep(&self, keep: usize) -> Result<(), CoreError> {
        if keep > self.text.len() {
            return Err(internal(format!(
                "the target side keeps {keep} tokens of a draft text of {}",
                self.text.len()
            )));
        }
        Ok(())
    }

    /// Brings the text in line with the true text `text[..keep] + tail`:
    /// drafts that agree with it are kept (they continue the true text), the
    /// chain is cut at the first difference (the draft's cache rolled back
    /// there), and the rest of the true text appended.
    ///
    /// `keep` is where the last verdict put its token (the correction or the
    /// bonus), `tail[0]`; later tail tokens came from plain steps. Drafts are
    /// kept through `tail[0]` only (a guess that held), never into the plain
    /// steps' tokens: whether the draft thread had drafted that far is a
    /// matter of timing, and the draft's passes must not be (see
    /// [`Worker::catch_up`]).
    fn sync(&mut self, keep: usize, tail: &[TokenId]) -> Result<(), CoreError> {
        self.check_keep(keep)?;
        let matched = self.common_prefix(keep, tail);
        let cp = matched.min(keep + 1);
        let true_len = keep + tail.len();
        if true_len < self.n_true {
            return Err(internal(format!(
                "the true text shrank from {} to {true_len} tokens",
                self.n_true
            )));
        }
        if let Some(g) = self.guess_at.take() {
            if self.text.len() > g {
                self.totals.guesses_tried += 1;
                if cp > g {
                    self.totals.guesses_held += 1;
                }
            }
        }
        let old_len = self.text.len();
        let mut cut = false;
        if cp < true_len && cp < old_len {
            if cp < self.n_true {
                return Err(internal(format!(
                    "the true text changed at position {cp}, before the {} tokens already \
                     known to be true",
                    self.n_true
                )));
            }
            for d in self.chain.drain(cp - self.n_true..) {
                self.totals.wasted_seconds += d.seconds;
                self.totals.wasted_drafts += 1;
            }
            self.text.truncate(cp);
            if self.n_eval > cp {
                self.model.remove_from(0, cp)?;
                self.n_eval = cp;
                self.fresh = false;
            }
            self.boundaries.split_off(&(cp + 1));
            cut = true;
        }
        if true_len > self.text.len() {
            let have = self.text.len();
            self.text.extend_from_slice(&tail[have - keep..]);
        }
        if !tail.is_empty() {
            // The verdict's token alone, then the plain steps' tokens.
            self.boundaries.extend([keep, keep + 1, true_len]);
        }
        if cut || self.text.len() != old_len {
            // A new end: whatever stopped the old chain no longer applies.
            self.stopped = false;
        }
        // Drafts now part of the true text leave the chain.
        let now_true = true_len.saturating_sub(self.n_true).min(self.chain.len());
        self.chain.drain(..now_true);
        self.n_true = true_len;
        Ok(())
    }

    /// Handles a drafting request: sync, draft up to `want`, reply.
    fn serve(
        &mut self,
        keep: usize,
        tail: &[TokenId],
        want: usize,
        horizon: usize,
    ) -> Result<Reply, CoreError> {
        self.sync(keep, tail)?;
        self.horizon = horizon;
        let ready = self.text.len() - self.n_true;
        self.totals.drafts_ready += ready.min(want) as u64;
        #[allow(unused_mut)]
        let mut need = want;
        #[cfg(test)]
        if self.flaw == Flaw::TrustGuess {
            need += 1;
        }
        while self.text.len() < self.n_true + need && !self.stopped {
            self.draft_one()?;
        }
        let m = want.min(self.text.len() - self.n_true);
        let start = self.n_true;
        self.guess_at = Some(start + m);
        let mut q = Vec::with_capacity(m);
        for (d, &token) in self.chain.iter_mut().zip(&self.text[start..start + m]) {
            // A verdict fixes the first position of its proposal, so a draft
            // is proposed again only if the target side dropped its proposal
            // unverified, which it does at temperature 0 only (draft-min),
            // where q is one-hot.
            match d.q.take() {
                Some(dist) => q.push(dist),
                None if self.sampling.is_greedy() => q.push(SparseDist::one_hot(token)),
                None => {
                    return Err(internal(format!(
                        "the draft at position {} was proposed twice",
                        start + q.len()
                    )))
                }
            }
        }
        Ok(Reply {
            start,
            tokens: self.text[start..start + m].to_vec(),
            q,
            #[cfg(test)]
            guess: if m == want {
                self.text.get(start + m).copied()
            } else {
                None
            },
            totals: self.totals,
        })
    }

    /// Statistics of the end: drafts that agree with the final text were
    /// used; the rest are counted as wasted when the thread ends.
    fn account_final(&mut self, keep: usize, tail: &[TokenId]) {
        if keep > self.text.len() {
            return;
        }
        let cp = self.common_prefix(keep, tail);
        let used = cp.saturating_sub(self.n_true).min(self.chain.len());
        self.chain.drain(..used);
    }

    /// Evaluates whatever of the text the draft's cache lacks, so the logits
    /// predict position `text.len()`. Returns the passes and tokens
    /// evaluated.
    ///
    /// Which tokens share a pass is fixed by the text alone, never by when
    /// the work was done: each draft alone (it is drafted, then evaluated
    /// alone, whether as the next draft's prefix or in a catch-up), each
    /// verdict's token alone, the tokens of the plain steps before a request
    /// together, the prompt together. On real backends a pass's size can
    /// change the logits' rounding, so this keeps the drafts, and the text
    /// at temperature > 0, independent of the threads' timing.
    fn catch_up(&mut self) -> Result<(u64, usize), CoreError> {
        if self.n_eval == self.text.len() {
            if self.fresh {
                return Ok((0, 0));
            }
            // The logits are of an older pass: evaluate the last token again.
            let Some(last) = self.n_eval.checked_sub(1) else {
                return Err(internal("the draft text is empty".into()));
            };
            self.model.remove_from(0, last)?;
            self.n_eval = last;
        }
        let (mut passes, mut tokens) = (0, 0);
        while self.n_eval < self.text.len() {
            let end = self
                .boundaries
                .range(self.n_eval + 1..)
                .next()
                .map_or(self.text.len(), |&b| b.min(self.text.len()));
            let logits = if end == self.text.len() {
                RunLogits::Last
            } else {
                RunLogits::None
            };
            self.batch.clear();
            self.batch
                .add_run(&self.text[self.n_eval..end], self.n_eval, logits);
            self.fresh = false;
            self.model.eval(&self.batch, &mut self.logits)?;
            passes += 1;
            tokens += end - self.n_eval;
            self.n_eval = end;
        }
        self.boundaries = self.boundaries.split_off(&(self.n_eval + 1));
        self.fresh = true;
        Ok((passes, tokens))
    }

    /// Drafts the token at position `text.len()`, or marks the chain stopped.
    fn draft_one(&mut self) -> Result<(), CoreError> {
        let pos = self.text.len();
        // The draft must evaluate position pos - 1 to predict pos.
        if pos > self.n_ctx {
            self.stopped = true;
            return Ok(());
        }
        let t0 = Instant::now();
        let evaluated = self.catch_up()?;
        let row = self.logits.row(0);
        // Decided from the text before pos only, never from the token drawn
        // there: exactness allows that.
        if self.p_min > 0.0 && top_probability(row) < self.p_min {
            self.stopped = true;
            self.count_work(t0.elapsed().as_secs_f64(), evaluated);
            return Ok(());
        }
        let q = self.sampling.distribution(row);
        let x = if q.support_len() == 1 {
            q.mode()
        } else {
            #[allow(unused_mut)]
            let mut seed = self.seed;
            #[cfg(test)]
            if self.flaw == Flaw::SeedlessDraws {
                seed = 0;
            }
            q.sample(&mut draft_rng(seed, pos))
        };
        let seconds = t0.elapsed().as_secs_f64();
        self.count_work(seconds, evaluated);
        self.text.push(x);
        // Evaluated alone, whenever that happens.
        self.boundaries.extend([pos, pos + 1]);
        self.chain.push_back(Drafted {
            q: Some(q),
            seconds,
        });
        if self.model.is_eog(x) {
            self.stopped = true;
        }
        Ok(())
    }

    fn count_work(&mut self, seconds: f64, (passes, tokens): (u64, usize)) {
        self.totals.draft_seconds += seconds;
        self.totals.draft_passes += passes;
        if tokens == 1 {
            self.totals.step_seconds += seconds;
            self.totals.steps += 1;
        }
    }
}

fn internal(reason: String) -> CoreError {
    CoreError::Internal {
        strategy: crate::NAME,
        reason,
    }
}

/// The target side's handle on a running draft thread.
struct Handle<D> {
    requests: Sender<Request>,
    replies: Receiver<Reply>,
    shared: Arc<Shared>,
    thread: JoinHandle<(D, Totals)>,
}

/// A draft model drafting ahead on a thread of its own: while the target
/// verifies proposal k, the thread already drafts proposal k + 1 (see the
/// module documentation for the protocol and why the output stays exact).
/// It is a [`Drafter`] like any other: the draft-then-verify driver, the
/// verify step and the cost model are the ones every strategy uses; only
/// where the drafts are made differs.
///
/// The same seed gives the same text whatever the threads' timing; how many
/// tokens are asked for is the [`augur_core::Tuned`] wrapper's choice (with
/// the pipelined timing, [`augur_core::cost::Timing::Pipelined`]).
pub struct PipelinedDrafter<D: Model + Send + 'static> {
    /// The draft model between generations (on the draft thread during one).
    draft: Option<D>,
    p_min: f64,
    worker: Option<Handle<D>>,
    /// The draft thread's text agrees with the true text on this many tokens.
    synced: usize,
    /// The true text after `synced`, as of the end of the last step.
    unsynced: Vec<TokenId>,
    /// The step just made asked the draft thread for a proposal.
    asked: bool,
    /// The draft thread's counters as of its last reply.
    seen: Totals,
    stats: PipelineStats,
    #[cfg(test)]
    pub(crate) flaw: Flaw,
    #[cfg(test)]
    pub(crate) guess: Option<TokenId>,
}

impl<D: Model + Send + 'static> fmt::Debug for PipelinedDrafter<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelinedDrafter")
            .field("running", &self.worker.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<D: Model + Send + 'static> PipelinedDrafter<D> {
    /// Drafting ahead with `draft`; drafting stops where the draft's top-1
    /// probability falls below `p_min` (0 disables).
    pub fn new(draft: D, p_min: f64) -> Self {
        Self {
            draft: Some(draft),
            p_min,
            worker: None,
            synced: 0,
            unsynced: Vec::new(),
            asked: false,
            seen: Totals::default(),
            stats: PipelineStats::default(),
            #[cfg(test)]
            flaw: Flaw::None,
            #[cfg(test)]
            guess: None,
        }
    }

    /// The draft model; `None` during a generation (it is on the draft
    /// thread) or if the draft thread panicked.
    pub fn draft(&self) -> Option<&D> {
        self.draft.as_ref()
    }

    /// Gives the draft model back (stopping a running draft thread first).
    pub fn into_draft(mut self) -> Option<D> {
        self.stop_worker();
        self.draft.take()
    }

    /// What the pipeline did in the last (or current) generation.
    pub fn pipeline_stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// True while a draft thread is running (during a generation).
    pub fn worker_running(&self) -> bool {
        self.worker.is_some()
    }

    /// Stops and joins the draft thread, keeping its model and counters.
    fn stop_worker(&mut self) {
        let Some(w) = self.worker.take() else {
            return;
        };
        // The request channel is empty here (a request is only ever
        // outstanding inside `propose`), so this does not block; if the
        // thread already ended, it fails, which is fine.
        let _ = w.requests.try_send(Request::Stop {
            keep: self.synced,
            tail: std::mem::take(&mut self.unsynced),
        });
        drop(w.requests);
        drop(w.replies);
        if let Ok((model, totals)) = w.thread.join() {
            self.draft = Some(model);
            self.absorb(totals);
        }
        // A panicked thread lost the model; the next start reports it.
    }

    /// Takes the draft thread's final counters into the statistics.
    fn absorb(&mut self, t: Totals) {
        let s = &mut self.stats;
        s.draft_seconds = t.draft_seconds;
        s.draft_passes = t.draft_passes;
        s.wasted_seconds = t.wasted_seconds;
        s.wasted_drafts = t.wasted_drafts;
        s.guesses_tried = t.guesses_tried;
        s.guesses_held = t.guesses_held;
        s.drafts_ready = t.drafts_ready;
    }

    /// The draft thread's failure, after joining it.
    fn worker_failure(&mut self) -> CoreError {
        let shared = self.worker.as_ref().map(|w| Arc::clone(&w.shared));
        self.stop_worker();
        shared
            .and_then(|s| s.error.lock().take())
            .unwrap_or_else(|| internal("the draft thread ended unexpectedly".into()))
    }

    fn exchange(&mut self, request: Request) -> Result<Reply, CoreError> {
        let Some(w) = &self.worker else {
            return Err(internal(
                "no draft thread: the generation was not started".into(),
            ));
        };
        if w.requests.send(request).is_err() {
            return Err(self.worker_failure());
        }
        match w.replies.recv() {
            Ok(reply) => Ok(reply),
            Err(_) => Err(self.worker_failure()),
        }
    }

    fn check_draft(model: &D, tokens: &[TokenId], n_vocab: usize) -> Result<(), SpeculativeError> {
        let (draft, target) = (model.n_vocab(), n_vocab);
        if draft != target {
            return Err(SpeculativeError::VocabMismatch { draft, target });
        }
        if !model.supports_rollback() {
            return Err(SpeculativeError::DraftRollbackUnsupported);
        }
        if tokens.len() > model.n_ctx() {
            return Err(SpeculativeError::DraftContextTooSmall {
                needed: tokens.len(),
                n_ctx: model.n_ctx(),
            });
        }
        Ok(())
    }
}

impl<D: Model + Send + 'static> Drafter for PipelinedDrafter<D> {
    fn name(&self) -> &'static str {
        "draft-model"
    }

    fn start(
        &mut self,
        tokens: &[TokenId],
        target_n_vocab: usize,
        sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        // A thread left over from a generation that did not finish.
        self.stop_worker();
        let Some(mut model) = self.draft.take() else {
            return Err(internal(
                "the draft model was lost when its thread panicked".into(),
            ));
        };
        if let Err(e) = Self::check_draft(&model, tokens, target_n_vocab) {
            self.draft = Some(model);
            return Err(e.into());
        }
        if let Err(e) = model.clear() {
            self.draft = Some(model);
            return Err(e.into());
        }
        self.stats = PipelineStats::default();
        self.seen = Totals::default();
        self.synced = tokens.len();
        self.unsynced.clear();
        self.asked = false;

        #[allow(unused_mut)]
        let mut worker = Worker::new(model, sampling, self.p_min, tokens);
        #[cfg(test)]
        {
            worker.flaw = self.flaw;
        }
        let (request_tx, request_rx) = bounded(1);
        let (reply_tx, reply_rx) = bounded(1);
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let guard = LiveGuard::new();
        let thread = std::thread::Builder::new()
            .name("augur-draft".into())
            .spawn(move || {
                let _guard = guard;
                worker.run(request_rx, reply_tx, &thread_shared)
            })
            .map_err(|e| internal(format!("cannot start the draft thread: {e}")))?;
        self.worker = Some(Handle {
            requests: request_tx,
            replies: reply_rx,
            shared,
            thread,
        });
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        let failed = self
            .worker
            .as_ref()
            .is_some_and(|w| w.shared.error.lock().is_some());
        if failed {
            return Err(self.worker_failure());
        }
        let gamma = req.max;
        self.asked = gamma > 0;
        if gamma == 0 {
            return Ok(());
        }
        let n = req.tokens.len();
        // The proposal, the guess after it and a next proposal as long;
        // nothing past the last token the generation may emit or the context.
        let horizon = (n + 2 * gamma + 1)
            .min((n - 1).saturating_add(req.remaining))
            .min(n + req.room);
        let tail = std::mem::take(&mut self.unsynced);
        let t0 = Instant::now();
        let reply = self.exchange(Request::Draft {
            keep: self.synced,
            tail,
            want: gamma,
            horizon,
        })?;
        self.stats.wait_seconds += t0.elapsed().as_secs_f64();
        if reply.start != n || reply.tokens.len() > gamma || reply.q.len() != reply.tokens.len() {
            return Err(internal(format!(
                "the draft thread proposed {} drafts at position {} for a text of {n} tokens",
                reply.tokens.len(),
                reply.start
            )));
        }
        let t = reply.totals;
        let steps = t.steps - self.seen.steps;
        out.draft_passes = t.draft_passes - self.seen.draft_passes;
        // The draft thread's own time per draft step, not the wait: that is
        // what the cost model's draft step means.
        out.draft_seconds = if steps > 0 {
            (t.step_seconds - self.seen.step_seconds) / steps as f64 * out.draft_passes as f64
        } else {
            0.0
        };
        self.seen = t;
        self.absorb(t);
        #[cfg(test)]
        {
            self.guess = reply.guess;
        }
        for (x, q) in reply.tokens.into_iter().zip(reply.q) {
            out.push(x, q, 1.0);
        }
        Ok(())
    }

    fn on_verdict(&mut self, tokens: &[TokenId], outcome: &VerifyOutcome) -> Result<(), CoreError> {
        if std::mem::take(&mut self.asked) {
            // The draft thread's text was the true text through the proposal.
            let n = tokens.len() - outcome.emitted();
            self.synced = n + outcome.accepted;
            self.unsynced.clear();
        }
        let have = self.synced + self.unsynced.len();
        self.unsynced
            .extend_from_slice(&tokens[have.min(tokens.len())..]);
        Ok(())
    }

    fn finish(&mut self, stats: &mut RunStats) {
        self.stop_worker();
        // The draft thread's figures are complete only now that it has ended.
        let p = &self.stats;
        stats.draft_seconds = p.draft_seconds;
        stats.draft_passes = p.draft_passes;
        stats.draft_wait_seconds = p.wait_seconds;
        stats.wasted_draft_seconds = p.wasted_seconds;
        stats.guesses_tried = p.guesses_tried;
        stats.guesses_held = p.guesses_held;
    }
}

impl<D: Model + Send + 'static> Drop for PipelinedDrafter<D> {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

#[cfg(test)]
mod tests;
