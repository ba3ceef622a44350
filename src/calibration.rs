//! Calibration: this machine's cost of a target pass of each size, and the
//! largest pass size whose logits are bit-identical to one-token passes.
//!
//! ggml picks different CPU kernels for different batch sizes and weight
//! types, so a pass over k tokens can round differently from k one-token
//! passes. Calibration evaluates the same tokens both ways and compares the
//! logits bit for bit; bit-exact mode then never verifies with a larger pass.
//! It is a measurement over many positions and several context lengths, not a
//! proof: the conformance tests re-check it on the prompt corpus. Results are cached per model file,
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

/// Context lengths at which bit-exactness is compared. ggml's attention
/// kernels change as the KV cache grows (llama.cpp pads its view to multiples of
/// 256 cells), so a pass size that is bit-identical over a short context can
/// differ beyond 256 tokens: each regime is measured.
pub const EXACTNESS_CONTEXTS: [usize; 3] = [16, 300, 600];

/// Index into [`EXACTNESS_CONTEXTS`] of the context pass costs are timed
/// after: 300 tokens, the size of a typical prompt with its code or text.
/// Attention grows with the context, and more so for passes of several
/// tokens (2–7-token passes cost 3–7 % more, relative to a one-token pass,
/// after 300 tokens than after 16 on a Q4_K_M target on 2 cores).
const TIMING_CONTEXT: usize = 1;

/// The second context pass costs are timed after: a long prompt. Passes of
/// several tokens grow with the context faster than one-token passes (see
/// `augur_core::ContextGrowth`), so costs timed at one context alone
/// mispredict runs on long prompts.
pub const LONG_TIMING_CONTEXT: usize = 1024;

/// Positions compared per context length and pass size by default.
pub const DEFAULT_POSITIONS: usize = 16;

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
    /// The largest k such that every pass size 1..=k gave bit-identical logits
    /// at every context length measured.
    pub max_exact_pass: usize,
    /// Context lengths (tokens before the compared positions) measured.
    pub contexts: Vec<usize>,
    /// Positions compared per context length and pass size.
    pub positions: usize,
    /// The context length (tokens in the KV cache) the passes were timed
    /// after; 0 in calibrations from before it was recorded.
    #[serde(default)]
    pub timed_after: usize,
    /// Median seconds of a two-token pass that computes logits for its last
    /// token only: a draft model's catch-up pass. It is cheaper than a
    /// verification pass of two tokens, which needs both rows of logits (a
    /// 0.5B draft's output layer over a 151k vocabulary is about a quarter
    /// of its work); 0 in calibrations from before it was measured.
    #[serde(default)]
    pub catch_up_seconds: f64,
    /// Median seconds of one pass over k tokens after
    /// [`Calibration::long_timed_after`] tokens, at index k − 1; empty in
    /// calibrations from before it was measured.
    #[serde(default)]
    pub long_pass_seconds: Vec<f64>,
    /// The long context `long_pass_seconds` were timed after (0: none).
    #[serde(default)]
    pub long_timed_after: usize,
}

impl Calibration {
    /// How the relative cost of a pass grows with the context, from the
    /// passes timed at two contexts (empty when only one was timed).
    pub fn context_growth(&self) -> augur_core::ContextGrowth {
        augur_core::ContextGrowth::between(
            self.timed_after,
            &self.pass_seconds,
            self.long_timed_after,
            &self.long_pass_seconds,
        )
    }

