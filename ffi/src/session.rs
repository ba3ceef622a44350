//! Sessions: a target model's context with a strategy, and generation.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use augur_facade::{
    Engine, EngineOptions, ExactMode, GenerateParams, SamplingParams, SettingKey, StrategyConfig,
    StrategyKind, TokenId,
};

use crate::drafter::{augur_drafter, CDrafter, FailureSlot, C_DRAFTER_NAME};
use crate::error::{augur_status, guard, guard_void, FfiError};
use crate::model::{copy_tokens, model_ref, serialized, str_arg, tokens_arg, write_opt};
use crate::types::{
    augur_session_params, augur_stats, AUGUR_EXACT_AUTO, AUGUR_EXACT_BIT, AUGUR_EXACT_KERNEL,
};

/// The longest draft a session accepts (the limit every front end shares).
const MAX_DRAFT: i32 = augur_facade::limits::MAX_DRAFT as i32;
/// The default context size (or the model's training context if smaller).
const DEFAULT_N_CTX: usize = 4096;

/// Receives generated text: `len` bytes of whole UTF-8 characters at
/// `bytes` (NUL-terminated as a convenience; `len` excludes the NUL). The
/// pointer is valid only during the call. Return true to go on, false to
/// stop the generation (it then ends with `AUGUR_STOP_CANCELLED`).
///
/// Runs on the thread that called `augur_generate`, during that call. It
/// must not unwind (C++ exceptions, longjmp) into augur and must not use the
/// same session; it may use other sessions and models.
pub type augur_on_token =
    Option<unsafe extern "C" fn(user_data: *mut c_void, bytes: *const c_char, len: usize) -> bool>;

/// A target model's context (KV cache) with a decoding strategy: what
/// generates.
///
/// Ownership: created by `augur_session_new` or
/// `augur_session_new_with_drafter`, released by `augur_session_free`. The
/// session holds its own references to its models: freeing a model handle
/// while the session lives is safe.
///
/// Threads: a session may be moved to another thread, but must not be used
/// by two threads at once (no two calls on one session may overlap). Separate
/// sessions may run on separate threads at the same time, sharing models.
pub struct augur_session {
    engine: Engine,
    sampling: SamplingParams,
    last_tokens: Vec<TokenId>,
    drafter_failure: Option<FailureSlot>,
    /// Set when a call panicked: the strategy's state may be inconsistent.
    poisoned: bool,
    /// The text handed to the token callback, NUL-terminated.
    piece: Vec<u8>,
}

/// A count: negative values are refused; 0 means `default` unless `allow_zero`.
fn count(name: &str, value: i32, default: usize, allow_zero: bool) -> Result<usize, FfiError> {
    match value {
        v if v < 0 => Err(FfiError::invalid(format!(
            "{name} must not be negative, got {v}"
        ))),
        0 if !allow_zero => Ok(default),
        v => Ok(v as usize),
    }
}

