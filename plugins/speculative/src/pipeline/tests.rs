#![allow(clippy::unwrap_used)]

use super::*;
use crate::{PipelinedSpeculative, SpeculativeConfig};
use augur_baseline::Baseline;
use augur_core::chisq::ChiSquare;
use augur_core::testing::{assert_greedy_matches, generate_greedy, unfiltered, InMemoryModel};

/// The models of the integration tests, so that the negative controls here
/// run on exactly the models of the tests they back.
#[path = "../../tests/common/models.rs"]
mod models;

#[test]
fn draft_streams_depend_on_seed_and_position_only() {
    let a = draft_rng(7, 3).next_u64();
    assert_eq!(a, draft_rng(7, 3).next_u64());
    assert_ne!(a, draft_rng(8, 3).next_u64());
    assert_ne!(a, draft_rng(7, 4).next_u64());
    assert_ne!(a, Rng::new(7).next_u64(), "apart from the target's stream");
    let n = 20_000;
    let mean = (0..n).map(|p| draft_rng(1, p).uniform()).sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.01, "{mean}");
}

fn model() -> InMemoryModel {
    InMemoryModel::random(9, 3).with_history(4)
}

fn sampled() -> SamplingParams {
    SamplingParams {
        seed: 11,
        ..unfiltered(1.0)
    }
}

/// A worker after its prompt prefill.
fn worker(text: &[TokenId], sampling: &SamplingParams) -> Worker<InMemoryModel> {
    let mut w = Worker::new(model(), sampling, 0.0, text);
    w.catch_up().unwrap();
    w
}

/// The draft's KV cache holds exactly the evaluated part of the text, and
/// the chain covers the drafts.
fn assert_consistent(w: &Worker<InMemoryModel>) {
    assert_eq!(w.model.sequence(0), w.text[..w.n_eval]);
    assert_eq!(w.chain.len(), w.text.len() - w.n_true);
}

fn draft_ahead(w: &mut Worker<InMemoryModel>) {
    while w.can_draft_ahead() {
        w.draft_one().unwrap();
    }
}

#[test]
fn a_guess_that_holds_keeps_the_drafts_made_ahead() {
    for sampling in [SamplingParams::greedy(), sampled()] {
        let mut w = worker(&[1, 2, 3], &sampling);
        let r = w.serve(3, &[], 2, 8).unwrap();
        assert_eq!((r.start, r.tokens.len(), r.q.len()), (3, 2, 2));
        draft_ahead(&mut w);
        assert_eq!(w.text.len(), 8);
        assert_consistent(&w);
        let chain = w.text.clone();
        // Both drafts accepted, and the bonus equals the guess.
        let r = w.serve(5, &[chain[5]], 2, 11).unwrap();
        assert_eq!(r.start, 6);
        assert_eq!(r.tokens, chain[6..8]);
        let t = w.totals;
        assert_eq!((t.guesses_tried, t.guesses_held), (1, 1));
        assert_eq!((t.wasted_drafts, t.drafts_ready), (0, 2));
        assert_consistent(&w);
    }
}

#[test]
fn a_failed_guess_cuts_the_chain_and_rolls_the_cache_back() {
    for sampling in [SamplingParams::greedy(), sampled()] {
        let mut w = worker(&[1, 2, 3], &sampling);
        w.serve(3, &[], 2, 8).unwrap();
        draft_ahead(&mut w);
        let chain = w.text.clone();
        let bonus = (chain[5] + 1) % 9;
        let r = w.serve(5, &[bonus], 2, 11).unwrap();
        let mut truth = chain[..5].to_vec();
        truth.push(bonus);
        assert_eq!(w.text[..6], truth);
        assert_eq!(r.start, 6);
        let t = w.totals;
        assert_eq!((t.guesses_tried, t.guesses_held), (1, 0));
        // The guess and the two drafts after it.
        assert_eq!(t.wasted_drafts, 3);
        assert!(t.wasted_seconds > 0.0 && t.wasted_seconds <= t.draft_seconds);
        assert_consistent(&w);
        // The new proposal is what a fresh draft thread drafts on the true
        // text, whatever was drafted before.
        let mut fresh = worker(&truth, &sampling);
        assert_eq!(fresh.serve(6, &[], 2, 9).unwrap().tokens, r.tokens);
    }
}

#[test]
fn a_rejection_inside_the_proposal_cuts_there() {
    let mut w = worker(&[4, 5], &sampled());
    w.serve(2, &[], 3, 9).unwrap();
    draft_ahead(&mut w);
    let chain = w.text.clone();
    // One draft accepted, the second replaced by a correction.
    let correction = (chain[3] + 4) % 9;
    let r = w.serve(3, &[correction], 3, 11).unwrap();
    assert_eq!(w.text[..4], [chain[0], chain[1], chain[2], correction]);
    assert_eq!(r.start, 4);
    assert_eq!(w.totals.wasted_drafts, (chain.len() - 3) as u64);
    assert_eq!(w.totals.guesses_tried, 1);
    assert_eq!(w.totals.guesses_held, 0);
    assert_consistent(&w);
}

