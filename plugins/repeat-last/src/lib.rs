//! `repeat-last`: the smallest useful drafter, and the example of what adding
//! one takes (this crate, and one line in the facade's strategy list).
//!
//! It proposes the last n tokens of the text again, as text that repeats with
//! period n would continue (a list of identical lines, a table's separators,
//! a stutter), with the acceptance rate it has measured so far as its
//! confidence. augur-core's driver cuts the proposal to what the shared cost
//! model says pays and verifies it exactly, so the output is the target's in
//! greedy and in sampling mode (the drafts are a function of the text, so q
//! is one-hot).

use augur_core::{
    BuildEnv, Built, CoreError, CostModel, DraftRequest, DraftSettings, DraftVerify, Drafter,
    Proposal, Rng, SettingKey, SparseDist, StrategyPlugin, TokenId, VerifyOutcome,
};

/// The drafter's and strategy's name.
pub const NAME: &str = "repeat-last";

/// Acceptance assumed before anything was verified.
const PRIOR_RATE: f64 = 0.3;
/// Weight of the prior, in observations.
const PRIOR_WEIGHT: f64 = 4.0;
/// Per-observation decay of the counts.
const DECAY: f64 = 0.95;

/// Settings of the repeat-last drafter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatLastConfig {
    /// n: how many of the last tokens are proposed again (`draft-max`).
    pub period: usize,
}

impl Default for RepeatLastConfig {
    fn default() -> Self {
        Self { period: 4 }
    }
}

/// Proposes the last n tokens again (see the crate documentation).
#[derive(Debug, Clone)]
pub struct RepeatLast {
    period: usize,
    hits: f64,
    seen: f64,
}

impl RepeatLast {
    /// A drafter repeating the last `period` tokens.
    pub fn new(period: usize) -> Self {
        Self {
            period,
            hits: 0.0,
            seen: 0.0,
        }
    }

    /// The measured chance that a repeated token is accepted.
    pub fn rate(&self) -> f64 {
        (self.hits + PRIOR_RATE * PRIOR_WEIGHT) / (self.seen + PRIOR_WEIGHT)
    }
}

impl Drafter for RepeatLast {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(
        &mut self,
        _tokens: &[TokenId],
        _target_n_vocab: usize,
        _sampling: &augur_core::SamplingParams,
    ) -> Result<(), CoreError> {
        self.hits = 0.0;
        self.seen = 0.0;
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        let n = self.period.min(req.max).min(req.tokens.len());
        let rate = self.rate();
        for &t in &req.tokens[req.tokens.len() - n..] {
            out.push(t, SparseDist::one_hot(t), rate);
        }
        Ok(())
    }

    fn on_verdict(
        &mut self,
        _tokens: &[TokenId],
        outcome: &VerifyOutcome,
    ) -> Result<(), CoreError> {
        // Drafts past the first rejection tell nothing about the rate.
        let tried = outcome.verified.min(outcome.accepted + 1);
        for i in 0..tried {
            self.hits = self.hits * DECAY + f64::from(u8::from(i < outcome.accepted));
            self.seen = self.seen * DECAY + 1.0;
        }
        Ok(())
    }
}

impl StrategyPlugin for RepeatLastConfig {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str =
        "proposes the last n tokens again (n = --draft-max); an example drafter";
    const KEYS: &'static [SettingKey] = &[SettingKey::DraftMax];

