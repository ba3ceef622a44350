//! The driver every strategy runs under: validation, prompt prefill, the step
//! loop, stopping, streaming and timing.

use std::time::Instant;

use crate::error::CoreError;
use crate::model::{Batch, LogitRows, Model, RunLogits, TokenId};
use crate::rng::Rng;
use crate::sampling::SamplingParams;
use crate::stats::RunStats;
use crate::strategy::{Exactness, StepContext, Strategy};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// The most tokens to generate (at least 1).
    pub max_tokens: usize,
    /// Sampling settings and seed.
    pub sampling: SamplingParams,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            sampling: SamplingParams::greedy(),
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The model emitted an end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The token callback asked to stop.
    Cancelled,
}

/// The result of a generation.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated token ids (end-of-generation token excluded).
    pub tokens: Vec<TokenId>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Counters and timings.
    pub stats: RunStats,
    /// The guarantee this run had.
    pub exactness: Exactness,
}

/// Generates up to `params.max_tokens` tokens after `prompt` with `strategy`.
///
/// `on_token` receives every generated token as soon as it is decided and
/// returns `false` to stop. The target's KV cache is cleared first.
pub fn generate(
    target: &mut dyn Model,
    strategy: &mut dyn Strategy,
    prompt: &[TokenId],
    params: &GenerateParams,
    on_token: &mut dyn FnMut(TokenId) -> bool,
) -> Result<Generation, CoreError> {
    params.sampling.validate()?;
    if params.max_tokens == 0 {
        return Err(CoreError::InvalidParameter(
            "the number of tokens to generate must be at least 1".into(),
        ));
    }
    if prompt.is_empty() {
        return Err(CoreError::EmptyPrompt);
    }
    let n_vocab = target.n_vocab();
    if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(CoreError::TokenOutOfRange {
            token: bad,
            n_vocab,
        });
    }
    let n_ctx = target.n_ctx();
    if prompt.len() >= n_ctx {
        return Err(CoreError::ContextOverflow {
            needed: prompt.len(),
            n_ctx,
        });
    }
    if strategy.needs_rollback() && !target.supports_rollback() {
        return Err(CoreError::Unsupported {
            strategy: strategy.name(),
            reason: "the target model cannot roll back its KV cache (recurrent or hybrid \
                     architecture); use --strategy baseline"
                .into(),
        });
    }

    let mut stats = RunStats {
        n_prompt: prompt.len(),
        ..Default::default()
    };
    let mut rng = Rng::new(params.sampling.seed);
    let mut batch = Batch::new();
    let mut logits = LogitRows::new(n_vocab);
    let mut tokens: Vec<TokenId> = prompt.to_vec();

    // Prefill everything but the last prompt token, which becomes pending.
    let t_prefill = Instant::now();
    target.clear()?;
    if prompt.len() > 1 {
        batch.add_run(&prompt[..prompt.len() - 1], 0, RunLogits::None);
        target.eval(&batch, &mut logits)?;
    }
    let mut ctx = StepContext {
        target,
        tokens: &mut tokens,
        n_prompt: prompt.len(),
        sampling: &params.sampling,
        rng: &mut rng,
        stats: &mut stats,
        max_new: params.max_tokens,
        batch: &mut batch,
        logits: &mut logits,
    };
    if let Err(e) = strategy.start(&mut ctx) {
        strategy.finish(ctx.stats);
        return Err(e);
    }
    ctx.stats.prefill_seconds = t_prefill.elapsed().as_secs_f64();

    let t_decode = Instant::now();
    let mut n_out = 0usize;
    let stop = 'outer: loop {
        if ctx.pending_pos() >= n_ctx {
            break StopReason::ContextFull;
        }
        ctx.max_new = params.max_tokens - n_out;
        let before = ctx.tokens.len();
        if let Err(e) = strategy.step(&mut ctx) {
            strategy.finish(ctx.stats);
            return Err(e);
        }
        if ctx.tokens.len() <= before {
            strategy.finish(ctx.stats);
            return Err(CoreError::Internal {
                strategy: strategy.name(),
                reason: "a step appended no token".into(),
            });
        }
        for i in before..ctx.tokens.len() {
            let t = ctx.tokens[i];
            if ctx.target.is_eog(t) {
                ctx.tokens.truncate(i + 1);
                break 'outer StopReason::EndOfGeneration;
            }
            n_out += 1;
            if !on_token(t) {
                ctx.tokens.truncate(i + 1);
                break 'outer StopReason::Cancelled;
            }
            if n_out == params.max_tokens {
                ctx.tokens.truncate(i + 1);
                break 'outer StopReason::MaxTokens;
            }
        }
    };
    strategy.finish(ctx.stats);
    stats.decode_seconds = t_decode.elapsed().as_secs_f64();
    stats.n_generated = n_out;
    let generated = tokens[prompt.len()..prompt.len() + n_out].to_vec();
    // One rule for every strategy: bit-identical iff no pass was larger than
    // the size calibration found bit-identical to one-token passes.
    let exactness = Exactness::of(stats.largest_pass, strategy.max_exact_pass());
    Ok(Generation {
        tokens: generated,
        stop,
        stats,
        exactness,
    })
}
