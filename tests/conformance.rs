//! Greedy conformance on real models: every drafting strategy, on the whole
//! prompt corpus (code, prose, chat, copying-heavy), must emit the baseline's
//! tokens — identical in bit-exact mode, and otherwise identical except at
//! flips that the kernels explain (replayed and checked by
//! `common::compare_with_baseline`, and reported with their count).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use augur::llama::GgufModel;
use augur::speculative::{DraftLength, SpeculativeConfig};
use augur::{build_strategy, ExactMode, Model, StrategyConfig, StrategyKind};
use common::{compare_with_baseline, corpus, model, session, tokens};

const TARGET: &str = "qwen2.5-coder-1.5b";
const DRAFT: &str = "qwen2.5-coder-0.5b";
/// Tokens generated per prompt.
const N: usize = 24;
const N_CTX: usize = 1024;

/// The calibrated configuration for `kind` on `target` (bit-exact pass size and
/// pass costs, as the engine would apply them).
fn calibration(target: &Arc<GgufModel>) -> augur::calibration::Calibration {
    augur::calibration::cached_or_measure(target, 0, 16).unwrap()
}

fn calibrated(target: &Arc<GgufModel>, mut config: StrategyConfig) -> StrategyConfig {
    let cal = calibration(target);
    config
        .apply_calibration(cal.max_exact_pass, &cal.pass_seconds)
        .unwrap();
    config
}

/// Runs `config` over the corpus and asserts conformance; returns the flips.
fn check_corpus(label: &str, config: &StrategyConfig, draft: Option<&str>) -> usize {
    let target = model(TARGET);
    let bit_exact = config.speculative.exact;
    let tolerance = common::kernel_tolerance(&calibration(&target));
    let mut flips = 0;
    let mut compared = 0;
    let mut failures = Vec::new();
    let la_window = config.lookahead.window as i32;
    let seq_ok = |s: i32| s == 0 || (config.kind == StrategyKind::Lookahead && s > la_window);
    for p in corpus() {
        let prompt = tokens(&target, &p);
        let mut target_session = session(&target, N_CTX, config.sequences_needed());
        let draft_model = draft.map(|d| {
            let m = model(d);
            let threads = if config.speculative.pipeline { 1 } else { 0 };
            Box::new(common::session_with_threads(&m, N_CTX, 1, threads)) as augur::DraftModel
        });
        let mut strategy = build_strategy(config, draft_model).unwrap();
        match compare_with_baseline(
            &mut target_session,
            strategy.as_mut(),
            &prompt,
            N,
            bit_exact,
            tolerance,
            &seq_ok,
        ) {
            Ok(c) => {
                flips += c.flips;
                compared += c.compared;
            }
            Err(e) => failures.push(format!("{}: {e}", p.id)),
        }
        assert_eq!(target_session.n_vocab(), target.n_vocab());
    }
    eprintln!(
        "{label}: {} prompts, {compared} tokens compared, {flips} kernel-explained flips",
        corpus().len()
    );
    assert!(
        failures.is_empty(),
        "{label}: unexplained differences:\n{}",
        failures.join("\n")
    );
    flips
}

fn speculative(mode: DraftLength, exact: ExactMode) -> StrategyConfig {
    let target = model(TARGET);
    let mut config = StrategyConfig::new(StrategyKind::Speculative);
    config.speculative = SpeculativeConfig {
        mode,
        ..SpeculativeConfig::default()
    };
    config.exact = exact;
    calibrated(&target, config)
}

#[test]
fn corpus_is_large_and_varied() {
    let c = corpus();
    assert!(c.len() >= 20);
    for kind in ["code", "prose", "chat", "copy"] {
        assert!(c.iter().filter(|p| p.kind == kind).count() >= 4, "{kind}");
    }
}

#[test]
fn speculative_fixed_draft_lengths_match_baseline() {
    for gamma in [1, 4, 8] {
        let config = speculative(DraftLength::Fixed(gamma), ExactMode::Kernel);
        assert!(!config.speculative.exact);
        check_corpus(&format!("speculative γ={gamma}"), &config, Some(DRAFT));
    }
}

#[test]
fn speculative_adaptive_matches_baseline() {
    let config = speculative(DraftLength::Adaptive, ExactMode::Auto);
    check_corpus("speculative adaptive", &config, Some(DRAFT));
}

#[test]
fn speculative_bit_exact_mode_is_identical() {
    let config = speculative(DraftLength::Fixed(8), ExactMode::Bit);
    assert!(config.speculative.exact);
    let flips = check_corpus("speculative bit-exact", &config, Some(DRAFT));
    assert_eq!(flips, 0);
}

#[test]
fn speculative_pipelined_matches_baseline() {
    for mode in [DraftLength::Fixed(4), DraftLength::Adaptive] {
        let mut config = speculative(mode, ExactMode::Kernel);
        config.speculative.pipeline = true;
        check_corpus(
            &format!("speculative pipelined {mode:?}"),
            &config,
            Some(DRAFT),
        );
    }
}

#[test]
fn prompt_lookup_matches_baseline() {
    let target = model(TARGET);
    // The defaults (drafts up to 15, passes of 16) and short drafts.
    for (min, max, draft_max) in [(1, 4, augur::lookahead::DEFAULT_DRAFT_MAX), (2, 3, 3)] {
        let mut config = StrategyConfig::new(StrategyKind::PromptLookup);
        config.prompt_lookup.ngram_min = min;
        config.prompt_lookup.ngram_max = max;
        config.prompt_lookup.draft_max = draft_max;
        config.exact = ExactMode::Kernel;
        let config = calibrated(&target, config);
        check_corpus(
            &format!("prompt-lookup n={min}..{max} draft≤{draft_max}"),
            &config,
            None,
        );
    }
}

#[test]
fn lookahead_matches_baseline() {
    let target = model(TARGET);
    for (w, n, g) in [(1, 3, 1), (3, 4, 2)] {
        let mut config = StrategyConfig::new(StrategyKind::Lookahead);
        config.lookahead = augur::lookahead::LookaheadConfig::new(w, n, g);
        config.exact = ExactMode::Kernel;
        let config = calibrated(&target, config);
        check_corpus(&format!("lookahead W={w} N={n} G={g}"), &config, None);
    }
}
