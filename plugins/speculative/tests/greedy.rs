//! Greedy decoding: speculative output must equal the baseline's token for
//! token, whatever the draft, the draft length, end-of-generation tokens and
//! context limits. History-mode targets make any mistake in KV positions or
//! rollback change the logits, hence the output.

#![allow(clippy::unwrap_used)]

use augur_baseline::Baseline;
use augur_core::strategy::Exactness;
use augur_core::testing::InMemoryModel;
use augur_core::{generate, CoreError, GenerateParams, Generation, Model, Rng, SamplingParams};
use augur_core::{Proposal, TokenId};
use augur_speculative::{Costs, DraftLength, DraftVerify, Drafter, Speculative, SpeculativeConfig};

fn params(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: SamplingParams::greedy(),
    }
}

fn baseline(target: &InMemoryModel, prompt: &[u32], max_tokens: usize) -> Generation {
    let mut t = target.clone();
    generate(
        &mut t,
        &mut Baseline,
        prompt,
        &params(max_tokens),
        &mut |_| true,
    )
    .unwrap()
}

fn speculative(
    target: &InMemoryModel,
    draft: InMemoryModel,
    config: SpeculativeConfig,
    prompt: &[u32],
    max_tokens: usize,
) -> Generation {
    let mut t = target.clone();
    let mut s = Speculative::new(draft, config);
    generate(&mut t, &mut s, prompt, &params(max_tokens), &mut |_| true).unwrap()
}

fn prompt(rng: &mut Rng, n_vocab: usize, max_len: usize) -> Vec<u32> {
    let len = 1 + (rng.next_u64() % max_len as u64) as usize;
    (0..len)
        .map(|_| (rng.next_u64() % n_vocab as u64) as u32)
        .collect()
}

/// Costs of a memory-bound machine with a cheap draft, so an adaptive run
/// starts out drafting (its own measurements take over after that).
fn speculation_friendly_costs() -> Costs {
    let mut c = Costs::new();
    for k in 1..=9 {
        for _ in 0..3 {
            c.record_target(k, 0.1);
        }
    }
    c.record_draft(0.001);
    c
}

fn modes() -> Vec<(&'static str, SpeculativeConfig)> {
    vec![
        ("fixed-1", SpeculativeConfig::fixed(1)),
        ("fixed-4", SpeculativeConfig::fixed(4)),
        ("fixed-8", SpeculativeConfig::fixed(8)),
        ("adaptive", SpeculativeConfig::default()),
        (
            "adaptive-cached",
            SpeculativeConfig {
                initial_costs: Some(speculation_friendly_costs()),
                ..SpeculativeConfig::default()
            },
        ),
    ]
}

