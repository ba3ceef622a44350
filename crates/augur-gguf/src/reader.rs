//! A bounds-checked reader for the GGUF header (magic, version, key/value
//! metadata, tensor infos). Tensor data is never read.
//!
//! Every length or count read from the file is checked against the bytes that
//! remain in the file *before* anything is allocated or skipped, so a hostile
//! header cannot make us allocate more than the file's own size, and every loop
//! consumes at least one byte per iteration, so none can spin on a bogus count.
//! This mirrors what llama.cpp's `gguf.cpp` checks (string and array limits,
//! at most 4 dimensions, element counts within `i64`, power-of-two alignment).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::vocab::{TokenTexts, Vocab};
use crate::GgufError;

/// Strings longer than this are refused (llama.cpp's `GGUF_MAX_STRING_LENGTH`).
const MAX_STRING_LEN: u64 = 1 << 30;
/// Arrays, key/value pairs and tensors beyond this count are refused as
/// malformed (llama.cpp's `GGUF_MAX_ARRAY_ELEMENTS`); smaller counts that do
/// not fit in the rest of the file are reported as truncation.
const MAX_COUNT: u64 = 1 << 30;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// GGUF's default tensor data alignment.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Read buffer: large enough that the ~300k short strings of a big tokenizer
/// are read with a few hundred system calls.
const BUF_SIZE: usize = 1 << 20;

pub(crate) const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub(crate) const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";

/// GGUF metadata value types, by their on-disk id.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// Size in bytes of a fixed-size GGUF value type (`None` for string, array
/// and unknown types).
fn fixed_size(t: u32) -> Option<u64> {
    match t {
        T_U8 | T_I8 | T_BOOL => Some(1),
        T_U16 | T_I16 => Some(2),
        T_U32 | T_I32 | T_F32 => Some(4),
        T_U64 | T_I64 | T_F64 => Some(8),
        _ => None,
    }
}

fn type_name(t: u32) -> &'static str {
    match t {
        T_U8 => "u8",
        T_I8 => "i8",
        T_U16 => "u16",
        T_I16 => "i16",
        T_U32 => "u32",
        T_I32 => "i32",
        T_F32 => "f32",
        T_BOOL => "bool",
        T_STRING => "string",
        T_ARRAY => "array",
        T_U64 => "u64",
        T_I64 => "i64",
        T_F64 => "f64",
        _ => "unknown",
    }
}

/// One metadata value. Arrays are summarised (element type and length), except
/// the token list and token types, which go into [`Vocab`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (invalid UTF-8 replaced by U+FFFD).
    Str(String),
    /// An array. Numeric and boolean arrays of at most [`MAX_KEPT_ARRAY`]
    /// elements keep their values (per-layer hyperparameters are such
    /// arrays, and validation reads them); others only their length.
    Array {
        /// Element type name (`u32`, `string`, …).
        item_type: &'static str,
        /// Number of elements.
        len: u64,
        /// The elements, when kept (empty otherwise).
        values: Vec<MetaValue>,
    },
}

/// Numeric arrays up to this length keep their values: per-layer arrays have
/// one element per layer, and llama.cpp allows at most 512 layers.
pub const MAX_KEPT_ARRAY: u64 = 4096;

impl MetaValue {
    /// The value as a non-negative integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::Uint(v) => Some(v),
            MetaValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::Float(v) => Some(v),
            MetaValue::Uint(v) => Some(v as f64),
            MetaValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// One tensor info from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first (`ne[0]` is the row length).
    pub dims: Vec<u64>,
    /// ggml type id (see [`crate::GgmlType`]).
    pub ggml_type: u32,
    /// Offset of the data, relative to [`GgufHeader::data_offset`].
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (product of the dimensions; 1 for a scalar). The
    /// header reader refuses tensors whose count does not fit in an `i64`.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }
}

/// Everything in a GGUF header that augur uses.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    /// The file that was read.
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// GGUF format version (2 or 3).
    pub version: u32,
    /// Tensor data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute file offset where tensor data begins.
    pub data_offset: u64,
    /// Metadata by key, token arrays summarised.
    pub metadata: BTreeMap<String, MetaValue>,
    /// The on-disk type of each metadata value (`u32`, `f32`, `string`,
    /// `array`, …): llama.cpp reads each key as exactly one type.
    pub metadata_types: BTreeMap<String, &'static str>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Tokenizer data.
    pub vocab: Vocab,
}

/// Sequential reader that knows how many bytes remain.
struct Cursor<'a> {
    r: BufReader<File>,
    pos: u64,
    size: u64,
    path: &'a Path,
}