#[test]
fn drafts_made_ahead_equal_drafts_made_on_demand() {
    // Timing decides only when a draft is made: the tokens and their q are
    // the same.
    let mut ahead = worker(&[1, 2, 3], &sampled());
    let first = ahead.serve(3, &[], 1, 9).unwrap();
    draft_ahead(&mut ahead);
    let chain = ahead.text.clone();
    // The verdict: the draft accepted, the bonus equal to the guess.
    let rest = ahead.serve(4, &[chain[4]], 4, 9).unwrap();
    let mut demand = worker(&[1, 2, 3], &sampled());
    let r = demand.serve(3, &[], 6, 9).unwrap();
    assert_eq!(chain[3..], r.tokens[..]);
    assert_eq!(first.q[0], r.q[0]);
    assert_eq!(rest.tokens, r.tokens[2..]);
    assert_eq!(rest.q, r.q[2..]);
    // Some draft was not the most likely token: the stream was used.
    assert!(r.q.iter().any(|q| q.support_len() > 1));
}

#[test]
fn plain_steps_are_caught_up_together() {
    let mut w = worker(&[1, 2, 3], &SamplingParams::greedy());
    w.serve(3, &[], 1, 4).unwrap();
    let passes = w.model.passes;
    // The draft was rejected, then three plain steps: a tail of four tokens.
    let tail = [(w.text[3] + 1) % 9, 0, 5, 7];
    let r = w.serve(3, &tail, 2, 12).unwrap();
    assert_eq!(r.start, 7);
    assert_eq!(r.tokens.len(), 2);
    // The correction alone, the plain steps' tokens in one pass, one more
    // pass for the second draft.
    assert_eq!(w.model.passes, passes + 3);
    assert_eq!(w.model.batch_sizes[passes..], [1, 3, 1]);
    assert_consistent(&w);
}

#[test]
fn the_draft_context_ends_the_chain() {
    let mut w = Worker::new(
        model().with_n_ctx(6),
        &SamplingParams::greedy(),
        0.0,
        &[1, 2, 3],
    );
    w.catch_up().unwrap();
    let r = w.serve(3, &[], 8, 20).unwrap();
    // Positions 3, 4 and 5 evaluated, so drafts up to position 6.
    assert_eq!(r.tokens.len(), 4);
    assert!(w.stopped && !w.can_draft_ahead());
    assert_eq!(w.model.cache_len(), 6);
}

#[test]
fn bookkeeping_errors_are_reported() {
    let mut w = worker(&[1, 2, 3], &SamplingParams::greedy());
    assert!(w.serve(9, &[], 1, 12).is_err());
    let mut w = worker(&[1, 2, 3], &SamplingParams::greedy());
    w.serve(3, &[], 1, 4).unwrap();
    w.serve(4, &[1], 1, 6).unwrap();
    // A true text that contradicts what was already true.
    assert!(w.serve(2, &[0, 0, 0], 1, 6).is_err());
    // A draft proposed again: only a greedy step that dropped its proposal
    // does that, and greedy q's are one-hot.
    let mut w = worker(&[1, 2, 3], &SamplingParams::greedy());
    let a = w.serve(3, &[], 2, 6).unwrap();
    let b = w.serve(3, &[], 2, 6).unwrap();
    assert_eq!((&a.tokens, &a.q), (&b.tokens, &b.q));
    let mut w = worker(&[1, 2, 3], &sampled());
    w.serve(3, &[], 2, 6).unwrap();
    assert!(w.serve(3, &[], 2, 6).is_err());
}

// Negative controls: the harnesses of the greedy and distribution tests
// must catch a wrong pipeline.

/// A fifth of the distribution test's N: a smaller sample has less power, so
/// a flaw this catches, the full test catches too (the flaws' statistics are
/// hundreds of times the critical value).
const N: u64 = 20_000;

/// The first distribution test of `tests/pipeline_distribution.rs` (same
/// models and seeds, one draft per step, 4-token continuations, temperature
/// 1), which the correct pipeline passes, on a flawed pipeline (without the
/// delays: the flaws do not depend on timing).
fn flawed_distribution(flaw: Flaw) -> ChiSquare {
    let mut s = PipelinedSpeculative::new(models::near_draft(), SpeculativeConfig::fixed(1))
        .with_flaw(flaw);
    let r = models::continuations(4, N, 0, unfiltered(1.0)).run(&mut models::target(), &mut s);
    eprintln!("{flaw:?}: {r:?}");
    r
}

