//! Where drafts come from: the [`Drafter`] trait and the draft-model drafter.

use augur_core::model::RunLogits;
use augur_core::{Batch, CoreError, LogitRows, Model, Proposal, Rng, SamplingParams, TokenId};

use crate::error::SpeculativeError;

/// A source of draft tokens for [`crate::DraftVerify`]: a draft model
/// ([`ModelDrafter`]), an application's callback, a pipelined draft thread.
///
/// Exactness at temperature > 0 asks two things of a drafter: each token is
/// drawn from the distribution recorded with it (after the same filters as
/// the target's, i.e. `sampling.distribution`), using `rng`; and whether it
/// drafts at position i may depend on the tokens before i, never on the token
/// it would draw there. Deterministic drafters record one-hot distributions
/// ([`Proposal::deterministic`]).
pub trait Drafter {
    /// Called once per generation, after the target's prompt prefill, with the
    /// prompt (its last token is the target's pending token).
    fn start(&mut self, tokens: &[TokenId], target_n_vocab: usize) -> Result<(), CoreError> {
        let _ = (tokens, target_n_vocab);
        Ok(())
    }

    /// Appends up to `max` (at least 1) drafts to follow `tokens` (whose last
    /// token is the target's pending one) to `out`, which is empty on entry.
    /// Returns how many model passes drafting took (0 for model-free drafters).
    fn propose(
        &mut self,
        tokens: &[TokenId],
        max: usize,
        sampling: &SamplingParams,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<u64, CoreError>;

    /// Called after the target verified the last proposal (only after steps
    /// that called [`Drafter::propose`]): its first `accepted` tokens were
    /// accepted, and `tokens` now ends with them and the new pending token.
    fn on_verdict(&mut self, tokens: &[TokenId], accepted: usize) -> Result<(), CoreError> {
        let _ = (tokens, accepted);
        Ok(())
    }
}

impl<T: Drafter + ?Sized> Drafter for Box<T> {
    fn start(&mut self, tokens: &[TokenId], target_n_vocab: usize) -> Result<(), CoreError> {
        (**self).start(tokens, target_n_vocab)
    }
    fn propose(
        &mut self,
        tokens: &[TokenId],
        max: usize,
        sampling: &SamplingParams,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<u64, CoreError> {
        (**self).propose(tokens, max, sampling, rng, out)
    }
    fn on_verdict(&mut self, tokens: &[TokenId], accepted: usize) -> Result<(), CoreError> {
        (**self).on_verdict(tokens, accepted)
    }
}

/// Drafts with a smaller model of the target's family, autoregressively, on
/// sequence 0 of its own KV cache.
///
/// The draft's cache holds a prefix of the text, `tokens[..n_seen]`. A
/// proposal first brings it up to date in one batch (everything it has not
/// seen, through the target's pending token; logits on the last only), then
/// feeds each draft to get the next. After the verdict the cache keeps what
/// is still valid (the pending token and the accepted drafts it evaluated),
/// and the next proposal feeds the rest. Steps that do not draft do not touch
/// the draft at all: it catches up lazily when drafting resumes.
#[derive(Debug)]
pub struct ModelDrafter<D: Model> {
    model: D,
    p_min: f64,
    batch: Batch,
    logits: LogitRows,
    /// The draft's cache holds `tokens[..n_seen]`.
    n_seen: usize,
    /// The position of the pending token during the last proposal.
    last_pending: usize,
    /// Drafts of the last proposal fed to the draft model.
    fed: usize,
}

impl<D: Model> ModelDrafter<D> {
    /// A drafter over `model`; drafting stops when the draft's top-1
    /// probability (temperature 1) falls below `p_min` (0 disables).
    pub fn new(model: D, p_min: f64) -> Self {
        let n_vocab = model.n_vocab();
        Self {
            model,
            p_min,
            batch: Batch::new(),
            logits: LogitRows::new(n_vocab),
            n_seen: 0,
            last_pending: 0,
            fed: 0,
        }
    }

