//! Greedy decoding: speculative output must equal the baseline's token for
//! token, whatever the draft, the draft length, end-of-generation tokens and
//! context limits. History-mode targets make any mistake in KV positions or
//! rollback change the logits, hence the output.

#![allow(clippy::unwrap_used)]

mod common;

use augur_baseline::Baseline;
use augur_core::strategy::Exactness;
use augur_core::testing::{
    assert_greedy_matches, assert_same_output, generate_greedy, InMemoryModel,
};
use augur_core::{generate, CoreError, Model, Rng, RunStats};
use augur_core::{CostModel, DraftLength, DraftRequest, Drafter, VerifyOutcome};
use augur_core::{Proposal, TokenId};
use augur_speculative::{Speculative, SpeculativeConfig};

use common::models::{sibling_pair, Pairs, EDGE_FAMILIES};
use common::{baseline, draft_verify, exact_upto, greedy, modes, speculation_friendly_costs};

/// Runs every mode over the family's seeds and prompts. Returns (drafted,
/// accepted) totals per mode.
fn check_against_baseline(pairs: Pairs, max_tokens: usize) -> Vec<(String, u64, u64)> {
    let mut totals = Vec::new();
    for (label, config) in modes([1, 4, 8]) {
        let (mut drafted, mut accepted) = (0, 0);
        for case in pairs.cases() {
            for prompt in &case.prompts {
                let mut s = Speculative::new(case.draft.clone(), config.clone());
                let at = format!("{pairs:?}, {label}, seed {}, prompt {prompt:?}", case.seed);
                let (_, got) = assert_greedy_matches(
                    &case.target,
                    &mut Baseline,
                    &mut s,
                    prompt,
                    max_tokens,
                    &at,
                );
                drafted += got.stats.drafted;
                accepted += got.stats.accepted;
            }
        }
        totals.push((label, drafted, accepted));
    }
    totals
}

#[test]
fn same_model_draft_is_always_accepted() {
    for (label, drafted, accepted) in check_against_baseline(Pairs::Same, 40) {
        assert_eq!(drafted, accepted, "{label}");
        if label != "adaptive" {
            assert!(drafted > 0, "{label}");
        }
    }
}

#[test]
fn different_draft_matches_the_baseline() {
    for (label, drafted, accepted) in check_against_baseline(Pairs::Different, 40) {
        if label != "adaptive" {
            assert!(accepted < drafted, "{label}: rejections must occur");
            assert!(drafted > 0, "{label}");
        }
    }
}

#[test]
fn similar_draft_matches_the_baseline() {
    for (label, drafted, accepted) in check_against_baseline(Pairs::Similar, 40) {
        if label != "adaptive" {
            assert!(accepted < drafted && accepted > 0, "{label}");
        }
    }
}

#[test]
fn end_of_generation_tokens_and_context_end() {
    // One family's draft has a smaller context than the target: it drafts
    // while it has room, and the output does not change.
    for (pairs, max_tokens) in EDGE_FAMILIES {
        check_against_baseline(pairs, max_tokens);
    }
}

#[test]
fn eog_draft_token_ends_the_proposal() {
    // The draft always predicts 2 (an end-of-generation token for it) after 1.
    let rows = vec![
        vec![1.0, 5.0, 1.0, 1.0],
        vec![1.0, 1.0, 9.0, 1.0],
        vec![5.0, 1.0, 1.0, 1.0],
        vec![1.0, 1.0, 1.0, 5.0],
    ];
    let draft = InMemoryModel::bigram(&rows).with_eog(2);
    let target = InMemoryModel::bigram(&rows);
    let mut t = target.clone();
    let mut s = Speculative::new(draft, SpeculativeConfig::fixed(8));
    let g = generate_greedy(&mut t, &mut s, &[0], 20);
    assert_eq!(g.tokens, baseline(&target, &[0], 20).tokens);
    // 0 -> 1 -> 2 (draft stops) | 2 -> 0 -> 1 -> 2 (stops) ...: every
    // proposal ends at the first 2, so no target pass exceeds 3 tokens.
    assert!(t.batch_sizes.iter().all(|&b| b <= 3), "{:?}", t.batch_sizes);
    assert!(t.batch_sizes.contains(&3));
}