/// The strategy, engine options and sampling settings of `p`.
fn options_from(
    p: &augur_session_params,
    target: &augur_facade::llama::GgufModel,
    custom_drafter: bool,
) -> Result<(EngineOptions, SamplingParams), FfiError> {
    let exact = match p.exact_mode {
        AUGUR_EXACT_AUTO => ExactMode::Auto,
        AUGUR_EXACT_BIT => ExactMode::Bit,
        AUGUR_EXACT_KERNEL => ExactMode::Kernel,
        other => {
            return Err(FfiError::invalid(format!(
                "exact_mode must be AUGUR_EXACT_AUTO (0), AUGUR_EXACT_BIT (1) or \
                 AUGUR_EXACT_KERNEL (2), got {other}"
            )))
        }
    };
    if p.draft_max > MAX_DRAFT {
        return Err(FfiError::invalid(format!(
            "draft_max must be at most {MAX_DRAFT}, got {}",
            p.draft_max
        )));
    }
    if !(0.0..=1.0).contains(&p.draft_p_min) {
        return Err(FfiError::invalid(format!(
            "draft_p_min must be in [0, 1], got {}",
            p.draft_p_min
        )));
    }
    // The fields are settings of the one settings table, shared by every
    // strategy as the CLI's flags are: each applies where the strategy
    // takes it; 0 leaves a setting at its default.
    let mut shared = Vec::new();
    for (key, name, value) in [
        (SettingKey::DraftMax, "draft_max", p.draft_max),
        (SettingKey::DraftMin, "draft_min", p.draft_min),
        (SettingKey::NgramMin, "ngram_min", p.ngram_min),
        (SettingKey::NgramMax, "ngram_max", p.ngram_max),
        (SettingKey::LaWindow, "la_window", p.la_window),
        (SettingKey::LaNgram, "la_ngram", p.la_ngram),
        (SettingKey::LaGuess, "la_guess", p.la_guess),
    ] {
        let v = count(name, value, 0, true)?;
        if v > 0 {
            shared.push((key, v.to_string()));
        }
    }
    if p.draft_p_min != 0.0 {
        shared.push((SettingKey::DraftPMin, p.draft_p_min.to_string()));
    }
    match p.pipeline {
        0 => {}
        1 => shared.push((SettingKey::Pipeline, "true".into())),
        other => {
            return Err(FfiError::invalid(format!(
                "pipeline must be 0 or 1, got {other}"
            )))
        }
    }
    let config = if custom_drafter {
        // Application drafts are verified like a draft model's; the kind
        // also sizes calibration to the longest pass.
        StrategyConfig::parse(StrategyKind::Speculative.name(), &shared)
    } else if p.strategy.is_null() {
        StrategyConfig::parse(StrategyKind::Auto.name(), &shared)
    } else {
        // SAFETY: non-NULL; the caller promises a NUL-terminated string.
        let entry = unsafe { str_arg(p.strategy, "params->strategy") }?;
        let name = entry.split(':').next().unwrap_or_default();
        name.parse::<StrategyKind>()
            .map_err(|e| FfiError::new(augur_status::AUGUR_UNKNOWN_STRATEGY, e.to_string()))?;
        StrategyConfig::parse(entry, &shared)
    }
    .map_err(|e| FfiError::invalid(e.to_string()))?;

    let sampling = SamplingParams {
        temperature: p.temperature,
        top_k: count("top_k", p.top_k, 0, true)?,
        top_p: p.top_p,
        min_p: p.min_p,
        seed: p.seed,
    };
    sampling
        .validate()
        .map_err(|e| FfiError::invalid(e.to_string()))?;

    for (name, value) in [("threads", p.threads), ("draft_threads", p.draft_threads)] {
        // Negative counts are refused below; the shared limit bounds the rest.
        augur_facade::limits::check_threads(name, usize::try_from(value).unwrap_or(0))?;
    }
    let n_ctx_train = target.n_ctx_train();
    let n_ctx = count(
        "n_ctx",
        p.n_ctx,
        DEFAULT_N_CTX.min(n_ctx_train.max(8)),
        false,
    )?;
    if n_ctx < 8 || n_ctx > n_ctx_train.max(8) {
        return Err(FfiError::invalid(format!(
            "n_ctx must be in 8..={} (the model's training context), got {n_ctx}",
            n_ctx_train.max(8)
        )));
    }

    let mut options = EngineOptions::new(target.path());
    options.n_ctx = n_ctx;
    options.threads = count("threads", p.threads, 0, true)?;
    options.draft_threads = count("draft_threads", p.draft_threads, 0, true)?;
    options.strategy = config;
    options.exact = exact;
    Ok((options, sampling))
}

/// Turns a session's `*out` into a fresh handle, or NULL on failure.
///
/// # Safety
/// `out` must be valid for a write.
unsafe fn publish(out: *mut *mut augur_session, session: augur_session) {
    let handle = Box::into_raw(Box::new(session));
    // SAFETY: valid for a write, as the caller promises.
    unsafe { out.write(handle) };
}

/// The default session parameters: baseline strategy, greedy decoding,
/// automatic exactness, every core, a 4096-token context.
#[no_mangle]
pub extern "C" fn augur_session_params_default() -> augur_session_params {
    augur_session_params::default()
}

