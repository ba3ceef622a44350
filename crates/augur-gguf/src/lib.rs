//! GGUF header inspection without loading weights.
//!
//! - [`inspect`]: what a model file says about itself ([`ModelInfo`], with
//!   [`ModelInfo::render_text`] and serde JSON).
//! - [`validate`]: the same, after checking that the header is sane and that
//!   every tensor's data lies inside the file (catches truncated downloads
//!   before llama.cpp is asked to load them).
//! - [`check_draft_compatible`]: whether a draft model's token ids mean the
//!   same as a target's (see [`check_vocab_compatible`] for the rules).
//!
//! Only the header is read: magic, key/value metadata (including the token
//! list, which a draft check needs) and tensor infos; tensor data is never
//! touched, so a 1 GB model takes milliseconds.
//!
//! # Why not the `gguf-rs` crate
//!
//! This crate reads GGUF with its own small reader (`reader.rs`) instead of
//! `gguf-rs` 0.1.8, because that crate, read at the source:
//! - panics (`unreachable!`) on tensor type 40, which ggml now uses for NVFP4;
//! - computes wrong byte sizes for several types (block size guessed from the
//!   type id: BF16, I8–I64, F64 get 256-element blocks; IQ4_NL and MXFP4 get
//!   wrong blocks; Q8_1 gets 40 bytes instead of 36), so it cannot check
//!   tensor bounds;
//! - materialises arrays as `serde_json::Value` with no bound on total memory
//!   for non-tokenizer keys, and allocates a string's declared length (up to
//!   1 GiB) before finding out whether the file holds it;
//! - turns on serde_json's `arbitrary_precision` feature, which would change
//!   how every crate in this workspace parses JSON numbers;
//! - pulls clap, comfy-table and a logger into the library.
//!
//! The reader here checks every declared length and count against the bytes
//! left in the file before allocating, with llama.cpp's limits (strings ≤ 1 GiB,
//! arrays ≤ 2^30 elements, ≤ 4 dimensions), so hostile headers fail fast with
//! an error and never a panic.

pub mod fuzz;
mod hparams;
mod info;
mod reader;
mod types;
mod vocab;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use hparams::{LLAMA_MAX_EXPERTS, LLAMA_MAX_LAYERS};
pub use info::ModelInfo;
pub use reader::{GgufHeader, MetaValue, TensorInfo};
pub use types::{file_type_name, ggml_type_name, GgmlType};
pub use vocab::{check_vocab_compatible, Vocab, MAX_VOCAB_SIZE_DIFFERENCE};

use reader::ReadOptions;

/// ggml's `GGML_MAX_NAME`: llama.cpp refuses tensor names this long or longer.
const MAX_TENSOR_NAME: usize = 64;

/// Errors from reading or checking GGUF files.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing exists at the path.
    #[error("{} does not exist", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The path names something other than a regular file.
    #[error("{} is {kind}, not a model file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is: "a directory", "a FIFO (named pipe)", "a character device", …
        kind: &'static str,
    },
    /// The file does not start with the `GGUF` magic.
    #[error("{} is not a GGUF file (it does not start with \"GGUF\")", path.display())]
    NotGguf {
        /// The file.
        path: PathBuf,
    },
    /// The file ends before something it declares.
    #[error(
        "{} is truncated: {what} needs {needed} bytes but the file has only {file_size} \
         (incomplete download? fetch it again)",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read or checked.
        what: String,
        /// File size needed to hold it.
        needed: u64,
        /// Actual file size.
        file_size: u64,
    },
    /// A GGUF version this reader (and llama.cpp) does not read.
    #[error("{}: {}", path.display(), version_message(*version))]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version field as read (little-endian).
        version: u32,
    },
    /// The header is inconsistent or exceeds limits.
    #[error("{} is not a valid GGUF file: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The header is well formed, but its hyperparameters are ones llama.cpp
    /// would abort on (an assertion, not an error) or cannot run.
    #[error("{} cannot be loaded: {reason}", path.display())]
    Hyperparameters {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A draft model's vocabulary does not match the target's.
    #[error("the draft model's vocabulary does not match the target's: {}", differences.join("; "))]
    VocabMismatch {
        /// One line per difference, e.g. `vocabulary size: target 151,936, draft 49,152`.
        differences: Vec<String>,
    },
}

fn version_message(version: u32) -> String {
    if version != 0 && version & 0xFFFF == 0 {
        format!(
            "GGUF version field reads {version:#x}: a big-endian file? only little-endian GGUF v2/v3 is supported"
        )
    } else if version == 1 {
        "GGUF v1 is no longer supported (llama.cpp refuses it too); convert the model again"
            .to_string()
    } else {
        format!("GGUF version {version} is not supported (only v2 and v3)")
    }
}