    /// The draft model.
    pub fn model(&self) -> &D {
        &self.model
    }

    /// The draft model, mutably (changing its cache between steps breaks the
    /// drafter's bookkeeping: call [`Drafter::start`] again after).
    pub fn model_mut(&mut self) -> &mut D {
        &mut self.model
    }

    /// Gives the draft model back.
    pub fn into_model(self) -> D {
        self.model
    }

    /// How many tokens of the text the draft's cache holds.
    pub fn n_seen(&self) -> usize {
        self.n_seen
    }

    /// Sets the top-1 probability below which drafting stops.
    pub fn set_p_min(&mut self, p_min: f64) {
        self.p_min = p_min;
    }
}

impl<D: Model> Drafter for ModelDrafter<D> {
    fn start(&mut self, tokens: &[TokenId], target_n_vocab: usize) -> Result<(), CoreError> {
        let n_vocab = self.model.n_vocab();
        if n_vocab != target_n_vocab {
            return Err(SpeculativeError::VocabMismatch {
                draft: n_vocab,
                target: target_n_vocab,
            }
            .into());
        }
        if !self.model.supports_rollback() {
            return Err(SpeculativeError::DraftRollbackUnsupported.into());
        }
        // The first proposal evaluates the pending token too.
        if tokens.len() > self.model.n_ctx() {
            return Err(SpeculativeError::DraftContextTooSmall {
                needed: tokens.len(),
                n_ctx: self.model.n_ctx(),
            }
            .into());
        }
        self.logits = LogitRows::new(n_vocab);
        self.model.clear()?;
        self.n_seen = 0;
        self.fed = 0;
        // All but the pending token, which the first proposal feeds.
        if tokens.len() > 1 {
            self.batch.clear();
            self.batch
                .add_run(&tokens[..tokens.len() - 1], 0, RunLogits::None);
            self.model.eval(&self.batch, &mut self.logits)?;
            self.n_seen = tokens.len() - 1;
        }
        Ok(())
    }

    fn propose(
        &mut self,
        tokens: &[TokenId],
        max: usize,
        sampling: &SamplingParams,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<u64, CoreError> {
        self.fed = 0;
        let Some(pending_pos) = tokens.len().checked_sub(1) else {
            return Ok(0);
        };
        if self.n_seen > pending_pos {
            return Err(CoreError::Internal {
                strategy: crate::NAME,
                reason: format!(
                    "the draft's cache holds {} tokens but the text has only {} before the \
                     pending token",
                    self.n_seen, pending_pos
                ),
            });
        }
        self.last_pending = pending_pos;
        // Drafts 1..n-1 are fed at positions pending_pos+1.., so the draft's
        // context bounds n as well.
        let max = max.min(self.model.n_ctx().saturating_sub(pending_pos));
        if max == 0 {
            return Ok(0);
        }

        // Catch up: everything unseen through the pending token, one batch.
        self.batch.clear();
        self.batch
            .add_run(&tokens[self.n_seen..], self.n_seen, RunLogits::Last);
        self.model.eval(&self.batch, &mut self.logits)?;
        self.n_seen = pending_pos + 1;
        let mut passes = 1;

        loop {
            let row = self.logits.row(0);
            // Decided before drawing this position's token, from the drafts
            // before it only: exactness allows that.
            if self.p_min > 0.0 && top_probability(row) < self.p_min {
                break;
            }
            let q = sampling.distribution(row);
            let x = q.sample(rng);
            out.push(x, q);
            if out.len() >= max || self.model.is_eog(x) {
                break;
            }
            self.batch.clear();
            self.batch.add(x, self.n_seen, &[0], true);
            self.model.eval(&self.batch, &mut self.logits)?;
            self.n_seen += 1;
            self.fed += 1;
            passes += 1;
        }
        Ok(passes)
    }

    fn on_verdict(&mut self, _tokens: &[TokenId], accepted: usize) -> Result<(), CoreError> {
        // Valid: the pending token and the accepted drafts the draft evaluated.
        let keep = self.last_pending + 1 + accepted.min(self.fed);
        if self.n_seen > keep {
            self.model.remove_from(0, keep)?;
            self.n_seen = keep;
        }
        self.fed = 0;
        Ok(())
    }
}

/// The probability of the most likely token at temperature 1, unfiltered.
pub fn top_probability(logits: &[f32]) -> f64 {
    let max = logits
        .iter()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    if max == f32::INFINITY {
        return 1.0;
    }
    if max == f32::NEG_INFINITY {
        return 0.0;
    }
    let max = max as f64;
    let total: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| (l as f64 - max).exp())
        .sum();
    1.0 / total
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use augur_core::testing::InMemoryModel;