/// Creates a session over `target` with the strategy and settings of
/// `params` (NULL = defaults). `draft` is the draft model for the
/// "speculative" strategy (its vocabulary is checked against the target's:
/// `AUGUR_VOCAB_MISMATCH`); other strategies ignore it, and it may be NULL
/// for them. Drafting strategies calibrate the target on first use on a
/// machine (a few seconds; the result is cached on disk).
///
/// On success `*out` receives a new session that the caller owns and must
/// release with `augur_session_free`; on failure `*out` is set to NULL. The
/// session keeps `target` and `draft` alive: their handles may be freed
/// before it. Thread-safe (creation is serialized internally).
///
/// # Safety
/// `target` and `draft` must be NULL or live handles; `params` NULL or valid
/// (with `strategy` NULL or NUL-terminated); `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn augur_session_new(
    target: *const crate::model::augur_model,
    draft: *const crate::model::augur_model,
    params: *const augur_session_params,
    out: *mut *mut augur_session,
) -> augur_status {
    guard("augur_session_new", || {
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: NULL or a live handle, as the caller promises.
        let target = unsafe { model_ref(target, "target") }?;
        // SAFETY: as above.
        let draft = unsafe { draft.as_ref() };
        // SAFETY: NULL or valid, as the caller promises.
        let params = unsafe { params.as_ref() }.copied().unwrap_or_default();
        let (options, sampling) = options_from(&params, &target.inner, false)?;
        let kind = options.strategy.kind();
        let draft = if kind.needs_draft() || (kind.uses_draft() && draft.is_some()) {
            let draft = draft.ok_or_else(|| {
                FfiError::invalid(format!(
                    "the {} strategy needs a draft model: pass one to augur_session_new",
                    options.strategy.kind()
                ))
            })?;
            augur_facade::gguf::check_draft_compatible(target.inner.path(), draft.inner.path())
                .map_err(|e| FfiError::from(augur_facade::AugurError::from(e)))?;
            Some(Arc::clone(&draft.inner))
        } else {
            None
        };
        let engine = serialized(|| Engine::with_models(Arc::clone(&target.inner), draft, options))?;
        // SAFETY: checked above.
        unsafe { publish(out, new_session(engine, sampling, None)) };
        Ok(())
    })
}

fn new_session(
    engine: Engine,
    sampling: SamplingParams,
    drafter_failure: Option<FailureSlot>,
) -> augur_session {
    augur_session {
        engine,
        sampling,
        last_tokens: Vec::new(),
        drafter_failure,
        poisoned: false,
        piece: Vec::new(),
    }
}

/// Creates a session over `target` whose drafts come from the application's
/// `drafter`, verified by the same exact rule as every strategy: the output
/// is the target model's whatever the drafter proposes. `params` (NULL =
/// defaults) supplies the sampling settings, `exact_mode`, `draft_max` (0 =
/// adaptive draft length, N > 0 = ask for N drafts every step) and
/// `draft_min`; `strategy` is ignored.
///
/// The struct `*drafter` is copied; its `user_data` must stay valid until the
/// session is freed. Ownership of `*out` as for `augur_session_new`.
///
/// # Safety
/// `target` must be NULL or a live handle; `drafter` NULL or valid, with
/// callbacks that follow `augur_drafter`'s rules; `params` NULL or valid;
/// `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn augur_session_new_with_drafter(
    target: *const crate::model::augur_model,
    drafter: *const augur_drafter,
    params: *const augur_session_params,
    out: *mut *mut augur_session,
) -> augur_status {
    guard("augur_session_new_with_drafter", || {
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: NULL or a live handle, as the caller promises.
        let target = unsafe { model_ref(target, "target") }?;
        // SAFETY: NULL or valid, as the caller promises.
        let drafter = unsafe { drafter.as_ref() }.ok_or_else(|| FfiError::null("drafter"))?;
        let failure: FailureSlot = Arc::new(Mutex::new(None));
        let drafter = CDrafter::new(drafter, Arc::clone(&failure))
            .ok_or_else(|| FfiError::null("drafter->propose"))?;
        // SAFETY: NULL or valid, as the caller promises.
        let params = unsafe { params.as_ref() }.copied().unwrap_or_default();
        let (options, sampling) = options_from(&params, &target.inner, true)?;
        let engine = serialized(|| {
            Engine::with_drafter(
                Arc::clone(&target.inner),
                options,
                C_DRAFTER_NAME,
                Box::new(drafter),
            )
        })?;
        // SAFETY: checked above.
        unsafe { publish(out, new_session(engine, sampling, Some(failure))) };
        Ok(())
    })
}

