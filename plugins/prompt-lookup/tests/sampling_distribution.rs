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

use augur_core::model::RunLogits;
use augur_core::testing::{unfiltered, ContinuationTest, InMemoryModel};
use augur_core::verify::{decide, Decision};
use augur_core::{CoreError, SamplingParams, StepContext, Strategy, TokenId};
use augur_prompt_lookup::{Evidence, PromptLookup, PromptLookupConfig, PromptLookupDrafter};

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

fn filtered_sampling() -> SamplingParams {
    SamplingParams {
        top_k: 4,
        min_p: 0.3,
        ..unfiltered(0.8)
    }
}

/// Aggressive drafting so that multi-token drafts are verified: drafted
/// tokens cost nothing, so every step drafts 3 tokens when it has a match; no
/// evidence needed.
fn aggressive() -> PromptLookupConfig {
    PromptLookupConfig {
        ngram_min: 1,
        ngram_max: 3,
        draft_max: 3,
        draft_cost: 0.0,
        evidence: Evidence::none(),
        ..Default::default()
    }
}

struct Sampled {
    p_value: f64,
    drafted: u64,
    accepted: u64,
    steps_with_drafts: u64,
}

/// Samples RUNS continuations of LEN tokens with `strategy` (seeds from
/// 1 000 000 on) and tests them against the exact probabilities.
fn sample<S: Strategy>(strategy: &mut S, sampling: SamplingParams) -> Sampled {
    let test = ContinuationTest {
        prompt: PROMPT.to_vec(),
        len: LEN,
        runs: RUNS,
        first_seed: 1_000_000,
        sampling,
    };
    let (mut drafted, mut accepted, mut steps_with_drafts) = (0, 0, 0);
    let counts = test.counts(&mut model(), strategy, |g, _, _| {
        drafted += g.stats.drafted;
        accepted += g.stats.accepted;
        steps_with_drafts += g.stats.pool_hits;
    });
    Sampled {
        p_value: test.chi_square(&counts, &model()).p_value,
        drafted,
        accepted,
        steps_with_drafts,
    }
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
    let s = sample(&mut PromptLookup::default(), unfiltered(1.0));
    assert_drafting_happened(&s);
    assert!(s.p_value > THRESHOLD, "default settings: p = {}", s.p_value);
}

#[test]
fn prompt_lookup_with_long_drafts_samples_the_exact_distribution() {
    for sampling in [unfiltered(1.0), filtered_sampling()] {
        let label = format!("{sampling:?}");
        let s = sample(&mut PromptLookup::new(aggressive()).unwrap(), sampling);
        assert_drafting_happened(&s);
        assert!(s.p_value > THRESHOLD, "{label}: p = {}", s.p_value);
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
    drafter: PromptLookupDrafter,
    rule: Rule,
    draft: Vec<TokenId>,
}

impl TestVerifier {
    fn new(rule: Rule) -> Self {
        Self {
            drafter: PromptLookupDrafter::new(aggressive()).unwrap(),
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

/// The test verifier with `rule`, at temperature 1.
fn verifier(rule: Rule) -> Sampled {
    sample(&mut TestVerifier::new(rule), unfiltered(1.0))
}

#[test]
fn the_test_verifier_with_the_correct_rule_passes() {
    let s = verifier(Rule::Correct);
    assert_drafting_happened(&s);
    assert!(s.p_value > THRESHOLD, "p = {}", s.p_value);
}

#[test]
fn always_accepting_fails_the_test() {
    let p = verifier(Rule::AlwaysAccept).p_value;
    assert!(
        p < THRESHOLD,
        "a verifier that accepts every draft passed: p = {p}"
    );
}

#[test]
fn resampling_from_p_fails_the_test() {
    let s = verifier(Rule::ResampleFromP);
    assert_drafting_happened(&s);
    assert!(
        s.p_value < THRESHOLD,
        "a verifier that resamples from p passed: p = {}",
        s.p_value
    );
}
