//! Greedy exactness: prompt lookup and lookahead emit exactly the baseline's
//! tokens, on in-memory models in history mode (logits depend on everything a
//! query attends to, so a wrong attention layout or a forgotten KV cleanup
//! changes the output or fails the model's position checks).
#![allow(clippy::unwrap_used)]

use augur_baseline::Baseline;
use augur_core::testing::{assert_greedy_matches, generate_greedy, InMemoryModel};
use augur_core::{
    generate, CoreError, GenerateParams, Rng, SamplingParams, StopReason, Strategy, TokenId,
};
use augur_lookahead::{Lookahead, LookaheadConfig};
use augur_prompt_lookup::{Evidence, PromptLookup, PromptLookupConfig};

/// One test case: a model, a prompt and a token limit.
struct Case {
    model: InMemoryModel,
    prompt: Vec<TokenId>,
    max_tokens: usize,
}

fn random_tokens(rng: &mut Rng, v: usize, n: usize) -> Vec<TokenId> {
    (0..n)
        .map(|_| (rng.next_u64() % v as u64) as TokenId)
        .collect()
}

/// Prompts of several shapes: random, a repeated segment, a constant run, a
/// single token, a periodic pattern.
fn prompt(rng: &mut Rng, v: usize, shape: u64) -> Vec<TokenId> {
    match shape % 5 {
        0 => {
            let n = 2 + (rng.next_u64() % 12) as usize;
            random_tokens(rng, v, n)
        }
        1 => {
            let seg_len = 3 + (rng.next_u64() % 6) as usize;
            let seg = random_tokens(rng, v, seg_len);
            let mut p = random_tokens(rng, v, 2);
            p.extend(&seg);
            p.extend(random_tokens(rng, v, 1));
            p.extend(&seg);
            p.extend(&seg[..seg_len / 2]);
            p
        }
        2 => vec![(rng.next_u64() % v as u64) as TokenId; 2 + (rng.next_u64() % 6) as usize],
        3 => vec![(rng.next_u64() % v as u64) as TokenId],
        _ => {
            let period = 2 + (rng.next_u64() % 3) as usize;
            let seg = random_tokens(rng, v, period);
            (0..15).map(|i| seg[i % period]).collect()
        }
    }
}

/// Many cases: vocabularies 5..=40, history mode, some with an
/// end-of-generation token, some with a small context, token limits from 1 up.
fn cases(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let v = 5 + (rng.next_u64() % 36) as usize;
            let mut model = InMemoryModel::random(v, rng.next_u64()).with_history(rng.next_u64());
            if i % 4 == 1 {
                model = model.with_eog((rng.next_u64() % v as u64) as TokenId);
            }
            let prompt = prompt(&mut rng, v, i as u64);
            if i % 5 == 2 {
                let room = 1 + (rng.next_u64() % 12) as usize;
                model = model.with_n_ctx(prompt.len() + room);
            }
            let max_tokens = match i % 6 {
                0 => 1,
                1 => 2 + (rng.next_u64() % 5) as usize,
                _ => 10 + (rng.next_u64() % 60) as usize,
            };
            Case {
                model,
                prompt,
                max_tokens,
            }
        })
        .collect()
}

#[derive(Default, Debug)]
struct Totals {
    runs: usize,
    accepted: u64,
    drafted: u64,
    passes: u64,
    baseline_passes: u64,
    pool_hits: u64,
    eog_stops: usize,
    ctx_stops: usize,
    max_stops: usize,
}

