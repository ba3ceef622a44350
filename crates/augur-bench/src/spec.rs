//! Strategy lists with per-strategy settings, and parameter sweeps.
//!
//! `--strategies baseline,speculative:draft-max=4,prompt-lookup:ngram-max=3:draft-max=6`
//! names the contenders, separated by commas; each may carry settings after
//! its name, separated by colons. Settings apply on top of the shared flags
//! (`--draft-max`, `--la-window`, ...). The same strategy may appear several
//! times with different settings; each entry's label is its text.
//!
//! `--sweep draft-max=1,2,4,8` runs every listed strategy that has that
//! setting once per value (the others once), so a plot can show the speedup
//! against the value.

use augur::{ExactMode, SettingKey, StrategyConfig, StrategyKind};

use crate::BenchError;

/// One contender: a strategy and its own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySpec {
    /// The label in reports (the entry as written, or with the swept value).
    pub label: String,
    /// The label without the swept setting (the line a sweep plot draws).
    pub group: String,
    /// The strategy.
    pub kind: StrategyKind,
    /// Settings, in the order given (later ones win), for the one settings
    /// table ([`StrategyConfig::set`]).
    pub settings: Vec<(SettingKey, String)>,
    /// The entry's exactness mode (`exact=bit|kernel|auto`), if it set one.
    pub exact: Option<ExactMode>,
    /// The swept setting's value, when this entry comes from a sweep.
    pub sweep_value: Option<f64>,
}

impl StrategySpec {
    /// A strategy with no settings of its own.
    pub fn plain(kind: StrategyKind) -> Self {
        Self {
            label: kind.name().to_string(),
            group: kind.name().to_string(),
            kind,
            settings: Vec::new(),
            exact: None,
            sweep_value: None,
        }
    }

    /// Parses one entry: `name[:key=value]*`.
    pub fn parse(entry: &str) -> Result<Self, BenchError> {
        let entry = entry.trim();
        let mut parts = entry.split(':');
        let name = parts.next().unwrap_or_default().trim();
        let kind: StrategyKind = name.parse().map_err(|e: augur::AugurError| {
            let hint = if name.contains('=') {
                " (settings of one strategy are separated by ':', e.g. speculative:draft-max=4:draft-min=2)"
            } else {
                ""
            };
            BenchError::Spec(format!("{e}{hint}"))
        })?;
        let mut settings = Vec::new();
        let mut exact = None;
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                BenchError::Spec(format!(
                    "'{entry}': setting '{part}' should look like key=value"
                ))
            })?;
            if key.trim() == "exact" {
                let mode = value
                    .parse::<ExactMode>()
                    .map_err(|e| BenchError::Spec(format!("'{entry}': {e}")))?;
                exact = Some(mode);
                continue;
            }
            let key: SettingKey = key
                .trim()
                .parse()
                .map_err(|e: String| BenchError::Spec(format!("{e}, exact")))?;
            if !kind.takes(key) {
                return Err(BenchError::Spec(format!(
                    "'{entry}': {kind} has no setting '{key}'"
                )));
            }
            let value = value.trim().to_string();
            check_value(kind, key, &value)
                .map_err(|e| BenchError::Spec(format!("'{entry}': {e}")))?;
            settings.push((key, value));
        }
        Ok(Self {
            label: entry.to_string(),
            group: entry.to_string(),
            kind,
            settings,
            exact,
            sweep_value: None,
        })
    }

    /// Applies the entry's settings to `config` (which already has the
    /// shared flags applied), then validates it.
    pub fn apply(&self, config: &mut StrategyConfig) -> Result<(), BenchError> {
        config
            .apply(&self.settings)
            .and_then(|()| config.validate())
            .map_err(|e| BenchError::Spec(format!("'{}': {e}", self.label)))
    }
}

/// Checks that `value` parses for `key` (ranges are checked when the
/// settings are applied together).
fn check_value(kind: StrategyKind, key: SettingKey, value: &str) -> Result<(), String> {
    StrategyConfig::new(kind)
        .set(key, value)
        .map_err(|e| e.to_string())
}

/// Parses a comma-separated strategy list. Duplicate labels are refused.
pub fn parse_strategies(list: &str) -> Result<Vec<StrategySpec>, BenchError> {
    let mut out: Vec<StrategySpec> = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let spec = StrategySpec::parse(entry)?;
        if out.iter().any(|s| s.label == spec.label) {
            return Err(BenchError::Spec(format!(
                "strategy '{}' is listed twice",
                spec.label
            )));
        }
        out.push(spec);
    }
    if out.is_empty() {
        return Err(BenchError::Spec("no strategies given".into()));
    }
    Ok(out)
}

/// A parameter sweep: one setting and the values to run it at.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The swept setting.
    pub key: SettingKey,
    /// The values, as written.
    pub values: Vec<String>,
}

