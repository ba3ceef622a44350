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

use crate::error::ModelError;
use crate::model::{Batch, LogitRows, Model, SeqId, TokenId};
use crate::rng::Rng;

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
