//! The process-wide llama.cpp backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::{send_logs_to_tracing, LogOptions};

use crate::LlamaError;

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Asks for llama.cpp's logs (forwarded to `tracing`). Takes effect only before
/// the backend is first initialized.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::SeqCst);
}

/// The one llama.cpp backend of this process, initialized on first use.
pub fn init_backend() -> Result<&'static LlamaBackend, LlamaError> {
    let result = BACKEND.get_or_init(|| {
        send_logs_to_tracing(
            LogOptions::default().with_logs_enabled(VERBOSE.load(Ordering::SeqCst)),
        );
        LlamaBackend::init().map_err(|e| e.to_string())
    });
    result.as_ref().map_err(|e| LlamaError::Backend(e.clone()))
}
