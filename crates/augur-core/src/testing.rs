//! A tiny deterministic in-memory model with exactly known probabilities.
//!
//! It behaves like a llama.cpp context where it matters for strategies: a KV
//! cache per sequence whose positions must continue (so a forgotten rollback is
//! an error, as in llama.cpp), cells that join several sequences, and queries
//! that see their first sequence's cells at positions up to their own.
//!
//! In bigram mode the next-token distribution depends only on the last token,
//! so sequence probabilities are known exactly (for distribution tests). In
//! history mode the logits also depend on everything the query attends to, so
//! a wrong attention layout (lookahead, rollback) changes the output.
//!
//! The harnesses of the exactness tests live here too: [`ContinuationTest`]
//! (sampled continuations against their exact probabilities) and
//! [`assert_greedy_matches`] (greedy output against a reference strategy).

use crate::chisq::{chi_square, ChiSquare};
use crate::error::ModelError;
use crate::generate::{generate, GenerateParams, Generation};
use crate::model::{Batch, LogitRows, Model, SeqId, TokenId};
use crate::rng::Rng;
use crate::sampling::SamplingParams;
use crate::strategy::Strategy;

#[derive(Debug, Clone)]
struct Cell {
    pos: usize,
    token: TokenId,
    seqs: Vec<SeqId>,
}

/// The in-memory model. See the module documentation.
#[derive(Debug, Clone)]
pub struct InMemoryModel {
    n_vocab: usize,
    n_ctx: usize,
    n_seq_max: usize,
    /// p(next | last), row-major `n_vocab × n_vocab`.
    probs: Vec<f64>,
    /// Per-history perturbation of the logits (history mode).
    history_noise: Option<Vec<f32>>,
    eog: Option<TokenId>,
    cells: Vec<Cell>,
    /// Number of `eval` calls so far.
    pub passes: usize,
    /// Batch size of every `eval` call so far.
    pub batch_sizes: Vec<usize>,
}

impl InMemoryModel {
    /// A bigram model from rows `probs[last][next]` (each row is normalized).
    ///
    /// # Panics
    /// If the table is not square or a row has no positive entry.
    pub fn bigram(probs: &[Vec<f64>]) -> Self {
        let n = probs.len();
        let mut flat = Vec::with_capacity(n * n);
        for row in probs {
            assert_eq!(row.len(), n, "the table must be square");
            let total: f64 = row.iter().filter(|p| **p > 0.0).sum();
            assert!(total > 0.0, "every row needs some mass");
            flat.extend(row.iter().map(|p| p.max(0.0) / total));
        }
        Self {
            n_vocab: n,
            n_ctx: 4096,
            n_seq_max: 64,
            probs: flat,
            history_noise: None,
            eog: None,
            cells: Vec::new(),
            passes: 0,
            batch_sizes: Vec::new(),
        }
    }

    /// A bigram model with pseudo-random rows of varied sharpness.
    pub fn random(n_vocab: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let rows: Vec<Vec<f64>> = (0..n_vocab)
            .map(|_| {
                let sharpness = 0.5 + 3.5 * rng.uniform();
                (0..n_vocab)
                    .map(|_| (sharpness * (2.0 * rng.uniform() - 1.0) * 2.0).exp())
                    .collect()
            })
            .collect();
        Self::bigram(&rows)
    }

    /// Makes the logits depend on the whole attended history (see module docs).
    pub fn with_history(mut self, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let n = self.n_vocab;
        self.history_noise = Some(
            (0..n * n)
                .map(|_| (2.0 * rng.uniform() - 1.0) as f32 * 1.5)
                .collect(),
        );
        self
    }

    /// Makes `token` an end-of-generation token.
    pub fn with_eog(mut self, token: TokenId) -> Self {
        self.eog = Some(token);
        self
    }

    /// Sets the context size.
    pub fn with_n_ctx(mut self, n_ctx: usize) -> Self {
        self.n_ctx = n_ctx;
        self
    }

    /// p(next | last) in bigram mode.
    pub fn prob(&self, last: TokenId, next: TokenId) -> f64 {
        self.probs[last as usize * self.n_vocab + next as usize]
    }

