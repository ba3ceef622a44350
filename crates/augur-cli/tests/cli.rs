//! The `augur` binary end to end: run, --json, inspect, and bad input.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Output;

mod common;

use common::{augur, smol, stderr};

/// A failure must be a clean error: non-zero exit, an `error:` line, and no
/// panic or abort.
fn assert_clean_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert_eq!(
        o.status.code(),
        Some(1),
        "exit code (not a signal/abort): {err}"
    );
    assert!(err.contains("error:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in: {err}"
    );
}

#[test]
fn run_streams_text_and_reports_stats() {
    let o = augur(&[
        "run",
        "-m",
        &smol(),
        "-p",
        "The capital of France is",
        "-n",
        "12",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(text.trim().len() > 3, "no text: {text:?}");
    let err = stderr(&o);
    assert!(
        err.contains("tokens/s") && err.contains("target passes"),
        "{err}"
    );
}

/// Without `--strategy`, `augur run` uses auto. With no draft model on disk
/// (an empty models directory, the target given by path) it still runs,
/// model-free, and says so; its statistics count every step by drafter.
#[test]
fn run_defaults_to_auto_and_runs_model_free_without_a_draft() {
    let empty = std::env::temp_dir().join(format!("augur-no-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "run",
            "-m",
            &smol(),
            "-p",
            "one two three one two three one two",
            "-n",
            "16",
        ])
        .args(["--json"])
        .env("AUGUR_MODELS_DIR", &empty)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("auto: no draft model"), "{err}");
    assert_eq!(err.matches("no draft model").count(), 1, "said once: {err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["strategy"], "auto");
    assert!(v["draft"].is_null(), "{v}");
    let drafters = v["stats"]["drafters"].as_array().unwrap();
    let names: Vec<&str> = drafters
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| ["none", "prompt-lookup"].contains(n)),
        "{names:?}"
    );
    let tokens: u64 = drafters.iter().map(|d| d["tokens"].as_u64().unwrap()).sum();
    assert!(tokens >= v["stats"]["n_generated"].as_u64().unwrap(), "{v}");
    std::fs::remove_dir_all(&empty).unwrap();

    // The stats line names the strategy and the drafters' shares.
    let o = augur(&["run", "-m", &smol(), "-p", "a b a b a b a b", "-n", "12"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("strategy auto") && err.contains("by drafter: "),
        "{err}"
    );
}

/// On the default target, auto finds the default draft model on disk and
/// uses it (no model-free note).
#[test]
fn auto_uses_the_default_draft_when_it_is_on_disk() {
    let target = augur::models::path_of("qwen2.5-coder-1.5b").unwrap();
    let o = augur(&[
        "run",
        "-m",
        target.to_str().unwrap(),
        "-p",
        "def add(a, b):",
        "-n",
        "8",
        "--json",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("no draft model"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["strategy"], "auto");
    let draft = augur::models::path_of("qwen2.5-coder-0.5b").unwrap();
    assert_eq!(v["draft"].as_str(), draft.to_str(), "{v}");
}

#[test]
fn json_output_parses_and_counts_match() {
    let o = augur(&[
        "run",
        "-m",
        &smol(),
        "-p",
        "Count: one, two, three,",
        "-n",
        "10",
        "--json",
        "--strategy",
        "baseline",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tokens = v["tokens"].as_array().unwrap();
    let stats = &v["stats"];
    assert_eq!(tokens.len() as u64, stats["n_generated"].as_u64().unwrap());
    assert!(tokens.len() <= 10 && !tokens.is_empty());
    assert_eq!(v["strategy"], "baseline");
    assert_eq!(v["exactness"], "bit-identical");
    for key in [
        "tokens_per_second",
        "decode_seconds",
        "target_passes",
        "draft_passes",
        "drafted",
        "accepted",
        "acceptance_rate",
    ] {
        assert!(stats.get(key).is_some(), "missing stats.{key}");
    }
    assert!(v["text"].as_str().unwrap().len() > 1);
}

#[test]
fn chat_template_is_applied() {
    let o = augur(&[
        "run",
        "-m",
        &smol(),
        "--chat",
        "-p",
        "Say hi.",
        "-n",
        "8",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The template adds the role markup: far more prompt tokens than the text.
    assert!(v["stats"]["n_prompt"].as_u64().unwrap() > 8, "{v}");
}

#[test]
fn inspect_describes_every_catalog_model() {
    for (name, arch) in [
        ("qwen2.5-coder-1.5b", "qwen2"),
        ("qwen2.5-coder-0.5b", "qwen2"),
        ("smollm2-135m", "llama"),
        ("gemma3-270m", "gemma3"),
    ] {
        let o = augur(&["inspect", name, "--json"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["architecture"], arch, "{name}");
        assert!(v["vocab_size"].as_u64().unwrap() > 1000, "{name}");
        let text = augur(&["inspect", name]);
        assert!(text.status.success());
        assert!(
            String::from_utf8_lossy(&text.stdout).contains(arch),
            "{name}"
        );
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("augur-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_input_gets_a_clear_error() {
    let m = smol();
    let missing = augur(&["run", "-m", "/nonexistent/model.gguf", "-p", "x"]);
    assert_clean_error(&missing, "model.gguf");

    let junk = temp_file("junk.gguf", b"definitely not a gguf file");
    let o = augur(&["run", "-m", junk.to_str().unwrap(), "-p", "x"]);
    assert_clean_error(&o, "gguf");

    let bytes = std::fs::read(&m).unwrap();
    let truncated = temp_file("truncated.gguf", &bytes[..bytes.len() / 3]);
    let o = augur(&["run", "-m", truncated.to_str().unwrap(), "-p", "x"]);
    assert_clean_error(&o, "truncated");
    let o = augur(&["inspect", junk.to_str().unwrap()]);
    assert_clean_error(&o, "gguf");

    let long_prompt = "word ".repeat(600);
    let o = augur(&["run", "-m", &m, "-c", "256", "-p", &long_prompt]);
    assert_clean_error(&o, "context");

    assert_clean_error(&augur(&["run", "-m", &m, "-p", "x", "-n", "0"]), "-n");
    assert_clean_error(
        &augur(&["run", "-m", &m, "-p", "x", "--temp", "-1"]),
        "temperature",
    );
    assert_clean_error(
        &augur(&["run", "-m", &m, "-p", "x", "--top-p", "0"]),
        "top-p",
    );
    assert_clean_error(
        &augur(&["run", "-m", &m, "-p", "x", "--top-p", "1.5"]),
        "top-p",
    );
    assert_clean_error(
        &augur(&["run", "-m", &m, "-p", "x", "--strategy", "nope"]),
        "unknown strategy",
    );
    assert_clean_error(&augur(&["run", "-m", &m]), "prompt");
}

#[test]
fn mismatched_draft_vocabulary_is_refused() {
    let o = augur(&[
        "run",
        "-m",
        "qwen2.5-coder-1.5b",
        "-md",
        "smollm2-135m",
        "--strategy",
        "speculative",
        "-p",
        "x",
    ]);
    assert_clean_error(&o, "vocabulary size");
}
