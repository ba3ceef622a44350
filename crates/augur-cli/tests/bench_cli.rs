//! `augur bench` and `augur calibrate` end to end on SmolLM2-135M: every
//! output format, the documented JSON fields, and clean errors.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;

mod common;

use common::{augur, smol, stderr};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("augur-bench-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keys(v: &Value, what: &str, want: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for k in want {
        assert!(
            obj.contains_key(*k),
            "{what} lacks documented field {k}: {v}"
        );
    }
}

const SUMMARY_FIELDS: &[&str] = &[
    "strategy",
    "group",
    "sweep_value",
    "workload",
    "runs",
    "tokens_per_second",
    "speedup_median",
    "speedup_worst",
    "speedup_geomean",
    "predicted_speedup",
    "acceptance_rate",
    "acceptance_by_position",
    "tokens_per_target_pass",
    "accepted_per_target_pass",
    "draft_share",
    "verify_share",
    "other_share",
    "exactness",
    "compared",
    "mismatches",
];

const RUN_FIELDS: &[&str] = &[
    "strategy",
    "workload",
    "prompt",
    "repeat",
    "n_prompt",
    "n_generated",
    "stop",
    "exactness",
    "tokens_per_second",
    "ratio_to_baseline",
    "matches_baseline",
    "first_difference",
    "decode_seconds",
    "prefill_seconds",
    "target_passes",
    "draft_passes",
    "drafted",
    "accepted",
    "acceptance_rate",
    "tokens_per_target_pass",
    "accepted_per_target_pass",
    "largest_pass",
    "draft_seconds",
    "verify_seconds",
    "sample_seconds",
    "other_seconds",
    "drafted_by_position",
    "accepted_by_position",
    "prompt_tokens",
    "tokens",
];

