//! `augur bench`: compare strategies on the same workload and models.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use augur::{Engine, EngineOptions, StrategyConfig, StrategyKind};
use augur_bench::{
    BenchSettings, ChatMode, Contender, Event, StrategySpec, Sweep, Workload, WorkloadKind,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run_cmd::{DraftArgs, LookupArgs, ModelArgs, SamplingArgs};

const DEFAULT_STRATEGIES: &str = "baseline,auto,speculative,prompt-lookup,lookahead";

/// Arguments of `augur bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub draft: DraftArgs,
    #[command(flatten)]
    pub lookup: LookupArgs,
    /// Strategies to compare, separated by commas; each may carry its own
    /// settings after colons, e.g. `baseline,speculative:draft-max=4,prompt-lookup:ngram-max=3`
    /// (settings: draft-max, draft-min, draft-p-min, exact=bit|kernel|auto,
    /// la-window, la-ngram, la-guess, ngram-min, ngram-max). The baseline is
    /// always run. [default: baseline,auto,speculative,prompt-lookup,lookahead,
    /// leaving out speculative without a draft model and lookahead when sampling]
    #[arg(long, value_name = "LIST")]
    pub strategies: Option<String>,
    /// Tokens to generate per run (runs stop earlier at end of generation).
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    pub n_predict: usize,
    /// Timed runs per prompt and strategy.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Untimed runs per strategy before timing.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Workloads: code, chat, edit, summarize, mixed, humaneval, all (repeatable
    /// or comma-separated) [default: code,chat,edit,summarize,mixed, or none with
    /// --prompts].
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    /// A JSONL file of prompts (one object per line with "id" and "prompt"),
    /// run as one more workload named after the file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub prompts: Option<PathBuf>,
    /// Run only the first K prompts of each workload.
    #[arg(long, value_name = "K")]
    pub limit: Option<usize>,
    /// Wrap prompts in the model's chat template: on, off, or auto (on when
    /// the model has one; HumanEval never uses it).
    #[arg(long, default_value = "auto", value_name = "on|off|auto")]
    pub chat: String,
    /// Write the full report as JSON (fields in augur-bench's README).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one CSV row per strategy × workload × prompt × repeat.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write an SVG plot: speedup per strategy and workload, or against the
    /// swept value with --sweep.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Run each strategy that has the setting once per value, e.g.
    /// `draft-max=1,2,4,8`, `la-window=2,4,8` or `ngram-max=2,3,4`.
    #[arg(long, value_name = "KEY=V1,V2,...")]
    pub sweep: Option<String>,
    /// Fail (exit status 1) when any greedy run's tokens differ from the
    /// baseline's, after writing every report (for CI).
    #[arg(long = "fail-on-mismatch")]
    pub fail_on_mismatch: bool,
}

/// The strategy list: parsed, defaulted, swept, baseline first.
fn strategy_specs(
    args: &BenchArgs,
    draft_available: bool,
    greedy: bool,
) -> anyhow::Result<Vec<StrategySpec>> {
    let mut specs = match &args.strategies {
        Some(list) => augur_bench::parse_strategies(list)?,
        None => {
            let mut specs = augur_bench::parse_strategies(DEFAULT_STRATEGIES)?;
            specs.retain(|s| {
                let keep = match s.kind {
                    StrategyKind::Speculative => draft_available,
                    StrategyKind::Lookahead => greedy,
                    _ => true,
                };
                if !keep {
                    eprintln!(
                        "augur bench: leaving out {} ({})",
                        s.label,
                        if s.kind == StrategyKind::Lookahead {
                            "greedy only"
                        } else {
                            "no draft model: give one with -md FILE"
                        }
                    );
                }
                keep
            });
            specs
        }
    };
    if !greedy {
        if let Some(s) = specs.iter().find(|s| s.kind == StrategyKind::Lookahead) {
            bail!(
                "{} is greedy only; use --temp 0 or leave it out of --strategies",
                s.label
            );
        }
    }
    if !specs.iter().any(|s| s.label == "baseline") {
        specs.insert(0, StrategySpec::plain(StrategyKind::Baseline));
    }
    if let Some(text) = &args.sweep {
        specs = Sweep::parse(text)?.expand(&specs)?;
    }
    Ok(specs)
}

