//! The GGUF fuzzing loop shared by `tests/fuzz.rs` (bounded, in CI) and
//! `examples/fuzz.rs` (long runs): mutate a seed model, validate the result
//! in this process, and load every file the validator accepts in a child
//! process, which must end with a status, never by a signal.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use augur::gguf::fuzz::{self, Doc, Rng};
use augur::preflight::{run_probe, Outcome};

/// Seeds: micro models (see `augur_gguf::fuzz::micro_model`) carrying the
/// tokenizers of the catalog's BPE (SmolLM2) and SPM (Gemma 3) models, and
/// one with only SmolLM2's first 300 tokens and no merges (35 KB: the
/// fastest cases).
pub fn seeds() -> Vec<(&'static str, Doc)> {
    let tokenizer = |name: &str| {
        let path = augur::models::path_of(name).unwrap_or_else(|e| panic!("{e}"));
        let header = read_header_bytes(&path);
        fuzz::parse(&header).unwrap_or_else(|| panic!("{name}: cannot parse"))
    };
    let smol = tokenizer("smollm2-135m");
    vec![
        ("smollm2", fuzz::micro_model(&smol)),
        ("gemma3", fuzz::micro_model(&tokenizer("gemma3-270m"))),
        ("tiny", fuzz::micro_model(&tiny_tokenizer(&smol, 300))),
    ]
}

/// `doc`'s tokenizer cut to its first `n` tokens, without merges or a chat
/// template.
pub fn tiny_tokenizer(doc: &Doc, n: usize) -> Doc {
    let mut doc = doc.clone();
    for (key, value) in doc.kvs.iter_mut() {
        if let fuzz::Value::Array(_, items) = value {
            match key.as_slice() {
                b"tokenizer.ggml.tokens" | b"tokenizer.ggml.token_type" => items.truncate(n),
                b"tokenizer.ggml.merges" => items.clear(),
                _ => {}
            }
        }
    }
    doc.remove("tokenizer.chat_template");
    doc
}

/// The file's header (metadata and tensor infos) without the tensor data.
fn read_header_bytes(path: &Path) -> Vec<u8> {
    let h = augur::gguf::read_header(path).unwrap();
    let mut bytes = vec![0u8; h.data_offset as usize];
    use std::io::Read;
    std::fs::File::open(path)
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Files tried.
    pub cases: u64,
    /// Refused by the validator.
    pub refused: u64,
    /// Accepted by the validator and loaded in a child.
    pub loaded: u64,
    /// Accepted by the validator, then refused by llama.cpp with an error.
    pub llama_refused: u64,
    /// Accepted by the validator, not loaded (the load budget was spent).
    pub not_loaded: u64,
    /// Files that crashed a child or panicked the validator, saved.
    pub crashes: Vec<(PathBuf, String)>,
}

/// Settings of a run.
pub struct Run<'a> {
    /// First case's seed; case `i` uses `seed + i`.
    pub seed: u64,
    /// Stop after this many cases.
    pub max_cases: u64,
    /// Stop after this long.
    pub budget: Duration,
    /// Child loads at most.
    pub max_loads: u64,
    /// The command that probes a file in a child.
    pub child: &'a dyn Fn(&Path) -> Command,
    /// Where crashing files are copied.
    pub crash_dir: &'a Path,
    /// Scratch directory.
    pub work_dir: &'a Path,
}

/// Runs the loop.
pub fn run(settings: &Run<'_>, seeds: &[(&str, Doc)]) -> Stats {
    let start = Instant::now();
    let mut stats = Stats::default();
    std::fs::create_dir_all(settings.work_dir).unwrap();
    let file = settings.work_dir.join("case.gguf");
    for i in 0..settings.max_cases {
        if start.elapsed() > settings.budget {
            break;
        }
        let case_seed = settings.seed.wrapping_add(i);
        let mut rng = Rng::new(case_seed);
        // The last seed (the smallest, fastest file) gets half the cases.
        let pick = rng.below(2 * seeds.len() - 2);
        let (name, seed) = &seeds[pick.min(seeds.len() - 1)];
        let bytes = fuzz::mutate(&mut rng, seed);
        std::fs::write(&file, &bytes).unwrap();
        stats.cases += 1;
        let verdict = std::panic::catch_unwind(|| augur::gguf::validate(&file));
        let crash = match verdict {
            Err(_) => Some("the validator panicked".to_string()),
            Ok(Err(_)) => {
                stats.refused += 1;
                None
            }
            Ok(Ok(_)) if stats.loaded + stats.llama_refused >= settings.max_loads => {
                stats.not_loaded += 1;
                None
            }
            Ok(Ok(_)) => match run_probe((settings.child)(&file), Duration::from_secs(60)) {
                Ok(Outcome::Loaded) => {
                    stats.loaded += 1;
                    None
                }
                Ok(Outcome::Refused(_)) => {
                    stats.llama_refused += 1;
                    None
                }
                Ok(Outcome::Crashed(how)) => Some(how),
                Err(e) => panic!("cannot start the child: {e}"),
            },
        };
        if let Some(how) = crash {
            std::fs::create_dir_all(settings.crash_dir).unwrap();
            let saved = settings
                .crash_dir
                .join(format!("{name}-seed{case_seed}.gguf"));
            std::fs::copy(&file, &saved).unwrap();
            eprintln!("crash: {} ({how})", saved.display());
            stats.crashes.push((saved, how));
        }
    }
    stats
}
