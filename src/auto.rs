//! The strategy `auto`: every drafter augur has behind one
//! [`augur_core::BestOf`], so each step verifies the proposal the shared cost
//! model expects to pay best — prompt lookup's copy, the draft model's
//! continuation (when there is a draft model), an application's drafter, or
//! none (a plain step).
//!
//! It lives in the facade because it assembles drafters from several plugins;
//! the choice itself is augur-core's.

use augur_core::{
    BestOf, BuildEnv, Built, CoreError, CostModel, DraftSettings, DraftVerify, Drafter, SettingKey,
    StrategyPlugin, Tuned,
};
use augur_prompt_lookup::{PromptLookupConfig, PromptLookupDrafter};
use augur_speculative::SpeculativeConfig;

/// The strategy's name.
pub const NAME: &str = "auto";

/// Settings of `auto`: those of the drafters it chooses among.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutoConfig {
    /// Prompt lookup's settings (its n-gram lengths, its longest draft).
    pub lookup: PromptLookupConfig,
    /// The draft model's settings (adaptive length, its longest draft,
    /// draft-p-min).
    pub draft: SpeculativeConfig,
    /// `draft-max`: the most tokens any drafter drafts per step (a cap, not
    /// a fixed length: every length stays the cost model's choice).
    pub draft_max: Option<usize>,
    /// `draft-min`: at temperature 0, proposals shorter than this are
    /// dropped.
    pub draft_min: usize,
}

impl AutoConfig {
    fn lookup_cap(&self) -> usize {
        self.draft_max
            .map_or(self.lookup.draft_max, |m| m.min(self.lookup.draft_max))
    }

    fn draft_cap(&self) -> usize {
        self.draft_max
            .map_or(self.draft.draft_max, |m| m.min(self.draft.draft_max))
    }

    /// The prompt-lookup drafter and the driver's settings, shared by both
    /// ways of building.
    fn assemble(
        &self,
        env_costs: Option<CostModel>,
        bit_exact: bool,
    ) -> Result<(BestOf, CostModel, DraftSettings), CoreError> {
        let mut lookup = self.lookup.clone();
        lookup.draft_max = self.lookup_cap();
        let costs = env_costs.unwrap_or_else(|| self.lookup.prior_costs());
        let best = BestOf::new(NAME).with_trees().with(
            Box::new(PromptLookupDrafter::new(lookup).map_err(CoreError::from)?),
            self.lookup_cap(),
        )?;
        let settings = DraftSettings {
            draft_max: self.lookup_cap().max(self.draft_cap()),
            draft_min: self.draft_min,
            exact: bit_exact,
        };
        Ok((best, costs, settings))
    }

    /// `auto` with an application's drafter as one more costly member (its
    /// draft length chosen by the same tuner as the draft model's).
    pub fn build_with_drafter(
        &self,
        drafter: Box<dyn Drafter + Send>,
        env: BuildEnv,
    ) -> Result<Built, CoreError> {
        let cap = self.draft_cap();
        let tuned = Tuned::new(drafter, self.draft.mode, self.draft.draft_min);
        let (best, costs, settings) = self.assemble(env.costs, env.bit_exact)?;
        let best = best.with(Box::new(tuned), cap)?;
        Ok(Built::plain(Box::new(DraftVerify::new(
            NAME, best, settings, costs,
        ))))
    }
}

