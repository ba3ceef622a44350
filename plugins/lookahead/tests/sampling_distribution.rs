//! Prompt lookup under sampling: the continuations it samples follow the
//! target's exact distribution (chi-square goodness of fit against
//! `exact_continuation_probs`), and two wrong verifiers built here fail the
//! same test.
//!
//! Setup: a bigram model over 6 tokens (temperature 1, no filters, and a
//! second run with top-k / min-p filters), a prompt that repeats 0 1 2 so the
//! matcher drafts 1 2 0 … after the final 0, where the model gives the drafted
//! tokens low probability (p(1|0) = 0.15, p(2|1) = 0.3, p(0|2) = 0.25): drafts
//! are proposed at almost every generation and rejected often, so the residual
//! sampling matters. 100 000 continuations of 3 tokens, fixed seeds; the test
//! passes at p > 1e-3 (a correct implementation fails with probability 1e-3,
//! and with fixed seeds the outcome is deterministic).
#![allow(clippy::unwrap_used)]

use augur_core::chisq::chi_square;
use augur_core::model::RunLogits;
use augur_core::testing::{continuation_index, exact_continuation_probs, InMemoryModel};
use augur_core::verify::{decide, Decision};
use augur_core::{
    generate, CoreError, GenerateParams, SamplingParams, StepContext, Strategy, TokenId,
};
use augur_lookahead::{Evidence, PromptLookup, PromptLookupConfig};

const V: usize = 6;
const LEN: usize = 3;
const RUNS: u64 = 100_000;
const THRESHOLD: f64 = 1e-3;
const PROMPT: [TokenId; 10] = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0];

fn model() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![0.05, 0.15, 0.30, 0.25, 0.15, 0.10],
        vec![0.20, 0.10, 0.30, 0.10, 0.20, 0.10],
        vec![0.25, 0.30, 0.05, 0.15, 0.15, 0.10],
        vec![0.30, 0.20, 0.10, 0.10, 0.20, 0.10],
        vec![0.10, 0.35, 0.20, 0.15, 0.10, 0.10],
        vec![0.20, 0.20, 0.10, 0.30, 0.10, 0.10],
    ])
}

fn plain_sampling() -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 0,
    }
}

fn filtered_sampling() -> SamplingParams {
    SamplingParams {
        temperature: 0.8,
        top_k: 4,
        top_p: 1.0,
        min_p: 0.3,
        seed: 0,
    }
}

/// Aggressive drafting so that multi-token drafts are verified: 3 tokens from
/// the first step, no evidence needed.
fn aggressive() -> PromptLookupConfig {
    PromptLookupConfig {
        ngram_min: 1,
        ngram_max: 3,
        draft_max: 3,
        initial_draft: 3,
        evidence: Evidence::none(),
        ..Default::default()
    }
}

struct Sampled {
    counts: Vec<u64>,
    drafted: u64,
    accepted: u64,
    steps_with_drafts: u64,
}

/// Samples RUNS continuations of LEN tokens with `strategy` (seed = run index).
fn sample(strategy: &mut dyn Strategy, sampling: &SamplingParams) -> Sampled {
    let mut m = model();
    let mut out = Sampled {
        counts: vec![0; V.pow(LEN as u32)],
        drafted: 0,
        accepted: 0,
        steps_with_drafts: 0,
    };
    for seed in 0..RUNS {
        let params = GenerateParams {
            max_tokens: LEN,
            sampling: SamplingParams {
                seed: 1_000_000 + seed,
                ..sampling.clone()
            },
        };
        let g = generate(&mut m, strategy, &PROMPT, &params, &mut |_| true).unwrap();
        assert_eq!(g.tokens.len(), LEN);
        out.counts[continuation_index(&g.tokens, V)] += 1;
        out.drafted += g.stats.drafted;
        out.accepted += g.stats.accepted;
        out.steps_with_drafts += g.stats.pool_hits;
    }
    out
}

fn p_value(s: &Sampled, sampling: &SamplingParams) -> f64 {
    let exact = exact_continuation_probs(&model(), PROMPT[PROMPT.len() - 1], LEN, sampling);
    chi_square(&s.counts, &exact).p_value
}

/// Drafts must really be proposed and rejected for the test to mean anything.
fn assert_drafting_happened(s: &Sampled) {
    assert!(
        s.steps_with_drafts >= RUNS,
        "too few drafts: {}",
        s.steps_with_drafts
    );
    assert!(
        s.accepted > 0 && s.accepted < s.drafted,
        "{} of {}",
        s.accepted,
        s.drafted
    );
}