    /// The row p(· | last) in bigram mode.
    pub fn row(&self, last: TokenId) -> &[f64] {
        let a = last as usize * self.n_vocab;
        &self.probs[a..a + self.n_vocab]
    }

    /// Number of cells in the KV cache.
    pub fn cache_len(&self) -> usize {
        self.cells.len()
    }

    /// Tokens of sequence `seq` in position order.
    pub fn sequence(&self, seq: SeqId) -> Vec<TokenId> {
        let mut v: Vec<(usize, TokenId)> = self
            .cells
            .iter()
            .filter(|c| c.seqs.contains(&seq))
            .map(|c| (c.pos, c.token))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, t)| t).collect()
    }

    fn next_pos(&self, seq: SeqId) -> usize {
        self.cells
            .iter()
            .filter(|c| c.seqs.contains(&seq))
            .map(|c| c.pos + 1)
            .max()
            .unwrap_or(0)
    }

    fn logits_for(&self, token: TokenId, pos: usize, seq: SeqId, out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.row(token).iter().map(|&p| {
            if p > 0.0 {
                p.ln() as f32
            } else {
                f32::NEG_INFINITY
            }
        }));
        if let Some(noise) = &self.history_noise {
            // FNV-1a over the visible history, in position order.
            let mut visible: Vec<(usize, TokenId)> = self
                .cells
                .iter()
                .filter(|c| c.pos <= pos && c.seqs.contains(&seq))
                .map(|c| (c.pos, c.token))
                .collect();
            visible.sort_unstable();
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for (p, t) in visible {
                h ^= (p as u64) << 32 | t as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            let r = (h % self.n_vocab as u64) as usize;
            for (o, n) in out
                .iter_mut()
                .zip(&noise[r * self.n_vocab..(r + 1) * self.n_vocab])
            {
                *o += n;
            }
        }
    }
}

/// Exact probabilities of every continuation of `len` tokens after a prompt
/// ending in `last`, under `sampling`'s filters, for a bigram model; index a
/// continuation with [`continuation_index`]. Use a model without an
/// end-of-generation token, so every continuation has the full length.
pub fn exact_continuation_probs(
    model: &InMemoryModel,
    last: TokenId,
    len: usize,
    sampling: &crate::sampling::SamplingParams,
) -> Vec<f64> {
    let v = model.n_vocab;
    // The filtered next-token distribution after each possible last token.
    let rows: Vec<crate::sampling::SparseDist> = (0..v as TokenId)
        .map(|t| {
            let logits: Vec<f32> = model
                .row(t)
                .iter()
                .map(|&p| {
                    if p > 0.0 {
                        p.ln() as f32
                    } else {
                        f32::NEG_INFINITY
                    }
                })
                .collect();
            sampling.distribution(&logits)
        })
        .collect();
    let mut probs = vec![0.0; v.pow(len as u32)];
    for (index, slot) in probs.iter_mut().enumerate() {
        let mut prev = last;
        let mut p = 1.0;
        for k in 0..len {
            let t = ((index / v.pow((len - 1 - k) as u32)) % v) as TokenId;
            p *= rows[prev as usize].prob(t);
            prev = t;
        }
        *slot = p;
    }
    probs
}

/// The index of a continuation in [`exact_continuation_probs`]'s table.
pub fn continuation_index(tokens: &[TokenId], n_vocab: usize) -> usize {
    tokens.iter().fold(0, |acc, &t| acc * n_vocab + t as usize)
}

