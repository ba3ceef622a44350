//! The strategy registry: every strategy augur ships, one line each, and the
//! one place where settings from any front end (CLI flags, `augur bench
//! --strategies` entries, the C ABI's session parameters) become a strategy.
//!
//! Each strategy's settings type implements [`StrategyPlugin`] in its own
//! plugin (its name, the settings it takes from the one table of
//! [`SettingKey`]s, their parsing and checks, how it is built); the
//! `strategies!` list below turns the list into [`StrategyConfig`], an enum
//! whose variants carry their own settings, and [`StrategyKind`]. Adding a
//! drafter is a plugin and one line in that list.

use std::fmt;
use std::str::FromStr;

use augur_core::{
    BuildEnv, Built, CostModel, DraftVerify, Drafter, Model, SettingKey, Strategy, StrategyPlugin,
    Tuned,
};
use augur_speculative::SpeculativeConfig;

use crate::AugurError;

/// Defines [`StrategyConfig`] and [`StrategyKind`] from the list of
/// strategies, with every dispatch through [`StrategyPlugin`].
macro_rules! strategies {
    ($( $(#[$doc:meta])* $variant:ident($config:ty), )*) => {
        /// A strategy and its own settings.
        #[derive(Debug, Clone, PartialEq)]
        pub enum StrategyConfig {
            $( $(#[$doc])* $variant($config), )*
        }

        /// The strategies augur ships, without their settings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StrategyKind {
            $( $(#[$doc])* $variant, )*
        }

        impl StrategyKind {
            /// Every strategy, in the order `--help` lists them.
            pub const ALL: &'static [StrategyKind] = &[$( StrategyKind::$variant, )*];

            /// The name used on the command line and in reports.
            pub fn name(self) -> &'static str {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::NAME, )* }
            }

            /// One line for `--help`.
            pub fn summary(self) -> &'static str {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::SUMMARY, )* }
            }

            /// The settings the strategy takes.
            pub fn keys(self) -> &'static [SettingKey] {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::KEYS, )* }
            }

            /// True if the strategy needs a draft model.
            pub fn needs_draft(self) -> bool {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::NEEDS_DRAFT, )* }
            }

            /// True if the strategy drafts with a draft model when one is
            /// given (it may run without one unless [`Self::needs_draft`]).
            pub fn uses_draft(self) -> bool {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::USES_DRAFT, )* }
            }

            /// True if the strategy drafts (and so needs calibration and rollback).
            pub fn drafts(self) -> bool {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::DRAFTS, )* }
            }

            /// True if the strategy is exact only at temperature 0.
            pub fn greedy_only(self) -> bool {
                match self { $( StrategyKind::$variant => <$config as StrategyPlugin>::GREEDY_ONLY, )* }
            }
        }

        impl StrategyConfig {
            /// The default settings of `kind`.
            pub fn new(kind: StrategyKind) -> Self {
                match kind { $( StrategyKind::$variant => StrategyConfig::$variant(<$config>::default()), )* }
            }

            /// Which strategy.
            pub fn kind(&self) -> StrategyKind {
                match self { $( StrategyConfig::$variant(_) => StrategyKind::$variant, )* }
            }

            fn set_inner(&mut self, key: SettingKey, value: &str) -> Result<(), String> {
                match self { $( StrategyConfig::$variant(c) => StrategyPlugin::set(c, key, value), )* }
            }

            /// Checks every setting's range.
            pub fn validate(&self) -> Result<(), AugurError> {
                let r = match self { $( StrategyConfig::$variant(c) => StrategyPlugin::validate(c), )* };
                r.map_err(|e| AugurError::Config(e.to_string()))
            }

            /// The largest target pass the strategy may make, for calibration.
            pub fn largest_pass(&self) -> usize {
                match self { $( StrategyConfig::$variant(c) => StrategyPlugin::largest_pass(c), )* }
            }

            /// Sequence ids the target context must offer.
            pub fn sequences_needed(&self) -> usize {
                match self { $( StrategyConfig::$variant(c) => StrategyPlugin::sequences(c), )* }
            }

            fn build_inner(&self, env: BuildEnv) -> Result<Built, augur_core::CoreError> {
                match self { $( StrategyConfig::$variant(c) => StrategyPlugin::build(c, env), )* }
            }
        }
    };
}