#[test]
fn prompt_lookup_samples_the_exact_distribution() {
    let sampling = plain_sampling();
    let s = sample(&mut PromptLookup::default(), &sampling);
    assert_drafting_happened(&s);
    let p = p_value(&s, &sampling);
    assert!(p > THRESHOLD, "default settings: p = {p}");
}

#[test]
fn prompt_lookup_with_long_drafts_samples_the_exact_distribution() {
    for sampling in [plain_sampling(), filtered_sampling()] {
        let s = sample(&mut PromptLookup::new(aggressive()).unwrap(), &sampling);
        assert_drafting_happened(&s);
        let p = p_value(&s, &sampling);
        assert!(p > THRESHOLD, "{sampling:?}: p = {p}");
    }
}

/// How the test-only verifier decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    /// The shared rule (accept with p(x), else sample p without x): must pass.
    Correct,
    /// Always accept the draft: output follows the drafter. Must fail.
    AlwaysAccept,
    /// Accept with p(x), but resample from p itself (x not removed). Must fail.
    ResampleFromP,
}

/// Prompt lookup's drafter with a verifier written here, so the negative
/// controls differ from the real strategy only in the acceptance rule.
struct TestVerifier {
    drafter: PromptLookup,
    rule: Rule,
    draft: Vec<TokenId>,
}

impl TestVerifier {
    fn new(rule: Rule) -> Self {
        Self {
            drafter: PromptLookup::new(aggressive()).unwrap(),
            rule,
            draft: Vec::new(),
        }
    }
}

impl Strategy for TestVerifier {
    fn name(&self) -> &'static str {
        "test-verifier"
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let k_max = ctx.max_drafts();
        self.drafter.candidate(ctx.tokens, k_max, &mut self.draft);
        let k = self.draft.len();
        let pos = ctx.pending_pos();
        ctx.batch.clear();
        ctx.batch.add(ctx.pending(), pos, &[0], true);
        ctx.batch.add_run(&self.draft, pos + 1, RunLogits::All);
        ctx.target.eval(ctx.batch, ctx.logits)?;
        let mut emitted = Vec::new();
        let mut accepted = 0;
        for i in 0..k {
            let x = self.draft[i];
            let p = ctx.target_dist(i);
            let decision = match self.rule {
                Rule::Correct => decide(x, &p, &augur_core::SparseDist::one_hot(x), ctx.rng),
                Rule::AlwaysAccept => Decision::Accept,
                Rule::ResampleFromP => {
                    if ctx.rng.uniform() < p.prob(x) {
                        Decision::Accept
                    } else {
                        Decision::Reject(p.sample(ctx.rng))
                    }
                }
            };
            match decision {
                Decision::Accept => {
                    emitted.push(x);
                    accepted += 1;
                }
                Decision::Reject(t) => {
                    emitted.push(t);
                    break;
                }
            }
        }
        if accepted == k {
            emitted.push(ctx.target_dist(k).sample(ctx.rng));
        }
        ctx.stats.record_verdict(k, accepted);
        if k > 0 {
            ctx.stats.pool_hits += 1;
        }
        if accepted < k {
            ctx.target.remove_from(0, pos + 1 + accepted)?;
        }
        ctx.tokens.extend_from_slice(&emitted);
        Ok(())
    }
}

#[test]
fn the_test_verifier_with_the_correct_rule_passes() {
    let sampling = plain_sampling();
    let s = sample(&mut TestVerifier::new(Rule::Correct), &sampling);
    assert_drafting_happened(&s);
    let p = p_value(&s, &sampling);
    assert!(p > THRESHOLD, "p = {p}");
}

#[test]
fn always_accepting_fails_the_test() {
    let sampling = plain_sampling();
    let s = sample(&mut TestVerifier::new(Rule::AlwaysAccept), &sampling);
    let p = p_value(&s, &sampling);
    assert!(
        p < THRESHOLD,
        "a verifier that accepts every draft passed: p = {p}"
    );
}

#[test]
fn resampling_from_p_fails_the_test() {
    let sampling = plain_sampling();
    let s = sample(&mut TestVerifier::new(Rule::ResampleFromP), &sampling);
    assert_drafting_happened(&s);
    let p = p_value(&s, &sampling);
    assert!(
        p < THRESHOLD,
        "a verifier that resamples from p passed: p = {p}"
    );
}
