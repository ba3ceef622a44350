//! `augur run`: generate from a prompt.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use augur::{
    Engine, EngineOptions, ExactMode, GenerateParams, SamplingParams, SettingKey, StrategyConfig,
    StrategyKind,
};
use serde::Serialize;

/// Model and machine settings shared by the commands that load models.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Target model: a GGUF file or a catalog name [default: qwen2.5-coder-1.5b].
    #[arg(short = 'm', long = "model", value_name = "TARGET")]
    pub model: Option<String>,
    /// Threads for the target (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    pub threads: usize,
    /// Context size in tokens.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    pub ctx_size: usize,
    /// Target layers to offload to the GPU (needs a cuda/metal/vulkan build).
    #[arg(long = "n-gpu-layers", visible_alias = "ngl", default_value_t = 0)]
    pub n_gpu_layers: u32,
    /// Show llama.cpp's own log output.
    #[arg(long)]
    pub verbose: bool,
}

impl ModelArgs {
    /// The target's path, resolving catalog names and the default.
    pub fn target_path(&self) -> anyhow::Result<PathBuf> {
        let spec = self
            .model
            .clone()
            .unwrap_or_else(|| augur::models::default_target().name.to_string());
        crate::preflight(augur::models::resolve(&spec)?)
    }
}

/// Draft model and draft-length settings (speculative decoding).
#[derive(Debug, Clone, clap::Args)]
pub struct DraftArgs {
    /// Draft model for auto and speculative: a GGUF file or catalog name with
    /// the target's vocabulary [default: qwen2.5-coder-0.5b when it is on disk
    /// and shares the target's vocabulary; auto runs model-free without one].
    #[arg(long = "model-draft", visible_alias = "md", value_name = "DRAFT")]
    pub model_draft: Option<String>,
    /// Most tokens drafted per step. Without it the draft length adapts to the
    /// measured acceptance and this machine's costs (up to 8 for speculative,
    /// 15 for prompt lookup, or none at all when drafting does not pay).
    #[arg(long = "draft-max")]
    pub draft_max: Option<usize>,
    /// Fewest drafts worth verifying; shorter proposals are dropped (greedy).
    #[arg(long = "draft-min", default_value_t = 0)]
    pub draft_min: usize,
    /// Stop drafting when the draft's top probability falls below P (0 = off).
    #[arg(
        long = "draft-p-min",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub draft_p_min: f64,
    /// Draft layers to offload to the GPU.
    #[arg(
        long = "n-gpu-layers-draft",
        visible_alias = "ngld",
        default_value_t = 0
    )]
    pub n_gpu_layers_draft: u32,
    /// Threads for the draft (0 = same as the target).
    #[arg(long = "threads-draft", visible_alias = "td", default_value_t = 0)]
    pub threads_draft: usize,
    /// Bit-exact mode: verification passes never exceed the size whose logits
    /// calibration found bit-identical to one-token passes, so greedy output is
    /// the baseline's token for token. Default: on when that size allows 2+
    /// drafts per pass, otherwise kernel-level exactness.
    #[arg(long, conflicts_with = "no_exact")]
    pub exact: bool,
    /// Allow any pass size (kernel-level exactness).
    #[arg(long = "no-exact")]
    pub no_exact: bool,
    /// Pipelined speculative decoding: a draft thread drafts the next proposal
    /// while the target verifies the current one, where the cost model
    /// predicts that the overlap pays (the target on the GPU, -ngl 99, and
    /// the draft on the CPU, -ngld 0); otherwise (a CPU-only machine, where
    /// both models share the cores) the sequential strategy runs and says
    /// why on stderr. The draft gets half the cores unless -td says otherwise.
    #[arg(long)]
    pub pipeline: bool,
}

impl DraftArgs {
    /// The draft's path: given, or the default draft when the target is the
    /// default target.
    pub fn draft_path(&self, target: &std::path::Path) -> anyhow::Result<PathBuf> {
        if let Some(spec) = &self.model_draft {
            return crate::preflight(augur::models::resolve(spec)?);
        }
        let default_target = augur::models::default_target();
        if target.file_name().and_then(|n| n.to_str()) == Some(default_target.file_name) {
            return crate::preflight(augur::models::resolve(augur::models::default_draft().name)?);
        }
        bail!("--strategy speculative needs a draft model with the target's vocabulary: -md FILE")
    }