strategies! {
    /// Each step the drafter expected to pay best: prompt lookup, the draft
    /// model (when there is one), an application's drafter, or none.
    Auto(crate::auto::AutoConfig),
    /// One target pass per token.
    Baseline(augur_baseline::BaselineConfig),
    /// A draft model proposes tokens; the target verifies them in one pass.
    Speculative(augur_speculative::SpeculativeConfig),
    /// Greedy lookahead decoding: Jacobi iterations and an n-gram pool, no draft model.
    Lookahead(augur_lookahead::LookaheadConfig),
    /// Drafts copied from earlier text (prompt or output).
    PromptLookup(augur_prompt_lookup::PromptLookupConfig),
    /// Proposes the last n tokens again (an example drafter).
    RepeatLast(augur_repeat_last::RepeatLastConfig),
}

impl StrategyKind {
    /// Comma-separated names, for messages.
    pub fn names() -> String {
        StrategyKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// True if the strategy takes setting `key`.
    pub fn takes(self, key: SettingKey) -> bool {
        self.keys().contains(&key)
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

impl Default for StrategyConfig {
    /// Plain decoding (the front ends default to `auto`, which calibrates the
    /// machine on first use).
    fn default() -> Self {
        Self::new(StrategyKind::Baseline)
    }
}

impl StrategyConfig {
    /// Applies one setting from the table; a setting the strategy does not
    /// take is refused with a message that names both.
    pub fn set(&mut self, key: SettingKey, value: &str) -> Result<(), AugurError> {
        let kind = self.kind();
        if !kind.takes(key) {
            let takes: Vec<&str> = kind.keys().iter().map(|k| k.name()).collect();
            return Err(AugurError::Config(format!(
                "{kind} has no setting {key} (it takes: {})",
                if takes.is_empty() {
                    "none".to_string()
                } else {
                    takes.join(", ")
                }
            )));
        }
        self.set_inner(key, value)
            .map_err(|e| AugurError::Config(format!("{kind}: {e}")))?;
        if key == SettingKey::DraftMax {
            // The same limit for every front end.
            crate::limits::check_draft_max(self.largest_pass().saturating_sub(1))?;
        }
        Ok(())
    }

    /// Applies settings in order (later ones win), each as [`Self::set`].
    pub fn apply(&mut self, settings: &[(SettingKey, String)]) -> Result<(), AugurError> {
        settings.iter().try_for_each(|(k, v)| self.set(*k, v))
    }

    /// Applies the settings this strategy takes and skips the others (flags
    /// shared by several strategies at once, as `augur bench` has).
    pub fn apply_where_taken(
        &mut self,
        settings: &[(SettingKey, String)],
    ) -> Result<(), AugurError> {
        let kind = self.kind();
        settings
            .iter()
            .filter(|(k, _)| kind.takes(*k))
            .try_for_each(|(k, v)| self.set(*k, v))
    }

    /// The strategy's settings parsed from `name:key=value:key=value` (the
    /// form `augur bench --strategies` and the C ABI's `strategy` string
    /// take), on top of `shared` settings applied where taken.
    pub fn parse(entry: &str, shared: &[(SettingKey, String)]) -> Result<Self, AugurError> {
        let mut parts = entry.split(':');
        let name = parts.next().unwrap_or_default().trim();
        let mut config = StrategyConfig::new(name.parse()?);
        config.apply_where_taken(shared)?;
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                AugurError::Config(format!(
                    "'{entry}': settings are written key=value, got '{part}'"
                ))
            })?;
            let key: SettingKey = key.trim().parse().map_err(AugurError::Config)?;
            config.set(key, value.trim())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The speculative settings, when this is speculative decoding.
    pub fn speculative(&self) -> Option<&SpeculativeConfig> {
        match self {
            StrategyConfig::Speculative(c) => Some(c),
            _ => None,
        }
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

impl FromStr for ExactMode {
    type Err = AugurError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "bit" | "on" | "true" => Ok(ExactMode::Bit),
            "kernel" | "off" | "false" => Ok(ExactMode::Kernel),
            "auto" => Ok(ExactMode::Auto),
            other => Err(AugurError::Config(format!(
                "exact is bit, kernel or auto, got '{other}'"
            ))),
        }
    }
}

/// A draft model session, boxed so the registry does not care which backend.
pub type DraftModel = Box<dyn Model + Send>;

/// What a strategy is built with besides its settings: the calibrated cost
/// model and the exactness mode.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The calibrated cost model (`None`: each strategy's uncalibrated default).
    pub costs: Option<CostModel>,
    /// The exactness mode asked for.
    pub exact: ExactMode,
}

impl BuildOptions {
    fn env(&self, draft: Option<DraftModel>) -> BuildEnv {
        let exact_pass = self.costs.as_ref().map_or(1, CostModel::exact_pass);
        BuildEnv {
            draft,
            costs: self.costs.clone(),
            bit_exact: self.exact.resolve(exact_pass),
            bit_exact_forced: self.exact == ExactMode::Bit,
        }
    }
}

/// Builds the strategy of `config`; `draft` is required by strategies that
/// draft with a model. [`crate::Engine`] does this after calibration; call it
/// directly to run a strategy on your own [`Model`] with [`augur_core::generate`].
pub fn build_strategy(
    config: &StrategyConfig,
    options: &BuildOptions,
    draft: Option<DraftModel>,
) -> Result<Box<dyn Strategy + Send>, AugurError> {
    Ok(build_with_notes(config, options, draft)?.0)
}

/// [`build_strategy`], with what the build decided that a user should hear
/// about (whether the pipeline runs, and why).
pub(crate) fn build_with_notes(
    config: &StrategyConfig,
    options: &BuildOptions,
    draft: Option<DraftModel>,
) -> Result<(Box<dyn Strategy + Send>, Vec<String>), AugurError> {
    config.validate()?;
    if config.kind().needs_draft() && draft.is_none() {
        return Err(AugurError::Config(format!(
            "the {} strategy needs a draft model (-md FILE)",
            config.kind()
        )));
    }
    let built = config
        .build_inner(options.env(draft))
        .map_err(|e| AugurError::Config(e.to_string()))?;
    Ok((built.strategy, built.notes))
}

/// Builds a draft-and-verify strategy around an application's drafter, with
/// the draft-length settings of `config` when it is speculative decoding
/// (the defaults otherwise).
pub(crate) fn build_custom(
    name: &'static str,
    drafter: Box<dyn Drafter + Send>,
    config: &StrategyConfig,
    options: &BuildOptions,
) -> Result<Box<dyn Strategy + Send>, AugurError> {
    config.validate()?;
    if let StrategyConfig::Auto(auto) = config {
        // The application's drafter joins auto's choice.
        let built = auto
            .build_with_drafter(drafter, options.env(None))
            .map_err(|e| AugurError::Config(e.to_string()))?;
        return Ok(built.strategy);
    }
    let default = SpeculativeConfig::default();
    let spec = config.speculative().unwrap_or(&default);
    let drafter = Tuned::new(drafter, spec.mode, spec.draft_min);
    let env = options.env(None);
    let mut settings = spec.draft_settings();
    settings.exact = env.bit_exact;
    let costs = options.costs.clone().unwrap_or_else(|| spec.cost_model());
    Ok(Box::new(DraftVerify::new(name, drafter, settings, costs)))
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
        let err = build_strategy(&config, &BuildOptions::default(), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("needs a draft model"), "{err}");
    }

    #[test]
    fn one_table_parses_every_front_ends_settings() {
        let shared = vec![(SettingKey::DraftMax, "6".to_string())];
        let c = StrategyConfig::parse("prompt-lookup:ngram-max=3", &shared).unwrap();
        match &c {
            StrategyConfig::PromptLookup(p) => {
                assert_eq!((p.ngram_max, p.draft_max), (3, 6));
            }
            other => panic!("{other:?}"),
        }
        // Shared settings skip strategies that do not take them; an entry's
        // own settings do not.
        assert!(StrategyConfig::parse("lookahead", &shared).is_ok());
        let e = StrategyConfig::parse("lookahead:draft-max=3", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lookahead has no setting draft-max"), "{e}");
        let e = StrategyConfig::parse("speculative:draft-p-min=2", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("draft-p-min"), "{e}");
        assert!(StrategyConfig::parse("speculative:frobnicate=1", &[]).is_err());
        assert!(StrategyConfig::parse("speculative:draft-max", &[]).is_err());
        let c = StrategyConfig::parse("repeat-last:draft-max=3", &[]).unwrap();
        assert_eq!(c.kind(), StrategyKind::RepeatLast);
        assert_eq!(c.largest_pass(), 4);
    }
}
