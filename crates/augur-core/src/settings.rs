//! The one settings table: every strategy setting a front end can set (the
//! CLI's flags, `augur bench --strategies` entries, the C ABI's session
//! parameters), and the interface through which each strategy says which of
//! them it takes, parses them and builds itself ([`StrategyPlugin`]).
//!
//! A front end never interprets a setting itself: it hands `(key, value)`
//! pairs to the chosen strategy's [`StrategyPlugin::set`], so `--draft-max 4`
//! means the same everywhere.

use std::fmt;
use std::str::FromStr;

use crate::cost::CostModel;
use crate::error::CoreError;
use crate::model::Model;
use crate::strategy::Strategy;

/// A strategy setting, named as its command-line flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingKey {
    /// The most tokens drafted per step (speculative: a fixed draft length).
    DraftMax,
    /// Fewest drafts worth verifying (greedy: shorter proposals are dropped).
    DraftMin,
    /// Stop drafting where the draft model's top probability falls below this.
    DraftPMin,
    /// Speculative: draft ahead on a thread of its own where that pays.
    Pipeline,
    /// Lookahead: window columns W.
    LaWindow,
    /// Lookahead: n-gram length N.
    LaNgram,
    /// Lookahead: verification candidates G per step.
    LaGuess,
    /// Prompt lookup: shortest n-gram matched.
    NgramMin,
    /// Prompt lookup: longest n-gram matched.
    NgramMax,
}

impl SettingKey {
    /// Every setting.
    pub const ALL: &'static [SettingKey] = &[
        SettingKey::DraftMax,
        SettingKey::DraftMin,
        SettingKey::DraftPMin,
        SettingKey::Pipeline,
        SettingKey::LaWindow,
        SettingKey::LaNgram,
        SettingKey::LaGuess,
        SettingKey::NgramMin,
        SettingKey::NgramMax,
    ];

    /// The setting's name (the same as the matching command-line flag).
    pub fn name(self) -> &'static str {
        match self {
            SettingKey::DraftMax => "draft-max",
            SettingKey::DraftMin => "draft-min",
            SettingKey::DraftPMin => "draft-p-min",
            SettingKey::Pipeline => "pipeline",
            SettingKey::LaWindow => "la-window",
            SettingKey::LaNgram => "la-ngram",
            SettingKey::LaGuess => "la-guess",
            SettingKey::NgramMin => "ngram-min",
            SettingKey::NgramMax => "ngram-max",
        }
    }

    /// True if the setting takes numbers (and so can be swept).
    pub fn numeric(self) -> bool {
        !matches!(self, SettingKey::Pipeline)
    }

    /// Parses a whole-number value.
    pub fn usize(self, value: &str) -> Result<usize, String> {
        value
            .trim()
            .parse()
            .map_err(|_| format!("{self} takes a whole number, got '{value}'"))
    }

    /// Parses a number.
    pub fn f64(self, value: &str) -> Result<f64, String> {
        match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("{self} takes a number, got '{value}'")),
        }
    }

    /// Parses a switch.
    pub fn bool(self, value: &str) -> Result<bool, String> {
        match value.trim() {
            "true" | "on" | "1" => Ok(true),
            "false" | "off" | "0" => Ok(false),
            _ => Err(format!("{self} is true or false, got '{value}'")),
        }
    }
}

impl fmt::Display for SettingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SettingKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown setting '{s}'; choose from: {}",
                    Self::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// What a strategy is built with besides its own settings.
pub struct BuildEnv {
    /// The draft model session, for strategies that draft with one.
    pub draft: Option<Box<dyn Model + Send>>,
    /// The calibrated cost model of this machine and target (`None`: the
    /// strategy's uncalibrated default).
    pub costs: Option<CostModel>,
    /// Bit-exact mode: passes never exceed the cost model's bit-exact size.
    pub bit_exact: bool,
    /// The user asked for bit-exact mode (rather than it being the default):
    /// a strategy that cannot run that way refuses instead of falling back.
    pub bit_exact_forced: bool,
}

/// A strategy built from its settings, with what a user should hear about the
/// choices made while building it (one line each).
pub struct Built {
    /// The strategy.
    pub strategy: Box<dyn Strategy + Send>,
    /// Decisions worth reporting (for example whether the pipeline runs).
    pub notes: Vec<String>,
}

impl Built {
    /// A strategy with nothing to report.
    pub fn plain(strategy: Box<dyn Strategy + Send>) -> Self {
        Self {
            strategy,
            notes: Vec::new(),
        }
    }
}

/// A strategy's settings type: its name, the settings it takes from the one
/// table, their parsing and checks, and how it is built. Each plugin
/// implements it for its configuration; the facade lists the implementations,
/// one line each, and every front end goes through it.
pub trait StrategyPlugin: Clone + fmt::Debug + Default + PartialEq + Send + Sync + 'static {
    /// The name on the command line and in reports.
    const NAME: &'static str;
    /// One line for `--help`.
    const SUMMARY: &'static str;
    /// The settings it takes.
    const KEYS: &'static [SettingKey];
    /// True if it drafts with a draft model (`-md`) and cannot run without.
    const NEEDS_DRAFT: bool = false;
    /// True if it drafts with a draft model when one is given, and runs
    /// without one otherwise.
    const USES_DRAFT: bool = Self::NEEDS_DRAFT;
    /// True if it drafts at all (and so needs calibration and KV rollback).
    const DRAFTS: bool = true;
    /// True if it is exact only at temperature 0.
    const GREEDY_ONLY: bool = false;

    /// Applies one setting (only keys in [`Self::KEYS`] reach it).
    fn set(&mut self, key: SettingKey, value: &str) -> Result<(), String>;

    /// Checks every setting's range.
    fn validate(&self) -> Result<(), CoreError>;

    /// The largest target pass it may make, for calibration.
    fn largest_pass(&self) -> usize {
        1
    }

    /// KV sequences the target's context must offer.
    fn sequences(&self) -> usize {
        1
    }

    /// Builds the strategy.
    fn build(&self, env: BuildEnv) -> Result<Built, CoreError>;
}