/// What a non-regular file is, for messages: "a directory", "a FIFO (named
/// pipe)", "a character device", "a block device", "a socket", or "not a
/// regular file".
pub fn file_kind(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` names a regular file (symbolic links followed), from
/// its metadata alone: nothing is opened, so a FIFO cannot block and a device
/// such as `/dev/zero` is never read.
pub fn check_regular_file(path: &Path) -> Result<(), GgufError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(GgufError::NotAFile {
            path: path.to_path_buf(),
            kind: file_kind(meta.file_type()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(GgufError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(GgufError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the whole header, keeping the token texts (about 2 MB for a 150k
/// vocabulary). Does not check tensor bounds; see [`GgufHeader::validate`].
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    reader::read_header(path, ReadOptions { keep_tokens: true })
}

/// Summarises a model file from its header. Works on a truncated download as
/// long as the header is complete; use [`validate`] before loading.
pub fn inspect(path: &Path) -> Result<ModelInfo, GgufError> {
    let h = reader::read_header(path, ReadOptions { keep_tokens: false })?;
    Ok(ModelInfo::from_header(&h))
}

/// Like [`inspect`], after checking what llama.cpp would refuse or trip over
/// (see [`GgufHeader::validate`]).
pub fn validate(path: &Path) -> Result<ModelInfo, GgufError> {
    // The token texts are kept: llama.cpp asserts that they are unique.
    let h = reader::read_header(path, ReadOptions { keep_tokens: true })?;
    h.validate()?;
    Ok(ModelInfo::from_header(&h))
}

/// Checks that `draft` can draft for `target` (see [`check_vocab_compatible`]).
/// Reads both headers; no weights.
pub fn check_draft_compatible(target: &Path, draft: &Path) -> Result<(), GgufError> {
    let t = read_header(target)?;
    let d = read_header(draft)?;
    check_vocab_compatible(&t.vocab, &d.vocab)
}

impl GgufHeader {
    /// The summary of this header.
    pub fn info(&self) -> ModelInfo {
        ModelInfo::from_header(self)
    }

    /// Checks the header the way llama.cpp's loader would, and that every
    /// tensor's data lies inside the file:
    /// - `general.architecture` is set;
    /// - tensor names are unique and shorter than 64 bytes;
    /// - every tensor type is known, and rows are whole blocks;
    /// - tensors are laid out back to back in file order, each at the
    ///   previous one's end rounded up to the alignment (llama.cpp requires it);
    /// - the data of every tensor ends within the file (else
    ///   [`GgufError::Truncated`]);
    /// - the architecture is one llama.cpp knows, and its hyperparameters are
    ///   ones llama.cpp does not assert on (else
    ///   [`GgufError::Hyperparameters`]): 1 to 512 layers, a context length
    ///   and embedding size above 0, head counts that divide, expert counts
    ///   that fit, finite positive epsilons, unique token texts, a token
    ///   embedding of the declared size.
    pub fn validate(&self) -> Result<(), GgufError> {
        let malformed = |reason: String| GgufError::Malformed {
            path: self.path.clone(),
            reason,
        };
        if !self.metadata.contains_key("general.architecture") {
            return Err(malformed("general.architecture is missing".to_string()));
        }
        if !self.tensors.is_empty() && self.data_offset > self.file_size {
            return Err(GgufError::Truncated {
                path: self.path.clone(),
                what: "the padding before the tensor data".to_string(),
                needed: self.data_offset,
                file_size: self.file_size,
            });
        }
        let mut names = HashSet::with_capacity(self.tensors.len());
        let mut expected_offset = 0u64;
        for t in &self.tensors {
            if t.name.len() >= MAX_TENSOR_NAME {
                return Err(malformed(format!(
                    "tensor name '{}' is {} bytes long (at most {})",
                    t.name,
                    t.name.len(),
                    MAX_TENSOR_NAME - 1
                )));
            }
            if !names.insert(t.name.as_str()) {
                return Err(malformed(format!("duplicate tensor name '{}'", t.name)));
            }
            let ty = GgmlType::from_id(t.ggml_type).ok_or_else(|| {
                malformed(format!(
                    "tensor '{}' has unknown or removed ggml type {}",
                    t.name, t.ggml_type
                ))
            })?;
            let row = t.dims.first().copied().unwrap_or(1);
            if row % ty.block_size != 0 {
                return Err(malformed(format!(
                    "tensor '{}' of type {} has rows of {row} elements, not a multiple of its block size {}",
                    t.name, ty.name, ty.block_size
                )));
            }
            let n_bytes = (t.n_elements() / ty.block_size)
                .checked_mul(ty.type_size)
                .ok_or_else(|| malformed(format!("tensor '{}' byte size overflows", t.name)))?;
            if t.offset != expected_offset {
                return Err(malformed(format!(
                    "tensor '{}' has data offset {}, expected {expected_offset}",
                    t.name, t.offset
                )));
            }
            let end = self
                .data_offset
                .checked_add(t.offset)
                .and_then(|v| v.checked_add(n_bytes))
                .ok_or_else(|| malformed(format!("tensor '{}' data end overflows", t.name)))?;
            if end > self.file_size {
                return Err(GgufError::Truncated {
                    path: self.path.clone(),
                    what: format!("the data of tensor '{}'", t.name),
                    needed: end,
                    file_size: self.file_size,
                });
            }
            expected_offset = t
                .offset
                .checked_add(n_bytes)
                .and_then(|v| v.checked_next_multiple_of(self.alignment))
                .ok_or_else(|| malformed(format!("tensor '{}' data end overflows", t.name)))?;
        }
        hparams::check(self).map_err(|reason| GgufError::Hyperparameters {
            path: self.path.clone(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests;
