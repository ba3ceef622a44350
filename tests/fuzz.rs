//! The GGUF fuzzer, bounded: a few thousand mutated files (fixed seeds)
//! against the validator, and every file it accepts loaded and run in a
//! child process, which must never die by a signal. Files that once
//! crashed live in `tests/fuzz-corpus` and must stay refused.
//!
//! The long mode: `cargo run --release --example fuzz -- --minutes N`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[path = "fuzz/driver.rs"]
mod driver;

/// Set in the child: the file to probe.
const CHILD_ENV: &str = "AUGUR_FUZZ_CHILD";

/// The child's entry point (this test binary, re-run with `CHILD_ENV` set):
/// probes the file and exits 0 or 1. Run without it, it checks that the
/// micro seeds themselves load and run.
#[test]
fn fuzz_child() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        match augur::preflight::probe(Path::new(&path)) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    let dir = work_dir("seeds");
    for (name, seed) in driver::seeds() {
        let path = dir.join(format!("{name}.gguf"));
        std::fs::write(&path, seed.write().bytes).unwrap();
        augur::preflight::probe(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn child(path: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "fuzz_child",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD_ENV, path);
    c
}

fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("augur-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn mutated_files_never_crash() {
    let seeds = driver::seeds();
    let crash_dir = work_dir("crashes");
    let stats = driver::run(
        &driver::Run {
            seed: 0x5eed,
            max_cases: 3000,
            budget: Duration::from_secs(150),
            max_loads: 120,
            child: &child,
            crash_dir: &crash_dir,
            work_dir: &work_dir("work"),
        },
        &seeds,
    );
    eprintln!("{stats:?}");
    assert!(
        stats.crashes.is_empty(),
        "files that crash (kept in {}): {:?}",
        crash_dir.display(),
        stats.crashes
    );
    // The loop must have exercised both sides, or it tested nothing (a
    // machine too busy for the 3,000 files in the time budget still tries
    // hundreds).
    assert!(stats.cases >= 300, "{stats:?}");
    assert!(stats.refused > 0 && stats.loaded > 0, "{stats:?}");
}

#[test]
fn corpus_files_are_refused_and_do_not_crash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
            continue;
        }
        n += 1;
        assert!(
            augur::gguf::validate(&path).is_err(),
            "{} is accepted by the validator",
            path.display()
        );
        let outcome = augur::preflight::run_probe(child(&path), Duration::from_secs(60)).unwrap();
        assert!(
            !matches!(outcome, augur::preflight::Outcome::Crashed(_)),
            "{}: {outcome:?}",
            path.display()
        );
    }
    assert!(n > 0, "no regression files in {}", dir.display());
}
