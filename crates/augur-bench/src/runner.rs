//! Paired, interleaved runs of several strategies on the same prompts.

use std::fmt;

use augur::{Engine, GenerateParams, Generation, SamplingParams, TokenId};
use serde::Serialize;

use crate::report::{summarize, ContenderInfo, Report, SettingsInfo, WorkloadInfo};
use crate::spec::StrategySpec;
use crate::workload::Workload;
use crate::BenchError;

/// Whether prompts are wrapped in the model's chat template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChatMode {
    /// On when the target ships a chat template (instruct models).
    #[default]
    Auto,
    /// Always (an error for a model without a template).
    On,
    /// Never: prompts are raw text to continue.
    Off,
}

impl ChatMode {
    /// `auto`, `on` or `off`.
    pub fn label(self) -> &'static str {
        match self {
            ChatMode::Auto => "auto",
            ChatMode::On => "on",
            ChatMode::Off => "off",
        }
    }
}

impl std::str::FromStr for ChatMode {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ChatMode::Auto),
            "on" | "true" | "yes" => Ok(ChatMode::On),
            "off" | "false" | "no" => Ok(ChatMode::Off),
            _ => Err(BenchError::Spec(format!(
                "--chat is on, off or auto, got '{s}'"
            ))),
        }
    }
}

/// How the bench runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSettings {
    /// Tokens to generate per run (runs may stop earlier at end of generation).
    pub max_tokens: usize,
    /// Sampling settings; greedy (temperature 0) enables the token-by-token
    /// comparison with the baseline.
    pub sampling: SamplingParams,
    /// Timed runs per prompt and strategy (repeat r uses seed + r).
    pub repeat: usize,
    /// Untimed runs per strategy before the timed ones (caches, thread pools,
    /// CPU frequency).
    pub warmup: usize,
    /// Chat template use.
    pub chat: ChatMode,
}

impl Default for BenchSettings {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            sampling: SamplingParams::greedy(),
            repeat: 1,
            warmup: 1,
            chat: ChatMode::Auto,
        }
    }
}

/// One strategy under test: an engine and how to label it.
pub struct Contender {
    /// The label in reports (unique).
    pub label: String,
    /// The label without a swept setting (one line in a sweep plot).
    pub group: String,
    /// The swept setting's value, when the contender comes from a sweep.
    pub sweep_value: Option<f64>,
    /// The engine (target session, strategy and possibly a draft).
    pub engine: Engine,
}

impl fmt::Debug for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contender")
            .field("label", &self.label)
            .field("engine", &self.engine)
            .finish()
    }
}

impl Contender {
    /// A contender labelled `label`.
    pub fn new(label: impl Into<String>, engine: Engine) -> Self {
        let label = label.into();
        Self {
            group: label.clone(),
            label,
            sweep_value: None,
            engine,
        }
    }