impl Model for InMemoryModel {
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
        self.eog == Some(token)
    }

    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Err(ModelError::InvalidBatch("empty batch".into()));
        }
        self.passes += 1;
        self.batch_sizes.push(batch.len());
        let mut row = Vec::with_capacity(self.n_vocab);
        for i in 0..batch.len() {
            let (token, pos, seqs) = (batch.token(i), batch.position(i), batch.seqs(i));
            if token as usize >= self.n_vocab {
                return Err(ModelError::InvalidBatch(format!(
                    "token {token} out of range"
                )));
            }
            if pos >= self.n_ctx {
                return Err(ModelError::ContextFull {
                    position: pos,
                    n_ctx: self.n_ctx,
                });
            }
            if seqs.is_empty() {
                return Err(ModelError::InvalidBatch("entry without a sequence".into()));
            }
            for &s in seqs {
                if s < 0 || s as usize >= self.n_seq_max {
                    return Err(ModelError::InvalidBatch(format!(
                        "sequence id {s} out of range"
                    )));
                }
                let want = self.next_pos(s);
                if pos != want {
                    return Err(ModelError::InvalidBatch(format!(
                        "sequence {s}: position {pos} does not continue the cache (next is {want})"
                    )));
                }
            }
            self.cells.push(Cell {
                pos,
                token,
                seqs: seqs.to_vec(),
            });
            if batch.wants_logits(i) {
                self.logits_for(token, pos, seqs[0], &mut row);
                out.push_row(&row);
            }
        }
        Ok(())
    }

    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError> {
        for c in &mut self.cells {
            if c.pos >= from {
                if seq < 0 {
                    c.seqs.clear();
                } else {
                    c.seqs.retain(|&s| s != seq);
                }
            }
        }
        self.cells.retain(|c| !c.seqs.is_empty());
        Ok(())
    }

    fn copy_seq(&mut self, src: SeqId, dst: SeqId, from: usize) -> Result<(), ModelError> {
        for c in &mut self.cells {
            if c.pos >= from && c.seqs.contains(&src) && !c.seqs.contains(&dst) {
                c.seqs.push(dst);
            }
        }
        Ok(())
    }

    fn keep_only(&mut self, seq: SeqId) -> Result<(), ModelError> {
        for c in &mut self.cells {
            c.seqs.retain(|&s| s == seq);
        }
        self.cells.retain(|c| !c.seqs.is_empty());
        Ok(())
    }
}

/// A model that knows one text: at every position it predicts the text's
/// next token (logit 10, every other token 0), whatever came before. Greedy
/// decoding from a prefix of the text writes the rest of it, so a strategy can
/// be run against a recorded output (prompt + completion) and its passes
/// counted: which drafts a policy makes on real text, without the real model.
#[derive(Debug, Clone)]
pub struct ScriptedModel {
    text: Vec<TokenId>,
    n_vocab: usize,
    eog: Option<TokenId>,
    /// Every `eval` call so far: its size, and how many of its tokens after
    /// the first continue the text (a draft's right prefix).
    pub passes: Vec<(usize, usize)>,
}

impl ScriptedModel {
    /// A model of `text` over `n_vocab` tokens; `eog` ends generation.
    /// Positions past the text predict `eog`, or token 0 without one.
    pub fn new(text: Vec<TokenId>, n_vocab: usize, eog: Option<TokenId>) -> Self {
        Self {
            text,
            n_vocab,
            eog,
            passes: Vec::new(),
        }
    }

    /// The text.
    pub fn text(&self) -> &[TokenId] {
        &self.text
    }
}

impl Model for ScriptedModel {
    fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    fn n_ctx(&self) -> usize {
        self.text.len() + 64
    }

