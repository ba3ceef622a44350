//! A structure-aware GGUF mutator, for fuzzing what reads model files (this
//! crate's validator, and llama.cpp behind it).
//!
//! A [`Doc`] is a GGUF file taken apart: metadata values, tensor infos and
//! the tensor data. [`mutate`] changes it the way a hostile or damaged file
//! differs from a good one — hyperparameters set to edge values or to other
//! types, keys removed or duplicated, tensor shapes, types and offsets
//! changed — and then, on the bytes, header counts, string and array lengths
//! and type ids overwritten, single bytes flipped, the file truncated. Every
//! choice comes from a seeded generator ([`Rng`]), so a case is reproduced
//! by its seed.
//!
//! [`micro_model`] builds a tiny but loadable model (16-wide, 2 layers)
//! around a real model's tokenizer, so that files the validator accepts can
//! be loaded and run by llama.cpp in milliseconds.

use std::collections::BTreeMap;

/// A small deterministic generator (SplitMix64): a seed means the same case
/// on every machine and version of its dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One metadata value, as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A fixed-size scalar: its GGUF type id and little-endian bytes.
    Scalar(u32, Vec<u8>),
    /// A string.
    Str(Vec<u8>),
    /// An array: element type id and elements (scalars' bytes, or strings).
    Array(u32, Vec<Vec<u8>>),
}

/// One tensor info.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name.
    pub name: Vec<u8>,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Data offset relative to the data section.
    pub offset: u64,
}

/// A GGUF file taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Format version.
    pub version: u32,
    /// Metadata in file order.
    pub kvs: Vec<(Vec<u8>, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<Tensor>,
    /// Data alignment used when writing.
    pub alignment: u64,
    /// The tensor data section.
    pub data: Vec<u8>,
}

const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;

fn scalar_size(t: u32) -> Option<usize> {
    match t {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Reads a well-formed GGUF file (a seed; hostile files go to the
/// validator, not here). `None` when it is not one.
pub fn parse(bytes: &[u8]) -> Option<Doc> {
    struct R<'a>(&'a [u8], usize);
    impl R<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            let s = self.0.get(self.1..self.1.checked_add(n)?)?;
            self.1 += n;
            Some(s)
        }
        fn u32(&mut self) -> Option<u32> {
            Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
        }
        fn u64(&mut self) -> Option<u64> {
            Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
        }
        fn string(&mut self) -> Option<Vec<u8>> {
            let n = usize::try_from(self.u64()?).ok()?;
            Some(self.take(n)?.to_vec())
        }
    }
    let mut r = R(bytes, 0);
    if r.take(4)? != b"GGUF" {
        return None;
    }
    let version = r.u32()?;
    let n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    let mut kvs = Vec::new();
    let mut alignment = 32;
    for _ in 0..n_kv {
        let key = r.string()?;
        let t = r.u32()?;
        let value = match t {
            T_STRING => Value::Str(r.string()?),
            T_ARRAY => {
                let item = r.u32()?;
                let n = r.u64()?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(match item {
                        T_STRING => r.string()?,
                        t => r.take(scalar_size(t)?)?.to_vec(),
                    });
                }
                Value::Array(item, items)
            }
            t => Value::Scalar(t, r.take(scalar_size(t)?)?.to_vec()),
        };
        if key == b"general.alignment" {
            if let Value::Scalar(4, b) = &value {
                alignment = u64::from(u32::from_le_bytes(b.as_slice().try_into().ok()?));
            }
        }
        kvs.push((key, value));
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name = r.string()?;
        let n_dims = r.u32()?;
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            dims.push(r.u64()?);
        }
        let ggml_type = r.u32()?;
        let offset = r.u64()?;
        tensors.push(Tensor {
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    let data_start =
        r.1.checked_next_multiple_of(usize::try_from(alignment).ok()?)?;
    let data = bytes.get(data_start..)?.to_vec();
    Some(Doc {
        version,
        kvs,
        tensors,
        alignment,
        data,
    })
}

/// What a field of the written header holds, for byte-level mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The tensor count or the metadata count (u64).
    Count,
    /// A string's or an array's length (u64).
    Length,
    /// A value type or an array element type (u32).
    ValueType,
    /// A tensor's number of dimensions (u32).
    DimCount,
    /// A tensor dimension (u64).
    Dim,
    /// A tensor's ggml type (u32).
    TensorType,
    /// A tensor's data offset (u64).
    Offset,
}

