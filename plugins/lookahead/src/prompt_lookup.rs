//! Prompt lookup: drafts copied from earlier text, verified exactly.

use std::time::Instant;

use augur_core::strategy::Exactness;
use augur_core::{CoreError, Proposal, StepContext, Strategy, TokenId};

use crate::budget::{
    BudgetPolicy, CopyStats, DEFAULT_DECAY, DEFAULT_PRIOR_RATES, DEFAULT_PRIOR_WEIGHT,
    MAX_MEASURED_PASS, RUN_CLASS_COUNT,
};
use crate::copy_cursor::CopyCursor;
use crate::error::Error;
use crate::ngram_index::{Evidence, NgramIndex, MAX_INDEX_NGRAM};

const NAME: &str = "prompt-lookup";

/// Shortest n-gram matched by default. Single tokens match by chance often,
/// but the evidence rule (2 occurrences, 66 % share) and the adaptive budget
/// keep chance matches cheap, and they catch copies that longer keys miss
/// right after a divergence.
pub const DEFAULT_LOOKUP_NGRAM_MIN: usize = 1;

/// Longest n-gram matched by default (llama.cpp's lookup uses 4 too). On the
/// in-memory model (see `examples/tune.rs`) ranges 1..=3 and
/// 1..=4 were within noise of each other, and 1..=2 drafted less on copied
/// text; 4 prefers the more specific match when a short n-gram occurs in
/// several places.
pub const DEFAULT_LOOKUP_NGRAM_MAX: usize = 4;

/// Longest draft by default: passes of up to 16 tokens, the sizes
/// calibration measures. How long a draft really is follows the measured pass
/// costs and how reliable the copy has been ([`BudgetPolicy`]); on a
/// compute-bound CPU target sure copies are drafted 6 or 15 tokens at a time
/// (passes of 8+ tokens cost a jump more there), uncertain ones not at all.
/// Callers running in bit-exact mode set it to the calibrated batch size
/// minus one.
pub const DEFAULT_DRAFT_MAX: usize = 15;

/// Cost of one drafted token in single-token passes where no measured pass
/// cost is known. 0.7 is the measured compute-bound case (a Q4_K_M target on
/// 2 cores), the conservative choice: drafting then needs acceptance rates
/// above 70 %, which copying reaches and chance matches do not. Calibration
/// replaces it with the measured table.
pub const DEFAULT_DRAFT_COST: f64 = 0.7;

/// Settings of [`PromptLookup`].
#[derive(Debug, Clone, PartialEq)]
pub struct PromptLookupConfig {
    /// Shortest n-gram to match (≥ 1).
    pub ngram_min: usize,
    /// Longest n-gram to match (≥ `ngram_min`, ≤ [`MAX_INDEX_NGRAM`]); longer
    /// matches are tried first.
    pub ngram_max: usize,
    /// Longest draft (≥ 1).
    pub draft_max: usize,
    /// Cost of one drafted token in single-token target passes (≥ 0); see
    /// [`DEFAULT_DRAFT_COST`].
    pub draft_cost: f64,
    /// Measured cost of a target pass over k + 1 tokens relative to a
    /// one-token pass, at index k (from calibration; 0 where not measured).
    pub pass_costs: [f64; MAX_MEASURED_PASS],
    /// Acceptance rates assumed at the start of a generation, per run-length
    /// class ([`crate::RUN_CLASSES`]), each in [0, 1].
    pub prior_rates: [f64; RUN_CLASS_COUNT],
    /// Per-observation decay of the acceptance counts, in (0, 1]: about the
    /// last 1 / (1 − decay) observations of a class matter.
    pub decay: f64,
    /// The minimum-evidence rule a continuation must pass to be drafted.
    pub evidence: Evidence,
    /// The largest target pass whose logits are bit-identical to one-token
    /// passes (from calibration); `None` when unknown or unlimited. Only
    /// affects the reported [`Exactness`].
    pub max_exact_batch: Option<usize>,
}

impl Default for PromptLookupConfig {
    fn default() -> Self {
        Self {
            ngram_min: DEFAULT_LOOKUP_NGRAM_MIN,
            ngram_max: DEFAULT_LOOKUP_NGRAM_MAX,
            draft_max: DEFAULT_DRAFT_MAX,
            draft_cost: DEFAULT_DRAFT_COST,
            pass_costs: [0.0; MAX_MEASURED_PASS],
            prior_rates: DEFAULT_PRIOR_RATES,
            decay: DEFAULT_DECAY,
            evidence: Evidence::default(),
            max_exact_batch: None,
        }
    }
}

