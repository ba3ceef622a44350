//! Models: loading, freeing, tokenization.

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use augur_facade::llama::GgufModel;
use augur_facade::TokenId;

use crate::error::{augur_status, guard, guard_void, FfiError};
use crate::types::augur_model_params;

/// A loaded GGUF model (weights memory-mapped, read-only).
///
/// Ownership: created by `augur_model_load`, released by `augur_model_free`.
/// Sessions hold their own reference to the model, so the handle may be freed
/// while sessions made from it are still alive: the weights stay loaded until
/// the last of them is freed too.
///
/// Threads: a model may be shared by any number of sessions and used from any
/// number of threads at once (tokenization and sessions only read it).
pub struct augur_model {
    pub(crate) inner: Arc<GgufModel>,
}

/// llama.cpp's model loading and context creation are not safe to run
/// concurrently: every call that does either takes this lock.
pub(crate) static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// Runs `f` holding [`CREATE_LOCK`] (a panic that poisoned it leaves nothing
/// half-made that the lock protects, so poisoning is ignored).
pub(crate) fn serialized<T>(f: impl FnOnce() -> T) -> T {
    let _lock = CREATE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f()
}

/// Reads a NUL-terminated UTF-8 argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller promises.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|e| {
        FfiError::new(
            augur_status::AUGUR_INVALID_UTF8,
            format!("{name} is not valid UTF-8 ({e})"),
        )
    })
}

/// Writes `value` through `out` when it is not NULL.
///
/// # Safety
/// `out` must be NULL or valid for a write.
pub(crate) unsafe fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: valid for a write, as the caller promises.
        unsafe { out.write(value) };
    }
}