    /// The cost model for a target calibrated so, with `draft_seconds` per
    /// draft step (0 for model-free drafting): the calibrated passes, their
    /// growth with the context and the bit-exact size.
    pub fn costs(&self, draft_seconds: f64) -> augur_core::CostModel {
        let mut costs = augur_core::CostModel::calibrated(
            &self.pass_seconds,
            draft_seconds,
            self.max_exact_pass,
        );
        costs.growth = self.context_growth();
        costs
    }

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
    // The CMake profile llama.cpp was built with (set in .cargo/config.toml)
    // changes the kernels' speed severalfold, so it is part of the key.
    let profile = option_env!("LLAMA_LIB_PROFILE").unwrap_or("default profile");
    format!(
        "augur {} llama-cpp-2 0.1.160 ({profile}){gpu}",
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
pub fn cache_path(model: &GgufModel, threads: usize) -> PathBuf {
    let threads = resolve_threads(threads);
    let key = format!(
        "{}|{}|{threads}|{}|{:?}|timed after {} and {LONG_TIMING_CONTEXT}, interleaved, catch-up timed, raw medians",
        model.identity(),
        machine_id(),
        build_id(),
        EXACTNESS_CONTEXTS,
        EXACTNESS_CONTEXTS[TIMING_CONTEXT]
    );
    let stem = model
        .path()
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    augur_models::cache_dir()
        .join("calibration")
        .join(format!("{stem}-t{threads}-{:016x}.json", fnv1a(&key)))
}

/// The cached calibration, if this model, machine, thread count and build
/// were calibrated before for pass sizes up to at least `max_pass`.
pub fn cached(model: &GgufModel, threads: usize, max_pass: usize) -> Option<Calibration> {
    let text = std::fs::read_to_string(cache_path(model, threads)).ok()?;
    let c: Calibration = serde_json::from_str(&text).ok()?;
    (c.pass_seconds.len() >= max_pass).then_some(c)
}

/// Stores `calibration` as the cached one for its model and thread count.
/// A cache that cannot be written only costs a re-measurement next time, but
/// on every run: the first failure is kept for [`take_store_failure`].
pub fn store(model: &GgufModel, calibration: &Calibration) {
    let path = cache_path(model, calibration.threads);
    let tmp = path.with_extension("json.tmp");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let json = serde_json::to_string_pretty(calibration).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, json)
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = STORE_FAILURE.set(format!(
            "cannot write the calibration cache {} ({e}): drafting strategies will \
             calibrate again on every run (set AUGUR_CACHE_DIR to a writable directory)",
            path.display()
        ));
    }
}

static STORE_FAILURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static STORE_FAILURE_TAKEN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The first failure of this process to write the calibration cache, once
/// (later calls return `None`), for a front end to show as one warning.
pub fn take_store_failure() -> Option<String> {
    let message = STORE_FAILURE.get()?;
    let taken = STORE_FAILURE_TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst);
    (!taken).then(|| message.clone())
}

/// Drafts per proposal a draft step's cost is averaged over.
const TYPICAL_DRAFTS: f64 = 3.0;

impl Calibration {
    /// Seconds of one draft step when this model drafts: each proposal
    /// starts with a catch-up pass over the tokens the draft has not seen
    /// (the pending token and usually one more), then one-token passes, so
    /// a step costs a one-token pass plus its share of the catch-up's extra:
    /// T(1) + (C(2) − T(1)) / 3, with C(2) the two-token pass that computes
    /// the last token's logits only, as a catch-up does. Timing a one-token
    /// pass alone put the step at 16.8 ms where runs of the 0.5B draft
    /// averaged 19–33 ms; charging the catch-up as a verification pass (all
    /// rows of logits) put it at 33.5 ms where runs averaged 21–26 ms.
    /// Calibrations from before the catch-up was timed use T(2).
    pub fn draft_step_seconds(&self) -> f64 {
        let t1 = self.pass_seconds.first().copied().unwrap_or(0.0);
        let catch_up = if self.catch_up_seconds > 0.0 {
            Some(self.catch_up_seconds)
        } else {
            self.pass_seconds.get(1).copied()
        };
        match catch_up {
            Some(c) if c > t1 => t1 + (c - t1) / TYPICAL_DRAFTS,
            _ => t1,
        }
    }
}

static PROGRESS: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sets, once per process, what hears about a calibration before it starts
/// (it takes a minute or so on a CPU): a front end passes a function that
/// prints the line. Later calls are ignored; without one nothing is said.
pub fn set_progress(report: fn(&str)) {
    let _ = PROGRESS.set(report);
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
    let name = model
        .path()
        .file_name()
        .map_or_else(|| "the model".into(), |n| n.to_string_lossy().into_owned());
    // One at a time per machine: processes started together (a script, a
    // test suite) or engines built on several threads would otherwise all
    // measure at once, each timing the others' passes, and take many times
    // as long to cache wrong figures. A file lock covers both (each taker
    // opens the file anew); the one that waited then finds the figures.
    let _machine_lock = lock_calibrations(&name);
    if let Some(c) = cached(model, threads, max_pass) {
        return Ok(c);
    }
    if let Some(report) = PROGRESS.get() {
        report(&format!(
            "calibrating {name} on this machine ({threads} threads): pass costs and bit-exact \
             pass size, once (cached)"
        ));
    }
    // Measure a little beyond what is asked, so that other settings reuse it.
    let c = measure(model, threads, max_pass.max(9), DEFAULT_POSITIONS)?;
    store(model, &c);
    Ok(c)
}

