//! Re-quantization of GGUF files through llama.cpp's `llama_model_quantize`.

use std::ffi::CString;
use std::path::Path;

use crate::backend::init_backend;
use crate::LlamaError;

/// Target weight types for [`quantize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    /// 16-bit floats: largest, memory-bound decoding, cheap batched passes.
    F16,
    /// 8-bit blocks.
    Q8_0,
    /// 4-bit blocks.
    Q4_0,
}

impl QuantType {
    /// Parses `f16`, `q8_0` or `q4_0` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "f16" => Some(Self::F16),
            "q8_0" => Some(Self::Q8_0),
            "q4_0" => Some(Self::Q4_0),
            _ => None,
        }
    }

    fn ftype(self) -> llama_cpp_sys_2::llama_ftype {
        match self {
            Self::F16 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16,
            Self::Q8_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0,
            Self::Q4_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0,
        }
    }
}

/// Writes `dst`, a copy of the GGUF model `src` with weights converted to
/// `to`, using `threads` threads (0 = all cores). Quantized sources are
/// dequantized first, so the result has the source's precision at most.
pub fn quantize(src: &Path, dst: &Path, to: QuantType, threads: usize) -> Result<(), LlamaError> {
    init_backend()?;
    if !src.is_file() {
        return Err(LlamaError::Quantize(format!(
            "{} is not a file",
            src.display()
        )));
    }
    if src == dst {
        return Err(LlamaError::Quantize(
            "source and destination are the same file".into(),
        ));
    }
    let cpath = |p: &Path| {
        CString::new(p.to_string_lossy().as_bytes())
            .map_err(|_| LlamaError::Quantize(format!("path {} contains a NUL byte", p.display())))
    };
    let (csrc, cdst) = (cpath(src)?, cpath(dst)?);
    // SAFETY: returns a plain struct by value.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(threads).unwrap_or(0);
    params.ftype = to.ftype();
    params.allow_requantize = true;
    // SAFETY: both paths are valid NUL-terminated strings and `params` lives
    // for the whole call.
    let rc =
        unsafe { llama_cpp_sys_2::llama_model_quantize(csrc.as_ptr(), cdst.as_ptr(), &params) };
    if rc != 0 {
        let _ = std::fs::remove_file(dst);
        return Err(LlamaError::Quantize(format!(
            "llama_model_quantize returned {rc} for {}",
            src.display()
        )));
    }
    Ok(())
}
