//! Calibration: this machine's cost of a target pass of each size, and the
//! largest pass size whose logits are bit-identical to one-token passes.
//!
//! ggml picks different CPU kernels for different batch sizes and weight
//! types, so a pass over k tokens can round differently from k one-token
//! passes. Calibration evaluates the same tokens both ways and compares the
//! logits bit for bit; bit-exact mode then never verifies with a larger pass.
//! It is a measurement over many positions, not a proof: the conformance tests
//! re-check it on the prompt corpus. Results are cached per model file,
//! machine, thread count and build, so a run pays for it once.

use std::path::PathBuf;
use std::time::Instant;

use augur_core::model::RunLogits;
use augur_core::{Batch, LogitRows, Model, TokenId};
use augur_llama::{ContextParams, GgufModel};
use serde::{Deserialize, Serialize};

use crate::AugurError;

/// Text whose tokens calibration evaluates (any ordinary text will do; code is
/// what augur is mostly used on).
const CALIBRATION_TEXT: &str = "def merge_sorted(a, b):\n    \"\"\"Merge two sorted lists into one sorted list.\"\"\"\n    out = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n            out.append(a[i])\n            i += 1\n        else:\n            out.append(b[j])\n            j += 1\n    out.extend(a[i:])\n    out.extend(b[j:])\n    return out\n\nThe function walks both lists once, so it runs in linear time and uses linear extra space.\n";

/// Tokens evaluated before the measured positions.
const PREFIX: usize = 16;

/// What calibration measured for one model on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The model's identity (path, size, modification time).
    pub model: String,
    /// The machine (CPU model and core count).
    pub machine: String,
    /// Threads used.
    pub threads: usize,
    /// augur and llama.cpp build.
    pub build: String,
    /// Median seconds of one pass over k tokens, at index k − 1.
    pub pass_seconds: Vec<f64>,
    /// Largest absolute logit difference from one-token passes, at index k − 1.
    pub max_logit_diff: Vec<f32>,
    /// The largest k such that every pass size 1..=k gave bit-identical logits.
    pub max_exact_pass: usize,
    /// Positions compared per pass size.
    pub positions: usize,
}

impl Calibration {
    /// Tokens per second of a pass over k tokens.
    pub fn throughput(&self, k: usize) -> Option<f64> {
        self.pass_seconds
            .get(k.checked_sub(1)?)
            .map(|s| k as f64 / s)
    }
}

/// This machine's description, part of the cache key.
pub fn machine_id() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu} ({cores} cores)")
}

