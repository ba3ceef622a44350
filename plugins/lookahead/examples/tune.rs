//! Compares prompt-lookup settings and lookahead layouts on the in-memory
//! model, greedy.
//!
//! Run: `cargo run --release -p augur-lookahead --example tune`
//!
//! Three workloads: "copy" (sharp bigram models whose argmax chain cycles,
//! with prompts that already contain the cycle: drafts are right most of the
//! time), "mixed" (the same with softer rows and history mode, so the chain
//! sometimes leaves the copied text) and "free" (history-mode models and
//! random prompts: matches are mostly by chance). For each setting it prints
//! tokens per target pass and the modeled speedup over plain decoding under
//! two measured cost models of a pass over k tokens (speculative-math.md):
//! compute-bound Q4_K_M, cost(k) = 1 + 0.65(k − 1) ("cb x"); memory-bound F16,
//! cost(k) from the measured throughput table ("mb x"). A policy should be
//! read in its own regime: `draft_cost` 0.65 under "cb", 0.1 under "mb".
//!
//! Results (40 cases each, 128 tokens): the defaults give 1.40 / 1.00 / 1.00
//! under "cb" (copy / mixed / free: never slower than plain decoding), and
//! with `draft_cost` 0.1, 3.99 / 1.51 / 1.04 under "mb". n-gram ranges 1..=3
//! and 1..=4 are within noise; 2..=4 loses on "mixed"; dropping the evidence
//! rule or drafting a fixed length loses on "cb".
//!
//! Lookahead (the layouts are printed without and with "+text", the pool fed
//! from the prompt and the committed text): no layout pays under "cb"; under
//! "mb" the smallest, W=1 N=3 G=1 +text, is the best overall (2.34 / 1.44 /
//! 0.99), larger windows lose more on text that is not repeated, and without
//! the text sources the window's harvest alone rarely pays (0.91 / 1.00 /
//! 0.93). The in-memory model is not a language model: these numbers only
//! rank the layouts for now; the defaults are to be re-tuned on real models.
//! A setting should win on "copy" and lose almost nothing on "free".

use augur_core::testing::InMemoryModel;
use augur_core::Strategy;
use augur_core::{generate, GenerateParams, Rng, SamplingParams, TokenId};
use augur_lookahead::{Lookahead, LookaheadConfig};
use augur_prompt_lookup::{Evidence, PromptLookup, PromptLookupConfig};

fn compute_bound(k: usize) -> f64 {
    1.0 + 0.65 * (k as f64 - 1.0)
}

fn memory_bound(k: usize) -> f64 {
    // F16, tokens/s for k = 1..8 on 2 cores; 0.2 per token beyond.
    const T: [f64; 8] = [8.2, 16.8, 24.4, 26.9, 32.6, 34.8, 36.5, 38.7];
    if k <= 8 {
        k as f64 / T[k - 1] * T[0]
    } else {
        8.0 / T[7] * T[0] + 0.2 * (k - 8) as f64
    }
}

struct Case {
    model: InMemoryModel,
    prompt: Vec<TokenId>,
}

fn copy_cases(n: usize, best_weight: f64, history: bool) -> Vec<Case> {
    let mut rng = Rng::new(7);
    (0..n)
        .map(|_| {
            let v = 16 + (rng.next_u64() % 48) as usize;
            // Each token's argmax is a random successor: the chain cycles.
            let rows: Vec<Vec<f64>> = (0..v)
                .map(|_| {
                    let best = (rng.next_u64() % v as u64) as usize;
                    (0..v)
                        .map(|j| if j == best { best_weight } else { 1.0 })
                        .collect()
                })
                .collect();
            let mut model = InMemoryModel::bigram(&rows);
            let noise_seed = rng.next_u64();
            // The prompt: random text, then a stretch of the chain itself.
            let mut prompt: Vec<TokenId> = (0..10)
                .map(|_| (rng.next_u64() % v as u64) as TokenId)
                .collect();
            let mut t = prompt[9];
            for _ in 0..20 {
                let row = model.row(t);
                t = (0..v)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0) as TokenId;
                prompt.push(t);
            }
            prompt.extend((0..5).map(|_| (rng.next_u64() % v as u64) as TokenId));
            if history {
                model = model.with_history(noise_seed);
            }
            Case { model, prompt }
        })
        .collect()
}

fn free_cases(n: usize) -> Vec<Case> {
    let mut rng = Rng::new(8);
    (0..n)
        .map(|_| {
            let v = 32 + (rng.next_u64() % 64) as usize;
            let model = InMemoryModel::random(v, rng.next_u64()).with_history(rng.next_u64());
            let prompt = (0..40)
                .map(|_| (rng.next_u64() % v as u64) as TokenId)
                .collect();
            Case { model, prompt }
        })
        .collect()
}

/// (tokens per pass, compute-bound speedup, memory-bound speedup).
fn measure(cases: &[Case], config: &PromptLookupConfig) -> (f64, f64, f64) {
    measure_with(cases, &mut || {
        Box::new(PromptLookup::new(config.clone()).expect("valid settings"))
    })
}