/// Borrows a model handle.
///
/// # Safety
/// `model` must be NULL or a live handle from `augur_model_load`.
pub(crate) unsafe fn model_ref<'a>(
    model: *const augur_model,
    name: &str,
) -> Result<&'a augur_model, FfiError> {
    // SAFETY: NULL or a live handle, as the caller promises.
    unsafe { model.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// The default model parameters (CPU only).
#[no_mangle]
pub extern "C" fn augur_model_params_default() -> augur_model_params {
    augur_model_params::default()
}

/// Loads the GGUF model at `path` (NUL-terminated UTF-8). `params` may be
/// NULL (defaults).
///
/// The file is validated before llama.cpp reads it: a path that is not a
/// regular file (missing, a directory, a FIFO — never opened, so the call
/// does not block —, a device), a truncated or non-GGUF file, and
/// hyperparameters llama.cpp is known to abort on (layer counts, head
/// counts, expert counts, epsilons, context and embedding sizes, token
/// texts, tensor shapes) give `AUGUR_MODEL_LOAD` with the reason.
///
/// Limits: llama.cpp supports over 150 architectures, each with its own
/// loader and graph, and a file crafted against one of them may still make
/// llama.cpp abort the process (an assertion, not an error) in this call or
/// in the first generation. An application that opens files it does not
/// trust should load each new file once in a child process first (fork, or
/// a helper program) and use it only if the child ended normally; the augur
/// CLI does this for every file it has not loaded before.
///
/// On success `*out` receives a new model that the caller owns and must
/// release with `augur_model_free`; on failure `*out` is set to NULL.
/// Thread-safe (loads are serialized internally).
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `params` NULL or valid; `out`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn augur_model_load(
    path: *const c_char,
    params: *const augur_model_params,
    out: *mut *mut augur_model,
) -> augur_status {
    guard("augur_model_load", || {
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        // SAFETY: `out` is valid for a write (checked non-NULL; the caller
        // promises the rest).
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: NULL or a valid struct, as the caller promises.
        let params = unsafe { params.as_ref() }.copied().unwrap_or_default();
        let n_gpu_layers = u32::try_from(params.n_gpu_layers).unwrap_or(i32::MAX as u32);
        let inner = serialized(|| augur_facade::load_model(Path::new(path), n_gpu_layers))?;
        let handle = Box::into_raw(Box::new(augur_model { inner }));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Releases a model handle from `augur_model_load`. NULL is ignored. Sessions
/// made from the model keep it alive until they are freed. Freeing the same
/// handle twice is undefined behaviour.
///
/// # Safety
/// `model` must be NULL or a live handle from `augur_model_load`.
#[no_mangle]
pub unsafe extern "C" fn augur_model_free(model: *mut augur_model) {
    if model.is_null() {
        return;
    }
    guard_void("augur_model_free", || {
        // SAFETY: a live handle made by `Box::into_raw` in `augur_model_load`.
        drop(unsafe { Box::from_raw(model) });
    });
}

/// The model's vocabulary size (token ids are 0 .. n_vocab - 1); 0 for NULL.
///
/// # Safety
/// `model` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn augur_model_n_vocab(model: *const augur_model) -> usize {
    // SAFETY: NULL or a live handle, as the caller promises.
    unsafe { model.as_ref() }.map_or(0, |m| m.inner.n_vocab())
}

/// The context length the model was trained with; 0 for NULL.
///
/// # Safety
/// `model` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn augur_model_n_ctx_train(model: *const augur_model) -> usize {
    // SAFETY: NULL or a live handle, as the caller promises.
    unsafe { model.as_ref() }.map_or(0, |m| m.inner.n_ctx_train())
}

/// Checks, from the two files' headers only (no weights are loaded), that a
/// draft model has the target's vocabulary: `AUGUR_OK`, or
/// `AUGUR_VOCAB_MISMATCH` with the differences in the message
/// (`AUGUR_MODEL_LOAD` when a file cannot be read).
///
/// # Safety
/// Both paths must be NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn augur_check_draft_compatible(
    target_path: *const c_char,
    draft_path: *const c_char,
) -> augur_status {
    guard("augur_check_draft_compatible", || {
        // SAFETY: NULL or NUL-terminated, as the caller promises.
        let target = unsafe { str_arg(target_path, "target_path") }?;
        // SAFETY: as above.
        let draft = unsafe { str_arg(draft_path, "draft_path") }?;
        augur_facade::gguf::check_draft_compatible(Path::new(target), Path::new(draft))
            .map_err(|e| FfiError::from(augur_facade::AugurError::from(e)))
    })
}

/// Tokenizes `text` (NUL-terminated UTF-8). `add_special` adds the
/// beginning-of-sequence token where the model wants one; special-token text
/// such as `<|im_start|>` is parsed as special tokens.
///
/// Buffer convention: `*n_out` always receives the number of tokens (when
/// `n_out` is not NULL). If `cap` is smaller, nothing is written to `out`
/// and the call returns `AUGUR_BUFFER_TOO_SMALL`: call again with a buffer
/// of `*n_out` tokens. `out` may be NULL when `cap` is 0 (a size query).
///
/// # Safety
/// `model` must be NULL or a live handle; `text` NULL or NUL-terminated;
/// `out` valid for `cap` writes (or NULL with `cap` 0); `n_out` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn augur_tokenize(
    model: *const augur_model,
    text: *const c_char,
    add_special: bool,
    out: *mut i32,
    cap: usize,
    n_out: *mut usize,
) -> augur_status {
    guard("augur_tokenize", || {
        // SAFETY: NULL or valid, as the caller promises.
        unsafe { write_opt(n_out, 0) };
        // SAFETY: NULL or a live handle, as the caller promises.
        let model = unsafe { model_ref(model, "model") }?;
        // SAFETY: NULL or NUL-terminated, as the caller promises.
        let text = unsafe { str_arg(text, "text") }?;
        let tokens = model.inner.tokenize(text, add_special)?;
        // SAFETY: as above.
        unsafe { write_opt(n_out, tokens.len()) };
        // SAFETY: `out` holds `cap` tokens, as the caller promises.
        unsafe { copy_tokens(&tokens, out, cap) }
    })
}

/// Copies `tokens` into the caller's buffer, or reports how many it needs.
///
/// # Safety
/// `out` must be valid for `cap` writes, or NULL.
pub(crate) unsafe fn copy_tokens(
    tokens: &[TokenId],
    out: *mut i32,
    cap: usize,
) -> Result<(), FfiError> {
    if tokens.len() > cap {
        return Err(FfiError::new(
            augur_status::AUGUR_BUFFER_TOO_SMALL,
            format!(
                "the buffer holds {cap} tokens but {} are needed",
                tokens.len()
            ),
        ));
    }
    if tokens.is_empty() {
        return Ok(());
    }
    if out.is_null() {
        return Err(FfiError::null("out"));
    }
    for (i, &t) in tokens.iter().enumerate() {
        // Ids come from the vocabulary, whose size fits in i32.
        let t = i32::try_from(t).map_err(|_| FfiError::invalid(format!("token id {t}")))?;
        // SAFETY: i < tokens.len() <= cap, and `out` holds `cap` tokens.
        unsafe { out.add(i).write(t) };
    }
    Ok(())
}

