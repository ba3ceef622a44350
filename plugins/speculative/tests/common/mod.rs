//! What the speculative tests share: the models ([`models`]), the modes and
//! the baseline of the greedy tests, and model wrappers for the pipeline
//! tests with pseudo-random delays per pass (so the two threads interleave
//! in every order) and injected failures.

#![allow(dead_code)]

pub mod models;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_baseline::Baseline;
use augur_core::testing::{generate_greedy, InMemoryModel};
use augur_core::{
    Batch, GenerateParams, Generation, LogitRows, Model, ModelError, Rng, SamplingParams, SeqId,
    TokenId,
};
use augur_core::{CostModel, DraftVerify, Drafter, Tuned};
use augur_speculative::SpeculativeConfig;

/// `drafter` under the draft-then-verify driver with the draft-length
/// settings of `config`, as the facade assembles an application's drafter.
pub fn draft_verify<D: Drafter>(
    name: &'static str,
    drafter: D,
    config: &SpeculativeConfig,
) -> DraftVerify<Tuned<D>> {
    DraftVerify::new(
        name,
        Tuned::new(drafter, config.mode, config.draft_min),
        config.draft_settings(),
        config.cost_model(),
    )
}

/// A cost model known bit-exact up to passes of `size` tokens, measured otherwise.
pub fn exact_upto(size: usize) -> CostModel {
    CostModel {
        max_exact_pass: size,
        ..CostModel::measured()
    }
}

/// Greedy settings for `max_tokens` tokens.
pub fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: SamplingParams::greedy(),
    }
}

/// The baseline's greedy output on a copy of `target`.
pub fn baseline(target: &InMemoryModel, prompt: &[TokenId], max_tokens: usize) -> Generation {
    generate_greedy(&mut target.clone(), &mut Baseline, prompt, max_tokens)
}

/// The costs of a memory-bound machine with a cheap draft, so an adaptive run
/// starts out drafting (its own measurements take over after that).
pub fn speculation_friendly_costs() -> CostModel {
    let mut c = CostModel::measured();
    for k in 1..=9 {
        for _ in 0..3 {
            c.record_target(k, 0.1);
        }
    }
    c.record_draft(0.001);
    c
}

/// The draft-length modes of the greedy tests: three fixed lengths, adaptive
/// from scratch, and adaptive from costs that favour drafting.
pub fn modes(fixed: [usize; 3]) -> Vec<(String, SpeculativeConfig)> {
    let mut modes: Vec<(String, SpeculativeConfig)> = fixed
        .iter()
        .map(|&n| (format!("fixed-{n}"), SpeculativeConfig::fixed(n)))
        .collect();
    modes.push(("adaptive".into(), SpeculativeConfig::default()));
    modes.push((
        "adaptive-cached".into(),
        SpeculativeConfig {
            initial_costs: Some(speculation_friendly_costs()),
            ..SpeculativeConfig::default()
        },
    ));
    modes
}

/// What a wrapped model does before each pass.
#[derive(Debug, Clone, Copy)]
pub enum Delay {
    /// Nothing.
    None,
    /// Per pass, at random: nothing (half the passes), a yield, or a spin of
    /// up to this many microseconds (spins, not sleeps: short and cheap).
    Jitter(u64),
    /// Per pass, a sleep of up to this many microseconds, uniformly at random.
    Sleep(u64),
}

/// A model that waits a pseudo-random time before each pass and fails its
/// passes from the `fail_at`-th on (counting from 0), if set.
pub struct Wrapped<M> {
    pub inner: M,
    delay: Delay,
    rng: Rng,
    fail_at: Option<usize>,
    passes: Arc<AtomicUsize>,
}

impl<M: Model> Wrapped<M> {
    pub fn new(inner: M, delay: Delay, seed: u64) -> Self {
        Self {
            inner,
            delay,
            rng: Rng::new(seed),
            fail_at: None,
            passes: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Fails every pass from the `n`-th on.
    pub fn failing_at(mut self, n: usize) -> Self {
        self.fail_at = Some(n);
        self
    }

    /// A counter of the passes attempted, readable from anywhere.
    pub fn pass_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.passes)
    }

    fn pause(&mut self) {
        match self.delay {
            Delay::None => {}
            Delay::Jitter(max_us) => match self.rng.next_u64() % 4 {
                0 | 1 => {}
                2 => std::thread::yield_now(),
                _ => {
                    let us = self.rng.next_u64() % (max_us + 1);
                    let t0 = Instant::now();
                    while t0.elapsed() < Duration::from_micros(us) {
                        std::hint::spin_loop();
                    }
                }
            },
            Delay::Sleep(max_us) => {
                let us = self.rng.next_u64() % (max_us + 1);
                std::thread::sleep(Duration::from_micros(us));
            }
        }
    }
}

impl<M: Model> Model for Wrapped<M> {
    fn n_vocab(&self) -> usize {
        self.inner.n_vocab()
    }
    fn n_ctx(&self) -> usize {
        self.inner.n_ctx()
    }
    fn n_seq_max(&self) -> usize {
        self.inner.n_seq_max()
    }
    fn is_eog(&self, token: TokenId) -> bool {
        self.inner.is_eog(token)
    }
    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
        let n = self.passes.fetch_add(1, Ordering::SeqCst);
        self.pause();
        if self.fail_at.is_some_and(|f| n >= f) {
            return Err(ModelError::Eval(format!("injected failure at pass {n}")));
        }
        self.inner.eval(batch, out)
    }
    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError> {
        self.inner.remove_from(seq, from)
    }
    fn clear(&mut self) -> Result<(), ModelError> {
        self.inner.clear()
    }
    fn supports_rollback(&self) -> bool {
        self.inner.supports_rollback()
    }
}
