//! augur-bench: the harness behind `augur bench`.
//!
//! It runs several decoding strategies on the same models and prompts,
//! interleaved prompt by prompt (baseline, A, B, baseline, A, B, …) so that
//! drift of the machine's speed hits all of them alike, and reports per
//! strategy and workload: throughput, the speedup over the baseline paired by
//! prompt (median and worst), acceptance, tokens per target pass, the time
//! split, the exactness guarantee each run had, and — under greedy decoding —
//! whether every strategy produced exactly the baseline's tokens. Any prompt
//! where it did not is flagged with the first differing token.
//!
//! - [`workload`]: the built-in prompt sets (code, chat, edit, summarize),
//!   HumanEval, and JSONL prompt files.
//! - [`spec`]: `--strategies` entries with settings, and `--sweep`.
//! - [`runner`]: [`run`] over [`Contender`]s (one [`augur::Engine`] each).
//! - [`report`]: [`Report`] with Markdown, CSV and JSON output.
//! - [`plot`]: SVG bar and sweep plots.
//! - [`predict`]: the speedup the paper's formula predicts from the run's
//!   own measurements.
//! - [`stats`]: medians, paired ratios, worst ratios, geometric means.
//!
//! # The JSON report (`--json FILE`, format 1)
//!
//! One object ([`Report`]):
//! - `format` (1), `augur_version`, `machine` (CPU model and cores),
//!   `target` (the target's file), `baseline` (the baseline's label),
//!   `sweep` (the swept setting or null).
//! - `settings`: `max_tokens`, `repeat`, `warmup`, `greedy`, `temperature`,
//!   `top_k`, `top_p`, `min_p`, `seed` (repeat r used seed + r), `chat`
//!   (auto/on/off), `chat_template` (whether it was applied).
//! - `strategies[]`: `label`, `strategy` (the strategy's name), `group`
//!   (label without the swept setting), `sweep_value`, `draft` (draft file),
//!   `max_exact_pass` and `pass_seconds` (calibration: the bit-exact pass size
//!   and the seconds of a target pass over k tokens at index k − 1),
//!   `draft_step_seconds` (calibration: one draft model step).
//! - `workloads[]`: `name`, `prompts`.
//! - `summaries[]` ([`Summary`]), one per strategy and workload, then one with
//!   `workload: "all"` per strategy when there are several workloads:
//!   `strategy`, `group`, `sweep_value`, `workload`, `runs`,
//!   `tokens_per_second` (median), `speedup_median`, `speedup_worst`,
//!   `speedup_geomean` (of the paired ratios to the baseline),
//!   `predicted_speedup` (the paper's formula with calibrated pass costs and
//!   this row's acceptance per position; null for the baseline, lookahead, or
//!   without calibration), `acceptance_rate`, `acceptance_by_position`
//!   (conditional rate at each draft position), `tokens_per_target_pass`,
//!   `accepted_per_target_pass`, `draft_share`, `verify_share`,
//!   `other_share` (of decoding time), `exactness` (`bit-identical`,
//!   `kernel-level` or `mixed`), `compared` and `mismatches` (greedy only:
//!   runs compared with the baseline and runs whose tokens differ; null when
//!   sampling).
//! - `mismatches[]` ([`Mismatch`]): `strategy`, `workload`, `prompt`,
//!   `repeat`, `first_difference` (index into the generated tokens),
//!   `baseline_token`, `strategy_token` (null where that output ended),
//!   `baseline_piece`, `strategy_piece` (their text), `exactness` (the
//!   guarantee the differing run claimed).
//! - `runs[]` ([`RunRecord`]), one per timed run: `strategy`, `workload`,
//!   `prompt`, `repeat`, `n_prompt`, `n_generated`, `stop`, `exactness`,
//!   `tokens_per_second`, `ratio_to_baseline`, `matches_baseline`,
//!   `first_difference`, `decode_seconds`, `prefill_seconds`,
//!   `target_passes`, `draft_passes`, `drafted`, `accepted`,
//!   `acceptance_rate`, `tokens_per_target_pass`, `accepted_per_target_pass`,
//!   `largest_pass`, `draft_seconds`, `verify_seconds`, `sample_seconds`,
//!   `other_seconds`, `drafted_by_position`, `accepted_by_position`.
//!
//! The CSV (`--csv FILE`) has one row per timed run with the scalar fields of
//! `runs[]` ([`report::CSV_HEADER`]).

pub mod error;
pub mod plot;
pub mod predict;
pub mod report;
pub mod runner;
pub mod spec;
pub mod stats;
pub mod workload;

pub use error::BenchError;
pub use report::{ContenderInfo, Report, Summary};
pub use runner::{run, BenchSettings, ChatMode, Contender, Event, Mismatch, RunRecord};
pub use spec::{parse_strategies, StrategySpec, Sweep};
pub use workload::{Prompt, Workload, WorkloadKind};

/// The version of the JSON report format.
pub const REPORT_FORMAT: u32 = 1;