    fn is_eog(&self, token: TokenId) -> bool {
        self.eog == Some(token)
    }

    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Err(ModelError::InvalidBatch("empty batch".into()));
        }
        let right = (1..batch.len())
            .take_while(|&i| self.text.get(batch.position(i)) == Some(&batch.token(i)))
            .count();
        self.passes.push((batch.len(), right));
        let mut row = vec![0.0f32; self.n_vocab];
        for i in 0..batch.len() {
            if batch.token(i) as usize >= self.n_vocab {
                return Err(ModelError::InvalidBatch(format!(
                    "token {} out of range",
                    batch.token(i)
                )));
            }
            if batch.wants_logits(i) {
                let next = self
                    .text
                    .get(batch.position(i) + 1)
                    .copied()
                    .or(self.eog)
                    .unwrap_or(0);
                row.fill(0.0);
                if let Some(slot) = row.get_mut(next as usize) {
                    *slot = 10.0;
                }
                out.push_row(&row);
            }
        }
        Ok(())
    }

    fn remove_from(&mut self, _seq: SeqId, _from: usize) -> Result<(), ModelError> {
        Ok(())
    }

    // Its predictions depend on positions only, so every sequence sees the
    // same text and cache operations have nothing to do.
    fn n_seq_max(&self) -> usize {
        64
    }

    fn copy_seq(&mut self, _src: SeqId, _dst: SeqId, _from: usize) -> Result<(), ModelError> {
        Ok(())
    }

    fn keep_only(&mut self, _seq: SeqId) -> Result<(), ModelError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunLogits;

    #[test]
    fn logits_are_log_probabilities_of_the_last_token() {
        let mut m = InMemoryModel::bigram(&[vec![1.0, 3.0], vec![2.0, 2.0]]);
        let mut b = Batch::new();
        b.add_run(&[0, 1], 0, RunLogits::All);
        let mut out = LogitRows::new(2);
        m.eval(&b, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!((out.row(0)[1] as f64 - 0.75f64.ln()).abs() < 1e-6);
        assert!((out.row(1)[0] as f64 - 0.5f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn a_scripted_model_writes_its_text_and_counts_right_drafts() {
        let mut m = ScriptedModel::new(vec![3, 1, 4, 1, 5], 6, Some(0));
        let mut b = Batch::new();
        let mut out = LogitRows::new(6);
        // The prompt, then a pass with a draft right for one token of two.
        b.add_run(&[3, 1], 0, RunLogits::Last);
        m.eval(&b, &mut out).unwrap();
        assert_eq!(crate::sampling::argmax(out.row(0)), 4);
        b.clear();
        b.add_run(&[4, 1, 2], 2, RunLogits::All);
        m.eval(&b, &mut out).unwrap();
        assert_eq!(m.passes, vec![(2, 1), (3, 1)]);
        let picks: Vec<TokenId> = (0..3)
            .map(|i| crate::sampling::argmax(out.row(i)))
            .collect();
        // After the text: the end token.
        assert_eq!(picks, vec![1, 5, 0]);
        b.clear();
        b.add_run(&[9], 5, RunLogits::All);
        assert!(m.eval(&b, &mut out).is_err());
    }

    #[test]
    fn positions_must_continue_the_cache() {
        let mut m = InMemoryModel::random(5, 1);
        let mut b = Batch::new();
        let mut out = LogitRows::new(5);
        b.add_run(&[1, 2, 3], 0, RunLogits::None);
        m.eval(&b, &mut out).unwrap();
        b.clear();
        b.add(4, 2, &[0], true);
        assert!(
            m.eval(&b, &mut out).is_err(),
            "overwriting position 2 without rollback"
        );
        m.remove_from(0, 2).unwrap();
        m.eval(&b, &mut out).unwrap();
        assert_eq!(m.sequence(0), vec![1, 2, 4]);
    }

    #[test]
    fn history_mode_depends_on_attended_tokens() {
        let base = InMemoryModel::random(7, 3).with_history(9);
        let mut a = base.clone();
        let mut b = base;
        let mut out_a = LogitRows::new(7);
        let mut out_b = LogitRows::new(7);
        let mut batch = Batch::new();
        batch.add_run(&[1, 2, 3], 0, RunLogits::Last);
        a.eval(&batch, &mut out_a).unwrap();
        batch.clear();
        batch.add_run(&[4, 2, 3], 0, RunLogits::Last);
        b.eval(&batch, &mut out_b).unwrap();
        assert_ne!(out_a.row(0), out_b.row(0));
    }

    #[test]
    fn exact_probabilities_sum_to_one_and_match_the_table() {
        let m = InMemoryModel::random(4, 2);
        let s = crate::sampling::SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 0,
        };
        let probs = exact_continuation_probs(&m, 1, 2, &s);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let i = continuation_index(&[3, 0], 4);
        assert!((probs[i] - m.prob(1, 3) * m.prob(3, 0)).abs() < 1e-6);
    }

    #[test]
    fn shared_cells_and_keep_only() {
        let mut m = InMemoryModel::random(5, 1);
        let mut b = Batch::new();
        let mut out = LogitRows::new(5);
        b.add(1, 0, &[0, 1, 2], false);
        b.add(2, 1, &[1], false);
        b.add(3, 1, &[2], false);
        m.eval(&b, &mut out).unwrap();
        assert_eq!(m.sequence(1), vec![1, 2]);
        assert_eq!(m.sequence(2), vec![1, 3]);
        m.keep_only(2).unwrap();
        m.copy_seq(2, 0, 0).unwrap();
        assert_eq!(m.sequence(0), vec![1, 3]);
        assert_eq!(m.sequence(1), Vec::<TokenId>::new());
    }
}

// Harnesses for the exactness tests of strategies: the distribution test
// (sampled continuations against their exact probabilities) and the greedy
// test (the same tokens as a reference strategy).

/// Sampling at `temperature` with every filter off, seed 0.
pub fn unfiltered(temperature: f32) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 0,
    }
}

