//! `augur calibrate`: this machine's pass costs, the bit-exact pass size,
//! and the speedup speculative decoding can expect here.

use std::path::PathBuf;

use anyhow::Context;
use augur::calibration::{self, Calibration};
use augur::core::cost::{choose_draft_len, speedup};
use augur::core::CostModel;
use augur::ExactMode;
use serde::Serialize;

use crate::run_cmd::ModelArgs;

/// Arguments of `augur calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Draft model whose step cost to measure [default with the default
    /// target: qwen2.5-coder-0.5b; otherwise none: model-free drafting, cost 0].
    #[arg(long = "model-draft", visible_alias = "md", value_name = "DRAFT")]
    pub model_draft: Option<String>,
    /// Threads for the draft (0 = same as the target).
    #[arg(long = "threads-draft", visible_alias = "td", default_value_t = 0)]
    pub threads_draft: usize,
    /// Draft layers to offload to the GPU.
    #[arg(
        long = "n-gpu-layers-draft",
        visible_alias = "ngld",
        default_value_t = 0
    )]
    pub n_gpu_layers_draft: u32,
    /// Largest target pass to measure, in tokens.
    #[arg(long = "max-pass", default_value_t = 16)]
    pub max_pass: usize,
    /// Positions compared per pass size (more: a surer bit-exactness verdict).
    #[arg(long, default_value_t = 48)]
    pub positions: usize,
    /// Acceptance rates to predict the speedup for (repeatable or comma-separated)
    /// [default: 0.5,0.7,0.9].
    #[arg(long = "alpha", value_delimiter = ',')]
    pub alpha: Vec<f64>,
    /// Largest draft length γ in the prediction table.
    #[arg(long = "gamma-max", default_value_t = 8)]
    pub gamma_max: usize,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct PassRow {
    k: usize,
    seconds: f64,
    tokens_per_second: f64,
    relative_cost: f64,
    /// The cost relative to a one-token pass after the long context
    /// (0 where not timed).
    relative_cost_long: f64,
    max_logit_diff: f32,
    bit_identical: bool,
}

#[derive(Serialize)]
struct DraftCost {
    file: String,
    seconds: f64,
    tokens_per_second: f64,
    relative_cost: f64,
}

#[derive(Serialize)]
struct Prediction {
    alpha: f64,
    /// Speedup at γ = 1..=gamma_max.
    speedup: Vec<f64>,
    gamma_star: usize,
    gamma_star_bit_exact: usize,
}

#[derive(Serialize)]
struct Output {
    target: String,
    machine: String,
    threads: usize,
    positions: usize,
    /// The two contexts passes were timed after.
    timed_after: [usize; 2],
    passes: Vec<PassRow>,
    max_exact_pass: usize,
    auto_mode_bit_exact: bool,
    draft: Option<DraftCost>,
    predictions: Vec<Prediction>,
}

fn draft_path(args: &CalibrateArgs, target: &std::path::Path) -> anyhow::Result<Option<PathBuf>> {
    if let Some(spec) = &args.model_draft {
        return Ok(Some(augur::models::resolve(spec)?));
    }
    let default_target = augur::models::default_target();
    if target.file_name().and_then(|n| n.to_str()) == Some(default_target.file_name) {
        // The default draft is optional here: without it, drafting is model-free.
        return Ok(augur::models::resolve(augur::models::default_draft().name).ok());
    }
    Ok(None)
}

fn predictions(
    cal: &Calibration,
    draft_seconds: f64,
    alphas: &[f64],
    gamma_max: usize,
) -> (CostModel, Vec<Prediction>) {
    let throughput: Vec<(usize, f64)> = (1..=cal.pass_seconds.len())
        .filter_map(|k| cal.throughput(k).map(|t| (k, t)))
        .collect();
    // A zero draft cost would read as unmeasured and be replaced by a guess.
    let costs = CostModel::from_throughput(&throughput, draft_seconds.max(1e-12));
    let exact_cap = cal.max_exact_pass.saturating_sub(1).min(gamma_max);
    let preds = alphas
        .iter()
        .map(|&a| {
            let alpha = vec![a; gamma_max];
            Prediction {
                alpha: a,
                speedup: (1..=gamma_max)
                    .map(|g| speedup(&alpha, &costs, g).unwrap_or(0.0))
                    .collect(),
                gamma_star: choose_draft_len(&alpha, &costs, gamma_max),
                gamma_star_bit_exact: choose_draft_len(&alpha, &costs, exact_cap),
            }
        })
        .collect();
    (costs, preds)
}