    /// The draft model a `kind` run loads: the draft path when the strategy
    /// needs one; for a strategy that uses one when there is one (`auto`),
    /// `-md` or else the catalog's default draft when it is on disk and
    /// shares the target's vocabulary; with `always`, any draft given with
    /// `-md` (a server whose requests may ask for speculative decoding).
    pub fn draft_for(
        &self,
        kind: StrategyKind,
        target: &std::path::Path,
        always: bool,
    ) -> anyhow::Result<Option<PathBuf>> {
        if kind.needs_draft() || (self.model_draft.is_some() && (always || kind.uses_draft())) {
            return self.draft_path(target).map(Some);
        }
        if !kind.uses_draft() {
            return Ok(None);
        }
        let default = augur::models::path_of(augur::models::default_draft().name).ok();
        Ok(default.filter(|d| augur::gguf::check_draft_compatible(target, d).is_ok()))
    }

    /// The settings these flags set, for the one settings table
    /// ([`StrategyConfig::set`]); flags left at their defaults set nothing.
    pub fn settings(&self) -> Vec<(SettingKey, String)> {
        let mut out = Vec::new();
        if let Some(max) = self.draft_max {
            out.push((SettingKey::DraftMax, max.to_string()));
        }
        if self.draft_min != 0 {
            out.push((SettingKey::DraftMin, self.draft_min.to_string()));
        }
        if self.draft_p_min != 0.0 {
            out.push((SettingKey::DraftPMin, self.draft_p_min.to_string()));
        }
        if self.pipeline {
            out.push((SettingKey::Pipeline, "true".into()));
        }
        out
    }

    /// The exactness mode these flags ask for.
    pub fn exact_mode(&self) -> ExactMode {
        if self.exact {
            ExactMode::Bit
        } else if self.no_exact {
            ExactMode::Kernel
        } else {
            ExactMode::Auto
        }
    }
}

/// Lookahead and prompt-lookup settings.
#[derive(Debug, Clone, clap::Args)]
pub struct LookupArgs {
    /// Lookahead: window columns W (parallel Jacobi guesses).
    #[arg(long = "la-window", value_name = "W")]
    pub la_window: Option<usize>,
    /// Lookahead: n-gram length N (at least 3).
    #[arg(long = "la-ngram", value_name = "N")]
    pub la_ngram: Option<usize>,
    /// Lookahead: verification candidates G per step.
    #[arg(long = "la-guess", value_name = "G")]
    pub la_guess: Option<usize>,
    /// Prompt lookup: shortest n-gram to match.
    #[arg(long = "ngram-min")]
    pub ngram_min: Option<usize>,
    /// Prompt lookup: longest n-gram to match.
    #[arg(long = "ngram-max")]
    pub ngram_max: Option<usize>,
}