/// Runs every mode over several targets and prompts; `make` builds the
/// (target, draft) pair for a seed. Returns (drafted, accepted) totals per mode.
fn check_against_baseline(
    make: impl Fn(u64) -> (InMemoryModel, InMemoryModel),
    max_tokens: usize,
) -> Vec<(&'static str, u64, u64)> {
    let mut totals = Vec::new();
    for (label, config) in modes() {
        let (mut drafted, mut accepted) = (0, 0);
        for seed in 0..8u64 {
            let (target, draft) = make(seed);
            let mut rng = Rng::new(1000 + seed);
            for _ in 0..4 {
                let prompt = prompt(&mut rng, target.n_vocab(), 6);
                let want = baseline(&target, &prompt, max_tokens);
                let got = speculative(&target, draft.clone(), config.clone(), &prompt, max_tokens);
                assert_eq!(
                    got.tokens, want.tokens,
                    "{label}, seed {seed}, prompt {prompt:?}"
                );
                assert_eq!(
                    got.stop, want.stop,
                    "{label}, seed {seed}, prompt {prompt:?}"
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
    let totals = check_against_baseline(
        |seed| {
            let target = InMemoryModel::random(11, seed).with_history(seed + 50);
            (target.clone(), target)
        },
        40,
    );
    for (label, drafted, accepted) in totals {
        assert_eq!(drafted, accepted, "{label}");
        if label != "adaptive" {
            assert!(drafted > 0, "{label}");
        }
    }
}

#[test]
fn different_draft_matches_the_baseline() {
    let totals = check_against_baseline(
        |seed| {
            let target = InMemoryModel::random(11, seed).with_history(seed + 50);
            let draft = InMemoryModel::random(11, seed + 500).with_history(seed + 90);
            (target, draft)
        },
        40,
    );
    for (label, drafted, accepted) in totals {
        if label != "adaptive" {
            assert!(accepted < drafted, "{label}: rejections must occur");
            assert!(drafted > 0, "{label}");
        }
    }
}

#[test]
fn similar_draft_matches_the_baseline() {
    // Same bigram table, different history noise: mostly accepted, sometimes
    // not, so long accepted runs and late rejections both occur.
    let totals = check_against_baseline(
        |seed| {
            let target = InMemoryModel::random(11, seed).with_history(seed + 50);
            let draft = InMemoryModel::random(11, seed).with_history(seed + 51);
            (target, draft)
        },
        40,
    );
    for (label, drafted, accepted) in totals {
        if label != "adaptive" {
            assert!(accepted < drafted && accepted > 0, "{label}");
        }
    }
}

#[test]
fn end_of_generation_tokens() {
    for eog in [0u32, 3] {
        check_against_baseline(
            |seed| {
                let target = InMemoryModel::random(7, seed)
                    .with_history(seed + 50)
                    .with_eog(eog);
                (target.clone(), target)
            },
            60,
        );
        check_against_baseline(
            |seed| {
                let target = InMemoryModel::random(7, seed)
                    .with_history(seed + 50)
                    .with_eog(eog);
                let draft = InMemoryModel::random(7, seed)
                    .with_history(seed + 51)
                    .with_eog(eog);
                (target, draft)
            },
            60,
        );
    }
}

#[test]
fn context_end() {
    for n_ctx in [8, 13] {
        check_against_baseline(
            |seed| {
                let target = InMemoryModel::random(9, seed)
                    .with_history(seed + 50)
                    .with_n_ctx(n_ctx);
                let draft = InMemoryModel::random(9, seed)
                    .with_history(seed + 51)
                    .with_n_ctx(n_ctx);
                (target, draft)
            },
            100,
        );
    }
    // A draft with a smaller context than the target drafts while it has
    // room, and the output does not change.
    check_against_baseline(
        |seed| {
            let target = InMemoryModel::random(9, seed)
                .with_history(seed + 50)
                .with_n_ctx(40);
            let draft = target.clone().with_n_ctx(10);
            (target, draft)
        },
        100,
    );
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
    let g = generate(&mut t, &mut s, &[0], &params(20), &mut |_| true).unwrap();
    assert_eq!(g.tokens, baseline(&target, &[0], 20).tokens);
    // 0 -> 1 -> 2 (draft stops) | 2 -> 0 -> 1 -> 2 (stops) ...: every
    // proposal ends at the first 2, so no target pass exceeds 3 tokens.
    assert!(t.batch_sizes.iter().all(|&b| b <= 3), "{:?}", t.batch_sizes);
    assert!(t.batch_sizes.contains(&3));
}

#[test]
fn boxed_draft_models_work() {
    let target = InMemoryModel::random(11, 3).with_history(4);
    let draft: Box<dyn Model + Send> = Box::new(InMemoryModel::random(11, 3).with_history(5));
    let mut s = Speculative::new(draft, SpeculativeConfig::fixed(3));
    let mut t = target.clone();
    let g = generate(&mut t, &mut s, &[1, 2], &params(30), &mut |_| true).unwrap();
    assert_eq!(g.tokens, baseline(&target, &[1, 2], 30).tokens);
    assert_eq!(s.draft().n_vocab(), 11);
}

#[test]
fn draft_passes_and_time_are_counted() {
    let target = InMemoryModel::random(11, 3).with_history(4);
    let draft = InMemoryModel::random(11, 3).with_history(5);
    let mut s = Speculative::new(draft, SpeculativeConfig::fixed(4));
    let mut t = target.clone();
    let prompt = [1, 2, 3];
    let g = generate(&mut t, &mut s, &prompt, &params(30), &mut |_| true).unwrap();
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
        let g = generate(&mut t, &mut s, &prompt, &params(25), &mut |_| true).unwrap();
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
        let g = generate(&mut t, &mut s, &prompt, &params(60), &mut |_| true).unwrap();
        assert_eq!(g.tokens, want.tokens);
        // Skip the prompt prefill pass.
        let decode_passes = t.batch_sizes[1..].to_vec();
        (g, decode_passes)
    };

    let exact = SpeculativeConfig {
        exact: true,
        max_exact_pass: Some(3),
        ..SpeculativeConfig::fixed(8)
    };
    let (g, sizes) = run(exact);
    assert!(sizes.iter().all(|&b| b <= 3), "{sizes:?}");
    assert!(sizes.contains(&3));
    assert_eq!(g.exactness, Exactness::BitIdentical);

    // Adaptive mode obeys the cap too.
    let exact_adaptive = SpeculativeConfig {
        exact: true,
        max_exact_pass: Some(2),
        initial_costs: Some(speculation_friendly_costs()),
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
        max_exact_pass: Some(5),
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
    let g = generate(&mut t, &mut s, &[1, 2], &params(20), &mut |_| true).unwrap();
    assert_eq!(g.exactness, Exactness::KernelLevel);
    // One token: a single one-token pass.
    let g = generate(&mut t, &mut s, &[1, 2], &params(1), &mut |_| true).unwrap();
    assert_eq!(g.exactness, Exactness::BitIdentical);
    assert_eq!(s.largest_pass(), 1);
}

/// Target passes of each size over a run, after the prefill pass.
fn decode_pass_sizes(target: &InMemoryModel, prompt_len: usize) -> Vec<usize> {
    target.batch_sizes[usize::from(prompt_len > 1)..].to_vec()
}

#[test]
fn p_min_stops_drafting() {
    let target = InMemoryModel::random(11, 12).with_history(1);
    let draft = InMemoryModel::random(11, 12).with_history(2);
    let prompt = [5u32, 6];
    let want = baseline(&target, &prompt, 60);
    let run = |p_min: f64| {
        let mut t = target.clone();
        let config = SpeculativeConfig {
            draft_p_min: p_min,
            ..SpeculativeConfig::fixed(6)
        };
        let mut s = Speculative::new(draft.clone(), config);
        let g = generate(&mut t, &mut s, &prompt, &params(60), &mut |_| true).unwrap();
        assert_eq!(g.tokens, want.tokens, "p_min {p_min}");
        g.stats
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
    let target = InMemoryModel::random(11, 12).with_history(1);
    let draft = InMemoryModel::random(11, 12).with_history(2);
    let prompt = [5u32, 6];
    let want = baseline(&target, &prompt, 80);
    let run = |draft_min: usize| {
        let mut t = target.clone();
        let config = SpeculativeConfig {
            draft_p_min: 0.6,
            draft_min,
            ..SpeculativeConfig::fixed(6)
        };
        let mut s = Speculative::new(draft.clone(), config);
        let g = generate(&mut t, &mut s, &prompt, &params(80), &mut |_| true).unwrap();
        assert_eq!(g.tokens, want.tokens, "draft_min {draft_min}");
        decode_pass_sizes(&t, prompt.len())
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
    let e = generate(&mut target, &mut s, &[1], &params(5), &mut |_| true).unwrap_err();
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
    let e = generate(&mut target, &mut s, &[1], &params(5), &mut |_| true).unwrap_err();
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
    let g = generate(&mut t, &mut s, &[1, 2], &params(20), &mut |_| true).unwrap();
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
    last_len: usize,
}

impl Drafter for Lookup {
    fn propose(
        &mut self,
        tokens: &[TokenId],
        max: usize,
        _sampling: &SamplingParams,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<u64, CoreError> {
        let last = tokens[tokens.len() - 1];
        if let Some(i) = tokens[..tokens.len() - 1].iter().rposition(|&t| t == last) {
            let next = &tokens[i + 1..];
            *out = Proposal::deterministic(&next[..next.len().min(max)]);
        }
        self.last_len = out.len();
        Ok(0)
    }

    fn on_verdict(&mut self, _tokens: &[TokenId], accepted: usize) -> Result<(), CoreError> {
        self.verdicts.push((self.last_len, accepted));
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
        let mut s = DraftVerify::new("lookup", Lookup::default(), SpeculativeConfig::fixed(4));
        let g = generate(&mut t, &mut s, &prompt, &params(50), &mut |_| true).unwrap();
        assert_eq!(g.tokens, want.tokens, "seed {seed}");
        let verdicts = &s.drafter().verdicts;
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