/// A distribution-exactness experiment: `runs` independent generations of
/// `len` tokens after `prompt`, generation `i` seeded with `first_seed + i`,
/// whose continuations are counted and compared with their exact
/// probabilities by Pearson's chi-square test ([`chi_square`]).
///
/// With fixed seeds the outcome is deterministic; a correct strategy falls
/// below a p-value threshold `t` for a fraction `t` of seed schedules, and a
/// wrong one (shown by a negative control) far more often.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuationTest {
    /// The prompt; its last token conditions the first generated token.
    pub prompt: Vec<TokenId>,
    /// Tokens per continuation.
    pub len: usize,
    /// Number of generations.
    pub runs: u64,
    /// Seed of the first generation; generation `i` has `first_seed + i`.
    pub first_seed: u64,
    /// Sampling settings (the seed is replaced per generation).
    pub sampling: SamplingParams,
}

impl ContinuationTest {
    /// How often each continuation (indexed by [`continuation_index`]) came
    /// out of `runs` generations with `strategy` on `target`, both reused
    /// across generations as an application reuses them. `after_run` sees
    /// every generation together with the strategy and the target, to sum
    /// statistics or to clear what a model records.
    ///
    /// # Panics
    /// If a generation fails or ends before `len` tokens (use a target
    /// without an end-of-generation token).
    pub fn counts<M: Model, S: Strategy>(
        &self,
        target: &mut M,
        strategy: &mut S,
        mut after_run: impl FnMut(&Generation, &mut S, &mut M),
    ) -> Vec<u64> {
        let n_vocab = target.n_vocab();
        let mut counts = vec![0u64; n_vocab.pow(self.len as u32)];
        let mut params = GenerateParams {
            max_tokens: self.len,
            sampling: self.sampling.clone(),
        };
        for i in 0..self.runs {
            let seed = self.first_seed + i;
            params.sampling.seed = seed;
            let g = generate(target, strategy, &self.prompt, &params, &mut |_| true)
                .unwrap_or_else(|e| panic!("{} failed with seed {seed}: {e}", strategy.name()));
            assert_eq!(
                g.tokens.len(),
                self.len,
                "{}: a short continuation with seed {seed}",
                strategy.name()
            );
            counts[continuation_index(&g.tokens, n_vocab)] += 1;
            after_run(&g, strategy, target);
        }
        counts
    }

    /// The exact probability of every continuation under the bigram model
    /// `model` (see [`exact_continuation_probs`]).
    ///
    /// # Panics
    /// If the prompt is empty.
    pub fn exact_probs(&self, model: &InMemoryModel) -> Vec<f64> {
        let Some(&last) = self.prompt.last() else {
            panic!("a continuation test needs a prompt");
        };
        exact_continuation_probs(model, last, self.len, &self.sampling)
    }

    /// The chi-square test of `counts` against the exact probabilities under
    /// `model`.
    pub fn chi_square(&self, counts: &[u64], model: &InMemoryModel) -> ChiSquare {
        chi_square(counts, &self.exact_probs(model))
    }