/// Copies `bytes` plus a terminating NUL into the caller's buffer, or
/// reports how much it needs.
///
/// # Safety
/// `buf` must be valid for `cap` writes, or NULL.
unsafe fn copy_bytes(bytes: &[u8], buf: *mut c_char, cap: usize) -> Result<(), FfiError> {
    if bytes.len() >= cap {
        return Err(FfiError::new(
            augur_status::AUGUR_BUFFER_TOO_SMALL,
            format!(
                "the buffer holds {cap} bytes but {} are needed (with the NUL)",
                bytes.len() + 1
            ),
        ));
    }
    if buf.is_null() {
        return Err(FfiError::null("buf"));
    }
    // SAFETY: bytes.len() + 1 <= cap bytes are writable at `buf`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    Ok(())
}

/// Checks a caller's token id against the model's vocabulary.
pub(crate) fn token_arg(model: &GgufModel, token: i32) -> Result<TokenId, FfiError> {
    let n_vocab = model.n_vocab();
    match TokenId::try_from(token) {
        Ok(t) if (t as usize) < n_vocab => Ok(t),
        _ => Err(FfiError::invalid(format!(
            "token id {token} is outside the vocabulary (0..{n_vocab})"
        ))),
    }
}

/// The raw bytes of one token (special tokens rendered as their text). A
/// piece may end inside a UTF-8 character: concatenate pieces before
/// decoding, or use `augur_detokenize`.
///
/// Buffer convention: `*n_out` always receives the piece's length in bytes
/// (without the NUL). The call writes the bytes and a terminating NUL, so it
/// needs `cap >= *n_out + 1`; otherwise it writes nothing and returns
/// `AUGUR_BUFFER_TOO_SMALL`. A token id outside the vocabulary gives
/// `AUGUR_INVALID_ARGUMENT`.
///
/// # Safety
/// `model` must be NULL or a live handle; `buf` valid for `cap` writes (or
/// NULL with `cap` 0); `n_out` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn augur_token_to_piece(
    model: *const augur_model,
    token: i32,
    buf: *mut c_char,
    cap: usize,
    n_out: *mut usize,
) -> augur_status {
    guard("augur_token_to_piece", || {
        // SAFETY: NULL or valid, as the caller promises.
        unsafe { write_opt(n_out, 0) };
        // SAFETY: NULL or a live handle, as the caller promises.
        let model = unsafe { model_ref(model, "model") }?;
        let token = token_arg(&model.inner, token)?;
        let piece = model.inner.token_to_piece(token, true);
        // SAFETY: as above.
        unsafe { write_opt(n_out, piece.len()) };
        // SAFETY: `buf` holds `cap` bytes, as the caller promises.
        unsafe { copy_bytes(&piece, buf, cap) }
    })
}

/// The text of `n_tokens` token ids (special tokens omitted; bytes that are
/// not valid UTF-8 become U+FFFD), NUL-terminated.
///
/// Buffer convention: as `augur_token_to_piece` (`*n_out` is the text's
/// length without the NUL; the call needs `cap >= *n_out + 1`).
///
/// # Safety
/// `model` must be NULL or a live handle; `tokens` valid for `n_tokens`
/// reads (or NULL with `n_tokens` 0); `buf` valid for `cap` writes (or NULL
/// with `cap` 0); `n_out` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn augur_detokenize(
    model: *const augur_model,
    tokens: *const i32,
    n_tokens: usize,
    buf: *mut c_char,
    cap: usize,
    n_out: *mut usize,
) -> augur_status {
    guard("augur_detokenize", || {
        // SAFETY: NULL or valid, as the caller promises.
        unsafe { write_opt(n_out, 0) };
        // SAFETY: NULL or a live handle, as the caller promises.
        let model = unsafe { model_ref(model, "model") }?;
        // SAFETY: `tokens` holds `n_tokens` ids, as the caller promises.
        let ids = unsafe { tokens_arg(&model.inner, tokens, n_tokens) }?;
        let text = model.inner.detokenize(&ids);
        // SAFETY: as above.
        unsafe { write_opt(n_out, text.len()) };
        // SAFETY: `buf` holds `cap` bytes, as the caller promises.
        unsafe { copy_bytes(text.as_bytes(), buf, cap) }
    })
}

/// Reads and checks the caller's token ids.
///
/// # Safety
/// `tokens` must be valid for `n` reads, or NULL.
pub(crate) unsafe fn tokens_arg(
    model: &GgufModel,
    tokens: *const i32,
    n: usize,
) -> Result<Vec<TokenId>, FfiError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if tokens.is_null() {
        return Err(FfiError::null("tokens"));
    }
    // SAFETY: non-NULL and `n` readable ids, as the caller promises.
    let slice = unsafe { std::slice::from_raw_parts(tokens, n) };
    slice.iter().map(|&t| token_arg(model, t)).collect()
}
