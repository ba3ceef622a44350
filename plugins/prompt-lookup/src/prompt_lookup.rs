//! Prompt lookup: drafts copied from earlier text, verified exactly.

use augur_core::strategy::Exactness;
use augur_core::{
    BuildEnv, Built, CoreError, CostModel, DraftRequest, DraftSettings, DraftVerify, Drafter,
    Proposal, Rng, RunStats, SamplingParams, SettingKey, SparseDist, Strategy, StrategyPlugin,
    TokenId, VerifyOutcome,
};

use crate::budget::{
    CopyStats, DEFAULT_DECAY, DEFAULT_PRIOR_RATES, DEFAULT_PRIOR_WEIGHT, RUN_CLASS_COUNT,
};
use crate::copy_cursor::CopyCursor;
use crate::error::Error;
use crate::ngram_index::{Evidence, NgramIndex, MAX_INDEX_NGRAM};

/// The strategy's and drafter's name.
pub const NAME: &str = "prompt-lookup";

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
    /// Cost of one drafted token in single-token target passes (≥ 0) where
    /// no calibrated [`CostModel`] is given ([`PromptLookup::with_costs`]);
    /// see [`DEFAULT_DRAFT_COST`].
    pub draft_cost: f64,
    /// Acceptance rates assumed at the start of a generation, per run-length
    /// class ([`crate::RUN_CLASSES`]), each in [0, 1].
    pub prior_rates: [f64; RUN_CLASS_COUNT],
    /// Per-observation decay of the acceptance counts, in (0, 1]: about the
    /// last 1 / (1 − decay) observations of a class matter.
    pub decay: f64,
    /// The minimum-evidence rule a continuation must pass to be drafted.
    pub evidence: Evidence,
}

impl Default for PromptLookupConfig {
    fn default() -> Self {
        Self {
            ngram_min: DEFAULT_LOOKUP_NGRAM_MIN,
            ngram_max: DEFAULT_LOOKUP_NGRAM_MAX,
            draft_max: DEFAULT_DRAFT_MAX,
            draft_cost: DEFAULT_DRAFT_COST,
            prior_rates: DEFAULT_PRIOR_RATES,
            decay: DEFAULT_DECAY,
            evidence: Evidence::default(),
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
        Ok(())
    }

    /// The cost model of runs without a calibration: a pass over k + 1
    /// tokens costs 1 + k·`draft_cost` one-token passes.
    pub fn prior_costs(&self) -> CostModel {
        CostModel::linear(self.draft_cost, MAX_PRIOR_PASS)
    }

    fn stats(&self) -> CopyStats {
        CopyStats::new(self.prior_rates, DEFAULT_PRIOR_WEIGHT, self.decay)
    }
}

impl StrategyPlugin for PromptLookupConfig {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str =
        "drafts copied from earlier text in the prompt or output; exact under sampling too";
    const KEYS: &'static [SettingKey] = &[
        SettingKey::DraftMax,
        SettingKey::NgramMin,
        SettingKey::NgramMax,
    ];