#[test]
fn boxed_draft_models_work() {
    let (target, draft) = sibling_pair();
    let draft: Box<dyn Model + Send> = Box::new(draft);
    let mut s = Speculative::new(draft, SpeculativeConfig::fixed(3));
    let mut t = target.clone();
    let g = generate_greedy(&mut t, &mut s, &[1, 2], 30);
    assert_eq!(g.tokens, baseline(&target, &[1, 2], 30).tokens);
    assert_eq!(s.draft().n_vocab(), 11);
}

#[test]
fn draft_passes_and_time_are_counted() {
    let (target, draft) = sibling_pair();
    let mut s = Speculative::new(draft, SpeculativeConfig::fixed(4));
    let mut t = target.clone();
    let prompt = [1, 2, 3];
    let g = generate_greedy(&mut t, &mut s, &prompt, 30);
    // The draft's own pass counter includes its one prefill pass.
    assert_eq!(g.stats.draft_passes as usize, s.draft().passes - 1);
    assert!(g.stats.draft_passes > 0);
    assert!(g.stats.draft_seconds > 0.0);
    assert_eq!(g.stats.target_passes as usize, t.passes - 1);
    assert!(s.largest_pass() == 5);
    // The per-size costs were measured along the way.
    assert!(s.costs().samples(5) > 0);
}

#[test]
fn same_strategy_object_runs_several_generations() {
    let target = InMemoryModel::random(11, 8).with_history(2);
    let mut s = Speculative::new(
        InMemoryModel::random(11, 8).with_history(3),
        SpeculativeConfig::fixed(3),
    );
    for prompt in [vec![1u32, 2, 3], vec![4], vec![5, 6]] {
        let mut t = target.clone();
        let g = generate_greedy(&mut t, &mut s, &prompt, 25);
        assert_eq!(g.tokens, baseline(&target, &prompt, 25).tokens);
    }
}

#[test]
fn bit_exact_mode_caps_every_target_pass() {
    let target = InMemoryModel::random(11, 5).with_history(6);
    let prompt = [3u32, 1, 4];
    let want = baseline(&target, &prompt, 60);
    let run = |config: SpeculativeConfig| {
        let mut t = target.clone();
        let mut s = Speculative::new(target.clone(), config);
        let g = generate_greedy(&mut t, &mut s, &prompt, 60);
        assert_eq!(g.tokens, want.tokens);
        // Skip the prompt prefill pass.
        let decode_passes = t.batch_sizes[1..].to_vec();
        (g, decode_passes)
    };

    let exact = SpeculativeConfig {
        exact: true,
        initial_costs: Some(exact_upto(3)),
        ..SpeculativeConfig::fixed(8)
    };
    let (g, sizes) = run(exact);
    assert!(sizes.iter().all(|&b| b <= 3), "{sizes:?}");
    assert!(sizes.contains(&3));
    assert_eq!(g.exactness, Exactness::BitIdentical);

    // Adaptive mode obeys the cap too.
    let exact_adaptive = SpeculativeConfig {
        exact: true,
        initial_costs: Some(CostModel {
            max_exact_pass: 2,
            ..speculation_friendly_costs()
        }),
        ..SpeculativeConfig::default()
    };
    let (g, sizes) = run(exact_adaptive);
    assert!(sizes.iter().all(|&b| b <= 2), "{sizes:?}");
    assert_eq!(g.exactness, Exactness::BitIdentical);

    // Bit-exact without calibration: only one-token passes.
    let uncalibrated = SpeculativeConfig {
        exact: true,
        ..SpeculativeConfig::fixed(4)
    };
    let (g, sizes) = run(uncalibrated);
    assert!(sizes.iter().all(|&b| b == 1));
    assert_eq!(g.exactness, Exactness::BitIdentical);
    assert_eq!(g.stats.draft_passes, 0);

    // Not bit-exact: larger passes, reported as kernel-level...
    let (g, sizes) = run(SpeculativeConfig::fixed(4));
    assert!(sizes.contains(&5));
    assert_eq!(g.exactness, Exactness::KernelLevel);
    // ...unless calibration says those sizes are exact.
    let calibrated = SpeculativeConfig {
        initial_costs: Some(exact_upto(5)),
        ..SpeculativeConfig::fixed(4)
    };
    let (g, _) = run(calibrated);
    assert_eq!(g.exactness, Exactness::BitIdentical);
}

