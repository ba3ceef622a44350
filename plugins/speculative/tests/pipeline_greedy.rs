//! Greedy decoding with the pipelined strategy: the output must equal the
//! baseline's token for token, whatever the draft, the draft length,
//! end-of-generation tokens, context limits and thread timing. History-mode
//! models make any mistake in KV positions or rollback change the logits; a
//! same-model draft makes a wrong draft text visible (every draft and every
//! guess must then hold).

#![allow(clippy::unwrap_used)]

mod common;

use augur_core::testing::{assert_same_output, generate_greedy, InMemoryModel};
use augur_core::{generate, Model, Strategy};
use augur_speculative::{PipelinedSpeculative, Speculative, SpeculativeConfig};

use common::models::{sibling_pair, Pairs, EDGE_FAMILIES};
use common::{baseline, greedy, modes, Delay, Wrapped};

/// Totals over a mode's runs.
#[derive(Debug, Default)]
struct Totals {
    drafted: u64,
    accepted: u64,
    tried: u64,
    held: u64,
    ready: u64,
}

/// Runs every mode over the family's seeds and prompts with jittered
/// passes. In fixed modes the target's passes must also be exactly those of
/// the sequential strategy.
fn check_against_baseline(pairs: Pairs, max_tokens: usize) -> Vec<(String, Totals)> {
    let mut out = Vec::new();
    for (label, config) in modes([1, 3, 6]) {
        let mut totals = Totals::default();
        for case in pairs.cases() {
            let seed = case.seed;
            // One strategy object across prompts: generations reuse it.
            let mut s = PipelinedSpeculative::new(
                Wrapped::new(case.draft.clone(), Delay::Jitter(20), seed),
                config.clone(),
            );
            for prompt in &case.prompts {
                let at = format!("{pairs:?}, {label}, seed {seed}, prompt {prompt:?}");
                let want = baseline(&case.target, prompt, max_tokens);
                let mut t = Wrapped::new(case.target.clone(), Delay::Jitter(20), seed + 7);
                let got = generate_greedy(&mut t, &mut s, prompt, max_tokens);
                assert_same_output(&got, &want, &at);
                assert!(!s.worker_running() && s.draft().is_some(), "{at}");
                if label.starts_with("fixed") {
                    let mut seq_target = case.target.clone();
                    let mut seq = Speculative::new(case.draft.clone(), config.clone());
                    generate_greedy(&mut seq_target, &mut seq, prompt, max_tokens);
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
        eprintln!("{pairs:?}, {label}: {totals:?}");
        out.push((label, totals));
    }
    out
}

#[test]
fn same_model_draft_and_its_guesses_always_hold() {
    for (label, t) in check_against_baseline(Pairs::Same, 40) {
        assert_eq!(t.drafted, t.accepted, "{label}");
        assert_eq!(t.tried, t.held, "{label}");
        if label != "adaptive" {
            assert!(t.drafted > 0 && t.tried > 0, "{label}");
        }
    }
}

#[test]
fn different_draft_matches_the_baseline() {
    for (label, t) in check_against_baseline(Pairs::Different, 40) {
        if label != "adaptive" {
            assert!(t.accepted < t.drafted && t.drafted > 0, "{label}");
        }
    }
}

#[test]
fn similar_draft_matches_the_baseline() {
    // Guesses hold often and fail often.
    for (label, t) in check_against_baseline(Pairs::Similar, 40) {
        if label != "adaptive" {
            assert!(t.accepted < t.drafted && t.accepted > 0, "{label}");
            assert!(t.held > 0 && t.held < t.tried, "{label}");
        }
    }
}

#[test]
fn end_of_generation_tokens_and_context_end() {
    for (pairs, max_tokens) in EDGE_FAMILIES {
        check_against_baseline(pairs, max_tokens);
    }
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
        let g = generate_greedy(&mut t, &mut s, &prompt, 80);
        assert_eq!(
            g.tokens, want.tokens,
            "p_min {p_min}, draft_min {draft_min}"
        );
        // The same passes as the sequential strategy.
        let mut seq_t = target.clone();
        let mut seq = Speculative::new(draft.clone(), config);
        generate_greedy(&mut seq_t, &mut seq, &prompt, 80);
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
    let (target, draft) = sibling_pair();
    let want = baseline(&target, &[1, 2], 30);
    let mut s = PipelinedSpeculative::new(
        Box::new(draft.clone()) as Box<dyn Model + Send>,
        SpeculativeConfig::fixed(3),
    );
    let mut t = target.clone();
    let g = generate_greedy(&mut t, &mut s, &[1, 2], 30);
    assert_eq!(g.tokens, want.tokens);
    assert_eq!(s.draft().unwrap().n_vocab(), 11);
    assert!(g.stats.draft_passes > 0 && g.stats.draft_seconds > 0.0);
    for pipeline in [false, true] {
        let draft: Box<dyn Model + Send> = Box::new(draft.clone());
        let config = SpeculativeConfig {
            pipeline,
            ..SpeculativeConfig::fixed(3)
        };
        let mut s: Box<dyn Strategy + Send> = augur_speculative::build(draft, config).0;
        assert_eq!(s.name(), "speculative");
        let mut t = target.clone();
        let g = generate_greedy(&mut t, &mut s, &[1, 2], 30);
        assert_eq!(g.tokens, want.tokens, "pipeline {pipeline}");
    }
}

#[test]
fn mismatched_vocabularies_are_refused_and_the_draft_kept() {
    let mut target = InMemoryModel::random(12, 1);
    let mut s =
        PipelinedSpeculative::new(InMemoryModel::random(11, 1), SpeculativeConfig::default());
    let e = generate(&mut target, &mut s, &[1], &greedy(5), &mut |_| true).unwrap_err();
    assert!(
        e.to_string().contains("11") && e.to_string().contains("12"),
        "{e}"
    );
    assert!(s.draft().is_some() && !s.worker_running());
}

#[test]
fn pipeline_counters_add_up() {
    let (target, draft) = sibling_pair();
    let mut s = PipelinedSpeculative::new(draft, SpeculativeConfig::fixed(4));
    let mut t = target.clone();
    let g = generate_greedy(&mut t, &mut s, &[1, 2, 3], 60);
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