impl PromptLookupConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), Error> {
        if self.ngram_min == 0 {
            return Err(Error::config(
                NAME,
                "the shortest n-gram must be at least 1",
            ));
        }
        if self.ngram_max < self.ngram_min || self.ngram_max > MAX_INDEX_NGRAM {
            return Err(Error::config(
                NAME,
                format!(
                    "the longest n-gram must be in {}..={MAX_INDEX_NGRAM}, got {}",
                    self.ngram_min, self.ngram_max
                ),
            ));
        }
        if self.draft_max == 0 {
            return Err(Error::config(
                NAME,
                "the longest draft must be at least 1 (use the baseline strategy for none)",
            ));
        }
        if !(self.draft_cost.is_finite() && self.draft_cost >= 0.0) {
            return Err(Error::config(
                NAME,
                format!(
                    "the draft cost must be a finite number >= 0, got {}",
                    self.draft_cost
                ),
            ));
        }
        if !self.prior_rates.iter().all(|r| (0.0..=1.0).contains(r)) {
            return Err(Error::config(
                NAME,
                format!(
                    "the prior acceptance rates must be in [0, 1], got {:?}",
                    self.prior_rates
                ),
            ));
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(Error::config(
                NAME,
                format!("the decay must be in (0, 1], got {}", self.decay),
            ));
        }
        if self.evidence.min_count.is_empty()
            || self.evidence.min_percent.is_empty()
            || self.evidence.min_percent.iter().any(|&p| p > 100)
        {
            return Err(Error::config(
                NAME,
                "the evidence rule needs counts and percentages (0..=100) for each n-gram length",
            ));
        }
        if self.max_exact_batch == Some(0) {
            return Err(Error::config(
                NAME,
                "the largest exact batch must be at least 1",
            ));
        }
        Ok(())
    }

    fn policy(&self) -> BudgetPolicy {
        BudgetPolicy {
            max_len: self.draft_max,
            draft_cost: self.draft_cost,
            pass_costs: self.pass_costs,
        }
    }

    fn stats(&self) -> CopyStats {
        CopyStats::new(self.prior_rates, DEFAULT_PRIOR_WEIGHT, self.decay)
    }
}

/// Prompt-lookup drafting (strategy name `prompt-lookup`).
///
/// Each step follows the tokens appended since the last step: the copy the
/// output is making of earlier text ([`CopyCursor`]: its position, the edits
/// it has learned, how reliable it has been) and an index of the longest
/// recent n-gram that occurred earlier with a dominant continuation
/// ([`NgramIndex`]), which finds new copies. The continuation is proposed as
/// a deterministic draft (one-hot q, a function of the text so far) to the
/// shared verifier, which makes the output exact in greedy and in sampling
/// mode. [`BudgetPolicy`] sets the draft length.
#[derive(Debug, Clone)]
pub struct PromptLookup {
    config: PromptLookupConfig,
    policy: BudgetPolicy,
    index: NgramIndex,
    cursor: CopyCursor,
    draft: Vec<TokenId>,
    largest_batch: usize,
}

impl Default for PromptLookup {
    fn default() -> Self {
        let config = PromptLookupConfig::default();
        Self::build(config)
    }
}