/// Releases a session (its context and strategy; its models when no other
/// handle or session holds them). NULL is ignored. Freeing twice, or while
/// another thread uses the session, is undefined behaviour.
///
/// # Safety
/// `session` must be NULL or a live handle not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn augur_session_free(session: *mut augur_session) {
    if session.is_null() {
        return;
    }
    guard_void("augur_session_free", || {
        // SAFETY: a live handle made by `Box::into_raw` in `publish`.
        drop(unsafe { Box::from_raw(session) });
    });
}

/// The session's strategy name ("auto", "baseline", "speculative",
/// "lookahead", "prompt-lookup", "repeat-last", or "c-drafter" for
/// application drafters): a static
/// string, never to be freed. NULL for a NULL session.
///
/// # Safety
/// `session` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn augur_session_strategy(session: *const augur_session) -> *const c_char {
    // SAFETY: NULL or a live handle, as the caller promises.
    let Some(session) = (unsafe { session.as_ref() }) else {
        return std::ptr::null();
    };
    let name = session.engine.strategy_name();
    // Static NUL-terminated copies of the names the engine reports.
    let c: &'static std::ffi::CStr = match name {
        "auto" => c"auto",
        "baseline" => c"baseline",
        "speculative" => c"speculative",
        "repeat-last" => c"repeat-last",
        "lookahead" => c"lookahead",
        "prompt-lookup" => c"prompt-lookup",
        C_DRAFTER_NAME => c"c-drafter",
        _ => c"unknown",
    };
    c.as_ptr()
}

/// Generates up to `max_tokens` (> 0) tokens after `prompt` (NUL-terminated
/// UTF-8; with `chat`, wrapped first as one user message in the model's chat
/// template), streaming the text to `on_token` (may be NULL) as it is
/// decided. The output is exactly the target model's for these settings,
/// whichever strategy runs (see `augur_stats.exactness`).
///
/// `stats_out` (may be NULL) receives the generation's statistics; on
/// failure it is zeroed. The generated token ids are available afterwards
/// from `augur_session_last_tokens`. Each call starts afresh from its prompt.
///
/// Errors: `AUGUR_CONTEXT_OVERFLOW` when the prompt does not fit the context,
/// `AUGUR_CHAT_TEMPLATE` when `chat` is set but the model has no template,
/// `AUGUR_DRAFTER` when an application drafter broke its contract,
/// `AUGUR_INVALID_ARGUMENT` for an empty prompt or `max_tokens` <= 0.
///
/// # Safety
/// `session` must be NULL or a live handle used by no other thread; `prompt`
/// NULL or NUL-terminated; `stats_out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn augur_generate(
    session: *mut augur_session,
    prompt: *const c_char,
    max_tokens: i32,
    chat: bool,
    on_token: augur_on_token,
    user_data: *mut c_void,
    stats_out: *mut augur_stats,
) -> augur_status {
    // SAFETY: NULL or valid, as the caller promises.
    unsafe { write_opt(stats_out, augur_stats::default()) };
    // SAFETY: NULL or a live handle, as the caller promises.
    let session = unsafe { session.as_mut() };
    run_generation("augur_generate", session, |s| {
        // SAFETY: NULL or NUL-terminated, as the caller promises.
        let text = unsafe { str_arg(prompt, "prompt") }?;
        let tokens = s.engine.tokenize_prompt(text, chat)?;
        // SAFETY: the caller's callback, stats pointer NULL or valid.
        unsafe { generate_from(s, &tokens, max_tokens, on_token, user_data, stats_out) }
    })
}

/// As `augur_generate`, from a prompt given as `n_tokens` token ids (for
/// applications that tokenize themselves, e.g. with `augur_tokenize`). Ids
/// outside the vocabulary give `AUGUR_INVALID_ARGUMENT`.
///
/// # Safety
/// `session` must be NULL or a live handle used by no other thread; `tokens`
/// NULL or valid for `n_tokens` reads; `stats_out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn augur_generate_tokens(
    session: *mut augur_session,
    tokens: *const i32,
    n_tokens: usize,
    max_tokens: i32,
    on_token: augur_on_token,
    user_data: *mut c_void,
    stats_out: *mut augur_stats,
) -> augur_status {
    // SAFETY: NULL or valid, as the caller promises.
    unsafe { write_opt(stats_out, augur_stats::default()) };
    // SAFETY: NULL or a live handle, as the caller promises.
    let session = unsafe { session.as_mut() };
    run_generation("augur_generate_tokens", session, |s| {
        let model = Arc::clone(s.engine.target_model());
        // SAFETY: `tokens` holds `n_tokens` ids, as the caller promises.
        let prompt = unsafe { tokens_arg(&model, tokens, n_tokens) }?;
        // SAFETY: the caller's callback, stats pointer NULL or valid.
        unsafe { generate_from(s, &prompt, max_tokens, on_token, user_data, stats_out) }
    })
}

