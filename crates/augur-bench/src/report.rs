//! Reports: per strategy and workload summaries, Markdown, CSV and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::predict::{costs_from_calibration, predicted_speedup};
use crate::runner::{Mismatch, RunRecord};
use crate::stats::{geometric_mean, median, ratio, worst};

/// The workload name of the rows pooling every workload.
pub const ALL_WORKLOADS: &str = "all";

/// A contender as the report describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContenderInfo {
    /// Its label (unique).
    pub label: String,
    /// The strategy's name (`baseline`, `speculative`, ...).
    pub strategy: String,
    /// The label without a swept setting.
    pub group: String,
    /// The swept setting's value, in a sweep.
    pub sweep_value: Option<f64>,
    /// The draft model's file, for speculative decoding.
    pub draft: Option<String>,
    /// Calibration: the largest bit-exact pass size.
    pub max_exact_pass: Option<usize>,
    /// Calibration: seconds of a target pass over k tokens, at k − 1.
    pub pass_seconds: Option<Vec<f64>>,
    /// Calibration: seconds of one draft model step (speculative decoding).
    pub draft_step_seconds: Option<f64>,
    /// Calibration: how the relative cost of a pass grows with the context.
    pub context_growth: Option<augur::core::ContextGrowth>,
}

/// The run's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingsInfo {
    /// Tokens per run.
    pub max_tokens: usize,
    /// Timed runs per prompt and strategy.
    pub repeat: usize,
    /// Untimed runs per strategy.
    pub warmup: usize,
    /// Temperature 0.
    pub greedy: bool,
    /// Sampling temperature.
    pub temperature: f32,
    /// Top-k filter.
    pub top_k: usize,
    /// Top-p filter.
    pub top_p: f32,
    /// Min-p filter.
    pub min_p: f32,
    /// Seed of repeat 0 (repeat r uses seed + r).
    pub seed: u64,
    /// `--chat`: auto, on or off.
    pub chat: String,
    /// Whether the chat template was applied (to chat prompts).
    pub chat_template: bool,
}

/// A workload as the report describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadInfo {
    /// Its name.
    pub name: String,
    /// Prompts run.
    pub prompts: usize,
}

/// One strategy on one workload (or on all of them, `workload = "all"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The contender's label.
    pub strategy: String,
    /// The label without a swept setting.
    pub group: String,
    /// The swept setting's value.
    pub sweep_value: Option<f64>,
    /// The workload, or `all`.
    pub workload: String,
    /// Timed runs.
    pub runs: usize,
    /// Median tokens/s over the runs.
    pub tokens_per_second: f64,
    /// Median over runs of tokens/s ÷ the baseline's on the same prompt and repeat.
    pub speedup_median: Option<f64>,
    /// The smallest of those ratios.
    pub speedup_worst: Option<f64>,
    /// Their geometric mean.
    pub speedup_geomean: Option<f64>,
    /// The paper's formula with calibration's pass costs and this row's
    /// measured acceptance per position and draft cost (drafting strategies
    /// with a calibration, lookahead excepted).
    pub predicted_speedup: Option<f64>,
    /// Tokens/s predicted from calibration: the run's target passes, each
    /// costed at the calibrated time of its size, its draft-model passes at
    /// the calibrated draft step, and the rest of its time as measured.
    /// Pooled over the runs; compare with `pooled_tokens_per_second`.
    pub predicted_tokens_per_second: Option<f64>,
    /// Tokens/s pooled over the runs (all tokens ÷ all decoding time).
    pub pooled_tokens_per_second: f64,
    /// Mean seconds of a target pass over k tokens in these runs, at index
    /// k − 1 (0 where none was made): what calibration is checked against.
    pub measured_pass_seconds: Vec<f64>,
    /// Accepted ÷ drafted tokens, pooled.
    pub acceptance_rate: f64,
    /// Conditional acceptance per draft position, pooled.
    pub acceptance_by_position: Vec<f64>,
    /// Generated tokens ÷ target passes, pooled.
    pub tokens_per_target_pass: f64,
    /// Accepted drafts ÷ target passes, pooled.
    pub accepted_per_target_pass: f64,
    /// Share of decoding time spent drafting.
    pub draft_share: f64,
    /// Share spent in target passes.
    pub verify_share: f64,
    /// The rest (sampling, bookkeeping).
    pub other_share: f64,
    /// The guarantee the runs reported (`bit-identical`, `kernel-level`, or
    /// `mixed` when runs differed).
    pub exactness: String,
    /// Greedy only: runs compared with the baseline.
    pub compared: Option<usize>,
    /// Greedy only: of those, runs whose tokens differ from the baseline's.
    pub mismatches: Option<usize>,
    /// What each drafter contributed over these runs, summed.
    pub drafters: Vec<augur::core::DrafterStats>,
}