impl Field {
    fn width(self) -> usize {
        match self {
            Field::ValueType | Field::DimCount | Field::TensorType => 4,
            _ => 8,
        }
    }
}

/// Bytes of a written file, with where its structural fields are.
#[derive(Debug, Clone)]
pub struct Written {
    /// The file.
    pub bytes: Vec<u8>,
    /// `(byte offset, what)` of every count, length, type and offset field.
    pub fields: Vec<(usize, Field)>,
    /// Where the header ends (before the alignment padding).
    pub header_len: usize,
}

impl Doc {
    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kvs
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// Sets `key` (replacing its value in place, or appending it).
    pub fn set(&mut self, key: &str, value: Value) {
        match self.kvs.iter_mut().find(|(k, _)| k == key.as_bytes()) {
            Some(kv) => kv.1 = value,
            None => self.kvs.push((key.as_bytes().to_vec(), value)),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.kvs.retain(|(k, _)| k != key.as_bytes());
    }

    /// `general.architecture`, if it is a string.
    pub fn arch(&self) -> Option<String> {
        match self.get("general.architecture")? {
            Value::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }

    /// Writes the file (header, padding to the alignment, data).
    pub fn write(&self) -> Written {
        let mut b = Vec::with_capacity(self.data.len() + (1 << 20));
        let mut fields = Vec::new();
        let u32 = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
        let u64 = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_le_bytes());
        b.extend_from_slice(b"GGUF");
        u32(&mut b, self.version);
        fields.push((b.len(), Field::Count));
        u64(&mut b, self.tensors.len() as u64);
        fields.push((b.len(), Field::Count));
        u64(&mut b, self.kvs.len() as u64);
        let string = |b: &mut Vec<u8>, fields: &mut Vec<(usize, Field)>, s: &[u8]| {
            fields.push((b.len(), Field::Length));
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s);
        };
        for (key, value) in &self.kvs {
            string(&mut b, &mut fields, key);
            fields.push((b.len(), Field::ValueType));
            match value {
                Value::Scalar(t, bytes) => {
                    u32(&mut b, *t);
                    b.extend_from_slice(bytes);
                }
                Value::Str(s) => {
                    u32(&mut b, T_STRING);
                    string(&mut b, &mut fields, s);
                }
                Value::Array(item, items) => {
                    u32(&mut b, T_ARRAY);
                    fields.push((b.len(), Field::ValueType));
                    u32(&mut b, *item);
                    fields.push((b.len(), Field::Length));
                    u64(&mut b, items.len() as u64);
                    for it in items {
                        if *item == T_STRING {
                            // Only the first few string lengths are worth a
                            // mutation: there may be 150,000 of them.
                            let before = fields.len();
                            string(&mut b, &mut fields, it);
                            if fields.len() > before && before > 4096 {
                                fields.pop();
                            }
                        } else {
                            b.extend_from_slice(it);
                        }
                    }
                }
            }
        }
        for t in &self.tensors {
            string(&mut b, &mut fields, &t.name);
            fields.push((b.len(), Field::DimCount));
            u32(&mut b, t.dims.len() as u32);
            for &d in &t.dims {
                fields.push((b.len(), Field::Dim));
                u64(&mut b, d);
            }
            fields.push((b.len(), Field::TensorType));
            u32(&mut b, t.ggml_type);
            fields.push((b.len(), Field::Offset));
            u64(&mut b, t.offset);
        }
        let header_len = b.len();
        let align = self.alignment.clamp(1, 1 << 20) as usize;
        b.resize(b.len().next_multiple_of(align), 0);
        b.extend_from_slice(&self.data);
        Written {
            bytes: b,
            fields,
            header_len,
        }
    }
}

