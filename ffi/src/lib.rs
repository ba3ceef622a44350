//! libaugur: augur's C ABI. Exact, faster local LLM decoding (speculative,
//! lookahead and prompt-lookup strategies over GGUF models) for applications
//! in C, C++, Swift, Go, Python (ctypes) and anything else that calls C.
//!
//! The header is `include/augur.h`, generated from this crate by cbindgen
//! (`cargo run --release -p augur-ffi --bin augur-gen-header`). Conventions:
//! opaque handles with `_new`/`_free` (or `_load`/`_free`) pairs; every
//! fallible call returns an [`augur_status`] and leaves a message for
//! [`augur_last_error_message`]; NULL pointers, invalid UTF-8 and
//! out-of-range parameters get a status, never a crash; no panic unwinds
//! into the caller.

// The exported names are the C API's (`augur_model`, `AUGUR_OK`).
#![allow(non_camel_case_types)]

mod drafter;
mod error;
mod model;
mod session;
mod types;

use std::ffi::c_char;

pub use drafter::{augur_drafter, augur_propose_fn, augur_reset_fn};
pub use error::augur_status;
pub use model::{
    augur_check_draft_compatible, augur_detokenize, augur_model, augur_model_free,
    augur_model_load, augur_model_n_ctx_train, augur_model_n_vocab, augur_model_params_default,
    augur_token_to_piece, augur_tokenize,
};
pub use session::{
    augur_generate, augur_generate_tokens, augur_on_token, augur_session, augur_session_free,
    augur_session_last_tokens, augur_session_new, augur_session_new_with_drafter,
    augur_session_params_default, augur_session_strategy,
};
pub use types::{
    augur_drafter_stats, augur_exactness, augur_model_params, augur_session_params, augur_stats,
    augur_stop_reason, AUGUR_EXACT_AUTO, AUGUR_EXACT_BIT, AUGUR_EXACT_KERNEL, AUGUR_MAX_DRAFTERS,
};

/// augur's version ("MAJOR.MINOR.PATCH"): a static NUL-terminated string,
/// never to be freed. Thread-safe.
#[no_mangle]
pub extern "C" fn augur_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status code ("AUGUR_OK", "AUGUR_NULL_POINTER", ...): a
/// static NUL-terminated string, never to be freed; "AUGUR_UNKNOWN_STATUS"
/// for a code augur does not define. Thread-safe.
#[no_mangle]
pub extern "C" fn augur_status_name(status: i32) -> *const c_char {
    let name: &'static std::ffi::CStr = match status {
        0 => c"AUGUR_OK",
        1 => c"AUGUR_NULL_POINTER",
        2 => c"AUGUR_INVALID_UTF8",
        3 => c"AUGUR_INVALID_ARGUMENT",
        4 => c"AUGUR_UNKNOWN_STRATEGY",
        5 => c"AUGUR_MODEL_LOAD",
        6 => c"AUGUR_VOCAB_MISMATCH",
        7 => c"AUGUR_CONTEXT_OVERFLOW",
        8 => c"AUGUR_BUFFER_TOO_SMALL",
        9 => c"AUGUR_GENERATION",
        10 => c"AUGUR_PANIC",
        11 => c"AUGUR_DRAFTER",
        12 => c"AUGUR_TOKENIZE",
        13 => c"AUGUR_CHAT_TEMPLATE",
        14 => c"AUGUR_BACKEND",
        _ => c"AUGUR_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

/// Copies the message of this thread's last failed call into `buf` (`len`
/// bytes), always NUL-terminated, cut at a UTF-8 character boundary when it
/// does not fit. Every call that returns a status replaces the message (an
/// empty one after success), except this one, which leaves it unchanged.
///
/// `*written` (when `written` is not NULL) receives the bytes copied,
/// without the NUL. Returns `AUGUR_OK` when the whole message fit, and
/// `AUGUR_BUFFER_TOO_SMALL` when it was cut (or `buf` is NULL or `len` 0,
/// with a non-empty message).
///
/// # Safety
/// `buf` must be valid for `len` writes (or NULL with `len` 0); `written`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn augur_last_error_message(
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> augur_status {
    let result = std::panic::catch_unwind(|| {
        let message = error::last_error();
        // SAFETY: `buf` holds `len` bytes, as the caller promises.
        let (n, whole) = unsafe { error::copy_truncated(&message, buf, len) };
        // SAFETY: NULL or valid, as the caller promises.
        unsafe { model::write_opt(written, n) };
        if whole {
            augur_status::AUGUR_OK
        } else {
            augur_status::AUGUR_BUFFER_TOO_SMALL
        }
    });
    result.unwrap_or(augur_status::AUGUR_PANIC)
}

/// The length in bytes (without the NUL) of this thread's last error
/// message, for sizing the buffer of `augur_last_error_message`.
#[no_mangle]
pub extern "C" fn augur_last_error_length() -> usize {
    std::panic::catch_unwind(|| error::last_error().len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn status_names_match_the_enum() {
        let all = [
            augur_status::AUGUR_OK,
            augur_status::AUGUR_NULL_POINTER,
            augur_status::AUGUR_INVALID_UTF8,
            augur_status::AUGUR_INVALID_ARGUMENT,
            augur_status::AUGUR_UNKNOWN_STRATEGY,
            augur_status::AUGUR_MODEL_LOAD,
            augur_status::AUGUR_VOCAB_MISMATCH,
            augur_status::AUGUR_CONTEXT_OVERFLOW,
            augur_status::AUGUR_BUFFER_TOO_SMALL,
            augur_status::AUGUR_GENERATION,
            augur_status::AUGUR_PANIC,
            augur_status::AUGUR_DRAFTER,
            augur_status::AUGUR_TOKENIZE,
            augur_status::AUGUR_CHAT_TEMPLATE,
            augur_status::AUGUR_BACKEND,
        ];
        for (i, s) in all.iter().enumerate() {
            assert_eq!(*s as i32, i as i32, "codes are dense and stable");
            let name = unsafe { CStr::from_ptr(augur_status_name(*s as i32)) };
            assert_eq!(name.to_str().unwrap(), format!("{s:?}"));
        }
        let unknown = unsafe { CStr::from_ptr(augur_status_name(99)) };
        assert_eq!(unknown.to_str().unwrap(), "AUGUR_UNKNOWN_STATUS");
    }

    #[test]
    fn version_is_the_crate_version() {
        let v = unsafe { CStr::from_ptr(augur_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn last_error_message_reports_truncation_and_keeps_the_message() {
        error::set_last_error("something failed");
        assert_eq!(augur_last_error_length(), 16);
        let mut buf = [0 as c_char; 8];
        let mut n = 99usize;
        let s = unsafe { augur_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(s, augur_status::AUGUR_BUFFER_TOO_SMALL);
        assert_eq!(n, 7);
        let got = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(got.to_str().unwrap(), "somethi");
        let mut big = [0 as c_char; 64];
        let s = unsafe { augur_last_error_message(big.as_mut_ptr(), big.len(), &mut n) };
        assert_eq!(s, augur_status::AUGUR_OK);
        assert_eq!(n, 16);
        let s = unsafe { augur_last_error_message(std::ptr::null_mut(), 0, std::ptr::null_mut()) };
        assert_eq!(s, augur_status::AUGUR_BUFFER_TOO_SMALL);
    }
}
