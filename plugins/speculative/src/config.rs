//! Settings of the speculative strategy.

use serde::{Deserialize, Serialize};

use augur_core::{
    BuildEnv, Built, CoreError, CostModel, DraftLength, DraftSettings, SettingKey, StrategyPlugin,
};

use crate::error::SpeculativeError;

/// Settings of speculative decoding with a draft model ([`crate::build`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpeculativeConfig {
    /// The most tokens drafted per step (γ cap).
    pub draft_max: usize,
    /// At temperature 0, a proposal shorter than this is dropped and the step
    /// is plain decoding (a larger target pass would not pay for it). At
    /// temperature > 0 a short proposal is verified as it is: whether it came
    /// out short depends on the sampled drafts, so dropping it would bias the
    /// output. Steps that cannot reach this length are plain steps either way.
    pub draft_min: usize,
    /// Stop drafting when the draft's most likely next token has a probability
    /// (temperature 1, no filters) below this; 0 disables.
    pub draft_p_min: f64,
    /// Fixed or adaptive draft length.
    pub mode: DraftLength,
    /// Calibrated costs (from an earlier run or a calibration on this
    /// machine), with the bit-exact pass size. When fixed
    /// ([`CostModel::fixed`]), they are used as they are and the run's own
    /// timings are ignored, so the adaptive draft length depends only on the
    /// seed and the text: with sampling the same seed gives the same text,
    /// and at temperature 0 the same pass sizes (hence the same kernel-level
    /// rounding), however loaded the machine is. When `None`, the costs are
    /// measured during the run and the draft lengths follow the timings (so
    /// with sampling two runs with one seed may differ). Acceptance estimates
    /// are learned from the run either way: they depend only on the run's own
    /// verdicts, and start afresh with every generation, so "same seed, same
    /// text" holds for every generation of a strategy object.
    pub initial_costs: Option<CostModel>,
    /// Bit-exact mode: verification passes never exceed the cost model's
    /// bit-exact size ([`CostModel::max_exact_pass`]; unknown means only
    /// one-token passes, so bit-exact mode then decodes plainly).
    pub exact: bool,
    /// Pipelined mode: a draft thread drafts the next proposal while the
    /// target verifies this one ([`crate::PipelinedDrafter`]), where the cost
    /// model predicts that the overlap pays ([`crate::build`]).
    pub pipeline: bool,
}

impl Default for SpeculativeConfig {
    fn default() -> Self {
        Self {
            draft_max: 8,
            draft_min: 0,
            draft_p_min: 0.0,
            mode: DraftLength::Adaptive,
            initial_costs: None,
            exact: false,
            pipeline: false,
        }
    }
}

impl SpeculativeConfig {
    /// A fixed draft length of `gamma` (and `draft_max` raised to it).
    pub fn fixed(gamma: usize) -> Self {
        Self {
            draft_max: gamma.max(Self::default().draft_max),
            mode: DraftLength::Fixed(gamma),
            ..Self::default()
        }
    }

    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), SpeculativeError> {
        if !(0.0..=1.0).contains(&self.draft_p_min) {
            return Err(SpeculativeError::InvalidConfig(format!(
                "draft-p-min must be in [0, 1], got {}",
                self.draft_p_min
            )));
        }
        Ok(())
    }

    /// The settings the draft-then-verify driver applies.
    pub fn draft_settings(&self) -> DraftSettings {
        let draft_max = match self.mode {
            DraftLength::Fixed(g) => self.draft_max.min(g),
            DraftLength::Adaptive => self.draft_max,
        };
        DraftSettings {
            draft_max,
            draft_min: self.draft_min,
            exact: self.exact,
        }
    }

    /// The largest number of drafts one verification may carry under these
    /// settings (before the per-step limits of context and tokens wanted).
    pub fn draft_cap(&self) -> usize {
        self.draft_settings().cap(&self.cost_model())
    }

    /// True if a target pass over `size` tokens is known to give logits
    /// bit-identical to one-token passes.
    pub fn pass_is_exact(&self, size: usize) -> bool {
        self.cost_model().pass_is_exact(size)
    }

    /// The cost model a strategy with these settings starts from: the given
    /// costs, or none yet (measured during the run).
    pub fn cost_model(&self) -> CostModel {
        self.initial_costs
            .clone()
            .unwrap_or_else(CostModel::measured)
    }
}