fn measure_with(cases: &[Case], make: &mut dyn FnMut() -> Box<dyn Strategy>) -> (f64, f64, f64) {
    let (mut tokens, mut passes, mut cb, mut mb) = (0usize, 0u64, 0.0, 0.0);
    for c in cases {
        let mut m = c.model.clone();
        let mut s = make();
        let params = GenerateParams {
            max_tokens: 128,
            sampling: SamplingParams::greedy(),
        };
        let before = m.batch_sizes.len();
        let g =
            generate(&mut m, s.as_mut(), &c.prompt, &params, &mut |_| true).expect("generation");
        tokens += g.tokens.len();
        passes += g.stats.target_passes;
        // Skip the prefill pass.
        for &k in &m.batch_sizes[before + usize::from(c.prompt.len() > 1)..] {
            cb += compute_bound(k);
            mb += memory_bound(k);
        }
    }
    let t = tokens as f64;
    (t / passes as f64, t / cb, t / mb)
}

fn main() {
    let copy = copy_cases(40, 50.0, false);
    let mixed = copy_cases(40, 8.0, true);
    let free = free_cases(40);
    let base = PromptLookupConfig::default();
    let mut settings: Vec<(String, PromptLookupConfig)> = Vec::new();
    for (lo, hi) in [(1, 2), (1, 3), (1, 4), (2, 4), (1, 6)] {
        settings.push((
            format!("ngram {lo}..={hi}"),
            PromptLookupConfig {
                ngram_min: lo,
                ngram_max: hi,
                ..base.clone()
            },
        ));
    }
    for d in [2, 4, 16] {
        settings.push((
            format!("draft_max {d}"),
            PromptLookupConfig {
                draft_max: d,
                ..base.clone()
            },
        ));
    }
    for c in [0.3, 0.1] {
        settings.push((
            format!("draft_cost {c}"),
            PromptLookupConfig {
                draft_cost: c,
                ..base.clone()
            },
        ));
    }
    for r in [0.5, 0.9] {
        settings.push((
            format!("prior rates {r}"),
            PromptLookupConfig {
                prior_rates: [r; augur_prompt_lookup::RUN_CLASS_COUNT],
                ..base.clone()
            },
        ));
    }
    for d in [0.9, 0.995] {
        settings.push((
            format!("decay {d}"),
            PromptLookupConfig {
                decay: d,
                ..base.clone()
            },
        ));
    }
    settings.push((
        "draft_cost 0.1, max 16".into(),
        PromptLookupConfig {
            draft_cost: 0.1,
            draft_max: 16,
            ..base.clone()
        },
    ));
    settings.push((
        "no evidence rule".into(),
        PromptLookupConfig {
            evidence: Evidence::none(),
            ..base.clone()
        },
    ));
    settings.push((
        "fixed 4, never off".into(),
        PromptLookupConfig {
            draft_max: 4,
            draft_cost: 0.0,
            evidence: Evidence::none(),
            ..base.clone()
        },
    ));
    println!(
        "defaults: ngram 1..=4, draft_max 15, draft_cost 0.7, prior rates by run length \
         0.35/0.55/0.85/0.95, decay 0.98, llama.cpp's evidence rule"
    );
    println!(
        "{:<22} | {:>8} {:>6} {:>6} | {:>8} {:>6} {:>6} | {:>8} {:>6} {:>6}",
        "setting",
        "copy t/p",
        "cb x",
        "mb x",
        "mixd t/p",
        "cb x",
        "mb x",
        "free t/p",
        "cb x",
        "mb x"
    );
    for (name, cfg) in std::iter::once(("default".to_string(), base.clone())).chain(settings) {
        let (a, b, c) = measure(&copy, &cfg);
        let (d, e, f) = measure(&mixed, &cfg);
        let (g, h, i) = measure(&free, &cfg);
        println!(
            "{name:<22} | {a:>8.2} {b:>6.2} {c:>6.2} | {d:>8.2} {e:>6.3} {f:>6.3} | {g:>8.2} {h:>6.3} {i:>6.3}"
        );
    }
    println!();
    println!("lookahead (W, N, G)     | copy t/p   cb x   mb x | mixd t/p   cb x   mb x | free t/p   cb x   mb x");
    let layouts = [
        (1, 3, 1, false),
        (1, 3, 1, true),
        (2, 3, 1, false),
        (2, 3, 1, true),
        (1, 4, 1, true),
        (1, 3, 2, true),
        (1, 4, 1, false),
        (2, 3, 2, false),
        (2, 4, 2, false),
        (4, 4, 3, false),
        (15, 5, 15, false),
    ];
    for (w, n, g, seed_pool) in layouts {
        let cfg = LookaheadConfig {
            seed_pool_from_prompt: seed_pool,
            pool_from_output: seed_pool,
            ..LookaheadConfig::new(w, n, g)
        };
        let mut make =
            || -> Box<dyn Strategy> { Box::new(Lookahead::new(cfg.clone()).expect("valid")) };
        let (a, b, c) = measure_with(&copy, &mut make);
        let (d, e, f) = measure_with(&mixed, &mut make);
        let (x, y, z) = measure_with(&free, &mut make);
        println!(
            "{:<22} | {a:>8.2} {b:>6.2} {c:>6.2} | {d:>8.2} {e:>6.3} {f:>6.3} | {x:>8.2} {y:>6.3} {z:>6.3}",
            format!("({w}, {n}, {g}){}", if seed_pool { " +text" } else { "" })
        );
    }
}