fn f32_value(v: f32) -> Value {
    Value::Scalar(6, v.to_le_bytes().to_vec())
}

fn u32_value(v: u32) -> Value {
    Value::Scalar(4, v.to_le_bytes().to_vec())
}

/// A tiny model of architecture `llama` (16-wide, 4 heads of 4, 2 key/value
/// heads, 2 layers, feed-forward 32, context 256, F32 weights and an F16
/// token embedding) with the
/// tokenizer of `tokenizer_source` (a real model's metadata). llama.cpp loads
/// and runs it in milliseconds.
pub fn micro_model(tokenizer_source: &Doc) -> Doc {
    const N_EMBD: u64 = 16;
    const N_FF: u64 = 32;
    const N_KV_DIM: u64 = 8;
    const N_LAYER: u32 = 2;
    let mut kvs: Vec<(Vec<u8>, Value)> = tokenizer_source
        .kvs
        .iter()
        .filter(|(k, _)| k.starts_with(b"tokenizer."))
        .cloned()
        .collect();
    let n_vocab = match tokenizer_source.get("tokenizer.ggml.tokens") {
        Some(Value::Array(_, items)) => items.len() as u64,
        _ => 256,
    };
    let mut head = vec![
        (
            b"general.architecture".to_vec(),
            Value::Str(b"llama".to_vec()),
        ),
        (b"general.name".to_vec(), Value::Str(b"micro".to_vec())),
        (b"llama.context_length".to_vec(), u32_value(256)),
        (b"llama.embedding_length".to_vec(), u32_value(N_EMBD as u32)),
        (b"llama.block_count".to_vec(), u32_value(N_LAYER)),
        (
            b"llama.feed_forward_length".to_vec(),
            u32_value(N_FF as u32),
        ),
        (b"llama.attention.head_count".to_vec(), u32_value(4)),
        (b"llama.attention.head_count_kv".to_vec(), u32_value(2)),
        (b"llama.rope.dimension_count".to_vec(), u32_value(4)),
        (b"llama.rope.freq_base".to_vec(), f32_value(10000.0)),
        (
            b"llama.attention.layer_norm_rms_epsilon".to_vec(),
            f32_value(1e-5),
        ),
        (b"general.file_type".to_vec(), u32_value(0)),
    ];
    head.append(&mut kvs);
    let mut shapes: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![N_EMBD, n_vocab]),
        ("output_norm.weight".into(), vec![N_EMBD]),
    ];
    for il in 0..N_LAYER {
        let p = |s: &str| format!("blk.{il}.{s}.weight");
        shapes.extend([
            (p("attn_norm"), vec![N_EMBD]),
            (p("attn_q"), vec![N_EMBD, N_EMBD]),
            (p("attn_k"), vec![N_EMBD, N_KV_DIM]),
            (p("attn_v"), vec![N_EMBD, N_KV_DIM]),
            (p("attn_output"), vec![N_EMBD, N_EMBD]),
            (p("ffn_norm"), vec![N_EMBD]),
            (p("ffn_gate"), vec![N_EMBD, N_FF]),
            (p("ffn_up"), vec![N_EMBD, N_FF]),
            (p("ffn_down"), vec![N_FF, N_EMBD]),
        ]);
    }
    let mut rng = Rng::new(1);
    let mut tensors = Vec::new();
    let mut data = Vec::new();
    for (name, dims) in shapes {
        let n: u64 = dims.iter().product();
        let norm = name.contains("norm");
        // The embedding (16 × the vocabulary) in F16 halves the file; norms
        // stay F32 as llama.cpp wants them.
        let f16 = name == "token_embd.weight";
        tensors.push(Tensor {
            name: name.into_bytes(),
            dims,
            ggml_type: u32::from(f16),
            offset: data.len() as u64,
        });
        for _ in 0..n {
            if f16 {
                // Small normal half-precision values, either sign.
                let bits = 0x2000 + rng.below(0x400) as u16 + 0x8000 * rng.below(2) as u16;
                data.extend_from_slice(&bits.to_le_bytes());
            } else {
                let v = if norm {
                    1.0f32
                } else {
                    (rng.below(2001) as f32 - 1000.0) / 10_000.0
                };
                data.extend_from_slice(&v.to_le_bytes());
            }
        }
        data.resize(data.len().next_multiple_of(32), 0);
    }
    Doc {
        version: 3,
        kvs: head,
        tensors,
        alignment: 32,
        data,
    }
}