impl StrategyPlugin for SpeculativeConfig {
    const NAME: &'static str = crate::NAME;
    const SUMMARY: &'static str =
        "a draft model proposes tokens, the target verifies them in one pass";
    const KEYS: &'static [SettingKey] = &[
        SettingKey::DraftMax,
        SettingKey::DraftMin,
        SettingKey::DraftPMin,
        SettingKey::Pipeline,
    ];
    const NEEDS_DRAFT: bool = true;

    fn set(&mut self, key: SettingKey, value: &str) -> Result<(), String> {
        match key {
            // A fixed draft length (the adaptive one is the default).
            SettingKey::DraftMax => {
                let fixed = SpeculativeConfig::fixed(key.usize(value)?);
                self.draft_max = fixed.draft_max;
                self.mode = fixed.mode;
            }
            SettingKey::DraftMin => self.draft_min = key.usize(value)?,
            SettingKey::DraftPMin => self.draft_p_min = key.f64(value)?,
            SettingKey::Pipeline => self.pipeline = key.bool(value)?,
            other => return Err(format!("{} has no setting {other}", crate::NAME)),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), CoreError> {
        Ok(SpeculativeConfig::validate(self)?)
    }

    fn largest_pass(&self) -> usize {
        self.draft_settings().draft_max + 1
    }

    fn build(&self, env: BuildEnv) -> Result<Built, CoreError> {
        let draft = env.draft.ok_or_else(|| {
            CoreError::InvalidParameter(
                "the speculative strategy needs a draft model (-md FILE)".into(),
            )
        })?;
        let mut config = self.clone();
        if config.initial_costs.is_none() {
            config.initial_costs = env.costs;
        }
        config.exact = config.exact || env.bit_exact;
        let (strategy, why) = crate::build(draft, config);
        Ok(Built {
            strategy,
            notes: why.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_follow_mode_and_exactness() {
        let c = SpeculativeConfig::default();
        assert_eq!(c.draft_cap(), 8);
        assert_eq!(SpeculativeConfig::fixed(3).draft_cap(), 3);
        assert_eq!(SpeculativeConfig::fixed(12).draft_cap(), 12);
        let exact = SpeculativeConfig {
            exact: true,
            initial_costs: Some(CostModel {
                max_exact_pass: 3,
                ..CostModel::measured()
            }),
            ..SpeculativeConfig::fixed(8)
        };
        assert_eq!(exact.draft_cap(), 2);
        let uncalibrated = SpeculativeConfig {
            exact: true,
            ..SpeculativeConfig::default()
        };
        assert_eq!(uncalibrated.draft_cap(), 0);
        assert!(uncalibrated.pass_is_exact(1));
        assert!(!uncalibrated.pass_is_exact(2));
        assert!(exact.pass_is_exact(3));
        assert!(!exact.pass_is_exact(4));
    }

    #[test]
    fn validation() {
        assert!(SpeculativeConfig::default().validate().is_ok());
        let bad = SpeculativeConfig {
            draft_p_min: 1.5,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn config_round_trips_and_fills_defaults() {
        let c = SpeculativeConfig {
            mode: DraftLength::Fixed(4),
            initial_costs: Some(CostModel::from_throughput(&[(1, 10.0)], 0.01)),
            ..Default::default()
        };
        let s = serde_json::to_string(&c).unwrap();
        let back = serde_json::from_str::<SpeculativeConfig>(&s).unwrap();
        assert_eq!(back.mode, c.mode);
        assert_eq!(back.draft_max, c.draft_max);
        assert_eq!(back.initial_costs.unwrap().samples(1), 1);
        let partial: SpeculativeConfig = serde_json::from_str(r#"{"draft_max": 4}"#).unwrap();
        assert_eq!(partial.draft_max, 4);
        assert_eq!(partial.mode, DraftLength::Adaptive);
    }
}