/// Everything a bench run measured. Serialized as `--json` (see the crate
/// documentation for the fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The report format's version ([`crate::REPORT_FORMAT`]).
    pub format: u32,
    /// augur's version.
    pub augur_version: String,
    /// CPU model and cores.
    pub machine: String,
    /// The target model's file.
    pub target: String,
    /// The run's settings.
    pub settings: SettingsInfo,
    /// The baseline contender's label.
    pub baseline: String,
    /// The swept setting, in a sweep.
    pub sweep: Option<String>,
    /// The contenders, baseline first.
    pub strategies: Vec<ContenderInfo>,
    /// The workloads, in order.
    pub workloads: Vec<WorkloadInfo>,
    /// Per strategy and workload (then `all`).
    pub summaries: Vec<Summary>,
    /// Greedy runs whose tokens differ from the baseline's.
    pub mismatches: Vec<Mismatch>,
    /// Every timed run.
    pub runs: Vec<RunRecord>,
}

/// Tokens/s the calibration predicts for `records` (see
/// [`Summary::predicted_tokens_per_second`]): each target pass at the
/// calibrated time of its size ([`CostModel::calibrated`], which extrapolates
/// past the calibrated sizes) at the run's mean context (`growth`: its
/// prompt and half its tokens), each draft-model pass at `draft_step` (when
/// calibrated), everything else as the runs measured it.
fn predicted_tokens_per_second(
    records: &[&RunRecord],
    pass_seconds: &[f64],
    growth: Option<&augur::core::ContextGrowth>,
    draft_step: Option<f64>,
) -> Option<f64> {
    let mut costs = augur::core::CostModel::calibrated(pass_seconds, 0.0, 0);
    costs.growth = growth.cloned().unwrap_or_default();
    let (mut tokens, mut seconds) = (0.0, 0.0);
    for r in records {
        costs.set_context(r.n_prompt + r.n_generated / 2);
        let verify: f64 = r
            .passes_by_size
            .iter()
            .enumerate()
            .map(|(i, &n)| n as f64 * costs.target(i + 1).unwrap_or(0.0))
            .sum();
        // Pipelined drafting overlaps the target: its measured waiting is
        // what it costs, so only sequential draft passes are predicted.
        let pipelined = r.draft_wait_seconds > 0.0;
        let draft = match draft_step {
            Some(step) if !pipelined => r.draft_passes as f64 * step,
            _ => r.draft_critical_seconds,
        };
        let rest = (r.decode_seconds - r.verify_seconds - r.draft_critical_seconds).max(0.0);
        tokens += r.n_generated as f64;
        seconds += verify + draft + rest;
    }
    (seconds > 0.0 && tokens > 0.0).then(|| tokens / seconds)
}

/// Seconds per target pass of the baseline's runs among `records` (every
/// pass of plain decoding is a one-token pass): this run's phase of the
/// machine, which calibration's absolute figures do not know.
fn baseline_pass_seconds(records: &[&RunRecord]) -> Option<f64> {
    let base = records.iter().filter(|r| r.strategy == "baseline");
    let (passes, seconds) = base.fold((0u64, 0.0), |(n, s), r| {
        (n + r.target_passes, s + r.verify_seconds)
    });
    (passes > 0 && seconds > 0.0).then(|| seconds / passes as f64)
}

