//! Greedy conformance on real models: every drafting strategy, on the whole
//! prompt corpus (code, prose, chat, copying-heavy), must emit the baseline's
//! tokens — identical in bit-exact mode, and otherwise identical except at
//! flips that the kernels explain (replayed and checked by
//! `common::compare_with_baseline`, and reported with their count).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use augur::core::DraftLength;
use augur::llama::GgufModel;
use augur::speculative::{PipelinedSpeculative, SpeculativeConfig};
use augur::{
    build_strategy, BuildOptions, DraftModel, ExactMode, Model, Strategy, StrategyConfig,
    StrategyKind,
};
use common::{compare_with_baseline, corpus, model, session, tokens};

const TARGET: &str = "qwen2.5-coder-1.5b";
const DRAFT: &str = "qwen2.5-coder-0.5b";
/// Tokens generated per prompt.
const N: usize = 24;
const N_CTX: usize = 1024;

/// The calibration of `target` (bit-exact pass size and pass costs).
fn calibration(target: &Arc<GgufModel>) -> augur::calibration::Calibration {
    augur::calibration::cached_or_measure(target, 0, 16).unwrap()
}

/// What the engine hands every strategy after calibration: the calibrated
/// cost model and the exactness mode.
fn calibrated(target: &Arc<GgufModel>, exact: ExactMode) -> BuildOptions {
    let cal = calibration(target);
    BuildOptions {
        costs: Some(augur::core::CostModel::calibrated(
            &cal.pass_seconds,
            0.0,
            cal.max_exact_pass,
        )),
        exact,
    }
}

/// Whether `options` run bit-exact.
fn bit_exact(options: &BuildOptions) -> bool {
    let size = options.costs.as_ref().map_or(1, |c| c.exact_pass());
    options.exact.resolve(size)
}

/// Runs `config` over the corpus and asserts conformance; returns the flips.
fn check_corpus(
    label: &str,
    config: &StrategyConfig,
    options: &BuildOptions,
    draft: Option<&str>,
) -> usize {
    check_corpus_with(label, config, options, draft, &|d| {
        build_strategy(config, options, d).unwrap()
    })
}