#[test]
fn exactness_is_reset_per_generation() {
    let target = InMemoryModel::random(11, 5).with_history(6);
    let mut s = Speculative::new(target.clone(), SpeculativeConfig::fixed(4));
    let mut t = target.clone();
    let g = generate_greedy(&mut t, &mut s, &[1, 2], 20);
    assert_eq!(g.exactness, Exactness::KernelLevel);
    // One token: a single one-token pass.
    let g = generate_greedy(&mut t, &mut s, &[1, 2], 1);
    assert_eq!(g.exactness, Exactness::BitIdentical);
    assert_eq!(s.largest_pass(), 1);
}

/// Target passes of each size over a run, after the prefill pass.
fn decode_pass_sizes(target: &InMemoryModel, prompt_len: usize) -> Vec<usize> {
    target.batch_sizes[usize::from(prompt_len > 1)..].to_vec()
}

/// A greedy run of `config` (a fixed length with stopping rules) on one
/// target, draft and prompt, whose output must be the baseline's. Returns
/// the run's statistics and the sizes of the target's decoding passes.
fn stopping_rule_run(config: SpeculativeConfig, max_tokens: usize) -> (RunStats, Vec<usize>) {
    let target = InMemoryModel::random(11, 12).with_history(1);
    let draft = InMemoryModel::random(11, 12).with_history(2);
    let prompt = [5u32, 6];
    let want = baseline(&target, &prompt, max_tokens);
    let mut t = target.clone();
    let at = format!("{config:?}");
    let g = generate_greedy(
        &mut t,
        &mut Speculative::new(draft, config),
        &prompt,
        max_tokens,
    );
    assert_same_output(&g, &want, &at);
    (g.stats, decode_pass_sizes(&t, prompt.len()))
}

#[test]
fn p_min_stops_drafting() {
    let run = |draft_p_min: f64| {
        let config = SpeculativeConfig {
            draft_p_min,
            ..SpeculativeConfig::fixed(6)
        };
        stopping_rule_run(config, 60).0
    };
    let free = run(0.0);
    let strict = run(0.6);
    let never = run(1.0);
    assert!(
        strict.drafted < free.drafted,
        "{} vs {}",
        strict.drafted,
        free.drafted
    );
    assert!(strict.drafted > 0);
    // No probability reaches 1: nothing is ever drafted, one look per step
    // (except the last, which has no room for a draft and does not look).
    assert_eq!(never.drafted, 0);
    assert_eq!(never.draft_passes + 1, never.target_passes);
}

#[test]
fn draft_min_drops_short_proposals() {
    let run = |draft_min: usize| {
        let config = SpeculativeConfig {
            draft_p_min: 0.6,
            draft_min,
            ..SpeculativeConfig::fixed(6)
        };
        stopping_rule_run(config, 80).1
    };
    let without = run(0);
    assert!(
        without.iter().any(|&b| b == 2 || b == 3),
        "short proposals occur: {without:?}"
    );
    let with = run(3);
    assert!(
        with.iter().all(|&b| b == 1 || b >= 4),
        "proposals under 3 drafts are not verified: {with:?}"
    );
    assert!(with.iter().any(|&b| b >= 4), "{with:?}");
}