    /// The common case: the counts with `strategy` on `model` itself, tested
    /// against the model's exact probabilities. The batch sizes the model
    /// records are cleared after each generation so they do not pile up.
    pub fn run<S: Strategy>(&self, model: &mut InMemoryModel, strategy: &mut S) -> ChiSquare {
        let counts = self.counts(model, strategy, |_, _, m| m.batch_sizes.clear());
        self.chi_square(&counts, model)
    }
}

/// Greedy generation of at most `max_tokens` tokens after `prompt`.
///
/// # Panics
/// If the generation fails; the message names the strategy.
pub fn generate_greedy(
    target: &mut dyn Model,
    strategy: &mut dyn Strategy,
    prompt: &[TokenId],
    max_tokens: usize,
) -> Generation {
    let params = GenerateParams {
        max_tokens,
        sampling: SamplingParams::greedy(),
    };
    generate(target, strategy, prompt, &params, &mut |_| true)
        .unwrap_or_else(|e| panic!("{} failed: {e}", strategy.name()))
}

/// Asserts that `got` emitted the same tokens as `want` and stopped for the
/// same reason; `at` names the case in the failure message.
pub fn assert_same_output(got: &Generation, want: &Generation, at: &str) {
    assert_eq!(got.tokens, want.tokens, "{at}: tokens");
    assert_eq!(got.stop, want.stop, "{at}: stop reason");
}

/// Runs `reference` and `candidate` greedily, each on its own clone of
/// `target`, and asserts that the candidate's output is the reference's (see
/// [`assert_same_output`]). Returns the reference's and the candidate's
/// generations, for the callers' own checks on their statistics.
pub fn assert_greedy_matches<M: Model + Clone>(
    target: &M,
    reference: &mut dyn Strategy,
    candidate: &mut dyn Strategy,
    prompt: &[TokenId],
    max_tokens: usize,
    at: &str,
) -> (Generation, Generation) {
    let want = generate_greedy(&mut target.clone(), reference, prompt, max_tokens);
    let got = generate_greedy(&mut target.clone(), candidate, prompt, max_tokens);
    assert_same_output(&got, &want, at);
    (want, got)
}

