//! Status codes, the thread-local last error message, and the guard every
//! entry point runs in (no panic ever unwinds into the caller).

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use augur_facade::{AugurError, CoreError};
use thiserror::Error;

/// The result of every fallible call. The numeric codes are stable: new codes
/// are only ever added at the end. `AUGUR_OK` is 0; everything else is an
/// error whose message `augur_last_error_message` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum augur_status {
    /// Success.
    AUGUR_OK = 0,
    /// A required pointer argument was NULL.
    AUGUR_NULL_POINTER = 1,
    /// A string argument was not valid UTF-8.
    AUGUR_INVALID_UTF8 = 2,
    /// An argument or parameter was out of range or inconsistent.
    AUGUR_INVALID_ARGUMENT = 3,
    /// The strategy name is not one augur knows.
    AUGUR_UNKNOWN_STRATEGY = 4,
    /// A model file could not be read, is not a valid GGUF file, or llama.cpp
    /// refused it.
    AUGUR_MODEL_LOAD = 5,
    /// The draft model's vocabulary differs from the target's.
    AUGUR_VOCAB_MISMATCH = 6,
    /// The prompt (or the text so far) does not fit the context window.
    AUGUR_CONTEXT_OVERFLOW = 7,
    /// The caller's buffer is too small; the call reported the size needed.
    AUGUR_BUFFER_TOO_SMALL = 8,
    /// Generation failed in the backend or a strategy.
    AUGUR_GENERATION = 9,
    /// augur panicked (a bug); the panic was caught at the boundary. A session
    /// that panicked refuses further use: free it.
    AUGUR_PANIC = 10,
    /// An application drafter broke its contract (too many tokens, token ids
    /// outside the vocabulary).
    AUGUR_DRAFTER = 11,
    /// Text could not be tokenized.
    AUGUR_TOKENIZE = 12,
    /// The model has no chat template, or applying it failed.
    AUGUR_CHAT_TEMPLATE = 13,
    /// llama.cpp could not be initialized or could not create a context
    /// (for example, out of memory for the KV cache).
    AUGUR_BACKEND = 14,
}

/// An error on its way to the caller: a status code and a message.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct FfiError {
    /// The code returned to the caller.
    pub status: augur_status,
    /// The text `augur_last_error_message` returns.
    pub message: String,
}

impl FfiError {
    /// An error with `status` and `message`.
    pub fn new(status: augur_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A NULL `name` argument.
    pub fn null(name: &str) -> Self {
        Self::new(
            augur_status::AUGUR_NULL_POINTER,
            format!("{name} must not be NULL"),
        )
    }

    /// An out-of-range or inconsistent argument.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(augur_status::AUGUR_INVALID_ARGUMENT, message)
    }
}

fn core_status(e: &CoreError) -> augur_status {
    use augur_facade::core::ModelError;
    match e {
        CoreError::ContextOverflow { .. } | CoreError::Model(ModelError::ContextFull { .. }) => {
            augur_status::AUGUR_CONTEXT_OVERFLOW
        }
        CoreError::InvalidSampling(_)
        | CoreError::InvalidParameter(_)
        | CoreError::EmptyPrompt
        | CoreError::TokenOutOfRange { .. }
        | CoreError::Unsupported { .. } => augur_status::AUGUR_INVALID_ARGUMENT,
        _ => augur_status::AUGUR_GENERATION,
    }
}

impl From<AugurError> for FfiError {
    fn from(e: AugurError) -> Self {
        use augur_facade::gguf::GgufError;
        use augur_facade::llama::LlamaError;
        let status = match &e {
            AugurError::Gguf(GgufError::VocabMismatch { .. }) => augur_status::AUGUR_VOCAB_MISMATCH,
            AugurError::Gguf(_) | AugurError::Models(_) => augur_status::AUGUR_MODEL_LOAD,
            AugurError::Llama(l) => match l {
                LlamaError::Load { .. } => augur_status::AUGUR_MODEL_LOAD,
                LlamaError::Tokenize(_) => augur_status::AUGUR_TOKENIZE,
                LlamaError::ChatTemplate(_) => augur_status::AUGUR_CHAT_TEMPLATE,
                LlamaError::InvalidParameter(_) => augur_status::AUGUR_INVALID_ARGUMENT,
                _ => augur_status::AUGUR_BACKEND,
            },
            AugurError::Core(c) => core_status(c),
            AugurError::Config(_) => augur_status::AUGUR_INVALID_ARGUMENT,
            // The facade's error enum may grow; an unknown kind is still an error.
            #[allow(unreachable_patterns)]
            _ => augur_status::AUGUR_GENERATION,
        };
        Self::new(status, e.to_string())
    }
}

