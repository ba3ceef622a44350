//! The GGUF fuzzer's long mode: mutated model files against the validator,
//! and every file it accepts loaded and run in a child process (this program
//! again, with `--child FILE`), for as long as asked.
//!
//! ```sh
//! cargo run --release --example fuzz -- --minutes 30 [--seed N] [--out DIR]
//! ```
//!
//! Files that crash a child are copied to `DIR` (default
//! `fuzz-crashes/`); each one belongs in `tests/fuzz-corpus/` once the
//! validator refuses it. Prints a summary every minute and at the end; exits
//! 1 if anything crashed.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

#[path = "../tests/fuzz/driver.rs"]
mod driver;

fn child(path: &Path) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("fuzz"));
    let mut c = Command::new(exe);
    c.arg("--child").arg(path);
    c
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(path) = value("--child") {
        return match augur::preflight::probe(Path::new(&path)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let minutes: f64 = value("--minutes")
        .and_then(|m| m.parse().ok())
        .unwrap_or(10.0);
    let mut seed: u64 = value("--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let out = PathBuf::from(value("--out").unwrap_or_else(|| "fuzz-crashes".into()));
    let work = std::env::temp_dir().join(format!("augur-fuzz-{}", std::process::id()));
    let seeds = driver::seeds();
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let start = Instant::now();
    let mut total = driver::Stats::default();
    // One minute at a time, for progress lines.
    while Instant::now() < end {
        let budget = (end - Instant::now()).min(Duration::from_secs(60));
        let s = driver::run(
            &driver::Run {
                seed,
                max_cases: u64::MAX,
                budget,
                max_loads: u64::MAX,
                child: &child,
                crash_dir: &out,
                work_dir: &work,
            },
            &seeds,
        );
        seed += s.cases;
        total.cases += s.cases;
        total.refused += s.refused;
        total.loaded += s.loaded;
        total.llama_refused += s.llama_refused;
        total.crashes.extend(s.crashes);
        eprintln!(
            "{:.1} min: {} files, {} refused by the validator, {} loaded, {} refused by llama.cpp, {} crashes (next seed {seed})",
            start.elapsed().as_secs_f64() / 60.0,
            total.cases,
            total.refused,
            total.loaded,
            total.llama_refused,
            total.crashes.len()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    if total.crashes.is_empty() {
        ExitCode::SUCCESS
    } else {
        for (path, how) in &total.crashes {
            eprintln!("crash: {} ({how})", path.display());
        }
        ExitCode::FAILURE
    }
}