fn build_id() -> String {
    let gpu = if cfg!(feature = "cuda") {
        "+cuda"
    } else if cfg!(feature = "metal") {
        "+metal"
    } else if cfg!(feature = "vulkan") {
        "+vulkan"
    } else {
        ""
    };
    format!(
        "augur {} llama-cpp-2 0.1.160{gpu}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `threads`, with 0 meaning every core.
pub fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        augur_llama::default_threads()
    } else {
        threads
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where the calibration of `model` with `threads` threads is cached.
pub fn cache_path(model: &GgufModel, threads: usize, max_pass: usize) -> PathBuf {
    let threads = resolve_threads(threads);
    let key = format!(
        "{}|{}|{threads}|{}|{max_pass}",
        model.identity(),
        machine_id(),
        build_id()
    );
    let stem = model
        .path()
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    augur_models::cache_dir().join("calibration").join(format!(
        "{stem}-t{threads}-k{max_pass}-{:016x}.json",
        fnv1a(&key)
    ))
}

/// The cached calibration, if this model, machine, thread count and build
/// were calibrated before.
pub fn cached(model: &GgufModel, threads: usize, max_pass: usize) -> Option<Calibration> {
    let threads = resolve_threads(threads);
    let text = std::fs::read_to_string(cache_path(model, threads, max_pass)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The cached calibration, or a new one (measured now and cached).
pub fn cached_or_measure(
    model: &std::sync::Arc<GgufModel>,
    threads: usize,
    max_pass: usize,
) -> Result<Calibration, AugurError> {
    let threads = resolve_threads(threads);
    if let Some(c) = cached(model, threads, max_pass) {
        return Ok(c);
    }
    let c = measure(model, threads, max_pass, 48)?;
    let path = cache_path(model, threads, max_pass);
    // A cache that cannot be written only costs a re-measurement next time.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(json) = serde_json::to_string_pretty(&c) {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(c)
}

/// Measures pass costs for sizes 1..=max_pass and the bit-exact pass size,
/// comparing `positions` positions per size.
pub fn measure(
    model: &std::sync::Arc<GgufModel>,
    threads: usize,
    max_pass: usize,
    positions: usize,
) -> Result<Calibration, AugurError> {
    if max_pass == 0 || positions == 0 {
        return Err(AugurError::Config(
            "calibration needs at least one pass size and one position".into(),
        ));
    }
    let mut text = String::new();
    let threads = resolve_threads(threads);
    let mut tokens: Vec<TokenId> = Vec::new();
    while tokens.len() < PREFIX + positions + 1 {
        text.push_str(CALIBRATION_TEXT);
        tokens = model.tokenize(&text, true)?;
    }
    tokens.truncate(PREFIX + positions);
    let mut session = model.new_session(&ContextParams {
        n_ctx: (PREFIX + positions + 8).max(64),
        n_threads: threads,
        ..ContextParams::default()
    })?;
    let n_vocab = session.n_vocab();
    let mut batch = Batch::new();
    let mut out = LogitRows::new(n_vocab);

    // One size's run: prefill, then passes of k tokens over the positions
    // (the last pass shorter when k does not divide them). Returns the logit
    // rows of every position and the durations of the full-size passes.
    let mut run = |k: usize| -> Result<(Vec<Vec<f32>>, Vec<f64>), AugurError> {
        session.clear().map_err(augur_core::CoreError::from)?;
        batch.clear();
        batch.add_run(&tokens[..PREFIX], 0, RunLogits::None);
        session
            .eval(&batch, &mut out)
            .map_err(augur_core::CoreError::from)?;
        let mut rows = Vec::with_capacity(positions);
        let mut times = Vec::new();
        let mut pos = PREFIX;
        while pos < PREFIX + positions {
            let end = (pos + k).min(PREFIX + positions);
            batch.clear();
            batch.add_run(&tokens[pos..end], pos, RunLogits::All);
            let t = Instant::now();
            session
                .eval(&batch, &mut out)
                .map_err(augur_core::CoreError::from)?;
            if end - pos == k {
                times.push(t.elapsed().as_secs_f64());
            }
            rows.extend((0..out.len()).map(|i| out.row(i).to_vec()));
            pos = end;
        }
        Ok((rows, times))
    };

    // Warm caches and thread pools before timing anything.
    run(1)?;
    let (reference, t1) = run(1)?;
    let mut pass_seconds = vec![median(&t1)];
    let mut max_logit_diff = vec![0.0f32];
    let mut max_exact_pass = 1;
    let mut exact_so_far = true;
    for k in 2..=max_pass {
        let (rows, times) = run(k)?;
        let mut diff = 0.0f32;
        let mut identical = true;
        for (a, b) in reference.iter().zip(&rows) {
            for (x, y) in a.iter().zip(b) {
                if x.to_bits() != y.to_bits() {
                    identical = false;
                    diff = diff.max((x - y).abs());
                }
            }
        }
        exact_so_far &= identical;
        if exact_so_far {
            max_exact_pass = k;
        }
        // Sizes with no full pass (k > positions) fall back to a linear guess.
        let t = if times.is_empty() {
            pass_seconds[0] * k as f64
        } else {
            median(&times)
        };
        pass_seconds.push(t);
        max_logit_diff.push(diff);
    }
    Ok(Calibration {
        model: model.identity(),
        machine: machine_id(),
        threads,
        build: build_id(),
        pass_seconds,
        max_logit_diff,
        max_exact_pass,
        positions,
    })
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}