/// Runs `augur calibrate`.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    if args.max_pass == 0 || args.positions == 0 || args.gamma_max == 0 {
        anyhow::bail!("--max-pass, --positions and --gamma-max must be at least 1");
    }
    let alphas = if args.alpha.is_empty() {
        vec![0.5, 0.7, 0.9]
    } else {
        args.alpha.clone()
    };
    if let Some(a) = alphas.iter().find(|a| !(0.0..=1.0).contains(*a)) {
        anyhow::bail!("--alpha must be in [0, 1], got {a}");
    }
    crate::init_logs(args.model.verbose);
    let target_path = args.model.target_path()?;
    let draft_path = draft_path(args, &target_path)?;
    if let Some(d) = &draft_path {
        augur::gguf::check_draft_compatible(&target_path, d)?;
    }
    let target = augur::load_model(&target_path, args.model.n_gpu_layers)?;
    if !args.json {
        eprintln!(
            "augur calibrate: measuring passes of 1..={} tokens over {} positions after contexts of {:?} tokens…",
            args.max_pass, args.positions, calibration::EXACTNESS_CONTEXTS
        );
    }
    // Alone on the machine as far as augur goes: another process measuring
    // at the same time would slow every pass this one times.
    let _machine_lock = calibration::lock_calibrations(&target_path.display().to_string());
    let cal = calibration::measure(&target, args.model.threads, args.max_pass, args.positions)
        .context("measuring the target")?;
    // Refresh the cache the engine reads, so later runs use this measurement.
    calibration::store(&target, &cal);
    let t1 = cal.pass_seconds.first().copied().unwrap_or(0.0);
    let long_t1 = cal.long_pass_seconds.first().copied().unwrap_or(0.0);
    let draft = match &draft_path {
        Some(path) => {
            let model = augur::load_model(path, args.n_gpu_layers_draft)?;
            let threads = if args.threads_draft == 0 {
                args.model.threads
            } else {
                args.threads_draft
            };
            let d = calibration::measure(&model, threads, 2, args.positions)
                .context("measuring the draft")?;
            calibration::store(&model, &d);
            // A draft step as drafting makes them (its catch-up pass included).
            let s = d.draft_step_seconds();
            Some(DraftCost {
                file: path.display().to_string(),
                seconds: s,
                tokens_per_second: if s > 0.0 { 1.0 / s } else { 0.0 },
                relative_cost: if t1 > 0.0 { s / t1 } else { 0.0 },
            })
        }
        None => None,
    };
    let (_, preds) = predictions(
        &cal,
        draft.as_ref().map_or(0.0, |d| d.seconds),
        &alphas,
        args.gamma_max,
    );
    let passes: Vec<PassRow> = cal
        .pass_seconds
        .iter()
        .enumerate()
        .map(|(i, &s)| PassRow {
            k: i + 1,
            seconds: s,
            tokens_per_second: cal.throughput(i + 1).unwrap_or(0.0),
            relative_cost: if t1 > 0.0 { s / t1 } else { 0.0 },
            relative_cost_long: match cal.long_pass_seconds.get(i) {
                Some(&l) if long_t1 > 0.0 => l / long_t1,
                _ => 0.0,
            },
            max_logit_diff: cal.max_logit_diff.get(i).copied().unwrap_or(0.0),
            bit_identical: i < cal.max_exact_pass,
        })
        .collect();
    let out = Output {
        target: target_path.display().to_string(),
        machine: cal.machine.clone(),
        threads: cal.threads,
        positions: cal.positions,
        timed_after: [cal.timed_after, cal.long_timed_after],
        passes,
        max_exact_pass: cal.max_exact_pass,
        auto_mode_bit_exact: ExactMode::Auto.resolve(cal.max_exact_pass),
        draft,
        predictions: preds,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&out, args.gamma_max));
    }
    Ok(())
}

