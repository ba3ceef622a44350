//! Greedy decoding with the pipelined strategy: the output must equal the
//! baseline's token for token, whatever the draft, the draft length,
//! end-of-generation tokens, context limits and thread timing. History-mode
//! models make any mistake in KV positions or rollback change the logits; a
//! same-model draft makes a wrong draft text visible (every draft and every
//! guess must then hold).

#![allow(clippy::unwrap_used)]

mod common;

use augur_baseline::Baseline;
use augur_core::testing::InMemoryModel;
use augur_core::{generate, GenerateParams, Generation, Model, Rng, SamplingParams, Strategy};
use augur_speculative::{Costs, PipelinedSpeculative, Speculative, SpeculativeConfig};

use common::{Delay, Wrapped};

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

fn prompt(rng: &mut Rng, n_vocab: usize, max_len: usize) -> Vec<u32> {
    let len = 1 + (rng.next_u64() % max_len as u64) as usize;
    (0..len)
        .map(|_| (rng.next_u64() % n_vocab as u64) as u32)
        .collect()
}

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
        ("fixed-3", SpeculativeConfig::fixed(3)),
        ("fixed-6", SpeculativeConfig::fixed(6)),
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

/// Totals over a mode's runs.
#[derive(Debug, Default)]
struct Totals {
    drafted: u64,
    accepted: u64,
    tried: u64,
    held: u64,
    ready: u64,
}

/// Runs every mode over several targets and prompts with jittered passes;
/// `make` builds the (target, draft) pair for a seed. In fixed modes the
/// target's passes must also be exactly those of the sequential strategy.
fn check_against_baseline(
    make: impl Fn(u64) -> (InMemoryModel, InMemoryModel),
    max_tokens: usize,
) -> Vec<(&'static str, Totals)> {
    let mut out = Vec::new();
    for (label, config) in modes() {
        let mut totals = Totals::default();
        for seed in 0..8u64 {
            let (target, draft) = make(seed);
            let mut rng = Rng::new(1000 + seed);
            // One strategy object across prompts: generations reuse it.
            let mut s = PipelinedSpeculative::new(
                Wrapped::new(draft.clone(), Delay::Jitter(20), seed),
                config.clone(),
            );
            for _ in 0..4 {
                let prompt = prompt(&mut rng, target.n_vocab(), 6);
                let want = baseline(&target, &prompt, max_tokens);
                let mut t = Wrapped::new(target.clone(), Delay::Jitter(20), seed + 7);
                let got =
                    generate(&mut t, &mut s, &prompt, &params(max_tokens), &mut |_| true).unwrap();
                let at = format!("{label}, seed {seed}, prompt {prompt:?}");
                assert_eq!(got.tokens, want.tokens, "{at}");
                assert_eq!(got.stop, want.stop, "{at}");
                assert!(!s.worker_running() && s.draft().is_some(), "{at}");
                if label.starts_with("fixed") {
                    let mut seq_target = target.clone();
                    let mut seq = Speculative::new(draft.clone(), config.clone());
                    generate(
                        &mut seq_target,
                        &mut seq,
                        &prompt,
                        &params(max_tokens),
                        &mut |_| true,
                    )
                    .unwrap();
                    assert_eq!(t.inner.batch_sizes, seq_target.batch_sizes, "{at}");
                }
                let p = s.pipeline_stats();
                totals.drafted += got.stats.drafted;
                totals.accepted += got.stats.accepted;
                totals.tried += p.guesses_tried;
                totals.held += p.guesses_held;
                totals.ready += p.drafts_ready;
            }
        }
        out.push((label, totals));
    }
    out
}