#[test]
fn bench_writes_table_json_csv_and_svg() {
    let dir = temp_dir("formats");
    let (json, csv, svg) = (dir.join("r.json"), dir.join("r.csv"), dir.join("r.svg"));
    let model = smol();
    let o = augur(&[
        "bench",
        "-m",
        &model,
        "-md",
        &model,
        "--strategies",
        "baseline,prompt-lookup,speculative:draft-max=3",
        "--workload",
        "code",
        "--limit",
        "2",
        "-n",
        "8",
        "--warmup",
        "0",
        "-t",
        "2",
        "-c",
        "512",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--fail-on-mismatch",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The Markdown table: one row per strategy on the workload.
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("| strategy | workload | runs | tok/s | speedup |"),
        "{table}"
    );
    for s in ["baseline", "prompt-lookup", "speculative:draft-max=3"] {
        assert!(
            table.contains(&format!("| {s} | code | 2 |")),
            "{s} row missing:\n{table}"
        );
    }
    // SmolLM2 drafting for itself agrees with itself under greedy decoding.
    assert!(table.contains("✓ 2/2"), "{table}");
    assert!(!table.contains('✗'), "{table}");

    // JSON: the documented fields.
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    keys(
        &r,
        "report",
        &[
            "format",
            "augur_version",
            "machine",
            "target",
            "settings",
            "baseline",
            "sweep",
            "strategies",
            "workloads",
            "summaries",
            "mismatches",
            "runs",
        ],
    );
    assert_eq!(r["format"], 1);
    assert_eq!(r["baseline"], "baseline");
    keys(
        &r["settings"],
        "settings",
        &[
            "max_tokens",
            "repeat",
            "warmup",
            "greedy",
            "temperature",
            "top_k",
            "top_p",
            "min_p",
            "seed",
            "chat",
            "chat_template",
        ],
    );
    assert_eq!(r["settings"]["max_tokens"], 8);
    assert_eq!(r["settings"]["greedy"], true);
    let strategies = r["strategies"].as_array().unwrap();
    assert_eq!(strategies.len(), 3);
    for s in strategies {
        keys(
            s,
            "strategy",
            &[
                "label",
                "strategy",
                "group",
                "sweep_value",
                "draft",
                "max_exact_pass",
                "pass_seconds",
                "draft_step_seconds",
            ],
        );
    }
    assert_eq!(strategies[2]["strategy"], "speculative");
    assert!(strategies[2]["draft"].as_str().unwrap().ends_with(".gguf"));
    assert!(strategies[2]["pass_seconds"].as_array().unwrap().len() >= 2);
    assert_eq!(r["workloads"][0]["name"], "code");
    assert_eq!(r["workloads"][0]["prompts"], 2);
    let summaries = r["summaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 3, "one workload: no 'all' rows");
    for s in summaries {
        keys(s, "summary", SUMMARY_FIELDS);
        assert_eq!(s["mismatches"], 0, "{s}");
        assert_eq!(s["compared"], 2, "{s}");
        assert!(s["tokens_per_second"].as_f64().unwrap() > 0.0);
    }
    let spec = &summaries[2];
    assert_eq!(spec["strategy"], "speculative:draft-max=3");
    assert!(spec["acceptance_rate"].as_f64().unwrap() > 0.9, "{spec}");
    assert!(
        spec["tokens_per_target_pass"].as_f64().unwrap() > 1.5,
        "{spec}"
    );
    assert!(spec["predicted_speedup"].as_f64().unwrap() > 0.0, "{spec}");
    assert!(r["mismatches"].as_array().unwrap().is_empty());
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3 * 2);
    for run in runs {
        keys(run, "run", RUN_FIELDS);
        assert_eq!(run["n_generated"], 8);
        assert_eq!(run["matches_baseline"], true);
        assert_eq!(run["tokens"].as_array().unwrap().len(), 8);
        assert_eq!(
            run["prompt_tokens"].as_array().unwrap().len() as u64,
            run["n_prompt"].as_u64().unwrap()
        );
    }

    // CSV: a header and one row per run, as many fields as columns.
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 6, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[..3], ["strategy", "workload", "prompt"]);
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), header.len(), "{line}");
    }
    assert!(
        lines[1..]
            .iter()
            .filter(|l| l.starts_with("speculative:draft-max=3,code,"))
            .count()
            == 2
    );

    // SVG: a bar per non-baseline strategy.
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(
        plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"),
        "{plot}"
    );
    assert_eq!(
        plot.matches("<rect x=").count() - plot.matches("width=\"12\"").count(),
        2,
        "{plot}"
    );
    assert!(plot.contains("prompt-lookup") && plot.contains("speculative:draft-max=3"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_sweep_plots_lines_and_reads_prompt_files() {
    let dir = temp_dir("sweep");
    let svg = dir.join("s.svg");
    let prompts = dir.join("mine.jsonl");
    std::fs::write(
        &prompts,
        "{\"id\": \"copy\", \"prompt\": \"a b c d e f a b c d e f a b c\", \"chat\": false}\n\n",
    )
    .unwrap();
    let model = smol();
    let o = augur(&[
        "bench",
        "-m",
        &model,
        "--strategies",
        "baseline,prompt-lookup",
        "--sweep",
        "ngram-max=2,3",
        "--workload",
        "edit",
        "--prompts",
        prompts.to_str().unwrap(),
        "--limit",
        "1",
        "-n",
        "6",
        "--warmup",
        "0",
        "-t",
        "2",
        "-c",
        "1024",
        "--chat",
        "off",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    for w in ["edit", "mine", "all"] {
        for v in [2, 3] {
            let row = format!("| prompt-lookup:ngram-max={v} | {w} |");
            assert!(table.contains(&row), "{row}:\n{table}");
        }
    }
    assert!(table.contains("mine (1 prompts)"), "{table}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.contains("speedup against ngram-max"), "{plot}");
    // One line per workload (edit, mine, all), two points each.
    assert_eq!(plot.matches("<polyline").count(), 3, "{plot}");
    assert_eq!(plot.matches("<circle").count(), 6, "{plot}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_prompt_files_and_settings_are_clean_errors() {
    let dir = temp_dir("bad");
    let file = dir.join("mine.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"a\", \"prompt\": \"hi\"}\n{\"id\": \"b\"}\n",
    )
    .unwrap();
    let model = smol();
    let o = augur(&["bench", "-m", &model, "--prompts", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mine.jsonl:2: missing \"prompt\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    for (args, want) in [
        (
            vec!["--strategies", "baseline,warp"],
            "unknown strategy 'warp'",
        ),
        (
            vec!["--strategies", "lookahead", "--temp", "0.7"],
            "greedy only",
        ),
        (
            vec!["--sweep", "la-window=2,4", "--strategies", "prompt-lookup"],
            "none of the listed",
        ),
        (vec!["--workload", "poetry"], "unknown workload 'poetry'"),
        (vec!["--chat", "maybe"], "on, off or auto"),
    ] {
        let mut all = vec!["bench", "-m", model.as_str()];
        all.extend(args);
        let o = augur(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{all:?}: {err}");
        assert!(err.contains(want), "{all:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_prints_costs_exactness_and_predictions() {
    let model = smol();
    let common = [
        "calibrate",
        "-m",
        model.as_str(),
        "-t",
        "2",
        "--max-pass",
        "4",
        "--positions",
        "8",
    ];
    let mut args = common.to_vec();
    args.extend(["--alpha", "0.7", "--alpha", "0.9"]);
    let o = augur(&args);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("| k | seconds/pass | tokens/s | cost vs 1 pass |"),
        "{text}"
    );
    for k in 1..=4 {
        assert!(text.contains(&format!("\n| {k} | ")), "row {k}: {text}");
    }
    assert!(text.contains("Bit-exact pass size:"), "{text}");
    assert!(text.contains("| γ | α = 0.7 | α = 0.9 |"), "{text}");
    assert!(text.contains("| 8 | "), "{text}");
    assert!(text.contains("γ* (adaptive)"), "{text}");
    assert!(text.contains("No draft model"), "{text}");

    let mut args = common.to_vec();
    args.extend([
        "-md",
        model.as_str(),
        "--alpha",
        "0.8",
        "--gamma-max",
        "3",
        "--json",
    ]);
    let o = augur(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let passes = v["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 4);
    assert!((passes[0]["relative_cost"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    for p in passes {
        assert!(p["seconds"].as_f64().unwrap() > 0.0, "{p}");
    }
    let k = v["max_exact_pass"].as_u64().unwrap() as usize;
    assert!((1..=4).contains(&k));
    for (i, p) in passes.iter().enumerate() {
        assert_eq!(p["bit_identical"], i < k, "{p}");
    }
    // The draft is the target itself: one draft step costs about one pass.
    assert!(v["draft"]["seconds"].as_f64().unwrap() > 0.0);
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 1);
    assert_eq!(preds[0]["alpha"], 0.8);
    assert_eq!(preds[0]["speedup"].as_array().unwrap().len(), 3);
    assert!(preds[0]["gamma_star"].as_u64().unwrap() <= 3);
    assert!(preds[0]["gamma_star_bit_exact"].as_u64().unwrap() as usize <= k.saturating_sub(1));

    let o = augur(&["calibrate", "-m", &model, "--alpha", "1.5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--alpha must be in [0, 1]"),
        "{}",
        stderr(&o)
    );
}