impl LookupArgs {
    /// The settings these flags set, for the one settings table.
    pub fn settings(&self) -> Vec<(SettingKey, String)> {
        [
            (SettingKey::LaWindow, self.la_window),
            (SettingKey::LaNgram, self.la_ngram),
            (SettingKey::LaGuess, self.la_guess),
            (SettingKey::NgramMin, self.ngram_min),
            (SettingKey::NgramMax, self.ngram_max),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
        .collect()
    }
}

/// The engine options of a command that loads models: the model and draft
/// flags, the strategy, and the draft model's path when it loads one.
pub fn engine_options(
    model: &ModelArgs,
    draft_args: &DraftArgs,
    target: PathBuf,
    strategy: StrategyConfig,
    draft: Option<PathBuf>,
) -> EngineOptions {
    EngineOptions {
        n_ctx: model.ctx_size,
        threads: model.threads,
        draft_threads: draft_args.threads_draft,
        n_gpu_layers: model.n_gpu_layers,
        n_gpu_layers_draft: draft_args.n_gpu_layers_draft,
        strategy,
        exact: draft_args.exact_mode(),
        draft,
        ..EngineOptions::new(target)
    }
}

/// Every strategy setting the flags of `draft` and `lookup` set.
pub fn flag_settings(draft: &DraftArgs, lookup: &LookupArgs) -> Vec<(SettingKey, String)> {
    let mut out = draft.settings();
    out.extend(lookup.settings());
    out
}

/// Sampling settings.
#[derive(Debug, Clone, clap::Args)]
pub struct SamplingArgs {
    /// Temperature; 0 is greedy decoding (the argmax at every step).
    #[arg(long = "temp", default_value_t = 0.0, allow_negative_numbers = true)]
    pub temp: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this probability mass, in (0, 1].
    #[arg(long = "top-p", default_value_t = 0.95, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the top token, in [0, 1].
    #[arg(long = "min-p", default_value_t = 0.05, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Random seed: the same seed gives the same output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The validated sampling parameters.
    pub fn params(&self) -> anyhow::Result<SamplingParams> {
        let p = SamplingParams {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            seed: self.seed,
        };
        p.validate()?;
        Ok(p)
    }
}

/// Arguments of `augur run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub draft: DraftArgs,
    #[command(flatten)]
    pub lookup: LookupArgs,
    /// The prompt text.
    #[arg(short = 'p', long, conflicts_with = "file")]
    pub prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Tokens to generate (stops earlier at end of generation).
    #[arg(
        short = 'n',
        long = "n-predict",
        default_value_t = 256,
        allow_negative_numbers = true
    )]
    pub n_predict: i64,
    /// Decoding strategy: auto (each step the drafter expected to pay best:
    /// prompt lookup, the draft model, or none), baseline (plain decoding),
    /// speculative (draft model), lookahead (greedy only), prompt-lookup,
    /// repeat-last (an example drafter).
    #[arg(long, default_value = "auto")]
    pub strategy: String,
    /// Wrap the prompt as one user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object (text, token ids, stats) instead of streaming.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct JsonStats<'a> {
    n_prompt: usize,
    n_generated: usize,
    tokens_per_second: f64,
    decode_seconds: f64,
    prefill_seconds: f64,
    target_passes: u64,
    draft_passes: u64,
    drafted: u64,
    accepted: u64,
    acceptance_rate: f64,
    tokens_per_target_pass: f64,
    largest_pass: usize,
    acceptance_by_position: Vec<f64>,
    draft_seconds: f64,
    verify_seconds: f64,
    sample_seconds: f64,
    other_seconds: f64,
    draft_wait_seconds: f64,
    wasted_draft_seconds: f64,
    guesses_tried: u64,
    guesses_held: u64,
    drafters: &'a [augur::core::DrafterStats],
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    text: &'a str,
    tokens: &'a [u32],
    strategy: &'a str,
    /// The draft model the strategy drafts with, if it loaded one.
    draft: Option<String>,
    stop: augur::StopReason,
    exactness: &'a str,
    max_exact_pass: Option<usize>,
    stats: JsonStats<'a>,
}

fn read_prompt(args: &RunArgs) -> anyhow::Result<String> {
    match (&args.prompt, &args.file) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading prompt file {}", f.display())),
        (None, None) => bail!("give a prompt with -p TEXT or -f FILE"),
    }
}

