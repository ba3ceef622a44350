//! Hostile input to the `augur` binary: impossible hyperparameters, paths
//! that are not files, out-of-range parameters, a closed stdout, signals.
//! Every case must end with a clean status (one `error:` line and exit 1, or
//! exit 0 where documented), never a panic, an abort or a signal.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Output;

mod common;

use common::{augur, smol, stderr};

fn assert_clean_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "exit status {:?}: {err}",
        o.status
    );
    assert_eq!(
        err.matches("error:").count(),
        1,
        "one error line expected: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in: {err}"
    );
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("augur-hardening-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The SmolLM2 file with the u32 value of metadata `key` replaced.
fn patched_smol(name: &str, key: &str, value: u32) -> PathBuf {
    let mut bytes = std::fs::read(smol()).unwrap();
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{key} not in the test model"))
        + needle.len();
    assert_eq!(bytes[at..at + 4], 4u32.to_le_bytes(), "{key} is not a u32");
    bytes[at + 4..at + 8].copy_from_slice(&value.to_le_bytes());
    let p = temp_dir().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn inspect_gives_runs_verdict_on_impossible_hyperparameters() {
    let p = patched_smol("layers0.gguf", "llama.block_count", 0);
    let path = p.to_str().unwrap();
    let o = augur(&["inspect", path]);
    // The description is still printed, then the verdict.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Architecture:   llama"), "{out}");
    assert!(out.contains("Loadable:       no"), "{out}");
    assert_clean_error(&o, "block_count");
    let json = augur(&["inspect", path, "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["loadable"], false);
    assert!(
        v["problem"].as_str().unwrap().contains("block_count"),
        "{v}"
    );
    // run refuses it with the same reason.
    assert_clean_error(&augur(&["run", "-m", path, "-p", "x"]), "block_count");

    let ok = augur(&["inspect", &smol(), "--json"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["loadable"], true);
    assert_eq!(v["problem"], serde_json::Value::Null);
}

#[test]
fn inspect_fails_on_a_truncated_file_with_a_complete_header() {
    let bytes = std::fs::read(smol()).unwrap();
    let p = temp_dir().join("cut.gguf");
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    let o = augur(&["inspect", p.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Loadable:       no"));
    assert_clean_error(&o, "truncated");
}

#[test]
fn paths_that_are_not_regular_files_are_named() {
    let dir = temp_dir().join("paths");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.gguf");
    let _ = std::fs::remove_file(&fifo);
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let missing = dir.join("missing.gguf");
    let cases = [
        (missing.to_str().unwrap(), "does not exist"),
        (dir.to_str().unwrap(), "is a directory"),
        (fifo.to_str().unwrap(), "is a FIFO"),
        ("/dev/zero", "is a character device"),
    ];
    for (path, expected) in cases {
        // A FIFO that were opened would block the command forever.
        assert_clean_error(&augur(&["run", "-m", path, "-p", "x"]), expected);
        assert_clean_error(&augur(&["inspect", path]), expected);
        assert_clean_error(
            &augur(&[
                "run",
                "-m",
                &smol(),
                "-md",
                path,
                "--strategy",
                "speculative",
                "-p",
                "x",
            ]),
            expected,
        );
    }
}

#[test]
fn parameter_limits_are_the_c_abis() {
    let m = smol();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "-m", &m, "-p", "x", "-n", "2"];
        args.extend_from_slice(extra);
        augur(&args)
    };
    // libgomp ended the process at 1025 threads, llama_decode threw an
    // uncatchable exception at 100000.
    for t in ["1024", "1025", "100000"] {
        assert_clean_error(&run(&["-t", t]), "threads must be at most");
    }
    assert_clean_error(
        &run(&["--strategy", "speculative", "-md", &m, "-td", "5000"]),
        "draft threads must be at most",
    );
    assert_clean_error(
        &run(&["--strategy", "prompt-lookup", "--draft-max", "257"]),
        "draft length must be at most 256",
    );
    assert_clean_error(
        &run(&["--strategy", "speculative", "-md", &m, "--draft-max", "257"]),
        "draft length must be at most 256",
    );
    // SmolLM2 was trained with 8192 positions.
    assert_clean_error(&run(&["-c", "8193"]), "between 8 and 8192");
    assert_clean_error(&run(&["-c", "7"]), "at least 8 tokens");
    assert_clean_error(
        &augur(&["calibrate", "-m", &m, "-t", "100000"]),
        "threads must be at most",
    );
}

#[test]
fn the_context_holds_what_was_asked_for() {
    let m = smol();
    // llama.cpp rounds its cache up to 256 cells; the session must not.
    let o = augur(&[
        "run",
        "-m",
        &m,
        "-c",
        "64",
        "-p",
        "Count: one, two, three,",
        "-n",
        "500",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let used =
        v["stats"]["n_prompt"].as_u64().unwrap() + v["stats"]["n_generated"].as_u64().unwrap();
    // The last token is sampled from the logits of position 63 and never
    // stored: 64 cached tokens plus one.
    assert!(used <= 65, "{used} tokens from a 64-token context: {v}");
    assert!(used >= 60, "stopped early ({used} tokens): {v}");
    assert_eq!(v["stop"], "context-full", "{v}");

    // A prompt longer than the context: the count is the prompt's.
    let prompt = "one two three four five six seven eight nine ten ".repeat(4);
    let o = augur(&["run", "-m", &m, "-c", "8", "-p", &prompt, "--json"]);
    let n_prompt = {
        let ok = augur(&["run", "-m", &m, "-p", &prompt, "-n", "1", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
        v["stats"]["n_prompt"].as_u64().unwrap()
    };
    assert_clean_error(
        &o,
        &format!("the prompt has {n_prompt} tokens but the context holds only 8"),
    );
}

/// Spawns `augur` with stdout and stderr piped.
fn spawn(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_generation_quietly() {
    use std::io::Read;
    let m = smol();
    for extra in [
        &[][..],
        &["--strategy", "speculative", "-md", &m, "--pipeline"],
    ] {
        let mut args = vec![
            "run",
            "-m",
            &m,
            "--chat",
            "-p",
            "Write a long story about a dragon.",
        ];
        args.extend_from_slice(&["-n", "200"]);
        args.extend_from_slice(extra);
        let mut child = spawn(&args);
        // What `| head -c 20` does: read a little, then close the pipe.
        let mut first = [0u8; 20];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {:?} {err}", o.status);
        assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
        assert!(err.contains("stopped: Cancelled"), "{err}");
    }
}

#[test]
fn ctrl_c_during_the_load_exits_cleanly() {
    let child = spawn(&["run", "-m", &smol(), "-p", "x", "-n", "100"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{:?}: {err}", o.status);
    assert!(err.contains("augur: interrupted"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_unwritable_calibration_cache_is_one_warning() {
    // A cache directory below a regular file cannot be created, even by root.
    let blocker = temp_dir().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let cache = blocker.join("cache");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "run",
            "-m",
            &smol(),
            "--strategy",
            "prompt-lookup",
            "-p",
            "a b a b",
            "-n",
            "4",
        ])
        .env("AUGUR_CACHE_DIR", &cache)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("cannot write the calibration cache"), "{err}");
}

#[test]
fn a_new_file_is_tried_in_a_child_once() {
    let cache = temp_dir().join("preflight-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let copy = temp_dir().join("copy.gguf");
    std::fs::copy(smol(), &copy).unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["run", "-m", copy.to_str().unwrap(), "-p", "x", "-n", "1"])
            .env("AUGUR_CACHE_DIR", &cache)
            .output()
            .unwrap()
    };
    let entries = || std::fs::read_dir(cache.join("preflight")).map_or(0, |d| d.count());
    assert!(run().status.success());
    assert_eq!(entries(), 1, "the passing verdict is cached");
    assert!(run().status.success());
    assert_eq!(entries(), 1);
    // A changed file (size or modification time) is tried again.
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.extend_from_slice(&[0; 32]);
    std::fs::write(&copy, bytes).unwrap();
    assert!(run().status.success());
    assert_eq!(entries(), 2);
    // The hidden command the child runs reports like any command.
    let bad = patched_smol("probe-bad.gguf", "llama.block_count", 0);
    assert_clean_error(&augur(&["__probe", bad.to_str().unwrap()]), "block_count");
}