/// Integer values at the edges of what readers handle.
const EDGE_U64: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    8,
    31,
    32,
    255,
    256,
    511,
    512,
    513,
    1024,
    1025,
    4096,
    65535,
    65536,
    100_000,
    1 << 20,
    (1 << 30) - 1,
    1 << 30,
    (1 << 30) + 1,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX as u64 - 1,
    u32::MAX as u64,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// Float values that break arithmetic.
const EDGE_F32: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e-30,
    -1e-5,
    1e30,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

/// Hyperparameter suffixes (after `<arch>.`) llama.cpp reads, to add or
/// change.
const HPARAM_KEYS: &[&str] = &[
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_epsilon",
    "attention.layer_norm_rms_epsilon",
    "attention.sliding_window",
    "attention.causal",
    "rope.dimension_count",
    "rope.freq_base",
    "rope.scaling.type",
    "rope.scaling.factor",
    "rope.scaling.original_context_length",
    "expert_count",
    "expert_used_count",
    "expert_group_count",
    "expert_group_used_count",
    "expert_shared_count",
    "expert_feed_forward_length",
    "nextn_predict_layers",
    "vocab_size",
    "logit_scale",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "embedding_length_out",
    "pooling_type",
];

/// Other keys llama.cpp reads.
const OTHER_KEYS: &[&str] = &[
    "general.architecture",
    "general.alignment",
    "general.file_type",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.chat_template",
];

/// Architectures to switch to (a loader for another architecture reads the
/// same keys differently).
const ARCHS: &[&str] = &[
    "llama",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "phi3",
    "gpt2",
    "mamba",
    "rwkv6",
    "bert",
    "t5",
    "deepseek2",
    "qwen2moe",
    "olmoe",
    "falcon",
    "starcoder2",
    "mpt",
    "bloom",
    "gptneox",
    "stablelm",
    "command-r",
    "jamba",
    "granite",
    "exaone",
    "nemotron",
    "minicpm",
    "wavtokenizer-dec",
    "clip",
    "",
    "llama\0x",
];

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 | 1 => u32_value(*rng.pick(EDGE_U64) as u32),
        2 => f32_value(*rng.pick(EDGE_F32)),
        3 => Value::Scalar(5, (*rng.pick(EDGE_U64) as i32).to_le_bytes().to_vec()),
        4 => Value::Scalar(10, rng.pick(EDGE_U64).to_le_bytes().to_vec()),
        5 => Value::Str(rng.pick(ARCHS).as_bytes().to_vec()),
        6 => Value::Scalar(7, vec![rng.below(3) as u8]),
        _ => {
            let n = *rng.pick(&[0usize, 1, 2, 3, 30, 513]);
            let v = *rng.pick(EDGE_U64) as u32;
            Value::Array(4, vec![v.to_le_bytes().to_vec(); n])
        }
    }
}