#[test]
fn same_model_draft_and_its_guesses_always_hold() {
    let totals = check_against_baseline(
        |seed| {
            let target = InMemoryModel::random(11, seed).with_history(seed + 50);
            (target.clone(), target)
        },
        40,
    );
    for (label, t) in totals {
        eprintln!("{label}: {t:?}");
        assert_eq!(t.drafted, t.accepted, "{label}");
        assert_eq!(t.tried, t.held, "{label}");
        if label != "adaptive" {
            assert!(t.drafted > 0 && t.tried > 0, "{label}");
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
    for (label, t) in totals {
        eprintln!("{label}: {t:?}");
        if label != "adaptive" {
            assert!(t.accepted < t.drafted && t.drafted > 0, "{label}");
        }
    }
}

#[test]
fn similar_draft_matches_the_baseline() {
    // Same bigram table, different history noise: guesses hold often and
    // fail often.
    let totals = check_against_baseline(
        |seed| {
            let target = InMemoryModel::random(11, seed).with_history(seed + 50);
            let draft = InMemoryModel::random(11, seed).with_history(seed + 51);
            (target, draft)
        },
        40,
    );
    for (label, t) in totals {
        eprintln!("{label}: {t:?}");
        if label != "adaptive" {
            assert!(t.accepted < t.drafted && t.accepted > 0, "{label}");
            assert!(t.held > 0 && t.held < t.tried, "{label}");
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
    // room.
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
fn p_min_and_draft_min() {
    let target = InMemoryModel::random(11, 12).with_history(1);
    let draft = InMemoryModel::random(11, 12).with_history(2);
    let prompt = [5u32, 6];
    let want = baseline(&target, &prompt, 80);
    for (p_min, draft_min) in [(0.0, 0), (0.6, 0), (0.6, 3), (1.0, 0)] {
        let config = SpeculativeConfig {
            draft_p_min: p_min,
            draft_min,
            ..SpeculativeConfig::fixed(6)
        };
        let mut t = target.clone();
        let mut s = PipelinedSpeculative::new(draft.clone(), config.clone());
        let g = generate(&mut t, &mut s, &prompt, &params(80), &mut |_| true).unwrap();
        assert_eq!(
            g.tokens, want.tokens,
            "p_min {p_min}, draft_min {draft_min}"
        );
        // The same passes as the sequential strategy.
        let mut seq_t = target.clone();
        let mut seq = Speculative::new(draft.clone(), config);
        generate(&mut seq_t, &mut seq, &prompt, &params(80), &mut |_| true).unwrap();
        assert_eq!(t.batch_sizes, seq_t.batch_sizes, "p_min {p_min}");
        if p_min == 1.0 {
            assert_eq!(g.stats.drafted, 0);
        }
        if draft_min == 3 {
            let decode = &t.batch_sizes[1..];
            assert!(decode.iter().all(|&b| b == 1 || b >= 4), "{decode:?}");
        }
    }
}

#[test]
fn boxed_drafts_and_the_builder() {
    let target = InMemoryModel::random(11, 3).with_history(4);
    let want = baseline(&target, &[1, 2], 30);
    let draft: Box<dyn Model + Send> = Box::new(InMemoryModel::random(11, 3).with_history(5));
    let mut s = PipelinedSpeculative::new(draft, SpeculativeConfig::fixed(3));
    let mut t = target.clone();
    let g = generate(&mut t, &mut s, &[1, 2], &params(30), &mut |_| true).unwrap();
    assert_eq!(g.tokens, want.tokens);
    assert_eq!(s.draft().unwrap().n_vocab(), 11);
    assert!(g.stats.draft_passes > 0 && g.stats.draft_seconds > 0.0);
    for pipeline in [false, true] {
        let draft: Box<dyn Model + Send> = Box::new(InMemoryModel::random(11, 3).with_history(5));
        let config = SpeculativeConfig {
            pipeline,
            ..SpeculativeConfig::fixed(3)
        };
        let mut s: Box<dyn Strategy + Send> = augur_speculative::build(draft, config);
        assert_eq!(s.name(), "speculative");
        let mut t = target.clone();
        let g = generate(&mut t, &mut s, &[1, 2], &params(30), &mut |_| true).unwrap();
        assert_eq!(g.tokens, want.tokens, "pipeline {pipeline}");
    }
}

#[test]
fn mismatched_vocabularies_are_refused_and_the_draft_kept() {
    let mut target = InMemoryModel::random(12, 1);
    let mut s =
        PipelinedSpeculative::new(InMemoryModel::random(11, 1), SpeculativeConfig::default());
    let e = generate(&mut target, &mut s, &[1], &params(5), &mut |_| true).unwrap_err();
    assert!(
        e.to_string().contains("11") && e.to_string().contains("12"),
        "{e}"
    );
    assert!(s.draft().is_some() && !s.worker_running());
}

#[test]
fn pipeline_counters_add_up() {
    let target = InMemoryModel::random(11, 3).with_history(4);
    let draft = InMemoryModel::random(11, 3).with_history(5);
    let mut s = PipelinedSpeculative::new(draft, SpeculativeConfig::fixed(4));
    let mut t = target.clone();
    let g = generate(&mut t, &mut s, &[1, 2, 3], &params(60), &mut |_| true).unwrap();
    assert_eq!(g.tokens, baseline(&target, &[1, 2, 3], 60).tokens);
    let p = s.pipeline_stats().clone();
    // Every draft pass but the prompt's is counted; the run's statistics
    // have those made before the last proposal.
    assert_eq!(p.draft_passes as usize, s.draft().unwrap().passes - 1);
    assert!(g.stats.draft_passes > 0 && g.stats.draft_passes <= p.draft_passes);
    assert!(g.stats.draft_seconds > 0.0 && g.stats.draft_seconds <= p.draft_seconds);
    assert!(p.wasted_drafts > 0 && p.wasted_seconds <= p.draft_seconds);
    assert!(p.guesses_held <= p.guesses_tried);
    assert!(p.wait_seconds > 0.0);
    assert_eq!(s.guesses(), (p.guesses_held, p.guesses_tried));
    assert_eq!(s.wasted_draft_seconds(), p.wasted_seconds);
    // The target's passes: one per step after the prompt's.
    assert_eq!(g.stats.target_passes as usize, t.passes - 1);
}