fn pooled(
    records: &[&RunRecord],
    info: &ContenderInfo,
    greedy: bool,
    workload: &str,
    baseline_pass: Option<f64>,
) -> Summary {
    let tps: Vec<f64> = records.iter().map(|r| r.tokens_per_second).collect();
    let ratios: Vec<f64> = records.iter().filter_map(|r| r.ratio_to_baseline).collect();
    let sum = |f: fn(&RunRecord) -> f64| records.iter().map(|r| f(r)).sum::<f64>();
    let (drafted, accepted) = (sum(|r| r.drafted as f64), sum(|r| r.accepted as f64));
    let passes = sum(|r| r.target_passes as f64);
    let generated = sum(|r| r.n_generated as f64);
    let decode = sum(|r| r.decode_seconds);
    let draft_s = sum(|r| r.draft_seconds);
    let verify_s = sum(|r| r.verify_seconds);
    let draft_passes = sum(|r| r.draft_passes as f64);
    let len = records
        .iter()
        .map(|r| r.drafted_by_position.len())
        .max()
        .unwrap_or(0);
    let mut dbp = vec![0u64; len];
    let mut abp = vec![0u64; len];
    for r in records {
        for (i, (&d, &a)) in r
            .drafted_by_position
            .iter()
            .zip(&r.accepted_by_position)
            .enumerate()
        {
            dbp[i] += d;
            abp[i] += a;
        }
    }
    let mut labels: Vec<&str> = records.iter().map(|r| r.exactness.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let exactness = match labels.as_slice() {
        [] => "–".to_string(),
        [one] => (*one).to_string(),
        _ => "mixed".to_string(),
    };
    let predicted = match &info.pass_seconds {
        Some(pass) if info.strategy != "baseline" && info.strategy != "lookahead" => {
            // One draft step's cost: calibrated like the target's passes when
            // there is a draft model (so that contention during the run does
            // not skew one side of the formula only), else measured in the
            // run: per model pass, or per drafted token for model-free
            // drafters (whose drafting is a table lookup).
            let step = match info.draft_step_seconds {
                Some(s) => s,
                None if draft_passes > 0.0 => draft_s / draft_passes,
                None => ratio(draft_s, drafted),
            };
            let costs = costs_from_calibration(pass, step);
            predicted_speedup(&dbp, &abp, passes as u64, &costs)
        }
        _ => None,
    };
    // Calibration's relative costs, on the absolute scale of this run: the
    // machine drifts by 25 % between phases, and a prediction at the
    // calibration's phase would be off by that much whatever the model.
    let predicted_tps = info
        .pass_seconds
        .as_ref()
        .filter(|_| info.strategy != "baseline")
        .and_then(|pass| {
            let phase = match (baseline_pass, pass.first()) {
                (Some(now), Some(&then)) if then > 0.0 => now / then,
                _ => 1.0,
            };
            let pass: Vec<f64> = pass.iter().map(|s| s * phase).collect();
            let step = info.draft_step_seconds.map(|s| s * phase);
            predicted_tokens_per_second(records, &pass, info.context_growth.as_ref(), step)
        });
    let sizes = records
        .iter()
        .map(|r| r.passes_by_size.len())
        .max()
        .unwrap_or(0);
    let measured_pass_seconds: Vec<f64> = (0..sizes)
        .map(|i| {
            let n: u64 = records.iter().filter_map(|r| r.passes_by_size.get(i)).sum();
            let t: f64 = records
                .iter()
                .filter_map(|r| r.seconds_by_size.get(i))
                .sum();
            ratio(t, n as f64)
        })
        .collect();
    let compared = greedy.then(|| {
        records
            .iter()
            .filter(|r| r.matches_baseline.is_some())
            .count()
    });
    let mismatches = greedy.then(|| {
        records
            .iter()
            .filter(|r| r.matches_baseline == Some(false))
            .count()
    });
    let mut drafters: Vec<augur::core::DrafterStats> = Vec::new();
    for d in records.iter().flat_map(|r| &r.drafters) {
        match drafters.iter_mut().find(|x| x.name == d.name) {
            Some(x) => {
                x.steps += d.steps;
                x.drafted += d.drafted;
                x.accepted += d.accepted;
                x.tokens += d.tokens;
                x.seconds += d.seconds;
            }
            None => drafters.push(d.clone()),
        }
    }
    Summary {
        strategy: info.label.clone(),
        group: info.group.clone(),
        sweep_value: info.sweep_value,
        workload: workload.to_string(),
        runs: records.len(),
        tokens_per_second: median(&tps).unwrap_or(0.0),
        speedup_median: median(&ratios),
        speedup_worst: worst(&ratios),
        speedup_geomean: geometric_mean(&ratios),
        predicted_speedup: predicted,
        predicted_tokens_per_second: predicted_tps,
        pooled_tokens_per_second: ratio(generated, decode),
        measured_pass_seconds,
        acceptance_rate: ratio(accepted, drafted),
        acceptance_by_position: crate::predict::conditional_acceptance(&dbp, &abp),
        tokens_per_target_pass: ratio(generated, passes),
        accepted_per_target_pass: ratio(accepted, passes),
        draft_share: ratio(draft_s, decode),
        verify_share: ratio(verify_s, decode),
        other_share: if decode > 0.0 {
            (1.0 - (draft_s + verify_s) / decode).max(0.0)
        } else {
            0.0
        },
        exactness,
        compared,
        mismatches,
        drafters,
    }
}

/// Summaries per contender (in `strategies` order) and workload (in order
/// of first appearance), plus an `all` row per contender when there are
/// several workloads.
pub fn summarize(
    records: &[RunRecord],
    strategies: &[ContenderInfo],
    greedy: bool,
) -> Vec<Summary> {
    let mut workloads: Vec<&str> = Vec::new();
    for r in records {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    let mut out = Vec::new();
    // The machine's phase per workload (and over all), computed once.
    let all: Vec<&RunRecord> = records.iter().collect();
    let all_phase = baseline_pass_seconds(&all);
    let phases: Vec<Option<f64>> = workloads
        .iter()
        .map(|w| {
            let rows: Vec<&RunRecord> = records.iter().filter(|r| r.workload == *w).collect();
            baseline_pass_seconds(&rows)
        })
        .collect();
    for info in strategies {
        let mine: Vec<&RunRecord> = records
            .iter()
            .filter(|r| r.strategy == info.label)
            .collect();
        for (w, &phase) in workloads.iter().zip(&phases) {
            let rows: Vec<&RunRecord> = mine.iter().copied().filter(|r| r.workload == *w).collect();
            if !rows.is_empty() {
                out.push(pooled(&rows, info, greedy, w, phase));
            }
        }
        if workloads.len() > 1 && !mine.is_empty() {
            out.push(pooled(&mine, info, greedy, ALL_WORKLOADS, all_phase));
        }
    }
    out
}

fn times(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.2}×"))
}

impl Report {
    /// The Markdown report: settings, one table row per strategy and
    /// workload, and every exactness mismatch.
    pub fn markdown(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(out, "## augur bench\n");
        let _ = writeln!(out, "- target: `{}`", self.target);
        let mut drafts: Vec<&str> = self
            .strategies
            .iter()
            .filter_map(|c| c.draft.as_deref())
            .collect();
        drafts.dedup();
        for d in drafts {
            let _ = writeln!(out, "- draft: `{d}`");
        }
        let _ = writeln!(out, "- machine: {}", self.machine);
        let mode = if s.greedy {
            "greedy".to_string()
        } else {
            format!(
                "sampling (temperature {}, top-k {}, top-p {}, min-p {}, seed {})",
                s.temperature, s.top_k, s.top_p, s.min_p, s.seed
            )
        };
        let _ = writeln!(
            out,
            "- {mode}; {} tokens per run; {} repeat(s); {} warm-up run(s); chat template {}",
            s.max_tokens,
            s.repeat,
            s.warmup,
            if s.chat_template { "on" } else { "off" }
        );
        let _ = writeln!(
            out,
            "- workloads: {}",
            self.workloads
                .iter()
                .map(|w| format!("{} ({} prompts)", w.name, w.prompts))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "- speedup: tokens/s ÷ the baseline's on the same prompt and repeat (median and worst over runs); predicted: the paper's formula with calibrated pass costs and the measured acceptance; pred tok/s: the runs' own passes costed by calibration, scaled to the baseline's one-token pass time in this run (and how far the measured pooled tokens/s is from it)\n"
        );
        let _ = writeln!(
            out,
            "| strategy | workload | runs | tok/s | speedup | worst | predicted | pred tok/s | accept | tok/pass | acc/pass | draft/verify/other | guarantee | same as baseline |"
        );
        let _ = writeln!(
            out,
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|"
        );
        for r in &self.summaries {
            let accept = if r.strategy == self.baseline {
                "–".to_string()
            } else {
                format!("{:.1} %", 100.0 * r.acceptance_rate)
            };
            let same = match (r.compared, r.mismatches) {
                _ if r.strategy == self.baseline => "–".to_string(),
                (Some(n), Some(0)) => format!("✓ {n}/{n}"),
                (Some(n), Some(m)) => format!("✗ {m} of {n} differ"),
                _ => "n/a (sampling)".to_string(),
            };
            let predicted_tps = match r.predicted_tokens_per_second {
                Some(p) if p > 0.0 => format!(
                    "{p:.2} ({:+.0} %)",
                    100.0 * (r.pooled_tokens_per_second / p - 1.0)
                ),
                _ => "–".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0}/{:.0}/{:.0} % | {} | {} |",
                r.strategy,
                r.workload,
                r.runs,
                r.tokens_per_second,
                times(r.speedup_median),
                times(r.speedup_worst),
                times(r.predicted_speedup),
                predicted_tps,
                accept,
                r.tokens_per_target_pass,
                r.accepted_per_target_pass,
                100.0 * r.draft_share,
                100.0 * r.verify_share,
                100.0 * r.other_share,
                r.exactness,
                same,
            );
        }
        let shared: Vec<&Summary> = self
            .summaries
            .iter()
            .filter(|r| r.drafters.len() > 1)
            .collect();
        if !shared.is_empty() {
            let _ = writeln!(
                out,
                "\nBy drafter (steps whose proposal each made; `none`: plain steps):\n"
            );
            let _ = writeln!(
                out,
                "| strategy | workload | drafter | steps | drafted | accepted | tokens | share of tokens | draft s |"
            );
            let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|");
            for r in shared {
                let total: u64 = r.drafters.iter().map(|d| d.tokens).sum();
                for d in &r.drafters {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} | {:.0} % | {:.2} |",
                        r.strategy,
                        r.workload,
                        d.name,
                        d.steps,
                        d.drafted,
                        d.accepted,
                        d.tokens,
                        100.0 * ratio(d.tokens as f64, total as f64),
                        d.seconds,
                    );
                }
            }
        }
        if self.mismatches.is_empty() {
            if s.greedy {
                let _ = writeln!(
                    out,
                    "\nEvery strategy produced the baseline's tokens on every prompt."
                );
            }
        } else {
            let _ = writeln!(
                out,
                "\n**✗ {} run(s) differ from the baseline under greedy decoding:**\n",
                self.mismatches.len()
            );
            for m in &self.mismatches {
                let _ = writeln!(out, "- {m}");
            }
        }
        out
    }

    /// One CSV row per timed run (strategy × workload × prompt × repeat).
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        for r in &self.runs {
            let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.6}"));
            let fields = [
                r.strategy.clone(),
                r.workload.clone(),
                r.prompt.clone(),
                r.repeat.to_string(),
                r.n_prompt.to_string(),
                r.n_generated.to_string(),
                serde_json::to_value(r.stop)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                r.exactness.clone(),
                format!("{:.4}", r.tokens_per_second),
                opt(r.ratio_to_baseline),
                r.matches_baseline.map_or(String::new(), |b| b.to_string()),
                r.first_difference.map_or(String::new(), |i| i.to_string()),
                format!("{:.6}", r.decode_seconds),
                format!("{:.6}", r.prefill_seconds),
                r.target_passes.to_string(),
                r.draft_passes.to_string(),
                r.drafted.to_string(),
                r.accepted.to_string(),
                format!("{:.6}", r.acceptance_rate),
                format!("{:.6}", r.tokens_per_target_pass),
                format!("{:.6}", r.accepted_per_target_pass),
                r.largest_pass.to_string(),
                format!("{:.6}", r.draft_seconds),
                format!("{:.6}", r.verify_seconds),
                format!("{:.6}", r.sample_seconds),
                format!("{:.6}", r.other_seconds),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "strategy,workload,prompt,repeat,n_prompt,n_generated,stop,exactness,tokens_per_second,ratio_to_baseline,matches_baseline,first_difference,decode_seconds,prefill_seconds,target_passes,draft_passes,drafted,accepted,acceptance_rate,tokens_per_target_pass,accepted_per_target_pass,largest_pass,draft_seconds,verify_seconds,sample_seconds,other_seconds";

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(strategy: &str, workload: &str, prompt: &str, tps: f64, ratio: f64) -> RunRecord {
        RunRecord {
            strategy: strategy.into(),
            workload: workload.into(),
            prompt: prompt.into(),
            repeat: 0,
            n_prompt: 10,
            n_generated: 20,
            stop: augur::StopReason::MaxTokens,
            exactness: "bit-identical".into(),
            tokens_per_second: tps,
            ratio_to_baseline: Some(ratio),
            matches_baseline: Some(true),
            first_difference: None,
            decode_seconds: 20.0 / tps,
            prefill_seconds: 0.1,
            target_passes: 10,
            draft_passes: 0,
            drafted: 12,
            accepted: 10,
            acceptance_rate: 10.0 / 12.0,
            tokens_per_target_pass: 2.0,
            accepted_per_target_pass: 1.0,
            largest_pass: 3,
            draft_seconds: 0.0,
            verify_seconds: 0.5 * 20.0 / tps,
            sample_seconds: 0.0,
            other_seconds: 0.5 * 20.0 / tps,
            drafted_by_position: vec![6, 6],
            accepted_by_position: vec![6, 4],
            prompt_tokens: vec![],
            tokens: vec![],
            draft_critical_seconds: 0.0,
            draft_wait_seconds: 0.0,
            // Ten passes of 3 tokens, taking half the decoding time.
            passes_by_size: vec![0, 0, 10],
            seconds_by_size: vec![0.0, 0.0, 0.5 * 20.0 / tps],
            drafters: Vec::new(),
        }
    }

    #[test]
    fn calibration_predicts_tokens_per_second_from_the_runs_own_passes() {
        // Calibration says a 3-token pass takes 1 s (the test's passes took
        // 0.5 * 20 / tps / 10 = 0.05 s at 20 tok/s): 10 s of verification
        // plus 0.5 s of the rest for 20 tokens.
        let r = rec("prompt-lookup", "code", "p", 20.0, 1.0);
        let p = predicted_tokens_per_second(&[&r], &[1.0, 1.0, 1.0], None, None).unwrap();
        assert!((p - 20.0 / 10.5).abs() < 1e-9, "{p}");
        // A calibration that matches the run predicts its tokens/s.
        let p = predicted_tokens_per_second(&[&r], &[0.05, 0.05, 0.05], None, None).unwrap();
        assert!((p - 20.0).abs() < 1e-9, "{p}");
        // Draft passes at the calibrated draft step.
        let mut d = r.clone();
        d.draft_passes = 10;
        d.draft_critical_seconds = 0.0;
        let p = predicted_tokens_per_second(&[&d], &[0.05, 0.05, 0.05], None, Some(0.05)).unwrap();
        assert!((p - 20.0 / 1.5).abs() < 1e-9, "{p}");
        // Passes at the run's mean context: a 3-token pass calibrated after
        // 100 tokens, growing by 1 % per token, costs twice as much after
        // 190 + 20 / 2 = 200.
        let growth = augur::core::ContextGrowth {
            timed_after: 100,
            per_token: vec![0.0, 0.0, 0.01],
        };
        let mut long = r.clone();
        long.n_prompt = 190;
        let p = predicted_tokens_per_second(&[&long], &[0.05, 0.05, 0.05], Some(&growth), None)
            .unwrap();
        assert!((p - 20.0 / 1.5).abs() < 1e-9, "{p}");
    }

    fn info(label: &str, strategy: &str) -> ContenderInfo {
        ContenderInfo {
            label: label.into(),
            strategy: strategy.into(),
            group: label.into(),
            sweep_value: None,
            draft: None,
            max_exact_pass: Some(4),
            pass_seconds: Some(vec![1.0, 1.0, 1.0, 1.0]),
            draft_step_seconds: None,
            context_growth: None,
        }
    }

    #[test]
    fn summaries_pool_per_workload_and_overall() {
        let mut odd = rec("pl", "edit", "b", 30.0, 3.0);
        odd.matches_baseline = Some(false);
        odd.first_difference = Some(4);
        odd.exactness = "kernel-level".into();
        let records = vec![
            rec("pl", "code", "a", 10.0, 1.0),
            rec("pl", "code", "b", 20.0, 2.0),
            rec("pl", "code", "c", 40.0, 0.5),
            rec("pl", "edit", "a", 50.0, 4.0),
            odd,
        ];
        let s = summarize(&records, &[info("pl", "prompt-lookup")], true);
        assert_eq!(s.len(), 3);
        let code = &s[0];
        assert_eq!(code.workload, "code");
        assert_eq!(code.runs, 3);
        assert_eq!(code.tokens_per_second, 20.0);
        assert_eq!(code.speedup_median, Some(1.0));
        assert_eq!(code.speedup_worst, Some(0.5));
        assert!((code.speedup_geomean.unwrap() - 1.0).abs() < 1e-12);
        assert!((code.acceptance_rate - 10.0 / 12.0).abs() < 1e-12);
        assert_eq!(code.tokens_per_target_pass, 2.0);
        assert_eq!(code.acceptance_by_position.len(), 2);
        assert!((code.acceptance_by_position[1] - 4.0 / 6.0).abs() < 1e-12);
        assert!((code.verify_share - 0.5).abs() < 1e-12);
        assert_eq!(code.mismatches, Some(0));
        assert_eq!(code.exactness, "bit-identical");
        // Equal pass costs, free drafts: predicted = expected tokens per pass.
        // 6 of the 10 passes drafted two (E = 1 + 1 + 4/6), 4 were plain.
        let want = (6.0 * (2.0 + 4.0 / 6.0) + 4.0) / 10.0;
        assert!((code.predicted_speedup.unwrap() - want).abs() < 1e-9);
        let edit = &s[1];
        assert_eq!(edit.mismatches, Some(1));
        assert_eq!(edit.exactness, "mixed");
        assert_eq!(edit.speedup_median, Some(3.5));
        let all = &s[2];
        assert_eq!(all.workload, ALL_WORKLOADS);
        assert_eq!(all.runs, 5);
        assert_eq!(all.speedup_median, Some(2.0));
        assert_eq!(all.mismatches, Some(1));
        // Sampling: no comparison.
        let s = summarize(&records, &[info("pl", "prompt-lookup")], false);
        assert_eq!(s[0].mismatches, None);
        // Lookahead and the baseline get no prediction.
        let s = summarize(&records, &[info("pl", "lookahead")], true);
        assert_eq!(s[0].predicted_speedup, None);
    }

    #[test]
    fn predictions_take_the_machines_phase_from_the_baseline() {
        // Calibration said 1 s per pass; in this run the baseline's one-token
        // passes took 0.05 s (ten passes, 0.5 s): the prediction is made at
        // this run's phase, and so matches a run whose passes cost what
        // calibration says relative to a one-token pass.
        let mut base = rec("baseline", "code", "p", 20.0, 1.0);
        base.passes_by_size = vec![10];
        base.seconds_by_size = vec![0.5];
        base.verify_seconds = 0.5;
        let pl = rec("pl", "code", "p", 20.0, 1.0);
        let with = summarize(
            &[base.clone(), pl.clone()],
            &[info("baseline", "baseline"), info("pl", "prompt-lookup")],
            true,
        );
        let p = with[1].predicted_tokens_per_second.unwrap();
        assert!((p - 20.0).abs() < 1e-9, "{p}");
        // Without a baseline, calibration's own scale.
        let without = summarize(&[pl], &[info("pl", "prompt-lookup")], true);
        let p = without[0].predicted_tokens_per_second.unwrap();
        assert!((p - 20.0 / 10.5).abs() < 1e-9, "{p}");
    }

    #[test]
    fn csv_quotes_fields() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