impl Sweep {
    /// Parses `key=v1,v2,...` (a numeric setting, at least one value).
    pub fn parse(text: &str) -> Result<Self, BenchError> {
        let (key, values) = text.split_once('=').ok_or_else(|| {
            BenchError::Spec(format!(
                "--sweep takes key=v1,v2,..., e.g. draft-max=1,2,4,8; got '{text}'"
            ))
        })?;
        if key.trim() == "exact" {
            return Err(BenchError::Spec("exact cannot be swept".into()));
        }
        let key: SettingKey = key.trim().parse().map_err(BenchError::Spec)?;
        if !key.numeric() {
            return Err(BenchError::Spec(format!("{key} cannot be swept")));
        }
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(BenchError::Spec(format!("--sweep {key}: no values")));
        }
        for v in &values {
            v.parse::<f64>()
                .map_err(|_| BenchError::Spec(format!("--sweep {key}: '{v}' is not a number")))?;
        }
        Ok(Self { key, values })
    }

    /// Expands `specs`: each one the swept setting applies to becomes one
    /// entry per value (the value overriding any the entry set itself),
    /// labelled `<entry>:<key>=<value>`; the others stay as they are. Fails
    /// when no listed strategy has the setting.
    pub fn expand(&self, specs: &[StrategySpec]) -> Result<Vec<StrategySpec>, BenchError> {
        if !specs.iter().any(|s| s.kind.takes(self.key)) {
            return Err(BenchError::Spec(format!(
                "--sweep {}: none of the listed strategies has this setting",
                self.key
            )));
        }
        let mut out = Vec::new();
        for spec in specs {
            if !spec.kind.takes(self.key) {
                out.push(spec.clone());
                continue;
            }
            for value in &self.values {
                let mut s = spec.clone();
                s.settings.retain(|(k, _)| *k != self.key);
                s.settings.push((self.key, value.clone()));
                s.group = spec.label.clone();
                s.label = format!("{}:{}={value}", spec.label, self.key);
                s.sweep_value = value.parse().ok();
                out.push(s);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use augur::core::DraftLength;

    #[test]
    fn parses_entries_with_settings() {
        let specs = parse_strategies(
            "baseline, speculative:draft-max=4:draft-min=2,prompt-lookup:ngram-max=3",
        )
        .unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0], StrategySpec::plain(StrategyKind::Baseline));
        assert_eq!(specs[1].kind, StrategyKind::Speculative);
        assert_eq!(specs[1].label, "speculative:draft-max=4:draft-min=2");
        let mut c = StrategyConfig::new(StrategyKind::Speculative);
        specs[1].apply(&mut c).unwrap();
        let spec = c.speculative().unwrap();
        assert_eq!(spec.mode, DraftLength::Fixed(4));
        assert_eq!(spec.draft_min, 2);
        let mut c = StrategyConfig::new(StrategyKind::PromptLookup);
        specs[2].apply(&mut c).unwrap();
        let StrategyConfig::PromptLookup(pl) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(pl.ngram_max, 3);
    }

    #[test]
    fn later_settings_win_and_exact_parses() {
        let s = StrategySpec::parse("prompt-lookup:draft-max=6:exact=kernel:draft-max=2").unwrap();
        let mut c = StrategyConfig::new(StrategyKind::PromptLookup);
        s.apply(&mut c).unwrap();
        let StrategyConfig::PromptLookup(pl) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(pl.draft_max, 2);
        assert_eq!(s.exact, Some(ExactMode::Kernel));
    }

    #[test]
    fn bad_entries_are_explained() {
        let cases = [
            ("warp", "unknown strategy 'warp'"),
            ("speculative:draft-max=4,draft-min=2", "separated by ':'"),
            (
                "baseline:draft-max=4",
                "baseline has no setting 'draft-max'",
            ),
            ("lookahead:ngram-max=3", "lookahead has no setting"),
            ("speculative:draft-max", "key=value"),
            ("speculative:draft-max=four", "whole number"),
            ("speculative:colour=red", "unknown setting 'colour'"),
            ("prompt-lookup:exact=maybe", "bit, kernel or auto"),
            ("baseline,baseline", "listed twice"),
            ("", "no strategies"),
        ];
        for (text, want) in cases {
            let e = parse_strategies(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        // Ranges are checked when the settings are applied.
        let s = StrategySpec::parse("lookahead:la-ngram=2").unwrap();
        let mut c = StrategyConfig::new(StrategyKind::Lookahead);
        assert!(s.apply(&mut c).is_err());
    }

    #[test]
    fn sweeps_expand_the_strategies_that_have_the_setting() {
        let specs = parse_strategies("baseline,speculative:draft-max=3,lookahead").unwrap();
        let sweep = Sweep::parse("draft-max=1,2,4").unwrap();
        let out = sweep.expand(&specs).unwrap();
        let labels: Vec<&str> = out.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "baseline",
                "speculative:draft-max=3:draft-max=1",
                "speculative:draft-max=3:draft-max=2",
                "speculative:draft-max=3:draft-max=4",
                "lookahead"
            ]
        );
        assert!(out[1..4]
            .iter()
            .all(|s| s.group == "speculative:draft-max=3"));
        assert_eq!(out[3].sweep_value, Some(4.0));
        // The swept value replaces the entry's own.
        let mut c = StrategyConfig::new(StrategyKind::Speculative);
        out[3].apply(&mut c).unwrap();
        assert_eq!(c.speculative().unwrap().mode, DraftLength::Fixed(4));
        assert_eq!(out[0].sweep_value, None);

        let e = Sweep::parse("la-window=2,4")
            .unwrap()
            .expand(&parse_strategies("baseline,speculative").unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("none of the listed strategies"),
            "{e}"
        );
        for bad in [
            "draft-max",
            "draft-max=",
            "exact=bit,kernel",
            "draft-max=1,x",
        ] {
            assert!(Sweep::parse(bad).is_err(), "{bad}");
        }
    }
}
