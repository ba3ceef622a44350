//! The limits every front end applies to its parameters (the CLI, the C ABI,
//! a server): one set, checked here, so that each refuses the same values
//! with the same message instead of handing them to llama.cpp, which aborts
//! the process on some of them.
//!
//! [`Engine`](crate::Engine) checks them itself; front ends call the
//! functions here earlier to fail before loading a model.

use crate::{AugurError, EngineOptions, SettingKey};

/// The smallest context a session accepts, in tokens.
pub const MIN_CONTEXT: usize = 8;

/// ggml's `GGML_MAX_N_THREADS`: its CPU thread pool has room for this many
/// threads at most, whatever the machine.
pub const GGML_MAX_THREADS: usize = 512;

/// Threads allowed per core. More threads than cores only slow decoding
/// down, and llama.cpp's OpenMP team is created in one go: libgomp ends the
/// process (no error reaches the caller) when the system refuses a thread,
/// which 1024 threads do on ordinary limits, and 100,000 make `llama_decode`
/// throw a C++ exception that nothing can catch.
pub const THREADS_PER_CORE: usize = 4;

/// The longest draft (tokens proposed per step) a strategy accepts.
pub const MAX_DRAFT: usize = 256;

/// The most threads one model may run with on this machine:
/// [`THREADS_PER_CORE`] per core, and never more than [`GGML_MAX_THREADS`].
pub fn max_threads() -> usize {
    (augur_llama::default_threads() * THREADS_PER_CORE).clamp(1, GGML_MAX_THREADS)
}

/// Checks a thread count (`0` means every core). `name` says which one in
/// the message ("threads", "draft threads").
pub fn check_threads(name: &str, threads: usize) -> Result<(), AugurError> {
    let max = max_threads();
    if threads > max {
        return Err(AugurError::Config(format!(
            "{name} must be at most {max} ({THREADS_PER_CORE} per core on this machine, \
             and never more than {GGML_MAX_THREADS}), got {threads}"
        )));
    }
    Ok(())
}

/// Checks a context size against [`MIN_CONTEXT`] and, when known, the
/// context the model was trained with (`n_ctx_train`; a model's positions
/// beyond it are untrained, and llama.cpp would allocate a cache that large).
pub fn check_context(n_ctx: usize, n_ctx_train: Option<usize>) -> Result<(), AugurError> {
    let max = n_ctx_train.map(|t| t.max(MIN_CONTEXT));
    let out_of_range = n_ctx < MIN_CONTEXT || max.is_some_and(|m| n_ctx > m);
    if out_of_range {
        return Err(AugurError::Config(match max {
            Some(max) => format!(
                "context size must be between {MIN_CONTEXT} and {max} tokens \
                 (the model's training context), got {n_ctx}"
            ),
            None => format!("context size must be at least {MIN_CONTEXT} tokens, got {n_ctx}"),
        }));
    }
    Ok(())
}

/// Checks a draft length (tokens proposed per step).
pub fn check_draft_max(draft_max: usize) -> Result<(), AugurError> {
    if draft_max > MAX_DRAFT {
        return Err(AugurError::Config(format!(
            "draft length must be at most {MAX_DRAFT} tokens, got {draft_max}"
        )));
    }
    Ok(())
}

/// Checks everything in `options` that does not need the model: thread
/// counts, the context's lower bound and the draft length of the chosen
/// strategy. [`check_context`] with the model's training context comes once
/// the model is loaded.
pub fn check_options(options: &EngineOptions) -> Result<(), AugurError> {
    check_threads("threads", options.threads)?;
    check_threads("draft threads", options.draft_threads)?;
    check_context(options.n_ctx, None)?;
    // Every strategy with a draft length makes passes of at most one more.
    let s = &options.strategy;
    if s.kind().takes(SettingKey::DraftMax) {
        check_draft_max(s.largest_pass().saturating_sub(1))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_capped_by_cores_and_ggml() {
        let max = max_threads();
        assert!((1..=GGML_MAX_THREADS).contains(&max));
        assert!(check_threads("threads", 0).is_ok());
        assert!(check_threads("threads", max).is_ok());
        for t in [max + 1, 1024, 100_000] {
            let e = check_threads("threads", t).unwrap_err().to_string();
            assert!(e.contains(&format!("at most {max}")), "{e}");
            assert!(e.contains(&format!("got {t}")), "{e}");
        }
    }

    #[test]
    fn context_and_draft_bounds() {
        assert!(check_context(8, Some(8192)).is_ok());
        assert!(check_context(8192, Some(8192)).is_ok());
        let e = check_context(8193, Some(8192)).unwrap_err().to_string();
        assert!(e.contains("between 8 and 8192"), "{e}");
        assert!(check_context(7, None).is_err());
        assert!(check_context(1 << 40, None).is_ok());
        // A tiny training context still allows the minimum.
        assert!(check_context(8, Some(4)).is_ok());
        assert!(check_draft_max(256).is_ok());
        assert!(check_draft_max(257).is_err());
    }
}
