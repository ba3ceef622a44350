//! The strategy registry: a closed set of strategies chosen by name at run time.

use std::fmt;
use std::str::FromStr;

use augur_core::Strategy;

use crate::AugurError;

/// The strategies augur ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// One target pass per token.
    Baseline,
}

impl StrategyKind {
    /// Every strategy, in the order `--help` lists them.
    pub const ALL: &'static [StrategyKind] = &[StrategyKind::Baseline];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Baseline => "baseline",
        }
    }

    /// True if the strategy needs a draft model.
    pub fn needs_draft(self) -> bool {
        false
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
                let names: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.name()).collect();
                AugurError::Config(format!(
                    "unknown strategy '{s}'; choose one of: {}",
                    names.join(", ")
                ))
            })
    }
}

/// A strategy and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyConfig {
    /// Which strategy.
    pub kind: StrategyKind,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            kind: StrategyKind::Baseline,
        }
    }
}

impl StrategyConfig {
    /// The default configuration of `kind`.
    pub fn new(kind: StrategyKind) -> Self {
        Self { kind }
    }

    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), AugurError> {
        Ok(())
    }
}

/// Builds the strategy of `config`. Strategies that need a draft receive it here.
pub(crate) fn build(config: &StrategyConfig) -> Result<Box<dyn Strategy + Send>, AugurError> {
    config.validate()?;
    Ok(match config.kind {
        StrategyKind::Baseline => Box::new(augur_baseline::Baseline),
    })
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
            err.contains("unknown strategy 'warp-drive'") && err.contains("baseline"),
            "{err}"
        );
    }
}