#[test]
fn mismatched_vocabularies_are_refused() {
    let mut target = InMemoryModel::random(12, 1);
    let mut s = Speculative::new(InMemoryModel::random(11, 1), SpeculativeConfig::default());
    let e = generate(&mut target, &mut s, &[1], &greedy(5), &mut |_| true).unwrap_err();
    match &e {
        CoreError::Unsupported { strategy, reason } => {
            assert_eq!(*strategy, "speculative");
            assert!(reason.contains("11") && reason.contains("12"), "{reason}");
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn invalid_settings_are_refused() {
    let mut target = InMemoryModel::random(11, 1);
    let config = SpeculativeConfig {
        draft_p_min: 2.0,
        ..Default::default()
    };
    let mut s = Speculative::new(InMemoryModel::random(11, 1), config);
    let e = generate(&mut target, &mut s, &[1], &greedy(5), &mut |_| true).unwrap_err();
    assert!(matches!(e, CoreError::InvalidParameter(_)), "{e}");
}

#[test]
fn fixed_zero_is_plain_decoding() {
    let target = InMemoryModel::random(11, 3).with_history(4);
    let mut t = target.clone();
    let config = SpeculativeConfig {
        mode: DraftLength::Fixed(0),
        ..Default::default()
    };
    let mut s = Speculative::new(target.clone(), config);
    let g = generate_greedy(&mut t, &mut s, &[1, 2], 20);
    assert_eq!(g.tokens, baseline(&target, &[1, 2], 20).tokens);
    assert_eq!(g.stats.draft_passes, 0);
    assert_eq!(s.draft().passes, 1, "only the prompt prefill");
}

/// A model-free drafter, as an application's callback might be: proposes the
/// tokens that followed the last occurrence of the pending token earlier in
/// the text (prompt lookup), one-hot.
#[derive(Default)]
struct Lookup {
    verdicts: Vec<(usize, usize)>,
    last_len: Option<usize>,
}

impl Drafter for Lookup {
    fn name(&self) -> &'static str {
        "lookup"
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        let tokens = req.tokens;
        let last = tokens[tokens.len() - 1];
        if let Some(i) = tokens[..tokens.len() - 1].iter().rposition(|&t| t == last) {
            let next = &tokens[i + 1..];
            *out = Proposal::deterministic(&next[..next.len().min(req.max)]);
        }
        self.last_len = Some(out.len());
        Ok(())
    }

    fn on_verdict(
        &mut self,
        _tokens: &[TokenId],
        outcome: &VerifyOutcome,
    ) -> Result<(), CoreError> {
        // Only the steps that asked for a proposal.
        if let Some(n) = self.last_len.take() {
            self.verdicts.push((n, outcome.accepted));
        }
        Ok(())
    }
}

#[test]
fn any_drafter_runs_through_the_same_step() {
    let mut accepted = 0;
    for seed in 0..6 {
        let target = InMemoryModel::random(5, seed).with_history(seed + 3);
        let prompt = [1u32, 2, 3, 1, 2, 4, 0];
        let want = baseline(&target, &prompt, 50);
        let mut t = target.clone();
        let mut s = draft_verify("lookup", Lookup::default(), &SpeculativeConfig::fixed(4));
        let g = generate_greedy(&mut t, &mut s, &prompt, 50);
        assert_eq!(g.tokens, want.tokens, "seed {seed}");
        let verdicts = &s.drafter().inner().verdicts;
        assert!(!verdicts.is_empty());
        assert!(verdicts.iter().all(|&(n, a)| a <= n));
        assert_eq!(
            verdicts.iter().map(|&(_, a)| a as u64).sum::<u64>(),
            g.stats.accepted
        );
        assert_eq!(g.stats.draft_passes, 0);
        accepted += g.stats.accepted;
    }
    assert!(accepted > 0);
}
