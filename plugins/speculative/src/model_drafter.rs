//! The draft-model drafter: a smaller model of the target's family drafts
//! autoregressively.

use augur_core::model::RunLogits;
use augur_core::{
    Batch, ConfidenceMap, CoreError, DraftRequest, Drafter, LogitRows, Model, Proposal, Rng,
    SamplingParams, TokenId, VerifyOutcome,
};

use crate::error::SpeculativeError;

/// The most positions of a catch-up judged in hindsight (greedy only): the
/// tuner counts 12 per catch-up, and each judged row costs an output-layer
/// row and a softmax over the vocabulary.
const HINDSIGHT_ROWS: usize = 16;

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
///
/// Each drafted token carries the draft's top-1 probability at its position,
/// calibrated by the verdicts of this generation ([`ConfidenceMap`]), as its
/// confidence. Unless asked to draft all it may ([`DraftRequest::draft_all`]),
/// the drafter stops as soon as one more draft step is not expected to pay
/// ([`augur_core::CostModel::drafting_more_pays`], with the last token's
/// confidence standing for the next one's): long drafts where the draft is
/// sure, short ones where it hesitates.
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
    /// The current step asked for drafts.
    proposed: bool,
    /// Raw top-1 probabilities of the last proposal's drafts.
    scores: Vec<f64>,
    /// What the verdicts say those probabilities are worth.
    calibration: ConfidenceMap,
    /// Seconds per token of a long catch-up batch, timed (prompt prefill,
    /// catch-ups after another drafter's copies); 0 until timed.
    catch_up_per_token: f64,
    /// This generation decodes greedily.
    greedy: bool,
}