fn workloads(args: &BenchArgs) -> anyhow::Result<Vec<Workload>> {
    let kinds = if args.workloads.is_empty() {
        if args.prompts.is_some() {
            Vec::new()
        } else {
            WorkloadKind::BUILT_IN.to_vec()
        }
    } else {
        WorkloadKind::parse_list(&args.workloads)?
    };
    let mut out = Vec::new();
    for k in kinds {
        out.push(
            k.load()
                .with_context(|| format!("loading workload {k}"))?
                .limit(args.limit),
        );
    }
    if let Some(path) = &args.prompts {
        let w = augur_bench::workload::prompts_file(path)?.limit(args.limit);
        if out.iter().any(|o| o.name == w.name) {
            bail!(
                "the prompts file's name '{}' clashes with a built-in workload; rename the file",
                w.name
            );
        }
        out.push(w);
    }
    if out.is_empty() {
        bail!("no workloads selected");
    }
    if let Some(w) = out.iter().find(|w| w.prompts.is_empty()) {
        bail!("workload {} has no prompts (--limit 0?)", w.name);
    }
    Ok(out)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs `augur bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.n_predict == 0 || args.repeat == 0 {
        bail!("-n and --repeat must be at least 1");
    }
    let sampling = args.sampling.params()?;
    let chat: ChatMode = args.chat.parse()?;
    crate::init_logs(args.model.verbose);
    let target_path = args.model.target_path()?;
    // A named draft that fails to resolve is an error below, not a silent omission.
    let draft_available =
        args.draft.model_draft.is_some() || args.draft.draft_path(&target_path).is_ok();
    let specs = strategy_specs(args, draft_available, sampling.is_greedy())?;
    let work = workloads(args)?;

    let draft_path = if specs.iter().any(|s| s.kind.needs_draft()) {
        Some(args.draft.draft_path(&target_path)?)
    } else if specs.iter().any(|s| s.kind.uses_draft()) {
        // auto uses the draft model when there is one.
        args.draft
            .draft_for(StrategyKind::Auto, &target_path, false)?
    } else {
        None
    };
    if let Some(path) = &draft_path {
        augur::gguf::check_draft_compatible(&target_path, path)?;
    }
    let target = augur::load_model(&target_path, args.model.n_gpu_layers)?;
    let draft = match &draft_path {
        Some(p) => Some(augur::load_model(p, args.draft.n_gpu_layers_draft)?),
        None => None,
    };

    let mut contenders = Vec::new();
    for spec in &specs {
        // The shared flags where the strategy takes them, then the entry's
        // own settings: both through the one settings table.
        let mut config = StrategyConfig::new(spec.kind);
        config.apply_where_taken(&crate::run_cmd::flag_settings(&args.draft, &args.lookup))?;
        spec.apply(&mut config)?;
        if spec.kind.drafts() {
            eprintln!(
                "augur bench: preparing {} (calibrating pass costs on first use; cached)",
                spec.label
            );
        }
        let options = EngineOptions {
            n_ctx: args.model.ctx_size,
            threads: args.model.threads,
            draft_threads: args.draft.threads_draft,
            n_gpu_layers: args.model.n_gpu_layers,
            n_gpu_layers_draft: args.draft.n_gpu_layers_draft,
            strategy: config,
            exact: spec.exact.unwrap_or(args.draft.exact_mode()),
            draft: draft_path.clone().filter(|_| spec.kind.uses_draft()),
            ..EngineOptions::new(target_path.clone())
        };
        let d = draft
            .as_ref()
            .filter(|_| spec.kind.uses_draft())
            .map(Arc::clone);
        let engine = Engine::with_models(Arc::clone(&target), d, options)
            .with_context(|| format!("preparing {}", spec.label))?;
        contenders.push(Contender::from_spec(spec, engine));
    }

    let settings = BenchSettings {
        max_tokens: args.n_predict,
        sampling,
        repeat: args.repeat,
        warmup: args.warmup,
        chat,
    };
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}",
    ) {
        bar.set_style(style);
    }
    let mut report = augur_bench::run(
        &mut contenders,
        &work,
        &settings,
        &mut |event| match event {
            Event::Start { total } => bar.set_length(total as u64),
            Event::Run {
                strategy,
                workload,
                prompt,
                warmup,
                tokens_per_second,
            } => {
                bar.inc(1);
                bar.set_message(format!(
                    "{}{strategy} {workload}/{prompt} {tokens_per_second:.1} tok/s",
                    if warmup { "warm-up " } else { "" }
                ));
            }
            Event::Mismatch(m) => bar.println(format!("augur bench: warning: {m}")),
        },
    )?;
    bar.finish_and_clear();
    report.sweep = args
        .sweep
        .as_deref()
        .and_then(|s| s.split_once('='))
        .map(|(k, _)| k.trim().to_string());

    print!("{}", report.markdown());
    if let Some(path) = &args.json {
        write_file(path, &serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(path) = &args.csv {
        write_file(path, &report.csv())?;
    }
    if let Some(path) = &args.plot {
        write_file(path, &augur_bench::plot::svg(&report))?;
    }
    if !report.mismatches.is_empty() {
        let n = report.mismatches.len();
        if args.fail_on_mismatch {
            bail!("✗ {n} run(s) differ from the baseline under greedy decoding (listed above)");
        }
        eprintln!(
            "augur bench: warning: ✗ {n} run(s) differ from the baseline under greedy decoding (listed above)"
        );
    }
    Ok(())
}
