//! Criterion benches, one module per subject:
//! - `verification`: the shared verifier on realistic proposals;
//! - `sampling`: filters and softmax over a 152k-token vocabulary;
//! - `ngram`: n-gram lookup on a long history (prompt-lookup drafting);
//! - `model`: one target pass over 1, 4 and 8 tokens with a real model
//!   (SmolLM2-135M by default, `AUGUR_BENCH_MODEL=name-or-file` for another,
//!   `AUGUR_BENCH_THREADS=n` to pin the thread count), loaded outside the
//!   measured loop and rolled back between iterations.
//!
//! `cargo bench --bench augur` runs them all in a few minutes; add a filter
//! (`cargo bench --bench augur -- sampling`) for one subject.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

/// A small deterministic generator, so every run benches the same data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

mod verification {
    use super::XorShift;
    use augur::core::sampling::SparseDist;
    use augur::core::verify::{verify, verify_greedy};
    use augur::core::Proposal;
    use augur::core::Rng;
    use augur::TokenId;
    use criterion::{black_box, Criterion};

    /// A peaked distribution over `support` tokens around `center`, like a
    /// filtered top-k distribution.
    fn peaked(rng: &mut XorShift, center: TokenId, support: u32) -> SparseDist {
        let pairs = (0..support).map(|i| {
            let w = if i == 0 {
                8.0
            } else {
                rng.unit() / (1.0 + i as f64)
            };
            (center.wrapping_add(i * 97) % 151_936, w)
        });
        SparseDist::from_weights(pairs).expect("positive weights")
    }

    /// A proposal of `gamma` drafts where the draft agrees with the target
    /// most of the time (q close to p), as a good draft model does.
    fn proposal(gamma: usize) -> (Proposal, Vec<SparseDist>) {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut proposal = Proposal::new();
        let mut p = Vec::new();
        for i in 0..gamma {
            let center = 1000 + 31 * i as TokenId;
            let q = peaked(&mut rng, center, 40);
            p.push(peaked(&mut rng, center, 40));
            proposal.push(q.mode(), q, 1.0);
        }
        p.push(peaked(&mut rng, 7, 40));
        (proposal, p)
    }

    pub fn bench(c: &mut Criterion) {
        let mut g = c.benchmark_group("verification");
        for gamma in [4usize, 8] {
            let (proposal, p) = proposal(gamma);
            let mut rng = Rng::new(1);
            g.bench_function(format!("rejection_sampling_gamma{gamma}_top40"), |b| {
                b.iter(|| verify(black_box(&proposal), black_box(&p), &mut rng))
            });
            let drafts: Vec<TokenId> = proposal.tokens.clone();
            let mut argmax = drafts.clone();
            argmax.push(42);
            // Rejected at the middle position.
            argmax[gamma / 2] += 1;
            g.bench_function(format!("greedy_gamma{gamma}"), |b| {
                b.iter(|| verify_greedy(black_box(&drafts), black_box(&argmax)))
            });
        }
        g.finish();
    }
}

mod sampling {
    use super::XorShift;
    use augur::SamplingParams;
    use criterion::{black_box, Criterion};

    /// Qwen2.5's vocabulary size.
    const VOCAB: usize = 151_936;

    /// Logits shaped like a language model's: a long flat tail and a few
    /// strong candidates.
    fn logits() -> Vec<f32> {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut v: Vec<f32> = (0..VOCAB)
            .map(|_| (rng.unit() * 6.0 - 3.0) as f32)
            .collect();
        for (i, boost) in [(220usize, 14.0f32), (11, 12.5), (13, 11.0), (4913, 10.0)] {
            v[i] += boost;
        }
        v
    }

    pub fn bench(c: &mut Criterion) {
        let logits = logits();
        let mut g = c.benchmark_group("sampling_152k");
        let cases = [
            ("argmax_temperature0", SamplingParams::greedy()),
            (
                "top_k40_top_p0.95_min_p0.05",
                SamplingParams {
                    temperature: 0.8,
                    ..SamplingParams::greedy()
                },
            ),
            (
                "top_p0.9_only",
                SamplingParams {
                    temperature: 0.8,
                    top_k: 0,
                    top_p: 0.9,
                    min_p: 0.0,
                    seed: 0,
                },
            ),
            (
                "full_softmax_no_filters",
                SamplingParams {
                    temperature: 1.0,
                    top_k: 0,
                    top_p: 1.0,
                    min_p: 0.0,
                    seed: 0,
                },
            ),
        ];
        for (name, params) in cases {
            g.bench_function(name, |b| b.iter(|| params.distribution(black_box(&logits))));
        }
        g.finish();
    }
}