/// Runs a generation call: refuses NULL and poisoned sessions, and poisons
/// the session when the call panics.
fn run_generation(
    name: &str,
    session: Option<&mut augur_session>,
    f: impl FnOnce(&mut augur_session) -> Result<(), FfiError>,
) -> augur_status {
    let Some(session) = session else {
        return guard(name, || Err(FfiError::null("session")));
    };
    if session.poisoned {
        return guard(name, || {
            Err(FfiError::new(
                augur_status::AUGUR_PANIC,
                "this session panicked in an earlier call and cannot be used: free it",
            ))
        });
    }
    session.last_tokens.clear();
    let status = guard(name, || f(&mut *session));
    if status == augur_status::AUGUR_PANIC {
        session.poisoned = true;
    }
    status
}

/// The shared body of the generate calls.
///
/// # Safety
/// `on_token` must follow `augur_on_token`'s rules with `user_data`;
/// `stats_out` must be NULL or valid for a write.
unsafe fn generate_from(
    s: &mut augur_session,
    prompt: &[TokenId],
    max_tokens: i32,
    on_token: augur_on_token,
    user_data: *mut c_void,
    stats_out: *mut augur_stats,
) -> Result<(), FfiError> {
    if max_tokens <= 0 {
        return Err(FfiError::invalid(format!(
            "max_tokens must be at least 1, got {max_tokens}"
        )));
    }
    if prompt.is_empty() {
        return Err(FfiError::invalid("the prompt is empty"));
    }
    let params = GenerateParams {
        max_tokens: max_tokens as usize,
        sampling: s.sampling.clone(),
    };
    if let Some(slot) = &s.drafter_failure {
        if let Ok(mut f) = slot.lock() {
            *f = None;
        }
    }
    let piece_buf = &mut s.piece;
    let mut on_piece = |_t: TokenId, text: &str| -> bool {
        let Some(cb) = on_token else {
            return true;
        };
        if text.is_empty() {
            return true;
        }
        piece_buf.clear();
        piece_buf.extend_from_slice(text.as_bytes());
        piece_buf.push(0);
        // SAFETY: the application's callback, with its user data and a
        // NUL-terminated buffer of `text.len()` bytes valid during the call.
        unsafe { cb(user_data, piece_buf.as_ptr().cast::<c_char>(), text.len()) }
    };
    let result = s.engine.generate(prompt, &params, &mut on_piece);
    let generation = match result {
        Ok(g) => g,
        Err(e) => {
            // A drafter's broken contract surfaces as a strategy error: report
            // it as the drafter's.
            let drafter_failure = s
                .drafter_failure
                .as_ref()
                .and_then(|slot| slot.lock().ok().and_then(|mut f| f.take()));
            return Err(match drafter_failure {
                Some(reason) => FfiError::new(augur_status::AUGUR_DRAFTER, reason),
                None => e.into(),
            });
        }
    };
    // SAFETY: NULL or valid, as the caller promises.
    unsafe { write_opt(stats_out, augur_stats::from(&generation)) };
    s.last_tokens = generation.tokens;
    Ok(())
}