#[cfg(test)]
mod harness_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::CoreError;
    use crate::sampling::argmax;
    use crate::strategy::StepContext;

    /// Plain decoding, one pass per token, with its own sampling rule.
    enum Decoder {
        /// The settings asked for: exact.
        Exact,
        /// Sampling at this multiple of the temperature asked for.
        Temperature(f32),
        /// The token after the argmax (in greedy mode).
        NextToArgmax,
    }

    impl Strategy for Decoder {
        fn name(&self) -> &'static str {
            "decoder"
        }
        fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
            let pos = ctx.pending_pos();
            ctx.batch.clear();
            ctx.batch.add(ctx.pending(), pos, &[0], true);
            ctx.target.eval(ctx.batch, ctx.logits)?;
            let row = ctx.logits.row(0);
            let next = match self {
                Decoder::Exact => ctx.sampling.distribution(row).sample(ctx.rng),
                Decoder::Temperature(factor) => {
                    let sampling = SamplingParams {
                        temperature: ctx.sampling.temperature * *factor,
                        ..ctx.sampling.clone()
                    };
                    sampling.distribution(row).sample(ctx.rng)
                }
                Decoder::NextToArgmax => (argmax(row) + 1) % ctx.target.n_vocab() as TokenId,
            };
            ctx.tokens.push(next);
            Ok(())
        }
    }

    fn experiment(sampling: SamplingParams) -> ContinuationTest {
        ContinuationTest {
            prompt: vec![3, 1],
            len: 3,
            runs: 20_000,
            first_seed: 5,
            sampling,
        }
    }

    #[test]
    fn exact_sampling_passes_and_a_biased_sampler_fails() {
        let filtered = SamplingParams {
            top_k: 3,
            top_p: 0.9,
            ..unfiltered(0.8)
        };
        for sampling in [unfiltered(1.0), filtered] {
            let test = experiment(sampling);
            let mut model = InMemoryModel::random(4, 7);
            let r = test.run(&mut model, &mut Decoder::Exact);
            assert!(r.p_value > 1e-3, "{test:?}: {r:?}");
            // Many cells after pooling (64 continuations, fewer under the
            // filters): a test with power, not one pooled cell.
            assert!(r.dof >= 10, "{r:?}");
            eprintln!("{test:?}: {r:?}");
            // A tenth off the temperature is enough to fail.
            let r = test.run(&mut model, &mut Decoder::Temperature(1.1));
            eprintln!("biased: {r:?}");
            assert!(r.p_value < 1e-3, "{test:?}: {r:?}");
            assert!(model.batch_sizes.is_empty());
        }
    }

    #[test]
    fn counts_cover_every_run_and_follow_the_seeds() {
        let test = ContinuationTest {
            runs: 500,
            ..experiment(unfiltered(1.0))
        };
        let mut model = InMemoryModel::random(4, 7);
        let mut seen = 0u64;
        let counts = test.counts(&mut model, &mut Decoder::Exact, |g, _, m| {
            assert_eq!(g.tokens.len(), 3);
            // Prompt prefill, then one pass per token.
            assert_eq!(m.passes as u64, 4 * (seen + 1));
            seen += 1;
        });
        assert_eq!(seen, 500);
        assert_eq!(counts.len(), 64);
        assert_eq!(counts.iter().sum::<u64>(), 500);
        let again = test.counts(
            &mut InMemoryModel::random(4, 7),
            &mut Decoder::Exact,
            |_, _, _| {},
        );
        assert_eq!(again, counts, "same seeds, same counts");
        let shifted = ContinuationTest {
            first_seed: 6,
            ..test.clone()
        };
        let other = shifted.counts(
            &mut InMemoryModel::random(4, 7),
            &mut Decoder::Exact,
            |_, _, _| {},
        );
        assert_ne!(other, counts, "the seeds are used");
    }

    #[test]
    fn exact_probabilities_follow_the_last_prompt_token() {
        let model = InMemoryModel::random(4, 7);
        let test = experiment(unfiltered(1.0));
        assert_eq!(
            test.exact_probs(&model),
            exact_continuation_probs(&model, 1, 3, &unfiltered(1.0))
        );
    }

    #[test]
    #[should_panic(expected = "short continuation")]
    fn short_continuations_are_refused() {
        // Token 1 always follows and ends the generation.
        let mut model = InMemoryModel::bigram(&[vec![0.0, 1.0], vec![0.0, 1.0]]).with_eog(1);
        let test = ContinuationTest {
            prompt: vec![0],
            len: 2,
            runs: 1,
            first_seed: 0,
            sampling: unfiltered(1.0),
        };
        test.run(&mut model, &mut Decoder::Exact);
    }

    #[test]
    fn greedy_runs_match_themselves() {
        let model = InMemoryModel::random(9, 2).with_history(3);
        let (want, got) = assert_greedy_matches(
            &model,
            &mut Decoder::Exact,
            &mut Decoder::Exact,
            &[1, 2],
            20,
            "x",
        );
        assert_eq!(got.tokens.len(), 20);
        assert_eq!(want.stats.target_passes, got.stats.target_passes);
        let mut m = model.clone();
        assert_eq!(
            generate_greedy(&mut m, &mut Decoder::Exact, &[1, 2], 20).tokens,
            got.tokens
        );
    }

    #[test]
    #[should_panic(expected = "case 7: tokens")]
    fn a_wrong_greedy_strategy_is_caught() {
        let model = InMemoryModel::random(9, 2).with_history(3);
        assert_greedy_matches(
            &model,
            &mut Decoder::Exact,
            &mut Decoder::NextToArgmax,
            &[1, 2],
            20,
            "case 7",
        );
    }

    #[test]
    #[should_panic(expected = "stop reason")]
    fn a_different_stop_reason_is_caught() {
        let model = InMemoryModel::random(9, 2);
        let mut m = model.clone();
        let full = generate_greedy(&mut m, &mut Decoder::Exact, &[1, 2], 5);
        let mut cancelled = full.clone();
        cancelled.stop = crate::generate::StopReason::Cancelled;
        assert_same_output(&cancelled, &full, "stop");
    }
}