impl Cursor<'_> {
    fn io(&self, source: std::io::Error) -> GgufError {
        GgufError::Io {
            path: self.path.to_path_buf(),
            source,
        }
    }

    fn malformed(&self, reason: String) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    /// Fails with `Truncated` unless `n` more bytes are in the file.
    fn need(&self, n: u64, what: &str) -> Result<(), GgufError> {
        if n > self.size - self.pos {
            return Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                needed: self.pos.saturating_add(n),
                file_size: self.size,
            });
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        self.need(buf.len() as u64, what)?;
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                // The file shrank after we measured it.
                GgufError::Truncated {
                    path: self.path.to_path_buf(),
                    what: what.to_string(),
                    needed: self.pos.saturating_add(buf.len() as u64),
                    file_size: self.size,
                }
            } else {
                self.io(e)
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), GgufError> {
        self.need(n, what)?;
        // `need` bounds n by the file size, which fits in an i64.
        let delta =
            i64::try_from(n).map_err(|_| self.malformed(format!("{what}: skip too large")))?;
        self.r.seek_relative(delta).map_err(|e| self.io(e))?;
        self.pos += n;
        Ok(())
    }

    /// Reads a string length and checks it against the limit and the file.
    fn string_len(&mut self, what: &str) -> Result<u64, GgufError> {
        let len = self.u64(what)?;
        if len > MAX_STRING_LEN {
            return Err(self.malformed(format!(
                "{what}: string length {len} exceeds the limit of {MAX_STRING_LEN} bytes"
            )));
        }
        self.need(len, what)?;
        Ok(len)
    }

    fn string_bytes(&mut self, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = self.string_len(what)?;
        // Bounded by the remaining file size (checked in `string_len`).
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let bytes = self.string_bytes(what)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads a count and refuses absurd ones or ones that cannot fit in the
    /// rest of the file at `min_item_bytes` each.
    fn count(&mut self, min_item_bytes: u64, what: &str) -> Result<u64, GgufError> {
        let n = self.u64(what)?;
        if n > MAX_COUNT {
            return Err(self.malformed(format!(
                "{what}: count {n} exceeds the limit of {MAX_COUNT}"
            )));
        }
        // n <= 2^30 and min_item_bytes is small: no overflow.
        self.need(n * min_item_bytes, what)?;
        Ok(n)
    }

    fn scalar(&mut self, t: u32, what: &str) -> Result<MetaValue, GgufError> {
        Ok(match t {
            T_U8 => MetaValue::Uint(u64::from(self.array::<1>(what)?[0])),
            T_I8 => MetaValue::Int(i64::from(i8::from_le_bytes(self.array(what)?))),
            T_U16 => MetaValue::Uint(u64::from(u16::from_le_bytes(self.array(what)?))),
            T_I16 => MetaValue::Int(i64::from(i16::from_le_bytes(self.array(what)?))),
            T_U32 => MetaValue::Uint(u64::from(self.u32(what)?)),
            T_I32 => MetaValue::Int(i64::from(i32::from_le_bytes(self.array(what)?))),
            T_F32 => MetaValue::Float(f64::from(f32::from_le_bytes(self.array(what)?))),
            T_BOOL => MetaValue::Bool(self.array::<1>(what)?[0] != 0),
            T_STRING => MetaValue::Str(self.string(what)?),
            T_U64 => MetaValue::Uint(self.u64(what)?),
            T_I64 => MetaValue::Int(i64::from_le_bytes(self.array(what)?)),
            T_F64 => MetaValue::Float(f64::from_le_bytes(self.array(what)?)),
            other => return Err(self.malformed(format!("{what}: unknown value type {other}"))),
        })
    }
}

/// What to keep while reading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOptions {
    /// Keep the token texts (otherwise only their count).
    pub keep_tokens: bool,
}