#[test]
fn taking_the_guess_for_the_bonus_fails_the_distribution_test() {
    let r = flawed_distribution(Flaw::TrustGuess);
    assert!(r.p_value < 1e-3, "{r:?}");
}

#[test]
fn draft_randomness_without_the_seed_fails_the_distribution_test() {
    let r = flawed_distribution(Flaw::SeedlessDraws);
    assert!(r.p_value < 1e-3, "{r:?}");
}

#[test]
fn taking_the_guess_for_the_bonus_fails_the_greedy_test() {
    let mut differ = 0;
    for seed in 0..8 {
        let (target, draft) = models::Pairs::Similar.make(seed);
        let prompt = [1, 2, 3];
        let mut s = PipelinedSpeculative::new(draft.clone(), SpeculativeConfig::fixed(3));
        let (want, _) = assert_greedy_matches(
            &target,
            &mut Baseline,
            &mut s,
            &prompt,
            40,
            &format!("seed {seed}"),
        );
        let mut s = PipelinedSpeculative::new(draft, SpeculativeConfig::fixed(3))
            .with_flaw(Flaw::TrustGuess);
        let g = generate_greedy(&mut target.clone(), &mut s, &prompt, 40);
        differ += usize::from(g.tokens != want.tokens);
    }
    assert!(differ > 0, "the flawed pipeline went unnoticed");
}

/// A model that records, for each cached position, the pass (first
/// position, size) that computed it.
struct Recorder {
    inner: InMemoryModel,
    provenance: Vec<(usize, usize)>,
}

impl Model for Recorder {
    fn n_vocab(&self) -> usize {
        self.inner.n_vocab()
    }
    fn n_ctx(&self) -> usize {
        self.inner.n_ctx()
    }
    fn is_eog(&self, token: TokenId) -> bool {
        self.inner.is_eog(token)
    }
    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), augur_core::ModelError> {
        let first = batch.position(0);
        for i in 0..batch.len() {
            assert_eq!(batch.position(i), self.provenance.len());
            self.provenance.push((first, batch.len()));
        }
        self.inner.eval(batch, out)
    }
    fn remove_from(
        &mut self,
        seq: augur_core::SeqId,
        from: usize,
    ) -> Result<(), augur_core::ModelError> {
        self.provenance.truncate(from);
        self.inner.remove_from(seq, from)
    }
}

#[test]
fn draft_passes_do_not_depend_on_how_far_the_thread_drafted_ahead() {
    for sampling in [SamplingParams::greedy(), sampled()] {
        let prompt = [1, 2, 3];
        let new = || {
            let recorder = Recorder {
                inner: model(),
                provenance: Vec::new(),
            };
            let mut w = Worker::new(recorder, &sampling, 0.0, &prompt);
            w.catch_up().unwrap();
            w
        };
        // `ahead` drafts to the horizon between requests; `lazy` never does.
        let (mut ahead, mut lazy) = (new(), new());
        let mut serve = |keep: usize, tail: &[TokenId], want: usize| {
            let horizon = keep + tail.len() + 2 * want + 1;
            let a = ahead.serve(keep, tail, want, horizon).unwrap();
            let b = lazy.serve(keep, tail, want, horizon).unwrap();
            assert_eq!((a.start, &a.tokens, &a.q), (b.start, &b.tokens, &b.q));
            while ahead.can_draft_ahead() {
                ahead.draft_one().unwrap();
            }
            // What the draft thread would draft next, on demand.
            (a.start, a.tokens, ahead.text.clone())
        };
        // Two drafts; both accepted and the guess held.
        let (s, _, chain) = serve(3, &[], 2);
        assert_eq!(s, 3);
        // Then the same, followed by three plain steps.
        let (s, _, chain) = serve(5, &[chain[5]], 2);
        assert_eq!(s, 6);
        let (s, t, chain) = serve(8, &[chain[8], 1, 4, 0], 3);
        assert_eq!((s, t.len()), (12, 3));
        // One accepted, then a correction.
        let wrong = (chain[13] + 1) % 9;
        let (s, _, chain) = serve(13, &[wrong], 2);
        assert_eq!(s, 14);
        // Both accepted, a bonus other than the guess.
        let bonus = (chain[16] + 2) % 9;
        let (s, _, _) = serve(16, &[bonus, 5], 1);
        assert_eq!(s, 18);
        let n = 18;
        assert_eq!(ahead.text[..n], lazy.text[..n]);
        assert_eq!(
            ahead.model.provenance[..n],
            lazy.model.provenance[..n],
            "{sampling:?}"
        );
        // And the passes are the canonical ones: the prompt together, each
        // draft and each verdict's token alone, plain steps' tokens together.
        let sizes: Vec<usize> = lazy.model.provenance[..n].iter().map(|p| p.1).collect();
        assert_eq!(
            sizes,
            [3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1]
        );
    }
}
