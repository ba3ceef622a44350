//! The strategy registry: a closed set of strategies chosen by name at run time.

use std::fmt;
use std::str::FromStr;

use augur_core::{Model, Strategy};
use augur_speculative::{DraftVerify, Drafter, Speculative, SpeculativeConfig};

use crate::AugurError;

/// The strategies augur ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// One target pass per token.
    Baseline,
    /// A draft model proposes tokens; the target verifies them in one pass.
    Speculative,
}

impl StrategyKind {
    /// Every strategy, in the order `--help` lists them.
    pub const ALL: &'static [StrategyKind] = &[StrategyKind::Baseline, StrategyKind::Speculative];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Baseline => "baseline",
            StrategyKind::Speculative => augur_speculative::NAME,
        }
    }

    /// True if the strategy needs a draft model.
    pub fn needs_draft(self) -> bool {
        matches!(self, StrategyKind::Speculative)
    }

    /// Comma-separated names, for messages.
    pub fn names() -> String {
        StrategyKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StrategyKind {
    type Err = AugurError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StrategyKind::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                AugurError::Config(format!(
                    "unknown strategy '{s}'; choose one of: {}",
                    StrategyKind::names()
                ))
            })
    }
}

/// Which exactness guarantee to run under (see the README's contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactMode {
    /// Bit-identical when calibration allows verifying at least 2 drafts per
    /// pass that way (then it costs next to nothing); kernel-level otherwise.
    #[default]
    Auto,
    /// Always bit-identical: verification passes never exceed the calibrated
    /// bit-exact size (possibly plain decoding).
    Bit,
    /// Kernel-level: any pass size.
    Kernel,
}

impl ExactMode {
    /// Whether to run bit-exact given the calibrated bit-exact pass size.
    pub fn resolve(self, max_exact_pass: usize) -> bool {
        match self {
            ExactMode::Auto => max_exact_pass >= 3,
            ExactMode::Bit => true,
            ExactMode::Kernel => false,
        }
    }
}

/// A strategy and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyConfig {
    /// Which strategy.
    pub kind: StrategyKind,
    /// Speculative settings (draft length, stopping rules).
    pub speculative: SpeculativeConfig,
    /// Exactness guarantee for drafting strategies.
    pub exact: ExactMode,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self::new(StrategyKind::Baseline)
    }
}

impl StrategyConfig {
    /// The default configuration of `kind`.
    pub fn new(kind: StrategyKind) -> Self {
        Self {
            kind,
            speculative: SpeculativeConfig::default(),
            exact: ExactMode::Auto,
        }
    }

    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), AugurError> {
        self.speculative
            .validate()
            .map_err(|e| AugurError::Config(e.to_string()))?;
        Ok(())
    }
}

/// A draft model session, boxed so the registry does not care which backend.
pub type DraftModel = Box<dyn Model + Send>;

/// Builds the strategy of `config`; `draft` is required by strategies that
/// draft with a model.
pub(crate) fn build(
    config: &StrategyConfig,
    draft: Option<DraftModel>,
) -> Result<Box<dyn Strategy + Send>, AugurError> {
    config.validate()?;
    Ok(match config.kind {
        StrategyKind::Baseline => Box::new(augur_baseline::Baseline),
        StrategyKind::Speculative => {
            let draft = draft.ok_or_else(|| {
                AugurError::Config("the speculative strategy needs a draft model (-md FILE)".into())
            })?;
            Box::new(Speculative::new(draft, config.speculative.clone()))
        }
    })
}

/// Builds a draft-and-verify strategy around an application's drafter.
pub(crate) fn build_custom(
    name: &'static str,
    drafter: Box<dyn Drafter + Send>,
    config: &StrategyConfig,
) -> Result<Box<dyn Strategy + Send>, AugurError> {
    config.validate()?;
    Ok(Box::new(DraftVerify::new(
        name,
        drafter,
        config.speculative.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_choices() {
        for &k in StrategyKind::ALL {
            assert_eq!(k.name().parse::<StrategyKind>().ok(), Some(k));
        }
        let err = "warp-drive"
            .parse::<StrategyKind>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown strategy 'warp-drive'") && err.contains("speculative"),
            "{err}"
        );
    }

    #[test]
    fn exact_mode_auto_needs_room_for_two_drafts() {
        assert!(!ExactMode::Auto.resolve(1));
        assert!(!ExactMode::Auto.resolve(2));
        assert!(ExactMode::Auto.resolve(3));
        assert!(ExactMode::Bit.resolve(1));
        assert!(!ExactMode::Kernel.resolve(9));
    }

    #[test]
    fn speculative_without_draft_is_refused() {
        let config = StrategyConfig::new(StrategyKind::Speculative);
        let err = build(&config, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("needs a draft model"), "{err}");
    }
}