/// Runs every case with `make()` and the baseline; the tokens and the stop
/// reason must be identical, and no case may take more target passes. The
/// workload must also exercise what it claims to: drafts accepted, every
/// stop reason seen.
fn check_against_baseline(
    label: &str,
    cases: &[Case],
    mut make: impl FnMut() -> Box<dyn Strategy>,
) {
    let mut t = Totals::default();
    for (i, c) in cases.iter().enumerate() {
        let at = format!(
            "{label}, case {i}: prompt {:?}, max_tokens {}",
            c.prompt, c.max_tokens
        );
        let (want, got) = assert_greedy_matches(
            &c.model,
            &mut Baseline,
            make().as_mut(),
            &c.prompt,
            c.max_tokens,
            &at,
        );
        assert!(got.stats.target_passes <= want.stats.target_passes, "{at}");
        t.runs += 1;
        t.accepted += got.stats.accepted;
        t.drafted += got.stats.drafted;
        t.passes += got.stats.target_passes;
        t.baseline_passes += want.stats.target_passes;
        t.pool_hits += got.stats.pool_hits;
        match want.stop {
            StopReason::EndOfGeneration => t.eog_stops += 1,
            StopReason::ContextFull => t.ctx_stops += 1,
            StopReason::MaxTokens => t.max_stops += 1,
            StopReason::Cancelled => {}
        }
    }
    assert!(t.accepted > 0, "{label}: no draft was ever accepted: {t:?}");
    assert!(t.passes < t.baseline_passes, "{label}: {t:?}");
    assert!(t.pool_hits > 0, "{label}: {t:?}");
    assert!(
        t.eog_stops > 0 && t.ctx_stops > 0 && t.max_stops > 0,
        "{label}: {t:?}"
    );
}

#[test]
fn lookahead_matches_baseline() {
    let cases = cases(120, 1);
    for (w, n, g) in [(1, 3, 1), (2, 3, 2), (4, 4, 3), (5, 5, 5), (3, 6, 1)] {
        for text_pool in [false, true] {
            let label = format!("lookahead W={w} N={n} G={g} text_pool={text_pool}");
            let config = LookaheadConfig {
                seed_pool_from_prompt: text_pool,
                pool_from_output: text_pool,
                ..LookaheadConfig::new(w, n, g)
            };
            check_against_baseline(&label, &cases, || {
                Box::new(Lookahead::new(config.clone()).unwrap())
            });
        }
    }
}

#[test]
fn lookahead_default_matches_baseline() {
    let cases = cases(80, 2);
    check_against_baseline("lookahead default", &cases, || {
        Box::new(Lookahead::default())
    });
}

#[test]
fn prompt_lookup_matches_baseline() {
    let cases = cases(120, 3);
    let configs = [
        PromptLookupConfig::default(),
        PromptLookupConfig {
            ngram_min: 1,
            ngram_max: 1,
            draft_max: 3,
            ..Default::default()
        },
        PromptLookupConfig {
            ngram_min: 2,
            ngram_max: 4,
            draft_max: 4,
            draft_cost: 0.0,
            evidence: Evidence::none(),
            ..Default::default()
        },
        PromptLookupConfig {
            ngram_min: 1,
            ngram_max: 8,
            draft_max: 16,
            draft_cost: 0.05,
            prior_rates: [0.2; augur_prompt_lookup::RUN_CLASS_COUNT],
            decay: 0.5,
            ..Default::default()
        },
    ];
    for (k, config) in configs.into_iter().enumerate() {
        let label = format!("prompt-lookup config {k}");
        check_against_baseline(&label, &cases, || {
            Box::new(PromptLookup::new(config.clone()).unwrap())
        });
    }
}

/// One strategy object reused across generations must reset its state.
#[test]
fn strategies_are_reusable_across_generations() {
    let cases = cases(30, 4);
    let mut la = Lookahead::new(LookaheadConfig::new(2, 3, 2)).unwrap();
    let mut pl = PromptLookup::default();
    for (i, c) in cases.iter().enumerate() {
        let want = generate_greedy(&mut c.model.clone(), &mut Baseline, &c.prompt, c.max_tokens);
        for s in [&mut la as &mut dyn Strategy, &mut pl] {
            let got = generate_greedy(&mut c.model.clone(), s, &c.prompt, c.max_tokens);
            assert_eq!(got.tokens, want.tokens, "{}, case {i}", s.name());
        }
    }
}

#[test]
fn lookahead_refuses_sampling() {
    let mut m = InMemoryModel::random(8, 1);
    let params = GenerateParams {
        max_tokens: 5,
        sampling: SamplingParams {
            temperature: 0.7,
            ..SamplingParams::greedy()
        },
    };
    let e = generate(
        &mut m,
        &mut Lookahead::default(),
        &[1, 2],
        &params,
        &mut |_| true,
    )
    .unwrap_err();
    match e {
        CoreError::Unsupported { strategy, reason } => {
            assert_eq!(strategy, "lookahead");
            assert!(reason.contains("greedy"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other}"),
    }
}