    /// A contender for a parsed strategy entry.
    pub fn from_spec(spec: &StrategySpec, engine: Engine) -> Self {
        Self {
            label: spec.label.clone(),
            group: spec.group.clone(),
            sweep_value: spec.sweep_value,
            engine,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The contender's label.
    pub strategy: String,
    /// The workload.
    pub workload: String,
    /// The prompt's id.
    pub prompt: String,
    /// Repeat index (0-based).
    pub repeat: usize,
    /// Prompt length in tokens (after the chat template).
    pub n_prompt: usize,
    /// Tokens generated.
    pub n_generated: usize,
    /// Why the run stopped.
    pub stop: augur::StopReason,
    /// The guarantee the run reported: `bit-identical` or `kernel-level`.
    pub exactness: String,
    /// Decoding throughput (prefill excluded).
    pub tokens_per_second: f64,
    /// This run's tokens/s divided by the baseline's on the same prompt and repeat.
    pub ratio_to_baseline: Option<f64>,
    /// Greedy only: whether the tokens equal the baseline's.
    pub matches_baseline: Option<bool>,
    /// Greedy only: the first index where they differ.
    pub first_difference: Option<usize>,
    /// Decoding seconds.
    pub decode_seconds: f64,
    /// Prompt evaluation seconds.
    pub prefill_seconds: f64,
    /// Target passes during decoding.
    pub target_passes: u64,
    /// Draft model passes.
    pub draft_passes: u64,
    /// Tokens drafted.
    pub drafted: u64,
    /// Drafted tokens accepted.
    pub accepted: u64,
    /// accepted / drafted.
    pub acceptance_rate: f64,
    /// Tokens emitted per target pass.
    pub tokens_per_target_pass: f64,
    /// Accepted drafts per target pass.
    pub accepted_per_target_pass: f64,
    /// The largest target pass, in tokens.
    pub largest_pass: usize,
    /// Seconds spent drafting.
    pub draft_seconds: f64,
    /// Seconds in target passes.
    pub verify_seconds: f64,
    /// Seconds turning logits into tokens.
    pub sample_seconds: f64,
    /// The rest of the decoding time.
    pub other_seconds: f64,
    /// Verifications that carried a draft at each position.
    pub drafted_by_position: Vec<u64>,
    /// Of those, how many accepted every draft up to and including it.
    pub accepted_by_position: Vec<u64>,
    /// The prompt's token ids (after the chat template), so a run can be
    /// replayed offline (`cargo run -p augur-prompt-lookup --example replay`).
    pub prompt_tokens: Vec<TokenId>,
    /// The generated token ids.
    pub tokens: Vec<TokenId>,
    /// Drafting time on the critical path (all of it, unless a pipeline
    /// overlapped it with verification).
    pub draft_critical_seconds: f64,
    /// Pipelined drafting: time the target side waited for proposals.
    pub draft_wait_seconds: f64,
    /// `passes_by_size[k - 1]`: target passes over k tokens.
    pub passes_by_size: Vec<u64>,
    /// `seconds_by_size[k - 1]`: the time those passes took, in all.
    pub seconds_by_size: Vec<f64>,
    /// What each drafter contributed (steps chosen, drafted, accepted,
    /// tokens, time).
    pub drafters: Vec<augur::core::DrafterStats>,
}

impl RunRecord {
    fn new(job: &Job<'_>, label: &str, repeat: usize, g: &Generation) -> Self {
        let s = &g.stats;
        Self {
            strategy: label.to_string(),
            workload: job.workload.to_string(),
            prompt: job.prompt.to_string(),
            repeat,
            n_prompt: s.n_prompt,
            n_generated: s.n_generated,
            stop: g.stop,
            exactness: g.exactness.label().to_string(),
            tokens_per_second: s.tokens_per_second(),
            ratio_to_baseline: None,
            matches_baseline: None,
            first_difference: None,
            decode_seconds: s.decode_seconds,
            prefill_seconds: s.prefill_seconds,
            target_passes: s.target_passes,
            draft_passes: s.draft_passes,
            drafted: s.drafted,
            accepted: s.accepted,
            acceptance_rate: s.acceptance_rate(),
            tokens_per_target_pass: s.tokens_per_target_pass(),
            accepted_per_target_pass: crate::stats::ratio(
                s.accepted as f64,
                s.target_passes as f64,
            ),
            largest_pass: s.largest_pass,
            draft_seconds: s.draft_seconds,
            verify_seconds: s.verify_seconds,
            sample_seconds: s.sample_seconds,
            other_seconds: s.other_seconds(),
            drafted_by_position: s.drafted_by_position.clone(),
            accepted_by_position: s.accepted_by_position.clone(),
            prompt_tokens: job.tokens.clone(),
            tokens: g.tokens.clone(),
            draft_critical_seconds: s.draft_critical_seconds(),
            draft_wait_seconds: s.draft_wait_seconds,
            passes_by_size: s.passes_by_size.clone(),
            seconds_by_size: s.seconds_by_size.clone(),
            drafters: s.drafters.clone(),
        }
    }
}

/// A greedy run whose tokens differ from the baseline's on the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The contender's label.
    pub strategy: String,
    /// The workload.
    pub workload: String,
    /// The prompt's id.
    pub prompt: String,
    /// Repeat index.
    pub repeat: usize,
    /// The first generated-token index where the outputs differ.
    pub first_difference: usize,
    /// The baseline's token there (`None`: the baseline's output ended).
    pub baseline_token: Option<TokenId>,
    /// The strategy's token there (`None`: its output ended).
    pub strategy_token: Option<TokenId>,
    /// The baseline token's text.
    pub baseline_piece: String,
    /// The strategy token's text.
    pub strategy_piece: String,
    /// The guarantee the strategy's run reported.
    pub exactness: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tok = |t: Option<TokenId>, piece: &str| match t {
            Some(t) => format!("{t} {piece:?}"),
            None => "end of output".to_string(),
        };
        write!(
            f,
            "✗ {} differs from baseline on {}/{} (repeat {}) at generated token {}: baseline {}, {} {}",
            self.strategy,
            self.workload,
            self.prompt,
            self.repeat,
            self.first_difference,
            tok(self.baseline_token, &self.baseline_piece),
            self.strategy,
            tok(self.strategy_token, &self.strategy_piece),
        )?;
        if self.exactness == augur::Exactness::BitIdentical.label() {
            write!(f, " — the run claimed bit-identical output: this is a bug")
        } else {
            write!(
                f,
                " — the run was kernel-level (passes larger than the bit-exact size round \
                 differently, see `augur calibrate`): possibly a kernel flip rather than a bug"
            )
        }
    }
}

