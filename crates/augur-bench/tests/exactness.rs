//! The exactness column on a real model: a strategy that changes one token
//! is flagged with the prompt and the first differing index; a correct one
//! is not.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use augur::core::{CoreError, StepContext, Strategy};
use augur::core::{CostModel, Proposal};
use augur::{Engine, EngineOptions, SamplingParams, TokenId};
use augur_bench::{BenchSettings, ChatMode, Contender, Event, Prompt, Workload};

/// Plain decoding (one target pass per token) that, when `plant` is set,
/// replaces the token generated at that index with `replacement`.
struct OneTokenOff {
    name: &'static str,
    plant: Option<(usize, TokenId)>,
    emitted: usize,
}

impl Strategy for OneTokenOff {
    fn name(&self) -> &'static str {
        self.name
    }

    fn needs_rollback(&self) -> bool {
        false
    }

    fn start(&mut self, _ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.emitted = 0;
        Ok(())
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        ctx.verify(&Proposal::new(), 1, &mut CostModel::prior())?;
        if let Some((at, replacement)) = self.plant {
            if self.emitted == at {
                let last = ctx.tokens.len() - 1;
                // The pending token is not evaluated yet, so the KV cache
                // stays consistent: the run simply continues from the change.
                ctx.tokens[last] = replacement;
            }
        }
        self.emitted += 1;
        Ok(())
    }
}

fn model() -> (std::path::PathBuf, Arc<augur::llama::GgufModel>) {
    let path = augur::models::path_of("smollm2-135m").unwrap_or_else(|e| {
        panic!("the exactness test needs SmolLM2-135M: {e} (fetch it with `augur models pull smollm2-135m`)")
    });
    let model = augur::load_model(&path, 0).unwrap();
    (path, model)
}

fn options(path: &std::path::Path) -> EngineOptions {
    EngineOptions {
        n_ctx: 256,
        threads: 2,
        ..EngineOptions::new(path)
    }
}

fn workload() -> Workload {
    let prompt = |id: &str, text: &str| Prompt {
        id: id.into(),
        text: text.into(),
        chat: false,
    };
    Workload {
        name: "tiny".into(),
        prompts: vec![
            prompt("count", "One, two, three, four, five, six,"),
            prompt("fn", "def add(a, b):\n    return"),
        ],
    }
}

const PLANT_AT: usize = 3;

fn contenders(path: &std::path::Path, model: &Arc<augur::llama::GgufModel>) -> Vec<Contender> {
    let baseline = Engine::with_models(Arc::clone(model), None, options(path)).unwrap();
    // A token that neither prompt's greedy continuation produces at the
    // planted index (checked below), and that is not end-of-generation.
    let replacement = model.tokenize(" banana", false).unwrap()[0];
    assert!(!model.is_eog(replacement));
    let plain = OneTokenOff {
        name: "plain",
        plant: None,
        emitted: 0,
    };
    let planted = OneTokenOff {
        name: "planted",
        plant: Some((PLANT_AT, replacement)),
        emitted: 0,
    };
    vec![
        Contender::new("baseline", baseline),
        Contender::new(
            "plain",
            Engine::with_strategy(Arc::clone(model), options(path), Box::new(plain)).unwrap(),
        ),
        Contender::new(
            "planted",
            Engine::with_strategy(Arc::clone(model), options(path), Box::new(planted)).unwrap(),
        ),
    ]
}

#[test]
fn a_changed_token_is_flagged_and_a_correct_strategy_is_not() {
    let (path, model) = model();
    let mut contenders = contenders(&path, &model);
    let replacement = model.tokenize(" banana", false).unwrap()[0];
    let settings = BenchSettings {
        max_tokens: 8,
        repeat: 1,
        warmup: 0,
        chat: ChatMode::Off,
        ..BenchSettings::default()
    };
    let mut flagged = Vec::new();
    let mut runs = 0;
    let report = augur_bench::run(
        &mut contenders,
        &[workload()],
        &settings,
        &mut |e| match e {
            Event::Mismatch(m) => flagged.push(m.clone()),
            Event::Run { warmup, .. } => {
                assert!(!warmup);
                runs += 1;
            }
            Event::Start { total } => assert_eq!(total, 6),
        },
    )
    .unwrap();
    assert_eq!(runs, 6);

    // Every planted run is flagged at the planted index, with both tokens.
    assert_eq!(report.mismatches.len(), 2, "{:#?}", report.mismatches);
    assert_eq!(flagged, report.mismatches);
    for (m, id) in report.mismatches.iter().zip(["count", "fn"]) {
        assert_eq!(m.strategy, "planted");
        assert_eq!(m.prompt, id);
        assert_eq!(m.workload, "tiny");
        assert_eq!(m.first_difference, PLANT_AT);
        assert_eq!(m.strategy_token, Some(replacement));
        let base = report
            .runs
            .iter()
            .find(|r| r.strategy == "baseline" && r.prompt == id)
            .unwrap();
        assert_eq!(m.baseline_token, Some(base.tokens[PLANT_AT]));
        assert_ne!(
            base.tokens[PLANT_AT], replacement,
            "pick another planted token"
        );
    }
    // The correct strategy matches on every prompt.
    for r in report.runs.iter().filter(|r| r.strategy == "plain") {
        assert_eq!(r.matches_baseline, Some(true), "{}", r.prompt);
        assert_eq!(r.first_difference, None);
    }
    let row = |s: &str| {
        report
            .summaries
            .iter()
            .find(|x| x.strategy == s && x.workload == "tiny")
            .unwrap()
    };
    assert_eq!(row("plain").mismatches, Some(0));
    assert_eq!(row("plain").compared, Some(2));
    assert_eq!(row("planted").mismatches, Some(2));
    let md = report.markdown();
    assert!(md.contains("✗ 2 of 2 differ"), "{md}");
    assert!(md.contains("✓ 2/2"), "{md}");
    assert!(
        md.contains("planted differs from baseline on tiny/count"),
        "{md}"
    );
    assert!(md.contains("at generated token 3"), "{md}");
}

#[test]
fn sampling_runs_are_not_compared_token_by_token() {
    let (path, model) = model();
    let mut contenders = contenders(&path, &model);
    let settings = BenchSettings {
        max_tokens: 6,
        repeat: 2,
        warmup: 1,
        chat: ChatMode::Off,
        sampling: SamplingParams {
            temperature: 0.8,
            ..SamplingParams::greedy()
        },
    };
    let report = augur_bench::run(&mut contenders, &[workload()], &settings, &mut |_| {}).unwrap();
    assert!(report.mismatches.is_empty());
    assert_eq!(report.runs.len(), 3 * 2 * 2);
    assert!(report.runs.iter().all(|r| r.matches_baseline.is_none()));
    assert!(report.summaries.iter().all(|s| s.mismatches.is_none()));
    // Repeats use different seeds; the pairing key includes the repeat.
    assert!(report.runs.iter().any(|r| r.repeat == 1));
    assert!(report.markdown().contains("n/a (sampling)"));
}

#[test]
fn a_bench_without_baseline_is_refused() {
    let (path, model) = model();
    let mut contenders = contenders(&path, &model);
    contenders.remove(0);
    let e = augur_bench::run(
        &mut contenders,
        &[workload()],
        &BenchSettings::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("needs a baseline"), "{e}");
}