/// Reads the header of the GGUF file at `path`.
pub(crate) fn read_header(path: &Path, opts: ReadOptions) -> Result<GgufHeader, GgufError> {
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening: opening a FIFO blocks until a writer comes.
    crate::check_regular_file(path)?;
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    // The path may have been replaced between the check and the open.
    if !meta.is_file() {
        return Err(GgufError::NotAFile {
            path: path.to_path_buf(),
            kind: crate::file_kind(meta.file_type()),
        });
    }
    let size = meta.len();
    let mut c = Cursor {
        r: BufReader::with_capacity(BUF_SIZE, file),
        pos: 0,
        size,
        path,
    };

    if size < 4 || c.array::<4>("magic")? != *b"GGUF" {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
        });
    }
    let version = c.u32("version")?;
    // A byte-swapped (big-endian) file reads as 0x0N000000 here.
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    // No minimum-size check on these two counts: the loops below consume
    // bytes on every pass and stop at the end of the file, and the error
    // then names the entry that is cut, which says more.
    let n_tensors = c.count(0, "tensor count")?;
    let n_kv = c.count(0, "metadata count")?;

    let mut metadata = BTreeMap::new();
    let mut metadata_types = BTreeMap::new();
    let mut tokens: Option<TokenTexts> = None;
    let mut token_types: Option<Vec<i32>> = None;

    for i in 0..n_kv {
        let key = c.string(&format!("key of metadata entry {i}"))?;
        if key.is_empty() {
            return Err(c.malformed(format!("metadata entry {i} has an empty key")));
        }
        if metadata.contains_key(&key) {
            return Err(c.malformed(format!("duplicate metadata key '{key}'")));
        }
        let what = format!("metadata '{key}'");
        let t = c.u32(&what)?;
        let value = if t == T_ARRAY {
            let mut values = Vec::new();
            let item = c.u32(&what)?;
            if item == T_ARRAY {
                return Err(c.malformed(format!("{what}: nested arrays are not supported")));
            }
            let min_item = match item {
                T_STRING => 8,
                t => match fixed_size(t) {
                    Some(s) => s,
                    None => {
                        return Err(c.malformed(format!("{what}: unknown array element type {t}")))
                    }
                },
            };
            let len = c.count(min_item, &what)?;
            if item == T_STRING {
                if key == KEY_TOKENS {
                    tokens = Some(read_token_texts(&mut c, len, opts.keep_tokens, &what)?);
                } else {
                    for _ in 0..len {
                        let l = c.string_len(&what)?;
                        c.skip(l, &what)?;
                    }
                }
            } else if key == KEY_TOKEN_TYPE && item == T_I32 {
                let mut raw = vec![0u8; (len * 4) as usize];
                c.fill(&mut raw, &what)?;
                token_types = Some(
                    raw.chunks_exact(4)
                        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                );
            } else if len <= MAX_KEPT_ARRAY {
                let mut kept = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    kept.push(c.scalar(item, &what)?);
                }
                values = kept;
            } else {
                c.skip(len * min_item, &what)?;
            }
            MetaValue::Array {
                item_type: type_name(item),
                len,
                values,
            }
        } else {
            if key == "general.alignment" && t != T_U32 {
                // llama.cpp refuses any other type for this key.
                return Err(c.malformed(format!(
                    "general.alignment must be u32 but is {}",
                    type_name(t)
                )));
            }
            c.scalar(t, &what)?
        };
        metadata_types.insert(key.clone(), type_name(t));
        metadata.insert(key, value);
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => a,
            _ => return Err(c.malformed(format!("general.alignment {v:?} is not a power of two"))),
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors.min(1 << 16) as usize);
    for i in 0..n_tensors {
        let name = c.string(&format!("name of tensor {i}"))?;
        let what = format!("tensor info '{name}'");
        let n_dims = c.u32(&what)?;
        if n_dims > MAX_DIMS {
            return Err(c.malformed(format!(
                "tensor '{name}' has {n_dims} dimensions (at most {MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = c.u64(&what)?;
            elements = elements
                .checked_mul(d)
                .filter(|&e| i64::try_from(e).is_ok() && i64::try_from(d).is_ok())
                .ok_or_else(|| {
                    c.malformed(format!(
                        "tensor '{name}' has an impossible shape (dimension {d})"
                    ))
                })?;
            dims.push(d);
        }
        let ggml_type = c.u32(&what)?;
        let offset = c.u64(&what)?;
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }

    let data_offset = c
        .pos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| c.malformed("data offset overflows".to_string()))?;

    let vocab = Vocab::from_metadata(&metadata, tokens, token_types);
    Ok(GgufHeader {
        path: path.to_path_buf(),
        file_size: size,
        version,
        alignment,
        data_offset,
        metadata,
        metadata_types,
        tensors,
        vocab,
    })
}

/// Reads `len` strings of the token list, keeping them or only counting them.
fn read_token_texts(
    c: &mut Cursor<'_>,
    len: u64,
    keep: bool,
    what: &str,
) -> Result<TokenTexts, GgufError> {
    if !keep {
        for _ in 0..len {
            let l = c.string_len(what)?;
            c.skip(l, what)?;
        }
        return Ok(TokenTexts::counted(len));
    }
    // `len` strings need at least 8 bytes each, checked by the caller, so
    // this capacity is bounded by the file size.
    let mut bytes = Vec::new();
    let mut ends = Vec::with_capacity(len as usize);
    for _ in 0..len {
        let l = c.string_len(what)?;
        let start = bytes.len();
        // Bounded by the remaining file size (checked in `string_len`).
        bytes.resize(start + l as usize, 0);
        c.fill(&mut bytes[start..], what)?;
        ends.push(bytes.len());
    }
    Ok(TokenTexts::kept(bytes, ends))
}