    fn set(&mut self, key: SettingKey, value: &str) -> Result<(), String> {
        match key {
            SettingKey::DraftMax => self.draft_max = key.usize(value)?,
            SettingKey::NgramMin => self.ngram_min = key.usize(value)?,
            SettingKey::NgramMax => self.ngram_max = key.usize(value)?,
            other => return Err(format!("{NAME} has no setting {other}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), CoreError> {
        Ok(PromptLookupConfig::validate(self)?)
    }

    fn largest_pass(&self) -> usize {
        self.draft_max + 1
    }

    fn build(&self, env: BuildEnv) -> Result<Built, CoreError> {
        let costs = env.costs.unwrap_or_else(|| self.prior_costs());
        if env.bit_exact && costs.exact_pass() <= 1 {
            return Err(CoreError::InvalidParameter(
                "on this model and build only one-token passes are bit-identical, so bit-exact \
                 prompt lookup could never draft; run it without --exact"
                    .into(),
            ));
        }
        Ok(Built::plain(Box::new(PromptLookup::with_settings(
            self.clone(),
            costs,
            env.bit_exact,
        )?)))
    }
}

/// Passes the prior cost model of [`PromptLookupConfig::prior_costs`] covers
/// (longer ones follow its slope).
const MAX_PRIOR_PASS: usize = 16;

/// The prompt-lookup drafter: each step it follows the tokens appended since
/// the last step — the copy the output is making of earlier text
/// ([`CopyCursor`]: its position, the edits it has learned, how reliable it
/// has been) and an index of the longest recent n-gram that occurred earlier
/// with a dominant continuation ([`NgramIndex`]), which finds new copies —
/// and proposes the continuation as a deterministic draft (one-hot q, a
/// function of the text so far), each token with the acceptance rate the
/// cursor has measured at its run length ([`CopyStats`]). How much of it is
/// verified is the shared cost model's choice.
#[derive(Debug, Clone)]
pub struct PromptLookupDrafter {
    config: PromptLookupConfig,
    index: NgramIndex,
    cursor: CopyCursor,
    draft: Vec<TokenId>,
    /// Verifications that carried a lookup draft (reported as pool hits).
    verified: u64,
}

impl PromptLookupDrafter {
    /// A drafter with `config`, validated.
    pub fn new(config: PromptLookupConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: PromptLookupConfig) -> Self {
        Self {
            index: NgramIndex::new(config.ngram_min, config.ngram_max),
            cursor: CopyCursor::with_stats(config.stats()),
            config,
            draft: Vec::new(),
            verified: 0,
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

    /// Indexes `history` (appended tokens only) and writes into `out` the
    /// candidate draft of up to `max_len` tokens (empty when nothing matches).
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
}

impl Drafter for PromptLookupDrafter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(
        &mut self,
        tokens: &[TokenId],
        _target_n_vocab: usize,
        _sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        self.index.clear();
        self.cursor.clear();
        self.index.update(tokens);
        self.verified = 0;
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        let mut draft = std::mem::take(&mut self.draft);
        self.candidate(req.tokens, req.max, &mut draft);
        let (run, stats) = (self.cursor.run(), *self.cursor.stats());
        for (i, &t) in draft.iter().enumerate() {
            out.push(t, SparseDist::one_hot(t), stats.rate(run + i));
        }
        self.draft = draft;
        Ok(())
    }

    fn on_verdict(
        &mut self,
        _tokens: &[TokenId],
        outcome: &VerifyOutcome,
    ) -> Result<(), CoreError> {
        // The cursor sees the emitted tokens, drafted or not, at the next
        // step; only the count is kept here.
        if outcome.verified > 0 {
            self.verified += 1;
        }
        Ok(())
    }

    fn finish(&mut self, stats: &mut RunStats) {
        stats.pool_hits += self.verified;
    }
}

/// Prompt-lookup drafting (strategy name `prompt-lookup`): the
/// [`PromptLookupDrafter`] under augur-core's draft-then-verify driver, so
/// the output is exact in greedy and in sampling mode.
#[derive(Debug)]
pub struct PromptLookup {
    inner: DraftVerify<PromptLookupDrafter>,
}

impl Default for PromptLookup {
    fn default() -> Self {
        let config = PromptLookupConfig::default();
        let costs = config.prior_costs();
        Self::build(config, costs)
    }
}

impl PromptLookup {
    /// A prompt-lookup strategy with `config`, validated, judged by the prior
    /// cost model ([`PromptLookupConfig::prior_costs`]).
    pub fn new(config: PromptLookupConfig) -> Result<Self, Error> {
        let costs = config.prior_costs();
        Self::with_costs(config, costs)
    }

    /// A prompt-lookup strategy with `config`, judged by `costs` (a
    /// calibration of this machine).
    pub fn with_costs(config: PromptLookupConfig, costs: CostModel) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::build(config, costs))
    }

    /// A prompt-lookup strategy judged by `costs`, in bit-exact mode when
    /// `exact` (passes never exceed the cost model's bit-exact size).
    pub fn with_settings(
        config: PromptLookupConfig,
        costs: CostModel,
        exact: bool,
    ) -> Result<Self, Error> {
        let mut s = Self::with_costs(config, costs)?;
        if exact {
            let mut settings = *s.inner.settings();
            settings.exact = true;
            s.inner = s.inner.with_settings(settings);
        }
        Ok(s)
    }

    fn build(config: PromptLookupConfig, costs: CostModel) -> Self {
        let settings = DraftSettings {
            draft_max: config.draft_max,
            draft_min: 0,
            exact: false,
        };
        Self {
            inner: DraftVerify::new(NAME, PromptLookupDrafter::build(config), settings, costs),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PromptLookupConfig {
        self.inner.drafter().config()
    }

    /// The copy being followed and what it learned (for reports and tests).
    pub fn cursor(&self) -> &CopyCursor {
        self.inner.drafter().cursor()
    }

    /// The largest target pass of the current generation, in tokens.
    pub fn largest_batch(&self) -> usize {
        self.inner.largest_pass()
    }

    /// The guarantee the last generation had (the driver's rule).
    pub fn exactness(&self) -> Exactness {
        Exactness::of(self.inner.largest_pass(), self.inner.max_exact_pass())
    }

    /// The drafter, for drivers of their own (see [`PromptLookupDrafter::candidate`]).
    pub fn drafter_mut(&mut self) -> &mut PromptLookupDrafter {
        self.inner.drafter_mut()
    }
}

augur_core::delegate_strategy!(PromptLookup, inner, NAME);

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
        // The in-memory model's passes are exact at every size.
        let config = PromptLookupConfig::default();
        let costs = CostModel {
            max_exact_pass: usize::MAX,
            ..config.prior_costs()
        };
        let mut s = PromptLookup::with_costs(config, costs).unwrap();
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
        let config = PromptLookupConfig::default();
        let costs = CostModel {
            max_exact_pass: 3,
            ..config.prior_costs()
        };
        let mut capped = PromptLookup::with_costs(config, costs).unwrap();
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
