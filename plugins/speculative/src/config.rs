//! Settings of the speculative strategy.

use serde::{Deserialize, Serialize};

use crate::costs::Costs;
use crate::error::SpeculativeError;

/// How many tokens to draft per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DraftLength {
    /// Always draft this many (capped by `draft_max` and what is left to generate).
    Fixed(usize),
    /// Choose the length each step from the measured acceptance and costs
    /// (see [`crate::choose_draft_len`]); back off to plain decoding when
    /// speculation does not pay.
    #[default]
    Adaptive,
}

/// Settings of [`crate::Speculative`] (and of [`crate::DraftVerify`]).
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
    /// machine). When given, they are used as they are and the run's own
    /// timings are ignored, so the adaptive draft length depends only on the
    /// seed and the text: with sampling the same seed gives the same text,
    /// and at temperature 0 the same pass sizes (hence the same kernel-level
    /// rounding), however loaded the machine is. When `None`, the costs are
    /// measured during the run and the draft lengths follow the timings (so
    /// with sampling two runs with one seed may differ). Acceptance estimates
    /// are learned from the run either way: they depend only on the run's own
    /// verdicts, and start afresh with every generation, so "same seed, same
    /// text" holds for every generation of a strategy object.
    pub initial_costs: Option<Costs>,
    /// Bit-exact mode: verification passes never exceed `max_exact_pass`.
    pub exact: bool,
    /// The largest target pass size whose logits calibration found
    /// bit-identical to one-token passes; `None` means only size 1 is known to
    /// be (so bit-exact mode then decodes plainly).
    pub max_exact_pass: Option<usize>,
    /// Pipelined mode: a draft thread drafts the next proposal while the
    /// target verifies this one ([`crate::PipelinedSpeculative`]; build
    /// either mode with [`crate::build`]).
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
            max_exact_pass: None,
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
        if self.max_exact_pass == Some(0) {
            return Err(SpeculativeError::InvalidConfig(
                "max-exact-pass must be at least 1 (a one-token pass is always exact)".into(),
            ));
        }
        Ok(())
    }

    /// The largest number of drafts one verification may carry under these
    /// settings (before the per-step limits of context and tokens wanted).
    pub fn draft_cap(&self) -> usize {
        let mut cap = self.draft_max;
        if let DraftLength::Fixed(g) = self.mode {
            cap = cap.min(g);
        }
        if self.exact {
            cap = cap.min(self.max_exact_pass.unwrap_or(1).saturating_sub(1));
        }
        cap
    }

    /// True if a target pass over `size` tokens is known to give logits
    /// bit-identical to one-token passes.
    pub fn pass_is_exact(&self, size: usize) -> bool {
        size <= self.max_exact_pass.unwrap_or(1).max(1)
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
            max_exact_pass: Some(3),
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
        let bad = SpeculativeConfig {
            max_exact_pass: Some(0),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn config_round_trips_and_fills_defaults() {
        let c = SpeculativeConfig {
            mode: DraftLength::Fixed(4),
            initial_costs: Some(Costs::from_throughput(&[(1, 10.0)], 0.01)),
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
