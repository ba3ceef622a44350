//! A llama.cpp context implementing augur-core's `Model`.

use std::num::NonZeroU32;
use std::sync::Arc;

use augur_core::{Batch, LogitRows, Model, ModelError, SeqId, TokenId};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::backend::init_backend;
use crate::model::GgufModel;
use crate::LlamaError;

/// Settings of a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextParams {
    /// Context window in tokens.
    pub n_ctx: usize,
    /// Threads for decoding (0 = all cores).
    pub n_threads: usize,
    /// Largest number of sequence ids a batch may use (lookahead needs W+G+1).
    pub n_seq_max: usize,
    /// Largest batch evaluated in one llama.cpp call; bigger batches are split.
    pub n_batch: usize,
}

impl Default for ContextParams {
    fn default() -> Self {
        Self {
            n_ctx: 4096,
            n_threads: 0,
            n_seq_max: 1,
            n_batch: 512,
        }
    }
}

/// The number of cores, for `n_threads = 0`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get())
}

/// A llama.cpp context (its own KV cache) over a [`GgufModel`].
///
/// Not `Sync`: one thread drives a session at a time (it may be sent to
/// another thread).
pub struct LlamaSession {
    // Field order matters: `ctx` borrows from `model` and must drop first.
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    model: Arc<GgufModel>,
    n_ctx: usize,
    n_batch: usize,
    n_seq_max: usize,
    n_vocab: usize,
}

impl std::fmt::Debug for LlamaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaSession")
            .field("model", &self.model.path())
            .field("n_ctx", &self.n_ctx)
            .finish()
    }
}

impl LlamaSession {
    pub(crate) fn new(model: Arc<GgufModel>, params: &ContextParams) -> Result<Self, LlamaError> {
        if params.n_ctx < 8 {
            return Err(LlamaError::InvalidParameter(format!(
                "context size must be at least 8 tokens, got {}",
                params.n_ctx
            )));
        }
        if params.n_seq_max == 0 || params.n_seq_max > 256 {
            return Err(LlamaError::InvalidParameter(format!(
                "sequence count must be in 1..=256, got {}",
                params.n_seq_max
            )));
        }
        let n_ctx = u32::try_from(params.n_ctx)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| {
                LlamaError::InvalidParameter(format!("context size {} is too large", params.n_ctx))
            })?;
        let threads = if params.n_threads == 0 {
            default_threads()
        } else {
            params.n_threads
        };
        // ggml's GGML_MAX_N_THREADS: its thread pool holds no more (front
        // ends apply a tighter, per-machine limit: augur::limits).
        if threads > 512 {
            return Err(LlamaError::InvalidParameter(format!(
                "thread count must be at most 512, got {threads}"
            )));
        }
        let threads = i32::try_from(threads).unwrap_or(i32::MAX);
        let n_batch = params.n_batch.clamp(1, params.n_ctx);
        let backend = init_backend()?;
        let cparams = LlamaContextParams::default()
            .with_n_ctx(Some(n_ctx))
            .with_n_batch(n_batch as u32)
            .with_n_ubatch(n_batch as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_n_seq_max(params.n_seq_max as u32)
            // One cache for all sequences: lookahead's cells join several.
            .with_kv_unified(true)
            // Sliding-window models (Gemma 3) keep the full cache so that
            // rolling back a few positions is always possible.
            .with_swa_full(true);
        let ctx = model
            .raw()
            .new_context(backend, cparams)
            .map_err(|e| LlamaError::Context(e.to_string()))?;
        // SAFETY: the context borrows the `LlamaModel` inside `model`, which is
        // kept alive by the `Arc` stored in this struct; the `Arc`'s target
        // never moves, and `ctx` is declared before `model` so it drops first.
        let ctx: LlamaContext<'static> = unsafe { std::mem::transmute(ctx) };
        // llama.cpp rounds the cache up (to a multiple of 256): the session
        // enforces the size asked for, so that a context of 64 holds 64
        // tokens whatever llama.cpp allocated.
        let n_ctx_actual = (ctx.n_ctx() as usize).min(params.n_ctx);
        let n_vocab = model.n_vocab();
        Ok(Self {
            ctx,
            batch: LlamaBatch::new(n_batch, params.n_seq_max as i32),
            model,
            n_ctx: n_ctx_actual,
            n_batch,
            n_seq_max: params.n_seq_max,
            n_vocab,
        })
    }

    /// The model this session runs.
    pub fn model(&self) -> &Arc<GgufModel> {
        &self.model
    }

    fn cache_error(e: impl std::fmt::Display) -> ModelError {
        ModelError::Cache(e.to_string())
    }

    fn check_entry(&self, batch: &Batch, i: usize) -> Result<(), ModelError> {
        let token = batch.token(i);
        if token as usize >= self.n_vocab {
            return Err(ModelError::InvalidBatch(format!(
                "token {token} is outside the vocabulary of {}",
                self.n_vocab
            )));
        }
        if batch.position(i) >= self.n_ctx {
            return Err(ModelError::ContextFull {
                position: batch.position(i),
                n_ctx: self.n_ctx,
            });
        }
        let seqs = batch.seqs(i);
        if seqs.is_empty() || seqs.iter().any(|&s| s < 0 || s as usize >= self.n_seq_max) {
            return Err(ModelError::InvalidBatch(format!(
                "sequence ids {seqs:?} outside 0..{}",
                self.n_seq_max
            )));
        }
        Ok(())
    }
}

impl Model for LlamaSession {
    fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn n_seq_max(&self) -> usize {
        self.n_seq_max
    }

    fn is_eog(&self, token: TokenId) -> bool {
        self.model.is_eog(token)
    }

    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Err(ModelError::InvalidBatch("empty batch".into()));
        }
        for i in 0..batch.len() {
            self.check_entry(batch, i)?;
        }
        let mut start = 0;
        while start < batch.len() {
            let end = (start + self.n_batch).min(batch.len());
            self.batch.clear();
            for i in start..end {
                self.batch
                    .add(
                        LlamaToken(batch.token(i) as i32),
                        batch.position(i) as i32,
                        batch.seqs(i),
                        batch.wants_logits(i),
                    )
                    .map_err(|e| ModelError::InvalidBatch(e.to_string()))?;
            }
            self.ctx.decode(&mut self.batch).map_err(|e| {
                ModelError::Eval(format!(
                    "llama_decode failed ({e}); positions {}..{} may not continue the KV cache",
                    batch.position(start),
                    batch.position(end - 1)
                ))
            })?;
            for i in start..end {
                if batch.wants_logits(i) {
                    out.push_row(self.ctx.get_logits_ith((i - start) as i32));
                }
            }
            start = end;
        }
        Ok(())
    }

    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError> {
        let from = u32::try_from(from).map_err(Self::cache_error)?;
        self.ctx
            .kv_cache_seq_rm(seq, Some(from), None)
            .map_err(Self::cache_error)
    }

    fn copy_seq(&mut self, src: SeqId, dst: SeqId, from: usize) -> Result<(), ModelError> {
        let from = u32::try_from(from).map_err(Self::cache_error)?;
        self.ctx
            .kv_cache_seq_cp(src, dst, Some(from), None)
            .map_err(Self::cache_error)
    }

    fn keep_only(&mut self, seq: SeqId) -> Result<(), ModelError> {
        self.ctx.llama_kv_cache_seq_keep(seq);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), ModelError> {
        self.ctx.clear_kv_cache();
        Ok(())
    }

    fn supports_rollback(&self) -> bool {
        !self.model.is_recurrent()
    }

    fn identity(&self) -> Option<String> {
        Some(self.model.identity())
    }
}