    #[test]
    fn top_probability_is_the_softmax_maximum() {
        let p = [0.1f64, 0.6, 0.3];
        let logits: Vec<f32> = p.iter().map(|x| x.ln() as f32).collect();
        assert!((top_probability(&logits) - 0.6).abs() < 1e-6);
        assert_eq!(top_probability(&[f32::NEG_INFINITY, 0.0]), 1.0);
        assert!((top_probability(&[0.0, 0.0, f32::NAN, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn cache_tracks_the_text_through_verdicts() {
        let model = InMemoryModel::random(9, 2);
        let mut d = ModelDrafter::new(model, 0.0);
        let mut tokens = vec![1, 2, 3];
        d.start(&tokens, 9).unwrap();
        assert_eq!(d.model().sequence(0), vec![1, 2]);
        let greedy = SamplingParams::greedy();
        let mut rng = Rng::new(0);
        let mut out = Proposal::new();
        let passes = d.propose(&tokens, 4, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(passes, 4);
        // Pending and three drafts fed; the fourth was not.
        assert_eq!(d.model().sequence(0).len(), 2 + 1 + 3);
        // Two accepted, then a correction 7.
        tokens.extend_from_slice(&out.tokens[..2]);
        tokens.push(7);
        d.on_verdict(&tokens, 2).unwrap();
        assert_eq!(d.model().sequence(0), tokens[..tokens.len() - 1]);
        // All accepted: the last draft and the bonus are fed next time.
        out = Proposal::new();
        d.propose(&tokens, 2, &greedy, &mut rng, &mut out).unwrap();
        tokens.extend_from_slice(&out.tokens);
        tokens.push(0);
        d.on_verdict(&tokens, 2).unwrap();
        assert_eq!(d.model().sequence(0), tokens[..tokens.len() - 2]);
        out = Proposal::new();
        d.propose(&tokens, 1, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(d.model().sequence(0), tokens);
        assert_eq!(*d.model().batch_sizes.last().unwrap(), 2);
    }

    #[test]
    fn start_refuses_mismatched_vocabularies_and_small_contexts() {
        let mut d = ModelDrafter::new(InMemoryModel::random(9, 2), 0.0);
        let e = d.start(&[1, 2], 10).unwrap_err();
        assert!(
            matches!(e, CoreError::Unsupported { .. }) && e.to_string().contains("vocabulary"),
            "{e}"
        );
        let mut d = ModelDrafter::new(InMemoryModel::random(9, 2).with_n_ctx(3), 0.0);
        assert!(d.start(&[1, 2, 3], 9).is_ok());
        assert!(d.start(&[1, 2, 3, 4], 9).is_err());
    }

    #[test]
    fn draft_context_bounds_the_proposal() {
        let mut d = ModelDrafter::new(InMemoryModel::random(9, 2).with_n_ctx(6), 0.0);
        let tokens = vec![1, 2, 3, 4];
        d.start(&tokens, 9).unwrap();
        let mut out = Proposal::new();
        let mut rng = Rng::new(0);
        d.propose(&tokens, 8, &SamplingParams::greedy(), &mut rng, &mut out)
            .unwrap();
        // Pending at 3, drafts fed at 4 and 5: three drafts in all.
        assert_eq!(out.len(), 3);
        assert_eq!(d.model().cache_len(), 6);
    }
}