/// Changes one value in its own type where that makes sense (an edge
/// integer, an edge float), otherwise replaces it.
fn mutate_value(rng: &mut Rng, value: &Value) -> Value {
    match value {
        Value::Scalar(t, b) if rng.below(3) > 0 => {
            let mut b = b.clone();
            match *t {
                6 => b.copy_from_slice(&rng.pick(EDGE_F32).to_le_bytes()),
                12 => b.copy_from_slice(&f64::from(*rng.pick(EDGE_F32)).to_le_bytes()),
                _ => {
                    let v = rng.pick(EDGE_U64).to_le_bytes();
                    let n = b.len();
                    b.copy_from_slice(&v[..n]);
                }
            }
            Value::Scalar(*t, b)
        }
        Value::Array(item, items) if !items.is_empty() && rng.below(2) == 0 => {
            let mut items = items.clone();
            match rng.below(4) {
                0 => {
                    items.truncate(rng.below(items.len()));
                }
                1 => {
                    let i = rng.below(items.len());
                    let j = rng.below(items.len());
                    items[i] = items[j].clone();
                }
                2 => {
                    let i = rng.below(items.len());
                    if *item == T_STRING {
                        items[i] = rng
                            .pick(&[&b""[..], b"<|im_start|>", b"\xff\xfe", b"a"])
                            .to_vec();
                    } else {
                        let v = rng.pick(EDGE_U64).to_le_bytes();
                        let n = items[i].len();
                        items[i].copy_from_slice(&v[..n]);
                    }
                }
                _ => {
                    let extra = items[rng.below(items.len())].clone();
                    items.push(extra);
                }
            }
            Value::Array(*item, items)
        }
        _ => random_value(rng),
    }
}

/// One structural change to `doc`.
fn mutate_structure(rng: &mut Rng, doc: &mut Doc) {
    let arch = doc.arch().unwrap_or_else(|| "llama".to_string());
    match rng.below(12) {
        // A hyperparameter of the architecture: edge value or new type.
        0..=3 => {
            let key = format!("{arch}.{}", rng.pick(HPARAM_KEYS));
            let value = match doc.get(&key) {
                Some(v) => mutate_value(rng, v),
                None => random_value(rng),
            };
            doc.set(&key, value);
        }
        // Any existing key: changed, removed or duplicated.
        4 | 5 => {
            if doc.kvs.is_empty() {
                return;
            }
            let i = rng.below(doc.kvs.len());
            match rng.below(4) {
                0 => {
                    doc.kvs.remove(i);
                }
                1 => {
                    let kv = doc.kvs[i].clone();
                    doc.kvs.push(kv);
                }
                _ => doc.kvs[i].1 = mutate_value(rng, &doc.kvs[i].1),
            }
        }
        // A key llama.cpp reads elsewhere.
        6 => {
            let key = *rng.pick(OTHER_KEYS);
            if rng.one_in(3) {
                doc.remove(key);
            } else {
                let value = match doc.get(key) {
                    Some(v) => mutate_value(rng, v),
                    None => random_value(rng),
                };
                doc.set(key, value);
            }
        }
        // Another architecture, with the hyperparameters renamed to it.
        7 => {
            let to = *rng.pick(ARCHS);
            let from = format!("{arch}.");
            for (k, _) in doc.kvs.iter_mut() {
                if k.starts_with(from.as_bytes()) {
                    let rest = k[from.len()..].to_vec();
                    *k = [to.as_bytes(), b".", &rest].concat();
                }
            }
            doc.set("general.architecture", Value::Str(to.as_bytes().to_vec()));
        }
        // A tensor's shape, type, offset or name; a tensor dropped or doubled.
        _ => {
            if doc.tensors.is_empty() {
                return;
            }
            let i = rng.below(doc.tensors.len());
            let t = &mut doc.tensors[i];
            match rng.below(7) {
                0 | 1 => {
                    if !t.dims.is_empty() {
                        let d = rng.below(t.dims.len());
                        t.dims[d] = match rng.below(3) {
                            0 => *rng.pick(EDGE_U64),
                            1 => t.dims[d] / 2,
                            _ => t.dims[d] + 1,
                        };
                    }
                }
                2 => t.ggml_type = *rng.pick(&[1u32, 2, 8, 12, 14, 30, 4, 39, 40, 41, 43, 99]),
                3 => t.offset = *rng.pick(EDGE_U64),
                4 => {
                    let names: &[&[u8]] = &[
                        b"token_embd.weight",
                        b"output.weight",
                        b"blk.0.attn_q.weight",
                        b"blk.99.attn_q.weight",
                        b"",
                    ];
                    t.name = rng.pick(names).to_vec();
                }
                5 => {
                    doc.tensors.remove(i);
                }
                _ => {
                    let t = t.clone();
                    doc.tensors.push(t);
                }
            }
        }
    }
}