/// [`check_corpus`] with the strategy made by `make` from the draft session.
fn check_corpus_with(
    label: &str,
    config: &StrategyConfig,
    options: &BuildOptions,
    draft: Option<&str>,
    make: &dyn Fn(Option<DraftModel>) -> Box<dyn Strategy + Send>,
) -> usize {
    let target = model(TARGET);
    let bit_exact = bit_exact(options);
    let tolerance = common::kernel_tolerance(&calibration(&target));
    let mut flips = 0;
    let mut compared = 0;
    let mut failures = Vec::new();
    let la_window = match config {
        StrategyConfig::Lookahead(la) => la.window as i32,
        _ => 0,
    };
    // Deciding rows: the main chain's (sequence 0), lookahead's candidates
    // (past its window's sequences), auto's copy beside the draft model (1).
    let seq_ok = |s: i32| {
        s == 0
            || (config.kind() == StrategyKind::Lookahead && s > la_window)
            || (config.kind() == StrategyKind::Auto && s == 1)
    };
    let pipelined = config.speculative().is_some_and(|s| s.pipeline);
    for p in corpus() {
        let prompt = tokens(&target, &p);
        let mut target_session = session(&target, N_CTX, config.sequences_needed());
        let draft_model = draft.map(|d| {
            let m = model(d);
            let threads = if pipelined { 1 } else { 0 };
            Box::new(common::session_with_threads(&m, N_CTX, 1, threads)) as DraftModel
        });
        let mut strategy = make(draft_model);
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

fn speculative(mode: DraftLength) -> StrategyConfig {
    StrategyConfig::Speculative(SpeculativeConfig {
        mode,
        ..SpeculativeConfig::default()
    })
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
    let options = calibrated(&model(TARGET), ExactMode::Kernel);
    for gamma in [1, 4, 8] {
        let config = speculative(DraftLength::Fixed(gamma));
        assert!(!bit_exact(&options));
        check_corpus(
            &format!("speculative γ={gamma}"),
            &config,
            &options,
            Some(DRAFT),
        );
    }
}

#[test]
fn speculative_adaptive_matches_baseline() {
    let options = calibrated(&model(TARGET), ExactMode::Auto);
    let config = speculative(DraftLength::Adaptive);
    check_corpus("speculative adaptive", &config, &options, Some(DRAFT));
}

#[test]
fn speculative_bit_exact_mode_is_identical() {
    let options = calibrated(&model(TARGET), ExactMode::Bit);
    let config = speculative(DraftLength::Fixed(8));
    assert!(bit_exact(&options));
    let flips = check_corpus("speculative bit-exact", &config, &options, Some(DRAFT));
    assert_eq!(flips, 0);
}

#[test]
fn speculative_pipelined_matches_baseline() {
    // The pipelined drafter itself, whether or not the cost model would pick
    // it on this machine.
    let options = calibrated(&model(TARGET), ExactMode::Kernel);
    for mode in [DraftLength::Fixed(4), DraftLength::Adaptive] {
        let spec = SpeculativeConfig {
            mode,
            pipeline: true,
            initial_costs: options.costs.clone(),
            ..SpeculativeConfig::default()
        };
        let config = StrategyConfig::Speculative(spec.clone());
        check_corpus_with(
            &format!("speculative pipelined {mode:?}"),
            &config,
            &options,
            Some(DRAFT),
            &|d| Box::new(PipelinedSpeculative::new(d.unwrap(), spec.clone())),
        );
    }
}

#[test]
fn prompt_lookup_matches_baseline() {
    let options = calibrated(&model(TARGET), ExactMode::Kernel);
    // The defaults (drafts up to 15, passes of 16) and short drafts.
    for (min, max, draft_max) in [(1, 4, augur::prompt_lookup::DEFAULT_DRAFT_MAX), (2, 3, 3)] {
        let config = StrategyConfig::PromptLookup(augur::prompt_lookup::PromptLookupConfig {
            ngram_min: min,
            ngram_max: max,
            draft_max,
            ..Default::default()
        });
        check_corpus(
            &format!("prompt-lookup n={min}..{max} draft≤{draft_max}"),
            &config,
            &options,
            None,
        );
    }
}

#[test]
fn lookahead_matches_baseline() {
    // Without measured costs lookahead never backs off: with this machine's
    // calibration it would decode the Q4_K_M target plainly (its passes
    // cannot pay here), and the corpus would test nothing of it.
    let mut options = calibrated(&model(TARGET), ExactMode::Kernel);
    options.costs = None;
    for (w, n, g) in [(1, 3, 1), (3, 4, 2)] {
        let config = StrategyConfig::Lookahead(augur::lookahead::LookaheadConfig::new(w, n, g));
        check_corpus(
            &format!("lookahead W={w} N={n} G={g}"),
            &config,
            &options,
            None,
        );
    }
}

#[test]
fn repeat_last_matches_baseline() {
    // The example drafter, registered with one line, under the same test.
    let options = calibrated(&model(TARGET), ExactMode::Kernel);
    let config = StrategyConfig::parse("repeat-last:draft-max=3", &[]).unwrap();
    check_corpus("repeat-last n=3", &config, &options, None);
}

#[test]
fn auto_matches_baseline() {
    // auto choosing each step among prompt lookup, the draft model and
    // plain decoding (the draft costs nothing in these options, so the draft
    // model is tried wherever its acceptance makes it pay).
    let options = calibrated(&model(TARGET), ExactMode::Kernel);
    let config = StrategyConfig::parse("auto", &[]).unwrap();
    check_corpus("auto", &config, &options, Some(DRAFT));
}

#[test]
fn auto_bit_exact_mode_is_identical() {
    let options = calibrated(&model(TARGET), ExactMode::Bit);
    assert!(bit_exact(&options));
    let config = StrategyConfig::parse("auto", &[]).unwrap();
    let flips = check_corpus("auto bit-exact", &config, &options, Some(DRAFT));
    assert_eq!(flips, 0);
}