    fn set(&mut self, key: SettingKey, value: &str) -> Result<(), String> {
        match key {
            SettingKey::DraftMax => self.period = key.usize(value)?,
            other => return Err(format!("{NAME} has no setting {other}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), CoreError> {
        if self.period == 0 {
            return Err(CoreError::InvalidParameter(
                "repeat-last needs draft-max >= 1".into(),
            ));
        }
        Ok(())
    }

    fn largest_pass(&self) -> usize {
        self.period + 1
    }

    fn build(&self, env: BuildEnv) -> Result<Built, CoreError> {
        self.validate()?;
        let settings = DraftSettings {
            draft_max: self.period,
            draft_min: 0,
            exact: env.bit_exact,
        };
        let costs = env.costs.unwrap_or_else(CostModel::prior);
        Ok(Built::plain(Box::new(DraftVerify::new(
            NAME,
            RepeatLast::new(self.period),
            settings,
            costs,
        ))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use augur_baseline::Baseline;
    use augur_core::testing::{
        assert_greedy_matches, generate_greedy, unfiltered, ContinuationTest, InMemoryModel,
    };
    use augur_core::StrategyPlugin;

    fn strategy(period: usize) -> Box<dyn augur_core::Strategy + Send> {
        let env = BuildEnv {
            draft: None,
            costs: Some(CostModel::linear(0.1, 16)),
            bit_exact: false,
            bit_exact_forced: false,
        };
        RepeatLastConfig { period }.build(env).unwrap().strategy
    }

    /// Greedy output equals the baseline's on many models and prompts, and
    /// on periodic text the drafts are accepted and save passes.
    #[test]
    fn greedy_output_is_the_baselines() {
        for seed in 0..20 {
            let model = InMemoryModel::random(7, seed).with_history(seed + 1);
            let prompt: Vec<TokenId> = (0..6).map(|i| (i * 3 + seed as u32) % 7).collect();
            for period in [1, 2, 4] {
                assert_greedy_matches(
                    &model,
                    &mut Baseline,
                    &mut strategy(period),
                    &prompt,
                    30,
                    "repeat-last",
                );
            }
        }
        // A cycle 0 → 1 → 2 → 0: repeating the last 3 tokens is always right.
        let rows: Vec<Vec<f64>> = (0..3)
            .map(|i| {
                (0..3)
                    .map(|j| if j == (i + 1) % 3 { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect();
        let mut m = InMemoryModel::bigram(&rows);
        let g = generate_greedy(&mut m, &mut strategy(3), &[0, 1, 2], 30);
        let want = generate_greedy(&mut m.clone(), &mut Baseline, &[0, 1, 2], 30);
        assert_eq!(g.tokens, want.tokens);
        assert!(
            g.stats.accepted > 0 && g.stats.target_passes < 20,
            "{:?}",
            g.stats
        );
    }

    /// Sampling: continuations follow the target's exact distribution; a
    /// verifier that trusted the drafts blindly would not.
    #[test]
    fn sampling_keeps_the_distribution() {
        let test = ContinuationTest {
            prompt: vec![2, 1, 2],
            len: 3,
            runs: 3000,
            first_seed: 1,
            sampling: unfiltered(1.0),
        };
        let mut model = InMemoryModel::random(4, 9);
        let r = test.run(&mut model, &mut strategy(2));
        assert!(r.p_value > 1e-3, "{r:?}");
        // The negative control: the same drafts accepted without the target's
        // say (a strategy that emits the repeated tokens as they are) is far
        // off the distribution.
        let mut blind = Blind;
        let r = test.run(&mut model, &mut blind);
        assert!(r.p_value < 1e-6, "{r:?}");
    }

    /// Emits the token two back, unverified (the period-2 draft taken on
    /// trust).
    struct Blind;

    impl augur_core::Strategy for Blind {
        fn name(&self) -> &'static str {
            "blind"
        }
        fn step(&mut self, ctx: &mut augur_core::StepContext<'_>) -> Result<(), CoreError> {
            // Keep the model's cache in step: evaluate the pending token.
            ctx.verify(&Proposal::new(), 1, &mut CostModel::prior())?;
            let n = ctx.tokens.len();
            if n >= 3 {
                ctx.tokens[n - 1] = ctx.tokens[n - 3];
            }
            Ok(())
        }
    }

    #[test]
    fn settings_come_from_the_table() {
        let mut c = RepeatLastConfig::default();
        c.set(SettingKey::DraftMax, "3").unwrap();
        assert_eq!(c.period, 3);
        assert!(c.set(SettingKey::NgramMax, "3").is_err());
        assert!(RepeatLastConfig { period: 0 }.validate().is_err());
    }
}