/// A byte-level change to a written file.
fn mutate_bytes(rng: &mut Rng, w: &mut Written) {
    match rng.below(6) {
        // A count, length, type id, dimension or offset field.
        0..=2 if !w.fields.is_empty() => {
            let (pos, field) = *rng.pick(&w.fields);
            let v = match rng.below(3) {
                0 => *rng.pick(EDGE_U64),
                1 => {
                    let mut cur = [0u8; 8];
                    cur[..field.width()].copy_from_slice(&w.bytes[pos..pos + field.width()]);
                    let cur = u64::from_le_bytes(cur);
                    if rng.one_in(2) {
                        cur.wrapping_add(1)
                    } else {
                        cur.wrapping_sub(1)
                    }
                }
                _ => rng.below(64) as u64,
            };
            let bytes = v.to_le_bytes();
            w.bytes[pos..pos + field.width()].copy_from_slice(&bytes[..field.width()]);
        }
        // A flipped byte in the header.
        3 => {
            let i = rng.below(w.header_len.max(1));
            if let Some(b) = w.bytes.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
        }
        // Truncation: in the header, or in the data.
        4 => {
            let len = if rng.one_in(2) {
                rng.below(w.header_len + 1)
            } else {
                w.header_len + rng.below(w.bytes.len() - w.header_len + 1)
            };
            w.bytes.truncate(len);
        }
        // The version.
        _ => {
            let v = *rng.pick(&[0u32, 1, 2, 4, 0x0300_0000, u32::MAX]);
            w.bytes[4..8].copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// A mutated copy of `seed`'s file: one to three structural changes, then,
/// in about half the cases, a change to the bytes. The same `rng` state
/// gives the same file.
pub fn mutate(rng: &mut Rng, seed: &Doc) -> Vec<u8> {
    let mut doc = seed.clone();
    let structural = rng.below(4);
    for _ in 0..structural {
        mutate_structure(rng, &mut doc);
    }
    let mut w = doc.write();
    if structural == 0 || rng.one_in(2) {
        mutate_bytes(rng, &mut w);
    }
    w.bytes
}

/// The metadata of `doc` by key, for tests.
pub fn keys(doc: &Doc) -> BTreeMap<String, Value> {
    doc.kvs
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write_round_trip() {
        let mut src = Doc {
            version: 3,
            kvs: vec![(
                b"tokenizer.ggml.tokens".to_vec(),
                Value::Array(8, vec![b"a".to_vec(), b"b".to_vec()]),
            )],
            tensors: vec![],
            alignment: 32,
            data: vec![],
        };
        src.set("tokenizer.ggml.model", Value::Str(b"gpt2".to_vec()));
        let micro = micro_model(&src);
        let bytes = micro.write().bytes;
        assert_eq!(parse(&bytes), Some(micro.clone()));
        assert_eq!(keys(&micro).len(), micro.kvs.len());
        // Mutations are reproducible from the seed.
        assert_eq!(
            mutate(&mut Rng::new(7), &micro),
            mutate(&mut Rng::new(7), &micro)
        );
    }
}