impl From<augur_facade::llama::LlamaError> for FfiError {
    fn from(e: augur_facade::llama::LlamaError) -> Self {
        AugurError::from(e).into()
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `message` as this thread's last error.
pub fn set_last_error(message: &str) {
    LAST_ERROR.with(|m| {
        let mut m = m.borrow_mut();
        m.clear();
        m.push_str(message);
    });
}

/// This thread's last error message (empty when the last call succeeded).
pub fn last_error() -> String {
    LAST_ERROR.with(|m| m.borrow().clone())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs one entry point: clears the last error, catches any panic, and turns
/// the outcome into a status (recording the message of a failure).
pub fn guard(name: &str, f: impl FnOnce() -> Result<(), FfiError>) -> augur_status {
    set_last_error("");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => augur_status::AUGUR_OK,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "{name}: internal error (panic): {}",
                panic_message(payload.as_ref())
            ));
            augur_status::AUGUR_PANIC
        }
    }
}

/// Runs an entry point that returns no status: a panic is caught and dropped
/// (there is nothing to report it through but the last error message).
pub fn guard_void(name: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        set_last_error(&format!(
            "{name}: internal error (panic): {}",
            panic_message(payload.as_ref())
        ));
    }
}

/// Copies `bytes` into the caller's `buf` of `len` bytes, always
/// NUL-terminated, cutting at a character boundary when it does not fit.
/// Returns the bytes copied (without the NUL) and whether everything fit.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes (it may be NULL only when
/// `len` is 0).
pub unsafe fn copy_truncated(text: &str, buf: *mut c_char, len: usize) -> (usize, bool) {
    if buf.is_null() || len == 0 {
        return (0, text.is_empty());
    }
    let mut n = text.len().min(len - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: the caller promises `len` writable bytes at `buf`; n + 1 <= len.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    (n, n == text.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn guard_turns_panics_into_a_status_and_a_message() {
        let status = guard("augur_test", || panic!("boom {}", 7));
        assert_eq!(status, augur_status::AUGUR_PANIC);
        let msg = last_error();
        assert!(
            msg.contains("augur_test") && msg.contains("boom 7"),
            "{msg}"
        );
        // The next call clears it.
        assert_eq!(guard("augur_test", || Ok(())), augur_status::AUGUR_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn guard_reports_errors_with_their_status() {
        let status = guard("augur_test", || Err(FfiError::null("path")));
        assert_eq!(status, augur_status::AUGUR_NULL_POINTER);
        assert_eq!(last_error(), "path must not be NULL");
    }

    #[test]
    fn last_error_is_per_thread() {
        set_last_error("main thread");
        std::thread::spawn(|| {
            assert_eq!(last_error(), "");
            set_last_error("other");
        })
        .join()
        .unwrap();
        assert_eq!(last_error(), "main thread");
    }

    #[test]
    fn truncation_keeps_characters_whole_and_terminates() {
        let mut buf = [0x55 as c_char; 6];
        // "héllo": 'é' takes bytes 1..3.
        let (n, whole) = unsafe { copy_truncated("héllo", buf.as_mut_ptr(), 3) };
        assert_eq!((n, whole), (1, false));
        assert_eq!(buf[..2], [b'h' as c_char, 0]);
        let (n, whole) = unsafe { copy_truncated("héllo", buf.as_mut_ptr(), 6) };
        assert_eq!((n, whole), (5, false));
        let (n, whole) = unsafe { copy_truncated("hé", buf.as_mut_ptr(), 6) };
        assert_eq!((n, whole), (3, true));
        assert_eq!(buf[3], 0);
        let (n, whole) = unsafe { copy_truncated("x", std::ptr::null_mut(), 0) };
        assert_eq!((n, whole), (0, false));
    }
}
