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
    generate_reusing(target, strategy, prompt, 0, params, on_token)
}

/// Like [`generate`], but keeps the first `reuse_prefix` prompt positions of
/// the target's KV cache instead of evaluating them again.
///
/// The caller asserts that sequence 0 of the target's cache holds
/// `prompt[..reuse_prefix]` from earlier work (a previous generation whose
/// prompt and output this prompt continues). Every position from
/// `reuse_prefix` on, of every sequence, is removed and only the rest of the
/// prompt is prefilled. At least one prompt token must be left to evaluate
/// (`reuse_prefix < prompt.len()`), since the first step needs its logits.
pub fn generate_reusing(
    target: &mut dyn Model,
    strategy: &mut dyn Strategy,
    prompt: &[TokenId],
    reuse_prefix: usize,
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

    if reuse_prefix >= prompt.len() {
        return Err(CoreError::InvalidParameter(format!(
            "a reused prefix of {reuse_prefix} tokens leaves nothing of the {}-token prompt \
             to evaluate",
            prompt.len()
        )));
    }

    let mut stats = RunStats {
        n_prompt: prompt.len(),
        n_reused: reuse_prefix,
        ..Default::default()
    };
    let mut rng = Rng::new(params.sampling.seed);
    let mut batch = Batch::new();
    let mut logits = LogitRows::new(n_vocab);
    let mut tokens: Vec<TokenId> = prompt.to_vec();

    // Prefill everything but the last prompt token, which becomes pending.
    let t_prefill = Instant::now();
    if reuse_prefix == 0 {
        target.clear()?;
    } else {
        // Other sequences (lookahead's windows) may hold cells below the
        // prefix from the earlier run; only sequence 0's are known good.
        if target.n_seq_max() > 1 {
            target.keep_only(0)?;
        }
        target.remove_from(-1, reuse_prefix)?;
    }
    if prompt.len() > reuse_prefix + 1 {
        batch.add_run(
            &prompt[reuse_prefix..prompt.len() - 1],
            reuse_prefix,
            RunLogits::None,
        );
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sampling::argmax;
    use crate::strategy::StepContext;
    use crate::testing::InMemoryModel;

    /// Plain greedy decoding, one pass per token.
    struct Plain;

    impl Strategy for Plain {
        fn name(&self) -> &'static str {
            "plain"
        }
        fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
            let pos = ctx.pending_pos();
            ctx.batch.clear();
            ctx.batch.add(ctx.pending(), pos, &[0], true);
            ctx.target.eval(ctx.batch, ctx.logits)?;
            ctx.tokens.push(argmax(ctx.logits.row(0)));
            Ok(())
        }
    }

    #[test]
    fn a_reused_prefix_gives_the_fresh_output_and_evaluates_only_the_rest() {
        // History mode: every logit depends on the whole attended cache, so a
        // wrong or stale cell changes the output.
        let model = InMemoryModel::random(12, 7).with_history(3);
        let params = GenerateParams {
            max_tokens: 6,
            ..GenerateParams::default()
        };
        let first_prompt = vec![1, 2, 3, 4];
        let mut warm = model.clone();
        let first = generate(&mut warm, &mut Plain, &first_prompt, &params, &mut |_| true).unwrap();
        // The next prompt continues the first prompt and its output (minus the
        // last, pending token, which the cache does not hold).
        let mut next_prompt = first_prompt.clone();
        next_prompt.extend_from_slice(&first.tokens);
        next_prompt.extend_from_slice(&[5, 6]);
        let held = first_prompt.len() + first.tokens.len() - 1;
        let passes_before = warm.batch_sizes.len();
        let reused = generate_reusing(
            &mut warm,
            &mut Plain,
            &next_prompt,
            held,
            &params,
            &mut |_| true,
        )
        .unwrap();
        let fresh = generate(
            &mut model.clone(),
            &mut Plain,
            &next_prompt,
            &params,
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(reused.tokens, fresh.tokens);
        assert_eq!(reused.stats.n_reused, held);
        assert_eq!(fresh.stats.n_reused, 0);
        // The prefill covered only the new tokens but the pending one.
        assert_eq!(
            warm.batch_sizes[passes_before],
            next_prompt.len() - held - 1
        );
        // The tail of the first run's cache beyond the prefix was dropped.
        let mut shorter = next_prompt[..held - 2].to_vec();
        shorter.push(9);
        let a = generate_reusing(
            &mut warm,
            &mut Plain,
            &shorter,
            held - 2,
            &params,
            &mut |_| true,
        )
        .unwrap();
        let b = generate(
            &mut model.clone(),
            &mut Plain,
            &shorter,
            &params,
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(a.tokens, b.tokens);
    }

    #[test]
    fn a_prefix_covering_the_whole_prompt_is_refused() {
        let mut model = InMemoryModel::random(8, 1);
        let err = generate_reusing(
            &mut model,
            &mut Plain,
            &[1, 2],
            2,
            &GenerateParams::default(),
            &mut |_| true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("nothing"), "{err}");
    }
}