/// The token ids the session's last successful generation produced (the
/// end-of-generation token excluded; empty after a failed one).
///
/// Buffer convention: `*n_out` always receives the number of tokens; if
/// `cap` is smaller, nothing is written and the call returns
/// `AUGUR_BUFFER_TOO_SMALL`. `out` may be NULL when `cap` is 0.
///
/// # Safety
/// `session` must be NULL or a live handle used by no other thread; `out`
/// valid for `cap` writes (or NULL with `cap` 0); `n_out` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn augur_session_last_tokens(
    session: *const augur_session,
    out: *mut i32,
    cap: usize,
    n_out: *mut usize,
) -> augur_status {
    guard("augur_session_last_tokens", || {
        // SAFETY: NULL or valid, as the caller promises.
        unsafe { write_opt(n_out, 0) };
        // SAFETY: NULL or a live handle, as the caller promises.
        let session = unsafe { session.as_ref() }.ok_or_else(|| FfiError::null("session"))?;
        // SAFETY: as above.
        unsafe { write_opt(n_out, session.last_tokens.len()) };
        // SAFETY: `out` holds `cap` tokens, as the caller promises.
        unsafe { copy_tokens(&session.last_tokens, out, cap) }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::last_error;
    use crate::model::{augur_model, augur_model_free, augur_model_load};
    use std::ffi::CString;

    fn model_file() -> CString {
        let path = augur_facade::models::path_of("smollm2-135m").unwrap();
        CString::new(path.to_str().unwrap()).unwrap()
    }

    fn load() -> *mut augur_model {
        let mut m = std::ptr::null_mut();
        let path = model_file();
        let s = unsafe { augur_model_load(path.as_ptr(), std::ptr::null(), &mut m) };
        assert_eq!(s, augur_status::AUGUR_OK, "{}", last_error());
        m
    }

    fn small_session(m: *const augur_model) -> *mut augur_session {
        let mut p = augur_session_params_default();
        p.n_ctx = 128;
        let mut s = std::ptr::null_mut();
        let st = unsafe { augur_session_new(m, std::ptr::null(), &p, &mut s) };
        assert_eq!(st, augur_status::AUGUR_OK, "{}", last_error());
        s
    }

    fn last_tokens(s: *const augur_session) -> Vec<i32> {
        let mut out = [0i32; 64];
        let mut n = 0;
        let st = unsafe { augur_session_last_tokens(s, out.as_mut_ptr(), out.len(), &mut n) };
        assert_eq!(st, augur_status::AUGUR_OK);
        out[..n].to_vec()
    }

    #[test]
    fn a_panic_in_the_callback_path_is_caught_and_poisons_the_session() {
        let m = load();
        let s = small_session(m);
        let session = unsafe { &mut *s };
        let prompt = session.engine.tokenize_prompt("Hello", false).unwrap();
        let params = GenerateParams {
            max_tokens: 4,
            sampling: SamplingParams::greedy(),
        };
        // A panic raised while a token is being handed out, deep inside the
        // generation loop, surfaces as AUGUR_PANIC instead of unwinding.
        let status = run_generation("augur_generate", Some(&mut *session), |s| {
            s.engine.generate(&prompt, &params, &mut |_, _| {
                panic!("in the token callback")
            })?;
            Ok(())
        });
        assert_eq!(status, augur_status::AUGUR_PANIC);
        assert!(
            last_error().contains("in the token callback"),
            "{}",
            last_error()
        );
        // The session refuses further use; freeing it is fine.
        let st = unsafe {
            augur_generate(
                s,
                c"Hello".as_ptr(),
                2,
                false,
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(st, augur_status::AUGUR_PANIC);
        assert!(last_error().contains("free it"), "{}", last_error());
        unsafe { augur_session_free(s) };
        unsafe { augur_model_free(m) };
    }

    /// A raw pointer that a test moves to another thread.
    struct Shared<T>(*mut T);
    unsafe impl<T> Send for Shared<T> {}

    #[test]
    fn sessions_on_two_threads_share_one_model() {
        let m = load();
        let reference = {
            let s = small_session(m);
            let st = unsafe {
                augur_generate(
                    s,
                    c"The sky is".as_ptr(),
                    6,
                    false,
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(st, augur_status::AUGUR_OK);
            let t = last_tokens(s);
            unsafe { augur_session_free(s) };
            t
        };
        assert!(!reference.is_empty());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let shared = Shared(m);
                std::thread::spawn(move || {
                    let shared = shared;
                    let s = small_session(shared.0);
                    let st = unsafe {
                        augur_generate(
                            s,
                            c"The sky is".as_ptr(),
                            6,
                            false,
                            None,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                        )
                    };
                    assert_eq!(st, augur_status::AUGUR_OK, "{}", last_error());
                    let t = last_tokens(s);
                    unsafe { augur_session_free(s) };
                    t
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), reference);
        }
        unsafe { augur_model_free(m) };
    }
}