fn render(out: &Output, gamma_max: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "## augur calibrate\n");
    let _ = writeln!(s, "- target: `{}`", out.target);
    let _ = writeln!(s, "- machine: {}, {} threads", out.machine, out.threads);
    let _ = writeln!(s, "- positions compared per pass size: {}\n", out.positions);
    let _ = writeln!(s, "### Target pass cost\n");
    let [short, long] = out.timed_after;
    let _ = writeln!(
        s,
        "Timed after {short} tokens of context; the last cost column after {long} (attention \
         grows with the context, more for passes of several tokens).\n"
    );
    let _ = writeln!(
        s,
        "| k | seconds/pass | tokens/s | cost vs 1 pass | after {long} | max logit diff | bit-identical |"
    );
    let _ = writeln!(s, "|--:|--:|--:|--:|--:|--:|:-:|");
    for r in &out.passes {
        let _ = writeln!(
            s,
            "| {} | {:.5} | {:.1} | {:.2} | {:.2} | {} | {} |",
            r.k,
            r.seconds,
            r.tokens_per_second,
            r.relative_cost,
            r.relative_cost_long,
            if r.max_logit_diff == 0.0 {
                "0".to_string()
            } else {
                format!("{:.3e}", r.max_logit_diff)
            },
            if r.bit_identical { "✓" } else { "✗" }
        );
    }
    let _ = writeln!(
        s,
        "\nBit-exact pass size: {} (every pass of 1..={} tokens gave logits bit-identical to one-token passes). \
         Default exactness (auto) here: {}.\n",
        out.max_exact_pass,
        out.max_exact_pass,
        if out.auto_mode_bit_exact {
            "bit-identical"
        } else {
            "kernel-level"
        }
    );
    match &out.draft {
        Some(d) => {
            let _ = writeln!(
                s,
                "Draft step (`{}`): {:.5} s ({:.1} tokens/s), c = {:.3} of a one-token target pass.\n",
                d.file, d.seconds, d.tokens_per_second, d.relative_cost
            );
        }
        None => {
            let _ = writeln!(
                s,
                "No draft model (-md FILE): predictions assume model-free drafting (prompt lookup), cost 0.\n"
            );
        }
    }
    let _ = writeln!(
        s,
        "### Predicted speedup\n\nE(γ)·T(1) / (γ·T_draft + T(γ+1)) with E(γ) = (1 − α^(γ+1)) / (1 − α); \
         pass sizes above the measured ones are extrapolated.\n"
    );
    let mut header = "| γ |".to_string();
    let mut rule = "|--:|".to_string();
    for p in &out.predictions {
        let _ = write!(header, " α = {} |", p.alpha);
        rule.push_str("--:|");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    for g in 1..=gamma_max {
        let mut row = format!("| {g} |");
        for p in &out.predictions {
            let v = p.speedup.get(g - 1).copied().unwrap_or(0.0);
            let mark = if g == p.gamma_star { " ★" } else { "" };
            let _ = write!(row, " {v:.2}×{mark} |");
        }
        let _ = writeln!(s, "{row}");
    }
    let mut star = "| γ* (adaptive) |".to_string();
    let mut star_exact = format!(
        "| γ* (bit-exact, γ ≤ {}) |",
        out.max_exact_pass.saturating_sub(1)
    );
    for p in &out.predictions {
        let _ = write!(star, " {} |", p.gamma_star);
        let _ = write!(star_exact, " {} |", p.gamma_star_bit_exact);
    }
    let _ = writeln!(s, "{star}\n{star_exact}");
    let _ = writeln!(
        s,
        "\nγ* = 0 means plain decoding pays best: drafting would not beat one token per pass on this machine."
    );
    s
}