impl StrategyPlugin for AutoConfig {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "each step the drafter expected to pay best: prompt lookup, the \
         draft model (-md, or the default draft when on disk) or none (the default)";
    const KEYS: &'static [SettingKey] = &[
        SettingKey::DraftMax,
        SettingKey::DraftMin,
        SettingKey::DraftPMin,
        SettingKey::NgramMin,
        SettingKey::NgramMax,
    ];
    const USES_DRAFT: bool = true;

    fn set(&mut self, key: SettingKey, value: &str) -> Result<(), String> {
        match key {
            SettingKey::DraftMax => {
                let max = key.usize(value)?;
                if max == 0 || max > crate::limits::MAX_DRAFT {
                    return Err(format!(
                        "draft-max must be in 1..={}, got {max}",
                        crate::limits::MAX_DRAFT
                    ));
                }
                self.draft_max = Some(max);
            }
            SettingKey::DraftMin => self.draft_min = key.usize(value)?,
            SettingKey::DraftPMin => self.draft.draft_p_min = key.f64(value)?,
            SettingKey::NgramMin => self.lookup.ngram_min = key.usize(value)?,
            SettingKey::NgramMax => self.lookup.ngram_max = key.usize(value)?,
            other => return Err(format!("{NAME} has no setting {other}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), CoreError> {
        StrategyPlugin::validate(&self.lookup)?;
        StrategyPlugin::validate(&self.draft)
    }

    fn largest_pass(&self) -> usize {
        // A token tree: the draft model's chain and a copy beside it.
        (self.lookup_cap() + self.draft_cap() + 1).min(crate::limits::MAX_DRAFT + 1)
    }

    fn sequences(&self) -> usize {
        // The draft model's chain on sequence 0, a copy beside it on 1.
        2
    }

    fn build(&self, env: BuildEnv) -> Result<Built, CoreError> {
        let (mut best, costs, settings) = self.assemble(env.costs, env.bit_exact)?;
        let mut notes = Vec::new();
        match env.draft {
            Some(draft) => {
                best = best.with(
                    Box::new(augur_speculative::drafter(draft, &self.draft)),
                    self.draft_cap(),
                )?;
            }
            None => notes.push(
                "auto: no draft model (give one with -md), so drafting is model-free: prompt \
                 lookup or plain decoding each step"
                    .to_string(),
            ),
        }
        Ok(Built {
            strategy: Box::new(DraftVerify::new(NAME, best, settings, costs)),
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use augur_baseline::Baseline;
    use augur_core::testing::{
        assert_greedy_matches, generate_greedy, unfiltered, ContinuationTest, InMemoryModel,
        ScriptedModel,
    };
    use augur_core::{Model, RunStats, TokenId};

    /// Costs of a memory-bound target: a pass over k tokens costs
    /// 1 + 0.1·(k − 1) one-token passes, a draft step 0.1.
    fn memory_bound() -> CostModel {
        let passes: Vec<f64> = (0..16).map(|k| 1.0 + 0.1 * k as f64).collect();
        CostModel::calibrated(&passes, 0.1, 1)
    }

    fn auto(draft: Option<Box<dyn Model + Send>>) -> Box<dyn augur_core::Strategy + Send> {
        let env = BuildEnv {
            draft,
            costs: Some(memory_bound()),
            bit_exact: false,
            bit_exact_forced: false,
        };
        AutoConfig::default().build(env).unwrap().strategy
    }

    fn drafter<'a>(stats: &'a RunStats, name: &str) -> Option<&'a augur_core::DrafterStats> {
        stats.drafters.iter().find(|d| d.name == name)
    }

    /// Greedy output equals the baseline's whichever drafter each step
    /// chooses, with a draft model that is sometimes right and copies that
    /// the tiny vocabulary makes frequent.
    #[test]
    fn greedy_output_is_the_baselines() {
        // Steps won by a copy verified beside the draft model's chain.
        let mut trees = 0;
        for seed in 0..12 {
            let model = InMemoryModel::random(6, seed).with_history(seed + 1);
            let draft = InMemoryModel::random(6, seed + 100);
            let prompt: Vec<TokenId> = (0..8).map(|i| (i * 5 + seed as u32) % 6).collect();
            let (_, got) = assert_greedy_matches(
                &model,
                &mut Baseline,
                &mut auto(Some(Box::new(draft))),
                &prompt,
                40,
                "auto",
            );
            assert!(got.stats.target_passes > 0);
            trees += got.stats.branch_wins;
            let model_free = InMemoryModel::random(6, seed).with_history(seed + 1);
            assert_greedy_matches(
                &model_free,
                &mut Baseline,
                &mut auto(None),
                &prompt,
                40,
                "auto, model-free",
            );
        }
        assert!(trees > 0, "no step verified a copy beside the draft");
    }

    /// Sampling: continuations follow the target's exact distribution while
    /// auto chooses between copies and a draft model; the negative control
    /// (the draft model's own samples) is far off it.
    #[test]
    fn sampling_keeps_the_distribution_while_choosing() {
        let test = ContinuationTest {
            prompt: vec![2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1],
            len: 3,
            runs: 3000,
            first_seed: 1,
            sampling: unfiltered(1.0),
        };
        let mut target = InMemoryModel::random(4, 9);
        // A draft unrelated to the target: right by chance only, so the
        // copies win wherever there is one.
        let draft = InMemoryModel::random(4, 77);
        let mut strategy = auto(Some(Box::new(draft.clone())));
        let mut used = RunStats::default();
        let counts = test.counts(&mut target, &mut strategy, |g, _, m| {
            m.batch_sizes.clear();
            for d in &g.stats.drafters {
                used.record_drafter(&d.name, d.drafted as usize, 0, 0, 0.0);
            }
        });
        let r = test.chi_square(&counts, &target);
        assert!(r.p_value > 1e-3, "{r:?}");
        // Both drafters were chosen in some steps.
        for name in ["prompt-lookup", "draft-model"] {
            let d = drafter(&used, name)
                .unwrap_or_else(|| panic!("{name} never chosen: {}", used.drafter_summary()));
            assert!(d.drafted > 0, "{used:?}");
        }
        // The negative control: the draft's own samples.
        let mut draft_target = draft;
        let counts = test.counts(&mut draft_target, &mut Baseline, |_, _, m| {
            m.batch_sizes.clear()
        });
        let r = test.chi_square(&counts, &target);
        assert!(r.p_value < 1e-6, "{r:?}");
    }

    /// On text whose best drafter changes — first a copy of the prompt, then
    /// text only the draft model knows, then text neither knows — auto
    /// follows: the copy drafts the first part, the draft model the second,
    /// and the third is decoded mostly plainly.
    #[test]
    fn follows_the_drafter_that_pays() {
        let passage: Vec<TokenId> = (10..50).collect();
        let fresh: Vec<TokenId> = (100..160).collect();
        let unknown: Vec<TokenId> = (200..280).collect();
        let wrong: Vec<TokenId> = (300..380).collect();
        let mut prompt = vec![1, 2, 3];
        prompt.extend(&passage);
        prompt.extend([4, 5]);
        let text = |last: &[TokenId]| {
            let mut t = prompt.clone();
            t.extend(&passage);
            t.extend(&fresh);
            t.extend(last);
            t
        };
        let mut target = ScriptedModel::new(text(&unknown), 400, None);
        let draft = ScriptedModel::new(text(&wrong), 400, None);
        let n = passage.len() + fresh.len() + unknown.len();
        let g = generate_greedy(&mut target, &mut *auto(Some(Box::new(draft))), &prompt, n);
        assert_eq!(g.tokens, text(&unknown)[prompt.len()..]);
        let s = &g.stats;
        let copy = drafter(s, "prompt-lookup").unwrap();
        let model = drafter(s, "draft-model").unwrap();
        let plain = drafter(s, augur_core::DrafterStats::NONE).unwrap();
        // The copy: most of the passage in long drafts, so few steps.
        assert!(
            copy.tokens >= 30 && copy.tokens <= passage.len() as u64 + 2 && copy.steps <= 10,
            "{}",
            s.drafter_summary()
        );
        // The draft model: most of the fresh text; the copy is left to the
        // free drafter (at most one step of overlap at the boundary).
        assert!(
            model.tokens >= 45 && model.accepted <= fresh.len() as u64 + 2,
            "{}",
            s.drafter_summary()
        );
        // Neither knows the last part: the draft model's acceptance estimate
        // (about the last 30 verdicts) falls until drafting stops paying,
        // then the steps are plain, with a few explorations.
        assert!(plain.steps >= 35, "{}", s.drafter_summary());
        assert!(model.steps <= 20 + 35, "{}", s.drafter_summary());
    }
}