/// Runs `augur run`.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    if args.n_predict < 1 {
        bail!("-n must be at least 1, got {}", args.n_predict);
    }
    let sampling = args.sampling.params()?;
    let kind: StrategyKind = args.strategy.parse()?;
    let prompt_text = read_prompt(args)?;
    crate::init_logs(args.model.verbose);
    let target = args.model.target_path()?;

    // Every flag means the same here, in `augur bench` and in the C ABI:
    // the one settings table applies them, and refuses a flag the strategy
    // does not take.
    let mut strategy = StrategyConfig::new(kind);
    strategy.apply(&flag_settings(&args.draft, &args.lookup))?;
    strategy.validate()?;
    let draft = args.draft.draft_for(kind, &target, false)?;
    let options = engine_options(&args.model, &args.draft, target, strategy, draft);
    let mut engine = Engine::new(options)?;
    for note in engine.notes() {
        eprintln!("augur: {note}");
    }
    let prompt = engine.tokenize_prompt(&prompt_text, args.chat)?;
    let params = GenerateParams {
        max_tokens: usize::try_from(args.n_predict).unwrap_or(usize::MAX),
        sampling,
    };

    let mut text = String::new();
    let stdout = std::io::stdout();
    let streaming = !args.json;
    let interrupted = crate::interrupt_flag();
    let generation = engine.generate(&prompt, &params, &mut |_, piece| {
        text.push_str(piece);
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        if streaming {
            let mut out = stdout.lock();
            // A closed pipe (e.g. `| head`) stops generation instead of failing.
            return out
                .write_all(piece.as_bytes())
                .and_then(|()| out.flush())
                .is_ok();
        }
        true
    })?;
    let s = &generation.stats;
    if args.json {
        let out = JsonOutput {
            text: &text,
            tokens: &generation.tokens,
            strategy: engine.strategy_name(),
            draft: engine.draft_model().map(|d| d.path().display().to_string()),
            stop: generation.stop,
            exactness: generation.exactness.label(),
            max_exact_pass: engine.calibration().map(|c| c.max_exact_pass),
            stats: JsonStats {
                n_prompt: s.n_prompt,
                n_generated: s.n_generated,
                tokens_per_second: s.tokens_per_second(),
                decode_seconds: s.decode_seconds,
                prefill_seconds: s.prefill_seconds,
                target_passes: s.target_passes,
                draft_passes: s.draft_passes,
                drafted: s.drafted,
                accepted: s.accepted,
                acceptance_rate: s.acceptance_rate(),
                tokens_per_target_pass: s.tokens_per_target_pass(),
                largest_pass: s.largest_pass,
                acceptance_by_position: s.acceptance_by_position(),
                draft_seconds: s.draft_seconds,
                verify_seconds: s.verify_seconds,
                sample_seconds: s.sample_seconds,
                other_seconds: s.other_seconds(),
                draft_wait_seconds: s.draft_wait_seconds,
                wasted_draft_seconds: s.wasted_draft_seconds,
                guesses_tried: s.guesses_tried,
                guesses_held: s.guesses_held,
                drafters: &s.drafters,
            },
        };
        // A closed stdout (`| head`) is the reader having had enough, not an error.
        crate::print_ignoring_closed_pipe(&format!("{}\n", serde_json::to_string(&out)?))?;
    } else {
        crate::print_ignoring_closed_pipe("\n")?;
        let mut line = format!(
            "augur: {} tokens in {:.2} s ({:.2} tokens/s), {} target passes, prompt {} tokens in {:.2} s, strategy {}, {}, stopped: {:?}",
            s.n_generated,
            s.decode_seconds,
            s.tokens_per_second(),
            s.target_passes,
            s.n_prompt,
            s.prefill_seconds,
            engine.strategy_name(),
            generation.exactness.label(),
            generation.stop,
        );
        if s.drafted > 0 {
            line.push_str(&format!(
                ", accepted {}/{} drafts ({:.1} %), {:.2} tokens per target pass, by position [{}], time draft {:.2} s / verify {:.2} s / other {:.2} s",
                s.accepted,
                s.drafted,
                100.0 * s.acceptance_rate(),
                s.tokens_per_target_pass(),
                s.acceptance_by_position()
                    .iter()
                    .map(|a| format!("{:.2}", a))
                    .collect::<Vec<_>>()
                    .join(" "),
                s.draft_critical_seconds(),
                s.verify_seconds,
                s.other_seconds() + s.sample_seconds,
            ));
        }
        if s.drafters.len() > 1 || s.drafted > 0 {
            line.push_str(&format!(", by drafter: {}", s.drafter_summary()));
        }
        if s.guesses_tried > 0 {
            line.push_str(&format!(
                ", pipeline: draft thread busy {:.2} s ({:.2} s thrown away), optimistic guess held {}/{}",
                s.draft_seconds, s.wasted_draft_seconds, s.guesses_held, s.guesses_tried
            ));
        }
        eprintln!("{line}");
    }
    Ok(())
}