/// Takes the machine-wide calibration lock (a file lock in the cache, let go
/// when the returned file is dropped or the process ends, even by a crash),
/// saying so when another process holds it. Without a writable cache there
/// is nothing to share, so no lock: `None`. Every measurement that is timed
/// (the engine's and `augur calibrate`'s) holds it.
pub fn lock_calibrations(name: &str) -> Option<std::fs::File> {
    lock_in(&augur_models::cache_dir().join("calibration"), name)
}

fn lock_in(dir: &std::path::Path, name: &str) -> Option<std::fs::File> {
    std::fs::create_dir_all(dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .ok()?;
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            if let Some(report) = PROGRESS.get() {
                report(&format!(
                    "waiting for another augur process to finish calibrating (then {name})"
                ));
            }
            file.lock().ok().map(|()| file)
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// Measures pass costs for sizes 1..=max_pass and the bit-exact pass size,
/// comparing `positions` positions per pass size after each context length of
/// [`EXACTNESS_CONTEXTS`]. Costs are timed after the typical-prompt context,
/// every size in each of several rounds (see `time_passes`).
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
    crate::limits::check_threads("threads", threads)?;
    let threads = resolve_threads(threads);
    let longest = EXACTNESS_CONTEXTS
        .iter()
        .copied()
        .max()
        .unwrap_or(16)
        .max(LONG_TIMING_CONTEXT);
    let mut text = String::new();
    let mut tokens: Vec<TokenId> = Vec::new();
    while tokens.len() < longest + positions.max(max_pass).max(TIMED_TOKENS_PER_ROUND) + 1 {
        text.push_str(CALIBRATION_TEXT);
        tokens = model.tokenize(&text, true)?;
    }
    let mut session = model.new_session(&ContextParams {
        n_ctx: longest + positions.max(max_pass).max(TIMED_TOKENS_PER_ROUND) + 64,
        n_threads: threads,
        ..ContextParams::default()
    })?;
    let n_vocab = session.n_vocab();
    let mut batch = Batch::new();
    let mut out = LogitRows::new(n_vocab);
    let core = |e: augur_core::ModelError| AugurError::Core(e.into());

    // Passes of k tokens over `positions` positions after the cached prefix
    // (the last pass shorter when k does not divide them), then a rollback to
    // the prefix. Returns every position's logits (timing is `time_passes`).
    let mut run = |session: &mut augur_llama::LlamaSession,
                   prefix: usize,
                   k: usize|
     -> Result<Vec<Vec<f32>>, AugurError> {
        let mut rows = Vec::with_capacity(positions);
        let mut pos = prefix;
        while pos < prefix + positions {
            let end = (pos + k).min(prefix + positions);
            batch.clear();
            batch.add_run(&tokens[pos..end], pos, RunLogits::All);
            session.eval(&batch, &mut out).map_err(core)?;
            rows.extend((0..out.len()).map(|i| out.row(i).to_vec()));
            pos = end;
        }
        session.remove_from(0, prefix).map_err(core)?;
        Ok(rows)
    };
    let mut prefill_batch = Batch::new();
    let mut prefill_out = LogitRows::new(n_vocab);

    let mut pass_seconds = vec![0.0; max_pass];
    let mut catch_up_seconds = 0.0;
    let mut max_logit_diff = vec![0.0f32; max_pass];
    let mut exact = vec![true; max_pass];
    for (c, &prefix) in EXACTNESS_CONTEXTS.iter().enumerate() {
        session.clear().map_err(core)?;
        prefill_batch.clear();
        prefill_batch.add_run(&tokens[..prefix], 0, RunLogits::None);
        session
            .eval(&prefill_batch, &mut prefill_out)
            .map_err(core)?;
        if c == 0 {
            // Warm caches and thread pools before timing anything.
            run(&mut session, prefix, 1)?;
        }
        let reference = run(&mut session, prefix, 1)?;
        for k in 2..=max_pass {
            let rows = run(&mut session, prefix, k)?;
            for (a, b) in reference.iter().zip(&rows) {
                for (x, y) in a.iter().zip(b) {
                    if x.to_bits() != y.to_bits() {
                        exact[k - 1] = false;
                        max_logit_diff[k - 1] = max_logit_diff[k - 1].max((x - y).abs());
                    }
                }
            }
        }
        if c == TIMING_CONTEXT {
            (pass_seconds, catch_up_seconds) =
                time_passes(&mut session, &tokens, prefix, max_pass)?;
        }
    }
    // The same passes after a long prompt: the cache holds the last
    // exactness context's prefix; fill it up to the long one.
    let filled = *EXACTNESS_CONTEXTS.last().unwrap_or(&0);
    session.remove_from(0, filled).map_err(core)?;
    prefill_batch.clear();
    prefill_batch.add_run(
        &tokens[filled..LONG_TIMING_CONTEXT],
        filled,
        RunLogits::None,
    );
    session
        .eval(&prefill_batch, &mut prefill_out)
        .map_err(core)?;
    let (long_pass_seconds, _) = time_passes(&mut session, &tokens, LONG_TIMING_CONTEXT, max_pass)?;
    let max_exact_pass = exact.iter().take_while(|&&e| e).count().max(1);
    Ok(Calibration {
        model: model.identity(),
        machine: machine_id(),
        threads,
        build: build_id(),
        pass_seconds,
        max_logit_diff,
        max_exact_pass,
        contexts: EXACTNESS_CONTEXTS.to_vec(),
        positions,
        timed_after: EXACTNESS_CONTEXTS[TIMING_CONTEXT],
        catch_up_seconds,
        long_pass_seconds,
        long_timed_after: LONG_TIMING_CONTEXT,
    })
}

/// Rounds of timing: every pass size once per round, so that the machine's
/// slow and fast phases weigh on every size alike.
const TIMING_ROUNDS: usize = 6;

/// Tokens each pass size covers per round (sizes above it run one pass).
const TIMED_TOKENS_PER_ROUND: usize = 8;

/// Median seconds of a pass over k tokens, k = 1..=max_pass, after the first
/// `prefix` tokens of `tokens` (already in the cache), and of a two-token
/// pass with logits on its last token only (a draft's catch-up).
///
/// The sizes are interleaved: each of [`TIMING_ROUNDS`] rounds times every
/// size, and each size's figure is the median over all rounds. On a shared
/// machine the one-token pass of a memory-bound target (an F16 model on a
/// CPU) is the most sensitive to other work's memory traffic: timed in one
/// burst it came out 60 ms in a fast phase while decoding averaged 77 ms, and
/// the cost of a 2-token pass relative to it 1.53x instead of the 1.29x the
/// runs saw. Interleaving measures every size across the same phases.
///
/// The table is not forced to grow with k: a larger pass can cost less.
/// ggml's CPU kernels for repacked quantized weights (Q4_K on AVX2/AVX-512)
/// multiply activations four rows at a time and take leftover rows one by
/// one, so a pass of 16 tokens is four tiles and one of 15 three tiles and
/// three single rows. Runs of the Q4_K_M target here timed passes of 4
/// tokens at 1.81 one-token passes and of 3 at 1.89, of 16 at 4.07 where a
/// table made non-decreasing said 4.93 (the figure for 15), and the bench
/// predicted long copies 15–18 % slower than they ran.
fn time_passes(
    session: &mut augur_llama::LlamaSession,
    tokens: &[TokenId],
    prefix: usize,
    max_pass: usize,
) -> Result<(Vec<f64>, f64), AugurError> {
    let core = |e: augur_core::ModelError| AugurError::Core(e.into());
    let mut batch = Batch::new();
    let mut out = LogitRows::new(session.n_vocab());
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); max_pass];
    let mut catch_up = Vec::new();
    for _ in 0..TIMING_ROUNDS {
        for i in 0..TIMED_TOKENS_PER_ROUND / 2 {
            let pos = prefix + i * 2;
            batch.clear();
            batch.add_run(&tokens[pos..pos + 2], pos, RunLogits::Last);
            let t = Instant::now();
            session.eval(&batch, &mut out).map_err(core)?;
            catch_up.push(t.elapsed().as_secs_f64());
        }
        session.remove_from(0, prefix).map_err(core)?;
        for k in 1..=max_pass {
            let passes = (TIMED_TOKENS_PER_ROUND / k).max(1);
            for i in 0..passes {
                let pos = prefix + i * k;
                batch.clear();
                batch.add_run(&tokens[pos..pos + k], pos, RunLogits::All);
                let t = Instant::now();
                session.eval(&batch, &mut out).map_err(core)?;
                times[k - 1].push(t.elapsed().as_secs_f64());
            }
            session.remove_from(0, prefix).map_err(core)?;
        }
    }
    let pass_seconds: Vec<f64> = times.iter().map(|t| median(t)).collect();
    Ok((pass_seconds, median(&catch_up)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A second taker of the machine-wide lock (another process, or here
    /// another open file) waits until the first lets go, then gets it.
    #[test]
    fn calibrations_wait_for_the_one_in_progress() {
        let dir = std::env::temp_dir().join(format!("augur-cal-lock-{}", std::process::id()));
        let first = lock_in(&dir, "a").expect("a writable directory is locked");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let second = lock_in(&dir, "b");
                tx.send(second.is_some()).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the second lock was taken while the first was held"
        );
        drop(first);
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(30)),
            Ok(true),
            "the second lock was not taken after the first was let go"
        );
        waiter.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_cache_means_no_lock() {
        assert!(lock_in(std::path::Path::new("/proc/augur-no-such/calibration"), "a").is_none());
    }

    #[test]
    fn a_draft_step_carries_its_share_of_the_catch_up_pass() {
        let cal = |pass_seconds: Vec<f64>| Calibration {
            model: String::new(),
            machine: String::new(),
            threads: 2,
            build: String::new(),
            pass_seconds,
            max_logit_diff: Vec::new(),
            max_exact_pass: 1,
            contexts: Vec::new(),
            positions: 16,
            timed_after: 300,
            catch_up_seconds: 0.0,
            long_pass_seconds: Vec::new(),
            long_timed_after: 0,
        };
        // 10 ms one-token passes, 16 ms two-token ones: 10 + 6 / 3.
        assert!((cal(vec![0.010, 0.016]).draft_step_seconds() - 0.012).abs() < 1e-12);
        // A timed catch-up (logits on the last token only) is used instead
        // of the two-token verification pass: 10 + 3 / 3.
        let timed = Calibration {
            catch_up_seconds: 0.013,
            ..cal(vec![0.010, 0.016])
        };
        assert!((timed.draft_step_seconds() - 0.011).abs() < 1e-12);
        // Without a two-token figure, the one-token pass.
        assert!((cal(vec![0.010]).draft_step_seconds() - 0.010).abs() < 1e-12);
    }

    #[test]
    fn llama_cpp_is_built_with_the_release_profile() {
        // .cargo/config.toml sets it: without it llama-cpp-sys-2 builds
        // llama.cpp at -O2 whenever the Rust profile keeps debug info, and
        // batched F16 passes run 2.3x slower.
        assert_eq!(option_env!("LLAMA_LIB_PROFILE"), Some("Release"));
        assert!(build_id().contains("(Release)"), "{}", build_id());
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn ggml_is_built_without_amx_kernels() {
        // .cargo/config.toml keeps them out: on some Sapphire Rapids-class
        // machines their first matrix multiply faults and every model load
        // dies (the real-model tests then fail with SIGSEGV).
        for flags in [
            option_env!("CFLAGS_x86_64_unknown_linux_gnu"),
            option_env!("CXXFLAGS_x86_64_unknown_linux_gnu"),
        ] {
            let flags = flags.unwrap_or("");
            for f in ["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"] {
                assert!(flags.contains(f), "{f} missing from {flags:?}");
            }
        }
    }
}