/// A catch-up over at most this many tokens beyond the usual two (the
/// pending token and the bonus token before it) is part of a draft step's
/// calibrated cost; longer ones are timed and forecast.
const LONG_CATCH_UP: usize = 8;

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
            proposed: false,
            scores: Vec::new(),
            calibration: ConfidenceMap::new(),
            catch_up_per_token: 0.0,
            greedy: true,
        }
    }

    /// Evaluates the batch, timing it as a catch-up over `tokens` tokens
    /// when that is a long one.
    fn eval_catch_up(&mut self, tokens: usize) -> Result<(), CoreError> {
        let started = std::time::Instant::now();
        self.model.eval(&self.batch, &mut self.logits)?;
        if tokens > LONG_CATCH_UP {
            let per_token = started.elapsed().as_secs_f64() / tokens as f64;
            self.catch_up_per_token = if self.catch_up_per_token > 0.0 {
                0.7 * self.catch_up_per_token + 0.3 * per_token
            } else {
                per_token
            };
        }
        Ok(())
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
    fn name(&self) -> &'static str {
        "draft-model"
    }

    fn paces_itself(&self) -> bool {
        true
    }

    fn catch_up_seconds(&self, tokens: &[TokenId]) -> f64 {
        let extra = tokens.len().saturating_sub(self.n_seen + 2);
        if !self.greedy || extra <= LONG_CATCH_UP {
            return 0.0;
        }
        extra as f64 * self.catch_up_per_token
    }

    fn start(
        &mut self,
        tokens: &[TokenId],
        target_n_vocab: usize,
        sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        self.greedy = sampling.is_greedy();
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
        self.proposed = false;
        self.scores.clear();
        // Each generation learns afresh, so its text depends only on its own
        // seed and prompt.
        self.calibration.clear();
        // All but the pending token, which the first proposal feeds.
        if tokens.len() > 1 {
            self.batch.clear();
            self.batch
                .add_run(&tokens[..tokens.len() - 1], 0, RunLogits::None);
            self.eval_catch_up(tokens.len() - 1)?;
            self.n_seen = tokens.len() - 1;
        }
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        self.fed = 0;
        self.proposed = true;
        self.scores.clear();
        let tokens = req.tokens;
        let Some(pending_pos) = tokens.len().checked_sub(1) else {
            return Ok(());
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
        let max = req.max.min(self.model.n_ctx().saturating_sub(pending_pos));
        if max == 0 {
            return Ok(());
        }

        // Catch up: everything unseen through the pending token, one batch.
        // Under greedy decoding with text the draft never saw before the
        // pending token (plain steps, another drafter's steps), every row is
        // asked for: the draft's guess at each of those positions against
        // the token the target chose is its first-position acceptance in
        // hindsight, which the tuner and the confidence map learn from.
        // Only the last HINDSIGHT_ROWS positions are judged: after a long
        // copy every extra row costs the draft's output layer (a 152k
        // vocabulary) and a softmax, while the tuner counts a dozen at most.
        let unseen = tokens.len() - self.n_seen;
        let judged = if req.sampling.is_greedy() {
            (unseen - 1).min(HINDSIGHT_ROWS)
        } else {
            0
        };
        let judge = judged >= 1;
        let first_judged = self.n_seen + (unseen - 1 - judged);
        self.batch.clear();
        if judge {
            self.batch.add_run(
                &tokens[self.n_seen..first_judged],
                self.n_seen,
                RunLogits::None,
            );
            self.batch
                .add_run(&tokens[first_judged..], first_judged, RunLogits::All);
        } else {
            self.batch
                .add_run(&tokens[self.n_seen..], self.n_seen, RunLogits::Last);
        }
        self.eval_catch_up(unseen)?;
        for i in 0..judged {
            let row = self.logits.row(i);
            let agreed = augur_core::sampling::argmax(row) == tokens[first_judged + i + 1];
            self.calibration.record(top_probability(row), agreed);
            out.hindsight.seen += 1;
            out.hindsight.agreed += usize::from(agreed);
        }
        self.n_seen = pending_pos + 1;
        let mut passes = 1;
        let mut row_index = judged;

        loop {
            let row = self.logits.row(row_index);
            row_index = 0;
            // Decided before drawing this position's token, from the drafts
            // before it only: exactness allows that.
            let top = top_probability(row);
            if self.p_min > 0.0 && top < self.p_min {
                break;
            }
            let q = req.sampling.distribution(row);
            let x = q.sample(rng);
            let confidence = self.calibration.estimate(top);
            out.push(x, q, confidence);
            self.scores.push(top);
            if out.len() >= max || self.model.is_eog(x) {
                break;
            }
            // Whether to pay for the next position is decided from the
            // confidences so far, all known before its token is drawn.
            if !req.draft_all
                && !req
                    .costs
                    .drafting_more_pays(&out.confidence, confidence, max)
            {
                break;
            }
            self.batch.clear();
            self.batch.add(x, self.n_seen, &[0], true);
            self.model.eval(&self.batch, &mut self.logits)?;
            self.n_seen += 1;
            self.fed += 1;
            passes += 1;
        }
        out.draft_passes = passes;
        Ok(())
    }

    fn on_verdict(
        &mut self,
        _tokens: &[TokenId],
        outcome: &VerifyOutcome,
    ) -> Result<(), CoreError> {
        // Steps that did not ask for drafts left the draft's cache alone.
        if !std::mem::take(&mut self.proposed) {
            return Ok(());
        }
        // Draft i was verified only if every one before it was accepted.
        let judged = outcome.verified.min(outcome.accepted + 1);
        for (i, &score) in self.scores.iter().take(judged).enumerate() {
            self.calibration.record(score, i < outcome.accepted);
        }
        // Valid: the pending token and the accepted drafts the draft evaluated.
        let keep = self.last_pending + 1 + outcome.accepted.min(self.fed);
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
    use augur_core::CostModel;

    /// One proposal of up to `max` drafts; returns the draft passes it took.
    fn propose<D: Model>(
        d: &mut ModelDrafter<D>,
        tokens: &[TokenId],
        max: usize,
        sampling: &SamplingParams,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<u64, CoreError> {
        let costs = CostModel::prior();
        let req = DraftRequest {
            tokens,
            max,
            remaining: usize::MAX,
            room: usize::MAX,
            sampling,
            costs: &costs,
            draft_all: false,
        };
        d.propose(&req, rng, out)?;
        Ok(out.draft_passes)
    }

    /// The verdict that the first `accepted` drafts passed.
    fn verdict<D: Model>(
        d: &mut ModelDrafter<D>,
        tokens: &[TokenId],
        accepted: usize,
    ) -> Result<(), CoreError> {
        let outcome = VerifyOutcome {
            accepted,
            verified: accepted,
            ..VerifyOutcome::default()
        };
        d.on_verdict(tokens, &outcome)
    }

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
        d.start(&tokens, 9, &SamplingParams::greedy()).unwrap();
        assert_eq!(d.model().sequence(0), vec![1, 2]);
        let greedy = SamplingParams::greedy();
        let mut rng = Rng::new(0);
        let mut out = Proposal::new();
        let passes = propose(&mut d, &tokens, 4, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(passes, 4);
        // Pending and three drafts fed; the fourth was not.
        assert_eq!(d.model().sequence(0).len(), 2 + 1 + 3);
        // Two accepted, then a correction 7.
        tokens.extend_from_slice(&out.tokens[..2]);
        tokens.push(7);
        verdict(&mut d, &tokens, 2).unwrap();
        assert_eq!(d.model().sequence(0), tokens[..tokens.len() - 1]);
        // All accepted: the last draft and the bonus are fed next time.
        out = Proposal::new();
        propose(&mut d, &tokens, 2, &greedy, &mut rng, &mut out).unwrap();
        tokens.extend_from_slice(&out.tokens);
        tokens.push(0);
        verdict(&mut d, &tokens, 2).unwrap();
        assert_eq!(d.model().sequence(0), tokens[..tokens.len() - 2]);
        out = Proposal::new();
        propose(&mut d, &tokens, 1, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(d.model().sequence(0), tokens);
        assert_eq!(*d.model().batch_sizes.last().unwrap(), 2);
    }

    #[test]
    fn start_refuses_mismatched_vocabularies_and_small_contexts() {
        let mut d = ModelDrafter::new(InMemoryModel::random(9, 2), 0.0);
        let e = d.start(&[1, 2], 10, &SamplingParams::greedy()).unwrap_err();
        assert!(
            matches!(e, CoreError::Unsupported { .. }) && e.to_string().contains("vocabulary"),
            "{e}"
        );
        let mut d = ModelDrafter::new(InMemoryModel::random(9, 2).with_n_ctx(3), 0.0);
        assert!(d.start(&[1, 2, 3], 9, &SamplingParams::greedy()).is_ok());
        assert!(d
            .start(&[1, 2, 3, 4], 9, &SamplingParams::greedy())
            .is_err());
    }

    #[test]
    fn draft_context_bounds_the_proposal() {
        let mut d = ModelDrafter::new(InMemoryModel::random(9, 2).with_n_ctx(6), 0.0);
        let tokens = vec![1, 2, 3, 4];
        d.start(&tokens, 9, &SamplingParams::greedy()).unwrap();
        let mut out = Proposal::new();
        let mut rng = Rng::new(0);
        propose(
            &mut d,
            &tokens,
            8,
            &SamplingParams::greedy(),
            &mut rng,
            &mut out,
        )
        .unwrap();
        // Pending at 3, drafts fed at 4 and 5: three drafts in all.
        assert_eq!(out.len(), 3);
        assert_eq!(d.model().cache_len(), 6);
    }

    /// A bigram draft over 4 tokens: after 0 it is sure of 1, after 1 sure
    /// of 2, after 2 it hesitates (0.3 on 3), after 3 sure of 0.
    fn sure_then_hesitant() -> InMemoryModel {
        InMemoryModel::bigram(&[
            vec![0.02, 0.96, 0.01, 0.01],
            vec![0.01, 0.01, 0.97, 0.01],
            vec![0.25, 0.25, 0.2, 0.3],
            vec![0.97, 0.01, 0.01, 0.01],
        ])
    }

    #[test]
    fn catching_up_under_greedy_judges_the_first_guesses_in_hindsight() {
        let greedy = SamplingParams::greedy();
        let mut d = ModelDrafter::new(sure_then_hesitant(), 0.0);
        d.start(&[0], 4, &greedy).unwrap();
        // Seven steps went by without the draft. Its guesses after each of
        // 0 1 2 3 0 1 2 are 1 2 3 0 1 2 3; the text has 0 last.
        let text = vec![0, 1, 2, 3, 0, 1, 2, 0];
        let mut out = Proposal::new();
        let mut rng = Rng::new(0);
        propose(&mut d, &text, 2, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(out.hindsight, augur_core::Hindsight { agreed: 6, seen: 7 });
        // The draft itself still starts after the pending 0.
        assert_eq!(out.tokens, vec![1, 2]);
        assert_eq!(d.model().sequence(0), vec![0, 1, 2, 3, 0, 1, 2, 0, 1]);
        // One unseen token (the pending one) leaves nothing to judge.
        let mut text = text;
        text.extend_from_slice(&[1, 0]);
        verdict(&mut d, &text, 1).unwrap();
        out = Proposal::new();
        propose(&mut d, &text, 2, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(out.hindsight.seen, 0);
        // A long catch-up judges only its last HINDSIGHT_ROWS positions:
        // here the four early misses (guess 1 after 0, text 0) fall outside.
        d.start(&[0], 4, &greedy).unwrap();
        let mut long = vec![0, 0, 0, 0, 0];
        for _ in 0..4 {
            long.extend_from_slice(&[1, 2, 3, 0]);
        }
        long.push(1);
        assert_eq!(long.len() - 1, HINDSIGHT_ROWS + 5);
        out = Proposal::new();
        propose(&mut d, &long, 2, &greedy, &mut rng, &mut out).unwrap();
        assert_eq!(
            out.hindsight,
            augur_core::Hindsight {
                agreed: HINDSIGHT_ROWS,
                seen: HINDSIGHT_ROWS
            }
        );
        assert_eq!(out.tokens, vec![2, 3]);
        // Under sampling acceptance is not the guess's agreement: not judged.
        let sampled = SamplingParams {
            temperature: 1.0,
            ..SamplingParams::greedy()
        };
        d.start(&[0], 4, &sampled).unwrap();
        out = Proposal::new();
        propose(&mut d, &[0, 1, 2, 3], 2, &sampled, &mut rng, &mut out).unwrap();
        assert_eq!(out.hindsight.seen, 0);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn paces_itself_by_calibrated_confidence_unless_asked_for_all() {
        // A memory-bound target: passes of several tokens cost little more
        // than one, a draft step a quarter of a target pass.
        let costs = CostModel::calibrated(&[1.0, 1.29, 1.47, 1.56, 1.69, 1.81, 1.95], 0.26, 1);
        let greedy = SamplingParams::greedy();
        let tokens = vec![3, 0];
        let draft = |draft_all: bool, d: &mut ModelDrafter<InMemoryModel>| {
            d.start(&tokens, 4, &greedy).unwrap();
            let req = DraftRequest {
                tokens: &tokens,
                max: 6,
                remaining: usize::MAX,
                room: usize::MAX,
                sampling: &greedy,
                costs: &costs,
                draft_all,
            };
            let mut out = Proposal::new();
            d.propose(&req, &mut Rng::new(0), &mut out).unwrap();
            out
        };
        let mut d = ModelDrafter::new(sure_then_hesitant(), 0.0);
        assert!(d.paces_itself());
        // Sure of 1 and 2, then a 30 % guess (3): no further step is worth it.
        let out = draft(false, &mut d);
        assert_eq!(out.tokens, vec![1, 2, 3]);
        assert_eq!(out.draft_passes, 3);
        assert!(
            (out.confidence[0] - 0.96).abs() < 1e-6,
            "{:?}",
            out.confidence
        );
        assert!(
            (out.confidence[2] - 0.3).abs() < 1e-6,
            "{:?}",
            out.confidence
        );
        // Asked for all: the cap.
        let all = draft(true, &mut d);
        assert_eq!(all.tokens, vec![1, 2, 3, 0, 1, 2]);
        // The verdicts calibrate the scores: a hesitant draft the target
        // always agrees with is worth going on after. Seven drafts from the
        // pending 3 end on 2, and the target's bonus 3 agrees with the
        // hesitant guess after it too (the next catch-up judges it).
        let mut text = tokens.clone();
        d.start(&text, 4, &greedy).unwrap();
        let mut out = Proposal::new();
        for round in 0..=60 {
            let req = DraftRequest {
                tokens: &text,
                max: if round < 60 { 7 } else { 6 },
                remaining: usize::MAX,
                room: usize::MAX,
                sampling: &greedy,
                costs: &costs,
                draft_all: round < 60,
            };
            out = Proposal::new();
            d.propose(&req, &mut Rng::new(0), &mut out).unwrap();
            if round == 60 {
                break;
            }
            let n = out.len();
            text.extend_from_slice(&out.tokens);
            text.push(3);
            d.on_verdict(
                &text,
                &VerifyOutcome {
                    accepted: n,
                    verified: n,
                    ..VerifyOutcome::default()
                },
            )
            .unwrap();
        }
        // From the pending 3: 0, 1, 2 sure, then the hesitant 3, now trusted.
        assert_eq!(out.tokens, vec![0, 1, 2, 3, 0, 1], "{:?}", out.confidence);
        assert!(out.confidence[3] > 0.9, "{:?}", out.confidence);
    }
}