mod ngram {
    use super::XorShift;
    use augur::prompt_lookup::{Evidence, NgramIndex, PromptLookupDrafter};
    use augur::TokenId;
    use criterion::{black_box, BatchSize, Criterion};

    /// A 4096-token history like code: a vocabulary of a few hundred
    /// frequent tokens, with earlier passages repeated (what prompt lookup
    /// finds), ending in a repeated passage.
    fn history() -> Vec<TokenId> {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let mut h: Vec<TokenId> = Vec::new();
        while h.len() < 4096 {
            if h.len() > 256 && rng.unit() < 0.3 {
                let start = (rng.next() as usize) % (h.len() - 64);
                let len = 16 + (rng.next() as usize) % 48;
                let copy: Vec<TokenId> = h[start..start + len].to_vec();
                h.extend(copy);
            } else {
                for _ in 0..32 {
                    h.push((rng.next() % 400) as TokenId);
                }
            }
        }
        h.truncate(4096);
        // End with a copy of an earlier passage, so the lookup has a match.
        let tail: Vec<TokenId> = h[1000..1012].to_vec();
        h.extend(tail);
        h
    }

    pub fn bench(c: &mut Criterion) {
        let history = history();
        let mut g = c.benchmark_group("ngram_4k_history");
        g.bench_function("index_from_scratch", |b| {
            b.iter(|| {
                let mut index = NgramIndex::new(1, 4);
                index.update(black_box(&history));
                index
            })
        });
        let mut index = NgramIndex::new(1, 4);
        index.update(&history);
        let evidence = Evidence::default();
        g.bench_function("find_longest_match", |b| {
            b.iter(|| index.find(black_box(&history), &evidence))
        });
        // One generation step of prompt lookup: index the new token, find a
        // candidate and copy up to 8 tokens of it.
        let mut out = Vec::new();
        g.bench_function("prompt_lookup_candidate_step", |b| {
            b.iter_batched(
                || {
                    let mut pl = PromptLookupDrafter::new(Default::default())
                        .unwrap_or_else(|e| panic!("{e}"));
                    let mut out = Vec::new();
                    pl.candidate(&history[..history.len() - 1], 8, &mut out);
                    pl
                },
                |mut pl| {
                    pl.candidate(black_box(&history), 8, &mut out);
                    out.len()
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

mod model {
    use std::sync::Arc;

    use augur::core::model::RunLogits;
    use augur::llama::{ContextParams, GgufModel};
    use augur::{Batch, LogitRows, Model, TokenId};
    use criterion::{black_box, Criterion};

    const PROMPT: &str = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    a, b = 0, 1\n    for _ in range(n - 1):\n        a, b = b, a + b\n    return b\n\n\nprint(fibonacci(10))\n";

    fn load() -> Arc<GgufModel> {
        let name = std::env::var("AUGUR_BENCH_MODEL").unwrap_or_else(|_| "smollm2-135m".into());
        let path = augur::models::resolve(&name).unwrap_or_else(|e| {
            panic!("the model bench needs {name}: {e} (fetch it with `augur models pull {name}`, or set AUGUR_BENCH_MODEL)")
        });
        augur::load_model(&path, 0).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    }

    pub fn bench(c: &mut Criterion) {
        let model = load();
        // 0 = every core; set AUGUR_BENCH_THREADS on a machine shared with
        // other work (llama.cpp's spinning threads degrade badly when
        // oversubscribed).
        let threads = std::env::var("AUGUR_BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let mut session = model
            .new_session(&ContextParams {
                n_ctx: 512,
                n_threads: threads,
                ..ContextParams::default()
            })
            .expect("a context");
        let tokens: Vec<TokenId> = model.tokenize(PROMPT, true).expect("tokenize");
        let prefix = tokens.len().min(48);
        let mut batch = Batch::new();
        let mut out = LogitRows::new(session.n_vocab());
        batch.add_run(&tokens[..prefix], 0, RunLogits::None);
        session.eval(&batch, &mut out).expect("prefill");

        let mut g = c.benchmark_group("target_pass");
        for k in [1usize, 4, 8] {
            // The next k tokens, as a verification pass would score them.
            let next: Vec<TokenId> = tokens
                .iter()
                .cycle()
                .skip(prefix)
                .take(k)
                .copied()
                .collect();
            batch.clear();
            batch.add_run(&next, prefix, RunLogits::All);
            g.bench_function(format!("batch{k}"), |b| {
                b.iter(|| {
                    session.eval(black_box(&batch), &mut out).expect("eval");
                    // Roll back so every iteration scores the same positions.
                    session.remove_from(0, prefix).expect("rollback");
                    out.len()
                })
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = verification::bench, sampling::bench, ngram::bench, model::bench
}
criterion_main!(benches);
