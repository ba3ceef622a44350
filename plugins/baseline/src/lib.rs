//! The baseline strategy: one target pass per token, the reference every other
//! strategy must match.

use augur_core::{
    BuildEnv, Built, CoreError, CostModel, Proposal, SettingKey, StepContext, Strategy,
    StrategyPlugin,
};

/// The baseline's settings: none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BaselineConfig;

impl StrategyPlugin for BaselineConfig {
    const NAME: &'static str = "baseline";
    const SUMMARY: &'static str = "one target pass per token (the reference)";
    const KEYS: &'static [SettingKey] = &[];
    const DRAFTS: bool = false;

    fn set(&mut self, key: SettingKey, _value: &str) -> Result<(), String> {
        Err(format!("baseline has no setting {key}"))
    }

    fn validate(&self) -> Result<(), CoreError> {
        Ok(())
    }

    fn build(&self, _env: BuildEnv) -> Result<Built, CoreError> {
        Ok(Built::plain(Box::new(Baseline)))
    }
}

/// Plain autoregressive decoding.
#[derive(Debug, Default, Clone)]
pub struct Baseline;

impl Strategy for Baseline {
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn needs_rollback(&self) -> bool {
        false
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        // Verifying an empty proposal is exactly one step of plain decoding:
        // one pass over the pending token, then a token drawn from p.
        // Its one-token passes are the reference: no costs to learn.
        ctx.verify(&Proposal::new(), 1, &mut CostModel::prior())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_core::testing::InMemoryModel;
    use augur_core::{generate, GenerateParams, Model, SamplingParams, StopReason};

    #[test]
    fn greedy_follows_the_argmax_chain() {
        let mut m = InMemoryModel::random(8, 4);
        let mut expected = vec![3u32];
        for _ in 0..10 {
            let row = m.row(*expected.last().unwrap()).to_vec();
            let best = (0..8)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap();
            expected.push(best as u32);
        }
        let params = GenerateParams {
            max_tokens: 10,
            sampling: SamplingParams::greedy(),
        };
        let g = generate(&mut m, &mut Baseline, &[3], &params, &mut |_| true).unwrap();
        assert_eq!(g.tokens, expected[1..]);
        assert_eq!(g.stop, StopReason::MaxTokens);
        assert_eq!(g.stats.target_passes, 10);
        assert_eq!(m.passes, 10);
    }

    #[test]
    fn stops_at_end_of_generation_without_emitting_it() {
        // 0 -> 1 -> 2 (eog) deterministically.
        let rows = vec![
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
            vec![1.0, 0.0, 0.0],
        ];
        let mut m = InMemoryModel::bigram(&rows).with_eog(2);
        let g = generate(
            &mut m,
            &mut Baseline,
            &[0],
            &GenerateParams::default(),
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(g.tokens, vec![1]);
        assert_eq!(g.stop, StopReason::EndOfGeneration);
    }

    #[test]
    fn callback_can_cancel() {
        let mut m = InMemoryModel::random(8, 4);
        let mut seen = 0;
        let g = generate(
            &mut m,
            &mut Baseline,
            &[1, 2],
            &GenerateParams::default(),
            &mut |_| {
                seen += 1;
                seen < 3
            },
        )
        .unwrap();
        assert_eq!(g.tokens.len(), 3);
        assert_eq!(g.stop, StopReason::Cancelled);
    }

    #[test]
    fn context_full_stops_generation() {
        let mut m = InMemoryModel::random(8, 4).with_n_ctx(6);
        let params = GenerateParams {
            max_tokens: 100,
            ..Default::default()
        };
        let g = generate(&mut m, &mut Baseline, &[1, 2, 3], &params, &mut |_| true).unwrap();
        assert_eq!(g.stop, StopReason::ContextFull);
        // Positions 2..5 are evaluated, each yielding a token: 4 tokens.
        assert_eq!(g.tokens.len(), 4);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut m = InMemoryModel::random(8, 4).with_n_ctx(4);
        let p = GenerateParams::default();
        let e = generate(&mut m, &mut Baseline, &[1, 2, 3, 4], &p, &mut |_| true).unwrap_err();
        assert!(
            matches!(
                e,
                CoreError::ContextOverflow {
                    needed: 4,
                    n_ctx: 4
                }
            ),
            "{e}"
        );
        let e = generate(&mut m, &mut Baseline, &[], &p, &mut |_| true).unwrap_err();
        assert!(matches!(e, CoreError::EmptyPrompt));
        let e = generate(&mut m, &mut Baseline, &[99], &p, &mut |_| true).unwrap_err();
        assert!(matches!(e, CoreError::TokenOutOfRange { token: 99, .. }));
        let zero = GenerateParams {
            max_tokens: 0,
            ..Default::default()
        };
        assert!(generate(&mut m, &mut Baseline, &[1], &zero, &mut |_| true).is_err());
        let hot = GenerateParams {
            sampling: SamplingParams {
                temperature: -1.0,
                ..SamplingParams::greedy()
            },
            ..Default::default()
        };
        assert!(generate(&mut m, &mut Baseline, &[1], &hot, &mut |_| true).is_err());
        assert_eq!(m.n_ctx(), 4);
    }

    #[test]
    fn same_seed_same_output_under_sampling() {
        let params = GenerateParams {
            max_tokens: 30,
            sampling: SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed: 77,
            },
        };
        let run = |params: &GenerateParams| {
            let mut m = InMemoryModel::random(8, 4);
            generate(&mut m, &mut Baseline, &[1], params, &mut |_| true)
                .unwrap()
                .tokens
        };
        assert_eq!(run(&params), run(&params));
        let other = GenerateParams {
            sampling: SamplingParams {
                seed: 78,
                ..params.sampling.clone()
            },
            ..params.clone()
        };
        assert_ne!(run(&params), run(&other));
    }
}