impl PromptLookup {
    /// A prompt-lookup strategy with `config`, validated.
    pub fn new(config: PromptLookupConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: PromptLookupConfig) -> Self {
        let policy = config.policy();
        Self {
            index: NgramIndex::new(config.ngram_min, config.ngram_max),
            cursor: CopyCursor::with_stats(config.stats()),
            policy,
            config,
            draft: Vec::new(),
            largest_batch: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &PromptLookupConfig {
        &self.config
    }

    /// The copy being followed and what it learned (for reports and tests).
    pub fn cursor(&self) -> &CopyCursor {
        &self.cursor
    }

    /// The largest target pass of the current generation, in tokens.
    pub fn largest_batch(&self) -> usize {
        self.largest_batch
    }

    /// Indexes `history` (appended tokens only) and writes into `out` the
    /// candidate draft of up to `max_len` tokens (empty when nothing matches).
    /// Exposed so other drivers can reuse the drafter.
    ///
    /// The candidate continues the copy the output is making of earlier text
    /// ([`CopyCursor`], with the replacements it has learned) while that copy
    /// has at least as much matched context as the longest n-gram match;
    /// otherwise the n-gram match wins and the cursor follows it from then on.
    pub fn candidate(&mut self, history: &[TokenId], max_len: usize, out: &mut Vec<TokenId>) {
        self.index.update(history);
        self.cursor.update(history);
        out.clear();
        if max_len == 0 {
            return;
        }
        // A copy with as much context as the longest n-gram always wins: the
        // index need not be asked.
        let found =
            if self.cursor.position().is_some() && self.cursor.run() >= self.config.ngram_max {
                None
            } else {
                self.index.find(history, &self.config.evidence)
            };
        match (self.cursor.position(), found) {
            (Some(c), Some(m)) if c != m.source && self.cursor.run() < m.n => {
                self.cursor.follow(m.source, m.n);
            }
            (Some(_), _) => {}
            (None, Some(m)) => self.cursor.follow(m.source, m.n),
            (None, None) => return,
        }
        self.cursor.draft(history, max_len, out);
    }

    fn reset(&mut self) {
        self.index.clear();
        self.cursor.clear();
        self.largest_batch = 0;
    }
}

impl Strategy for PromptLookup {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.reset();
        let t = Instant::now();
        self.index.update(ctx.tokens);
        ctx.stats.draft_seconds += t.elapsed().as_secs_f64();
        Ok(())
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let t = Instant::now();
        let mut draft = std::mem::take(&mut self.draft);
        self.candidate(ctx.tokens, self.config.draft_max, &mut draft);
        let (run, stats) = (self.cursor.run(), *self.cursor.stats());
        let k = self
            .policy
            .draft_len(draft.len().min(ctx.max_drafts()), |i| stats.rate(run + i));
        ctx.stats.draft_seconds += t.elapsed().as_secs_f64();

        // The outcome needs no bookkeeping here: the cursor sees the emitted
        // tokens, drafted or not, at the next step.
        if k > 0 {
            ctx.stats.pool_hits += 1;
            ctx.verify_proposal(&Proposal::deterministic(&draft[..k]))?;
        } else {
            ctx.verify_proposal(&Proposal::new())?;
        }
        self.largest_batch = self.largest_batch.max(k + 1);
        self.draft = draft;
        Ok(())
    }

    fn exactness(&self) -> Exactness {
        match self.config.max_exact_batch {
            Some(b) if self.largest_batch > b => Exactness::KernelLevel,
            _ => Exactness::BitIdentical,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use augur_core::testing::{InMemoryModel, ScriptedModel};
    use augur_core::{generate, GenerateParams, SamplingParams};

    #[test]
    fn invalid_settings_are_refused() {
        let ok = PromptLookupConfig::default();
        assert!(PromptLookup::new(ok.clone()).is_ok());
        let bad = [
            PromptLookupConfig {
                ngram_min: 0,
                ..ok.clone()
            },
            PromptLookupConfig {
                ngram_min: 3,
                ngram_max: 2,
                ..ok.clone()
            },
            PromptLookupConfig {
                ngram_max: MAX_INDEX_NGRAM + 1,
                ..ok.clone()
            },
            PromptLookupConfig {
                draft_max: 0,
                ..ok.clone()
            },
            PromptLookupConfig {
                draft_cost: -0.1,
                ..ok.clone()
            },
            PromptLookupConfig {
                draft_cost: f64::NAN,
                ..ok.clone()
            },
            PromptLookupConfig {
                prior_rates: [0.5, 0.5, 1.5, 0.5, 0.5, 0.5],
                ..ok.clone()
            },
            PromptLookupConfig {
                prior_rates: [0.5, f64::NAN, 0.5, 0.5, 0.5, 0.5],
                ..ok.clone()
            },
            PromptLookupConfig {
                decay: 0.0,
                ..ok.clone()
            },
            PromptLookupConfig {
                decay: 1.01,
                ..ok.clone()
            },
            PromptLookupConfig {
                evidence: Evidence {
                    min_count: vec![1],
                    min_percent: vec![101],
                },
                ..ok.clone()
            },
            PromptLookupConfig {
                max_exact_batch: Some(0),
                ..ok
            },
        ];
        for c in bad {
            let e = PromptLookup::new(c.clone()).unwrap_err();
            assert!(
                matches!(e, Error::InvalidConfig { strategy: NAME, .. }),
                "{c:?}"
            );
            let core: CoreError = e.into();
            assert!(matches!(core, CoreError::InvalidParameter(_)));
        }
    }

    /// A deterministic cycle 0 → 1 → 2 → 3 → 0 with a prompt that already
    /// shows it: after one miss-free warm-up the drafts grow to the cap.
    #[test]
    fn copying_grows_the_draft_and_saves_passes() {
        let rows: Vec<Vec<f64>> = (0..5)
            .map(|i| {
                (0..5)
                    .map(|j| if j == (i + 1) % 4 { 10.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        let mut m = InMemoryModel::bigram(&rows);
        let mut s = PromptLookup::default();
        let params = GenerateParams {
            max_tokens: 60,
            sampling: SamplingParams::greedy(),
        };
        let g = generate(&mut m, &mut s, &[0, 1, 2, 3, 0, 1], &params, &mut |_| true).unwrap();
        let want: Vec<TokenId> = (0..60).map(|i| ((i + 2) % 4) as TokenId).collect();
        assert_eq!(g.tokens, want);
        assert!(g.stats.target_passes < 20, "{:?}", g.stats);
        assert_eq!(g.stats.drafted, g.stats.accepted);
        // Sure copies grow the drafts long (with the linear default cost a
        // draft of k pays only while the rate stays near 1).
        assert!(s.largest_batch() > 8, "{}", s.largest_batch());
        assert_eq!(s.exactness(), Exactness::BitIdentical);
        let mut capped = PromptLookup::new(PromptLookupConfig {
            max_exact_batch: Some(3),
            ..Default::default()
        })
        .unwrap();
        generate(
            &mut m,
            &mut capped,
            &[0, 1, 2, 3, 0, 1],
            &params,
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(capped.exactness(), Exactness::KernelLevel);
    }

    /// The model returns its prompt (a "file") with token 7 renamed to 99
    /// everywhere: after the first rename, the later ones are drafted right.
    #[test]
    fn a_repeated_rename_is_learned_and_drafted() {
        let file: Vec<TokenId> = (0..60)
            .map(|i| if i % 6 == 3 { 7 } else { 10 + i })
            .collect();
        let renamed: Vec<TokenId> = file.iter().map(|&t| if t == 7 { 99 } else { t }).collect();
        let mut text = file.clone();
        text.push(5);
        let prompt = text.clone();
        text.extend(&renamed);
        let mut m = ScriptedModel::new(text, 100, None);
        let mut s = PromptLookup::new(PromptLookupConfig {
            draft_cost: 0.05,
            ..Default::default()
        })
        .unwrap();
        let params = GenerateParams {
            max_tokens: renamed.len(),
            sampling: SamplingParams::greedy(),
        };
        let g = generate(&mut m, &mut s, &prompt, &params, &mut |_| true).unwrap();
        assert_eq!(g.tokens, renamed);
        assert_eq!(s.cursor().replacement(7), Some(&[99][..]));
        // Passes whose draft a wrong token cut short: the first rename only
        // (10 renames in the output, drafted through from the fourth token).
        let cut = m.passes[1..]
            .iter()
            .filter(|&&(size, right)| right + 1 < size)
            .count();
        assert!(cut <= 1, "{:?}", m.passes);
        assert!(g.stats.target_passes < 20, "{:?}", g.stats);
    }

    #[test]
    fn same_seed_same_text_under_sampling() {
        let params = |seed| GenerateParams {
            max_tokens: 40,
            sampling: SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
            },
        };
        let prompt = [1, 2, 3, 1, 2, 3, 1, 2];
        let run = |seed| {
            let mut m = InMemoryModel::random(5, 9);
            let g = generate(
                &mut m,
                &mut PromptLookup::default(),
                &prompt,
                &params(seed),
                &mut |_| true,
            )
            .unwrap();
            (g.tokens, g.stats.drafted)
        };
        let (a, drafted) = run(3);
        assert!(drafted > 0);
        assert_eq!(run(3).0, a);
        assert_ne!(run(4).0, a);
    }

    #[test]
    fn no_repetition_means_no_drafts() {
        // Prompt without repeats and a model whose argmax walks 0,1,2,…: no
        // n-gram ever recurs within 9 tokens.
        let rows: Vec<Vec<f64>> = (0..16)
            .map(|i| {
                (0..16)
                    .map(|j| if j == (i + 1) % 16 { 10.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        let mut m = InMemoryModel::bigram(&rows);
        let mut s = PromptLookup::default();
        let params = GenerateParams {
            max_tokens: 9,
            sampling: SamplingParams::greedy(),
        };
        let g = generate(&mut m, &mut s, &[3, 4, 5], &params, &mut |_| true).unwrap();
        assert_eq!(g.stats.drafted, 0);
        assert_eq!(g.stats.pool_hits, 0);
        assert_eq!(g.stats.target_passes, 9);
    }
}
