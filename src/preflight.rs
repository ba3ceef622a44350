//! Trying a model file in a child process before the caller's process loads
//! it.
//!
//! [`crate::load_model`] validates every file before llama.cpp reads it
//! (`augur_gguf::validate`: the header, the tensor layout, and the
//! hyperparameters llama.cpp is known to assert on). llama.cpp supports
//! over 150 architectures, each with its own loader and graph, and some
//! still end the process (an assertion, a division by zero, an exception
//! thrown where nothing catches it) on a file crafted against them. A
//! process that must survive any file — the CLI, a server — runs [`probe`]
//! in a child first ([`check`]): the child loads the file, creates a
//! context and decodes a few tokens; if it dies, the parent reports an
//! error instead of dying. The verdict is cached by path, size and
//! modification time, so a file is tried once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{AugurError, Engine, EngineOptions, GenerateParams};

/// How long a probe may take before it counts as a hang.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// Loads `path` (validated first), creates a small context and generates two
/// tokens greedily after a short prompt: what a run does, in miniature, so
/// that a file llama.cpp cannot run fails here.
pub fn probe(path: &Path) -> Result<(), AugurError> {
    let model = crate::load_model(path, 0)?;
    let options = EngineOptions {
        n_ctx: 64.min(model.n_ctx_train().max(crate::limits::MIN_CONTEXT)),
        threads: 1,
        ..EngineOptions::new(path)
    };
    let mut engine = Engine::with_models(model, None, options)?;
    // The chat template is applied by llama.cpp too; a file without a usable
    // one is still loadable.
    let _ = engine.tokenize_prompt("Hello", true);
    let prompt = engine.tokenize_prompt("Hello, world. <|im_start|>user\n", false)?;
    if prompt.is_empty() {
        return Ok(());
    }
    let n = prompt.len().min(16);
    let params = GenerateParams {
        max_tokens: 2,
        ..GenerateParams::default()
    };
    engine.generate(&prompt[..n], &params, &mut |_, _| true)?;
    Ok(())
}

/// How a probe in a child process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file loaded and ran.
    Loaded,
    /// augur refused the file with an error (the child's exit status 1 and
    /// its last line).
    Refused(String),
    /// The child died: by a signal, with an unexpected status, or it hung.
    Crashed(String),
}

/// Runs `command` (which must run [`probe`] on the file and exit 0 on
/// success, 1 on an error, printing the error last on stderr) and reports
/// how it ended; a child running past `timeout` is killed.
pub fn run_probe(mut command: Command, timeout: Duration) -> std::io::Result<Outcome> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let last = stderr.lines().last().unwrap_or("").to_string();
    Ok(match status {
        None => Outcome::Crashed(format!("no result after {} s", timeout.as_secs())),
        Some(s) if s.success() => Outcome::Loaded,
        Some(s) if s.code() == Some(1) => Outcome::Refused(last),
        Some(s) => Outcome::Crashed(describe_status(s, &last)),
    })
}

fn describe_status(status: std::process::ExitStatus, last: &str) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                4 => "SIGILL",
                6 => "SIGABRT",
                7 => "SIGBUS",
                8 => "SIGFPE",
                9 => "SIGKILL",
                11 => "SIGSEGV",
                _ => "a signal",
            };
            return format!("killed by {name} ({signal}); last output: {last}");
        }
    }
    format!("{status}; last output: {last}")
}

/// Where verdicts are cached (`~/.cache/augur/preflight`).
pub fn cache_dir() -> PathBuf {
    augur_models::cache_dir().join("preflight")
}

/// The cache file for `path` as it is now (path, size and modification
/// time), or `None` when the file cannot be inspected.
fn cache_entry(path: &Path) -> Option<PathBuf> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&canonical).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let key = format!(
        "{}|{}|{}.{}|{}",
        canonical.display(),
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos(),
        env!("CARGO_PKG_VERSION")
    );
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Some(cache_dir().join(format!("{hash:016x}")))
}

/// Makes sure loading `path` cannot end this process: unless a probe of the
/// file as it is now (same path, size and modification time) passed before,
/// runs `child` — a command that runs [`probe`] on `path` — and records a
/// passing verdict. A file augur refuses gives that error; a child that
/// dies gives an error naming how (so the caller can refuse the file
/// without loading it); a cache that cannot be written only means the next
/// run probes again.
pub fn check(path: &Path, child: Command) -> Result<(), AugurError> {
    crate::gguf::check_regular_file(path)?;
    let entry = cache_entry(path);
    if entry.as_ref().is_some_and(|e| e.is_file()) {
        return Ok(());
    }
    let outcome = run_probe(child, PROBE_TIMEOUT).map_err(|e| {
        AugurError::Config(format!(
            "cannot start the pre-flight check of {}: {e}",
            path.display()
        ))
    })?;
    match outcome {
        Outcome::Loaded => {
            if let Some(entry) = entry {
                let _ = std::fs::create_dir_all(cache_dir());
                let _ = std::fs::write(&entry, format!("{}\n", path.display()));
            }
            Ok(())
        }
        Outcome::Refused(reason) => Err(AugurError::Config(
            reason
                .strip_prefix("error: ")
                .unwrap_or(&reason)
                .to_string(),
        )),
        Outcome::Crashed(how) => Err(AugurError::Config(format!(
            "{} would end the process: llama.cpp crashed loading it in a child process ({how}); \
             the file is damaged or crafted",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn a_child_that_dies_is_an_error_not_a_crash() {
        let dir = std::env::temp_dir().join(format!("augur-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("model.gguf");
        std::fs::write(&file, b"x").unwrap();
        for (signal, name) in [("SEGV", "SIGSEGV"), ("ABRT", "SIGABRT"), ("FPE", "SIGFPE")] {
            let e = check(&file, sh(&format!("kill -{signal} $$")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(name) && e.contains("would end the process"),
                "{e}"
            );
        }
        let e = check(&file, sh("echo 'error: refused, for a reason' >&2; exit 1"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "refused, for a reason");
        let hang = run_probe(sh("sleep 5"), Duration::from_millis(200)).unwrap();
        assert!(
            matches!(hang, Outcome::Crashed(ref how) if how.contains("no result")),
            "{hang:?}"
        );
        assert_eq!(
            run_probe(sh("exit 0"), PROBE_TIMEOUT).unwrap(),
            Outcome::Loaded
        );
        // Not a regular file: refused before any child runs.
        let e = check(&dir, sh("exit 0")).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
