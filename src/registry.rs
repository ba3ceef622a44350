//! The strategy registry: a closed set of strategies chosen by name at run time.

use std::fmt;
use std::str::FromStr;

use augur_core::{Model, Strategy};
use augur_lookahead::{Lookahead, LookaheadConfig, PromptLookup, PromptLookupConfig};
use augur_speculative::{DraftVerify, Drafter, SpeculativeConfig};

use crate::AugurError;

/// The strategies augur ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// One target pass per token.
    Baseline,
    /// A draft model proposes tokens; the target verifies them in one pass.
    Speculative,
    /// Greedy lookahead decoding: Jacobi iterations and an n-gram pool, no draft model.
    Lookahead,
    /// Drafts copied from earlier text (prompt or output) that the n-gram at the end matches.
    PromptLookup,
}

impl StrategyKind {
    /// Every strategy, in the order `--help` lists them.
    pub const ALL: &'static [StrategyKind] = &[
        StrategyKind::Baseline,
        StrategyKind::Speculative,
        StrategyKind::Lookahead,
        StrategyKind::PromptLookup,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Baseline => "baseline",
            StrategyKind::Speculative => augur_speculative::NAME,
            StrategyKind::Lookahead => "lookahead",
            StrategyKind::PromptLookup => "prompt-lookup",
        }
    }

    /// True if the strategy needs a draft model.
    pub fn needs_draft(self) -> bool {
        matches!(self, StrategyKind::Speculative)
    }

    /// True if the strategy drafts (and so needs calibration and rollback).
    pub fn drafts(self) -> bool {
        !matches!(self, StrategyKind::Baseline)
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
    /// Lookahead settings (W, N, G).
    pub lookahead: LookaheadConfig,
    /// Prompt-lookup settings (n-gram sizes, draft length).
    pub prompt_lookup: PromptLookupConfig,
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
            lookahead: LookaheadConfig::default(),
            prompt_lookup: PromptLookupConfig::default(),
            exact: ExactMode::Auto,
        }
    }

    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), AugurError> {
        self.speculative
            .validate()
            .map_err(|e| AugurError::Config(e.to_string()))?;
        match self.kind {
            StrategyKind::Lookahead => self
                .lookahead
                .validate()
                .map_err(|e| AugurError::Config(e.to_string()))?,
            StrategyKind::PromptLookup => self
                .prompt_lookup
                .validate()
                .map_err(|e| AugurError::Config(e.to_string()))?,
            StrategyKind::Baseline | StrategyKind::Speculative => {}
        }
        Ok(())
    }

    /// Sequence ids the target context must offer.
    pub fn sequences_needed(&self) -> usize {
        match self.kind {
            StrategyKind::Lookahead => self.lookahead.sequences_needed(),
            _ => 1,
        }
    }

    /// The largest target pass the strategy may make, for calibration.
    pub fn largest_pass(&self) -> usize {
        match self.kind {
            StrategyKind::Baseline => 1,
            StrategyKind::Speculative => self.speculative.draft_max + 1,
            StrategyKind::PromptLookup => self.prompt_lookup.draft_max + 1,
            StrategyKind::Lookahead => self.lookahead.batch_len(self.lookahead.candidates),
        }
    }

    /// Applies calibration: the bit-exact pass size (capping drafts in
    /// bit-exact mode) and this machine's pass costs.
    pub fn apply_calibration(
        &mut self,
        max_exact_pass: usize,
        pass_seconds: &[f64],
    ) -> Result<(), AugurError> {
        let exact = self.exact.resolve(max_exact_pass);
        self.speculative.max_exact_pass = Some(max_exact_pass);
        self.speculative.exact = exact;
        self.prompt_lookup.max_exact_batch = Some(max_exact_pass);
        self.lookahead.max_exact_batch = Some(max_exact_pass);
        if exact {
            let cap = max_exact_pass.saturating_sub(1);
            self.prompt_lookup.draft_max = self.prompt_lookup.draft_max.min(cap);
        }
        if self.kind == StrategyKind::Lookahead {
            let smallest = self.lookahead.batch_len(0).max(self.lookahead.batch_len(1));
            if self.exact == ExactMode::Bit && smallest > max_exact_pass {
                return Err(AugurError::Config(format!(
                    "lookahead's batch ({smallest} tokens) exceeds the bit-exact pass size \
                     of this model and build ({max_exact_pass}); run it without --exact"
                )));
            }
        }
        if self.kind == StrategyKind::PromptLookup && exact && self.prompt_lookup.draft_max == 0 {
            return Err(AugurError::Config(
                "on this model and build only one-token passes are bit-identical, so bit-exact \
                 prompt lookup could never draft; run it without --exact"
                    .into(),
            ));
        }
        // What drafted tokens cost, in one-token passes: the measured table,
        // and past it a linear extrapolation from the two-token pass.
        if let Some(&t1) = pass_seconds.first().filter(|t| **t > 0.0) {
            if let Some(&t2) = pass_seconds.get(1) {
                self.prompt_lookup.draft_cost = (t2 / t1 - 1.0).clamp(0.02, 1.5);
            }
            let costs = &mut self.prompt_lookup.pass_costs;
            for (slot, &t) in costs.iter_mut().zip(pass_seconds) {
                *slot = t / t1;
            }
            self.lookahead.pass_costs = pass_seconds.iter().map(|t| t / t1).collect();
        }
        Ok(())
    }
}

/// A draft model session, boxed so the registry does not care which backend.
pub type DraftModel = Box<dyn Model + Send>;

/// Builds the strategy of `config`; `draft` is required by strategies that
/// draft with a model. [`crate::Engine`] does this after calibration; call it
/// directly to run a strategy on your own [`Model`] with [`augur_core::generate`].
pub fn build_strategy(
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
            augur_speculative::build(draft, config.speculative.clone())
        }
        StrategyKind::Lookahead => Box::new(
            Lookahead::new(config.lookahead.clone())
                .map_err(|e| AugurError::Config(e.to_string()))?,
        ),
        StrategyKind::PromptLookup => Box::new(
            PromptLookup::new(config.prompt_lookup.clone())
                .map_err(|e| AugurError::Config(e.to_string()))?,
        ),
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
        let err = build_strategy(&config, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("needs a draft model"), "{err}");
    }
}