/// The first index where `a` and `b` differ (the shorter length when one
/// is a prefix of the other), or `None` when they are equal.
pub fn first_difference(a: &[TokenId], b: &[TokenId]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

/// Progress of a bench run, for a progress bar and warnings.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts; `total` runs will follow (warm-up included).
    Start {
        /// Runs to come.
        total: usize,
    },
    /// One run finished.
    Run {
        /// The contender's label.
        strategy: &'a str,
        /// The workload.
        workload: &'a str,
        /// The prompt's id.
        prompt: &'a str,
        /// True for an untimed warm-up run.
        warmup: bool,
        /// Its throughput.
        tokens_per_second: f64,
    },
    /// A greedy run's tokens differ from the baseline's.
    Mismatch(&'a Mismatch),
}

struct Job<'w> {
    workload: &'w str,
    prompt: &'w str,
    tokens: Vec<TokenId>,
}

/// Runs every contender on every prompt of `workloads`, prompt by prompt
/// (baseline first, then the others in order, for each prompt and repeat),
/// so that drift of the machine's speed hits every strategy alike.
///
/// One contender must run the `baseline` strategy: ratios and the exactness
/// comparison are against it. Prompts are tokenized once, by the baseline's
/// engine (every contender must share its target model).
pub fn run(
    contenders: &mut [Contender],
    workloads: &[Workload],
    settings: &BenchSettings,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report, BenchError> {
    if settings.repeat == 0 || settings.max_tokens == 0 {
        return Err(BenchError::Config(
            "repeat and the number of tokens must be at least 1".into(),
        ));
    }
    settings
        .sampling
        .validate()
        .map_err(|e| BenchError::Config(e.to_string()))?;
    let base = contenders
        .iter()
        .position(|c| c.engine.strategy_name() == "baseline")
        .ok_or_else(|| {
            BenchError::Config(
                "the bench needs a baseline contender (ratios and exactness are against it)".into(),
            )
        })?;
    let mut labels: Vec<&str> = contenders.iter().map(|c| c.label.as_str()).collect();
    labels.sort_unstable();
    if labels.windows(2).any(|w| w[0] == w[1]) {
        return Err(BenchError::Config("contender labels must be unique".into()));
    }
    if workloads.is_empty() {
        return Err(BenchError::Config("no workloads to run".into()));
    }
    for w in workloads {
        if w.prompts.is_empty() {
            return Err(BenchError::EmptyWorkload(w.name.clone()));
        }
    }
    let greedy = settings.sampling.is_greedy();
    let target = contenders[base].engine.target_model().clone();
    let has_template = target.has_chat_template();
    if settings.chat == ChatMode::On && !has_template {
        return Err(BenchError::Config(format!(
            "{} has no chat template; run with --chat off",
            target.path().display()
        )));
    }
    let chat_on = match settings.chat {
        ChatMode::Auto => has_template,
        ChatMode::On => true,
        ChatMode::Off => false,
    };

    let mut jobs = Vec::new();
    for w in workloads {
        for p in &w.prompts {
            let tokens = contenders[base]
                .engine
                .tokenize_prompt(&p.text, chat_on && p.chat)?;
            jobs.push(Job {
                workload: &w.name,
                prompt: &p.id,
                tokens,
            });
        }
    }
    // Baseline first in every round.
    let mut order: Vec<usize> = vec![base];
    order.extend((0..contenders.len()).filter(|&i| i != base));
    let total = order.len() * (settings.warmup + jobs.len() * settings.repeat);
    on_event(Event::Start { total });

    let params_for = |repeat: usize| GenerateParams {
        max_tokens: settings.max_tokens,
        sampling: SamplingParams {
            seed: settings.sampling.seed.wrapping_add(repeat as u64),
            ..settings.sampling.clone()
        },
    };
    let generate = |c: &mut Contender, job: &Job<'_>, params: &GenerateParams| {
        c.engine
            .generate(&job.tokens, params, &mut |_, _| true)
            .map_err(|source| BenchError::Generate {
                strategy: c.label.clone(),
                prompt: job.prompt.to_string(),
                source: Box::new(source),
            })
    };

    for w in 0..settings.warmup {
        let job = &jobs[w % jobs.len()];
        for &i in &order {
            let g = generate(&mut contenders[i], job, &params_for(0))?;
            on_event(Event::Run {
                strategy: &contenders[i].label,
                workload: job.workload,
                prompt: job.prompt,
                warmup: true,
                tokens_per_second: g.stats.tokens_per_second(),
            });
        }
    }

    let mut records: Vec<RunRecord> = Vec::new();
    let mut mismatches: Vec<Mismatch> = Vec::new();
    for job in &jobs {
        for repeat in 0..settings.repeat {
            let params = params_for(repeat);
            let mut baseline: Option<RunRecord> = None;
            for &i in &order {
                let g = generate(&mut contenders[i], job, &params)?;
                let c = &contenders[i];
                let mut rec = RunRecord::new(job, &c.label, repeat, &g);
                if let Some(b) = &baseline {
                    rec.ratio_to_baseline = (b.tokens_per_second > 0.0)
                        .then(|| rec.tokens_per_second / b.tokens_per_second);
                    if greedy {
                        let diff = first_difference(&b.tokens, &rec.tokens);
                        rec.matches_baseline = Some(diff.is_none());
                        rec.first_difference = diff;
                        if let Some(at) = diff {
                            let piece = |t: Option<&TokenId>| {
                                t.map(|&t| {
                                    String::from_utf8_lossy(&target.token_to_piece(t, false))
                                        .into_owned()
                                })
                                .unwrap_or_default()
                            };
                            let m = Mismatch {
                                strategy: c.label.clone(),
                                workload: job.workload.to_string(),
                                prompt: job.prompt.to_string(),
                                repeat,
                                first_difference: at,
                                baseline_token: b.tokens.get(at).copied(),
                                strategy_token: rec.tokens.get(at).copied(),
                                baseline_piece: piece(b.tokens.get(at)),
                                strategy_piece: piece(rec.tokens.get(at)),
                                exactness: rec.exactness.clone(),
                            };
                            on_event(Event::Mismatch(&m));
                            mismatches.push(m);
                        }
                    }
                } else {
                    rec.ratio_to_baseline = Some(1.0);
                    if greedy {
                        rec.matches_baseline = Some(true);
                    }
                }
                on_event(Event::Run {
                    strategy: &c.label,
                    workload: job.workload,
                    prompt: job.prompt,
                    warmup: false,
                    tokens_per_second: rec.tokens_per_second,
                });
                if baseline.is_none() {
                    baseline = Some(rec.clone());
                }
                records.push(rec);
            }
        }
    }

    let strategies: Vec<ContenderInfo> = order
        .iter()
        .map(|&i| {
            let c = &contenders[i];
            let cal = c.engine.calibration();
            ContenderInfo {
                label: c.label.clone(),
                strategy: c.engine.strategy_name().to_string(),
                group: c.group.clone(),
                sweep_value: c.sweep_value,
                draft: c
                    .engine
                    .draft_model()
                    .map(|d| d.path().display().to_string()),
                max_exact_pass: cal.map(|c| c.max_exact_pass),
                pass_seconds: cal.map(|c| c.pass_seconds.clone()),
                context_growth: cal.map(|c| c.context_growth()),
                draft_step_seconds: c.engine.draft_model().and_then(|d| {
                    let o = c.engine.options();
                    let threads = if o.draft_threads == 0 {
                        o.threads
                    } else {
                        o.draft_threads
                    };
                    augur::calibration::cached(d, threads, 2).map(|cal| cal.draft_step_seconds())
                }),
            }
        })
        .collect();
    let summaries = summarize(&records, &strategies, greedy);
    Ok(Report {
        format: crate::REPORT_FORMAT,
        augur_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: augur::calibration::machine_id(),
        target: target.path().display().to_string(),
        settings: SettingsInfo {
            max_tokens: settings.max_tokens,
            repeat: settings.repeat,
            warmup: settings.warmup,
            greedy,
            temperature: settings.sampling.temperature,
            top_k: settings.sampling.top_k,
            top_p: settings.sampling.top_p,
            min_p: settings.sampling.min_p,
            seed: settings.sampling.seed,
            chat: settings.chat.label().to_string(),
            chat_template: chat_on,
        },
        baseline: contenders[base].label.clone(),
        sweep: None,
        strategies,
        workloads: workloads
            .iter()
            .map(|w| WorkloadInfo {
                name: w.name.clone(),
                prompts: w.prompts.len(),
            })
            .collect(),
        summaries,
        mismatches,
        runs: records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_cases() {
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 9, 3]), Some(1));
        assert_eq!(first_difference(&[5], &[6]), Some(0));
        // One output is a prefix of the other (stopped early).
        assert_eq!(first_difference(&[1, 2], &[1, 2, 3]), Some(2));
        assert_eq!(first_difference(&[1, 2, 3], &[1]), Some(1));
        assert_eq!(first_difference(&[], &[]), None);
    }

    #[test]
    fn mismatch_lines_say_whether_it_is_a_bug() {
        let mut m = Mismatch {
            strategy: "prompt-lookup".into(),
            workload: "edit".into(),
            prompt: "edit-x".into(),
            repeat: 0,
            first_difference: 17,
            baseline_token: Some(10),
            strategy_token: None,
            baseline_piece: " total".into(),
            strategy_piece: String::new(),
            exactness: "bit-identical".into(),
        };
        let line = m.to_string();
        assert!(
            line.starts_with("✗ prompt-lookup differs from baseline on edit/edit-x"),
            "{line}"
        );
        assert!(line.contains("at generated token 17"), "{line}");
        assert!(line.contains("baseline 10 \" total\""), "{line}");
        assert!(line.contains("end of output"), "{line}");
        assert!(line.contains("this is a bug"), "{line}");
        m.exactness = "kernel-level".into();
        assert!(m.to_string().contains("kernel flip"));
    }
}
