//! Tests on synthetic GGUF files written by a tiny writer.
#![allow(clippy::unwrap_used)]

use super::*;
use std::io::Write;

/// Writes GGUF bytes by hand, so tests can also write wrong ones.
struct W(Vec<u8>);

impl W {
    fn new(n_tensors: u64, n_kv: u64) -> W {
        let mut w = W(b"GGUF".to_vec());
        w.u32(3).u64(n_tensors).u64(n_kv);
        w
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s);
        self
    }
    fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.str(k.as_bytes()).u32(8).str(v.as_bytes())
    }
    fn kv_u32(&mut self, k: &str, v: u32) -> &mut Self {
        self.str(k.as_bytes()).u32(4).u32(v)
    }
    fn kv_tokens(&mut self, k: &str, toks: &[&[u8]]) -> &mut Self {
        self.str(k.as_bytes()).u32(9).u32(8).u64(toks.len() as u64);
        for t in toks {
            self.str(t);
        }
        self
    }
    fn kv_i32s(&mut self, k: &str, vals: &[i32]) -> &mut Self {
        self.str(k.as_bytes()).u32(9).u32(5).u64(vals.len() as u64);
        for v in vals {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self
    }
    /// The three hyperparameters llama.cpp requires of every architecture
    /// (three metadata entries).
    fn llama_hparams(&mut self) -> &mut Self {
        self.kv_u32("llama.context_length", 2048)
            .kv_u32("llama.embedding_length", 4)
            .kv_u32("llama.block_count", 2)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad(&mut self, align: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
        self
    }
    fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.extend(std::iter::repeat_n(0xAB, n));
        self
    }
}

/// A valid file with 11 metadata keys, three tokens and two tensors:
/// `a` F32 [4] (16 bytes, padded to 32) and `b` Q4_0 [32, 2] (36 bytes).
/// Returns the bytes, the end of the tensor infos and the offset where
/// tensor data begins.
fn minimal() -> (Vec<u8>, usize, usize) {
    let mut w = W::new(2, 11);
    w.kv_str("general.architecture", "llama")
        .kv_str("general.name", "Tiny Test 1")
        .kv_u32("general.file_type", 15)
        .kv_u32("llama.context_length", 2048)
        .kv_u32("llama.embedding_length", 4)
        .kv_u32("llama.block_count", 2)
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_tokens("tokenizer.ggml.tokens", &[b"<s>", b"hello", b"\xff\xfe"])
        .kv_i32s("tokenizer.ggml.token_type", &[3, 1, 1])
        .kv_u32("tokenizer.ggml.bos_token_id", 0)
        .kv_str("tokenizer.chat_template", "{{ messages }}");
    w.tensor("a", &[4], 0, 0).tensor("b", &[32, 2], 2, 32);
    let header_end = w.0.len();
    w.pad(32);
    let data_offset = w.0.len();
    assert!(data_offset > header_end, "the test wants some padding");
    w.zeros(16).pad(32).zeros(36);
    (w.0, header_end, data_offset)
}

fn write_tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn malformed_reason(r: Result<ModelInfo, GgufError>) -> String {
    match r {
        Err(GgufError::Malformed { reason, .. }) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn minimal_file_is_inspected() {
    let (bytes, _, data_offset) = minimal();
    let f = write_tmp(&bytes);
    let info = validate(f.path()).unwrap();
    assert_eq!(info.file_size, bytes.len() as u64);
    assert_eq!(info.gguf_version, 3);
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.name.as_deref(), Some("Tiny Test 1"));
    assert_eq!(info.parameter_count, 4 + 64);
    assert_eq!(info.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(info.file_type, Some(15));
    assert_eq!(info.tensor_count, 2);
    assert_eq!(info.metadata_count, 11);
    assert_eq!(info.tensor_types.get("F32"), Some(&1));
    assert_eq!(info.tensor_types.get("Q4_0"), Some(&1));
    assert_eq!(info.tokenizer_model.as_deref(), Some("gpt2"));
    assert_eq!(info.vocab_size, Some(3));
    assert_eq!(info.bos_token_id, Some(0));
    assert_eq!(info.eos_token_id, None);
    assert_eq!(info.context_length, Some(2048));
    assert_eq!(info.block_count, Some(2));
    assert_eq!(info.embedding_length, Some(4));
    assert!(info.has_chat_template);
    assert_eq!(inspect(f.path()).unwrap(), info);

    let h = read_header(f.path()).unwrap();
    assert_eq!(h.data_offset, data_offset as u64);
    assert_eq!(h.alignment, 32);
    assert_eq!(h.vocab.text(1), Some(&b"hello"[..]));
    // Raw bytes are kept as they are, invalid UTF-8 included.
    assert_eq!(h.vocab.text(2), Some(&b"\xff\xfe"[..]));
    assert_eq!(h.vocab.token_type(0), Some(3));
    assert_eq!(h.tensors[1].dims, vec![32, 2]);
    assert_eq!(h.tensors[1].offset, 32);
    assert_eq!(h.info(), info);
}

#[test]
fn json_and_text_rendering() {
    let (bytes, _, _) = minimal();
    let f = write_tmp(&bytes);
    let info = inspect(f.path()).unwrap();
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["architecture"], "llama");
    assert_eq!(json["vocab_size"], 3);
    assert_eq!(json["tensor_types"]["Q4_0"], 1);
    assert_eq!(json["eos_token_id"], serde_json::Value::Null);
    assert_eq!(json["path"], f.path().to_string_lossy().as_ref());

    let text = info.render_text();
    assert!(text.contains("Architecture:   llama\n"), "{text}");
    assert!(
        text.contains("Quantization:   Q4_K_M (file type 15)\n"),
        "{text}"
    );
    assert!(text.contains("Tokenizer:      gpt2, 3 tokens\n"), "{text}");
    assert!(text.contains("Special tokens: BOS 0\n"), "{text}");
    assert!(text.contains("Chat template:  yes\n"), "{text}");
    assert!(text.contains("Embedding size: 4\n"), "{text}");
}

#[test]
fn bad_magic_and_tiny_files_are_not_gguf() {
    for bytes in [
        &b""[..],
        b"GG",
        b"GGML\x03\0\0\0",
        b"\x7fELF0000000000000000",
    ] {
        let f = write_tmp(bytes);
        match inspect(f.path()) {
            Err(GgufError::NotGguf { path }) => assert_eq!(path, f.path()),
            other => panic!("{bytes:?}: expected NotGguf, got {other:?}"),
        }
    }
}

#[test]
fn missing_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.gguf");
    let err = inspect(&p).unwrap_err();
    assert!(matches!(err, GgufError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("nope.gguf does not exist"),
        "{err}"
    );
    // A directory is refused, not read.
    let err = inspect(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_without_opening() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.gguf");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    // Opening the FIFO would block this test forever.
    for f in [validate, inspect] {
        let err = f(&fifo).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
    }
    let err = validate(Path::new("/dev/zero")).unwrap_err();
    assert!(err.to_string().contains("a character device"), "{err}");
    assert!(check_regular_file(Path::new("/dev/null")).is_err());
}

#[test]
fn unsupported_versions() {
    for (version, hint) in [
        (1u32, "v1"),
        (4, "version 4"),
        (0, "version 0"),
        (0x0300_0000, "big-endian"),
    ] {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 16]);
        let f = write_tmp(&bytes);
        let err = inspect(f.path()).unwrap_err();
        assert!(
            matches!(err, GgufError::UnsupportedVersion { version: v, .. } if v == version),
            "{err:?}"
        );
        assert!(err.to_string().contains(hint), "{err}");
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let (bytes, header_end, _) = minimal();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.gguf");
    for len in 0..bytes.len() {
        std::fs::write(&p, &bytes[..len]).unwrap();
        let v = validate(&p);
        match v {
            Err(GgufError::NotGguf { .. }) => assert!(len < 4, "len {len}"),
            Err(GgufError::Truncated {
                needed, file_size, ..
            }) => {
                assert!(len >= 4, "len {len}");
                assert_eq!(file_size, len as u64);
                assert!(needed > file_size, "len {len}: needed {needed}");
            }
            other => panic!("len {len}: expected truncation, got {other:?}"),
        }
        // The header alone is enough for `inspect`.
        assert_eq!(inspect(&p).is_ok(), len >= header_end, "len {len}");
    }
}

/// Where truncation is reported, at a few chosen points.
#[test]
fn truncation_names_what_is_cut() {
    let (bytes, _, data_offset) = minimal();
    let find = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let cases = [
        (10, "tensor count"),
        (find(b"general.name") + 3, "key of metadata entry 1"),
        (find(b"Tiny Test 1") + 4, "metadata 'general.name'"),
        (find(b"hello") + 1, "metadata 'tokenizer.ggml.tokens'"),
        (
            find(b"\x01\x00\x00\x00\x00\x00\x00\x00b") + 9,
            "tensor info 'b'",
        ),
        (data_offset + 20, "the data of tensor 'b'"),
        (bytes.len() - 1, "the data of tensor 'b'"),
    ];
    for (len, what_expected) in cases {
        let f = write_tmp(&bytes[..len]);
        match validate(f.path()) {
            Err(GgufError::Truncated { what, .. }) => {
                assert_eq!(what, what_expected, "cut at {len}")
            }
            other => panic!("cut at {len}: expected Truncated, got {other:?}"),
        }
    }
    let f = write_tmp(&bytes[..data_offset + 20]);
    let msg = validate(f.path()).unwrap_err().to_string();
    assert!(msg.contains("is truncated"), "{msg}");
    assert!(msg.contains("incomplete download"), "{msg}");
}

#[test]
fn absurd_lengths_fail_fast_without_allocating() {
    let huge = 1u64 << 60;
    // A key whose length claims 2^60 bytes.
    let mut w = W::new(0, 1);
    w.u64(huge).zeros(64);
    let r = malformed_reason(inspect(write_tmp(&w.0).path()));
    assert!(r.contains("string length"), "{r}");

    // A string value claiming 2^60 bytes.
    let mut w = W::new(0, 1);
    w.str(b"general.name").u32(8).u64(huge).zeros(64);
    let r = malformed_reason(inspect(write_tmp(&w.0).path()));
    assert!(r.contains("string length"), "{r}");

    // An array claiming 2^60 elements, of strings and of u8.
    for item in [8u32, 0] {
        let mut w = W::new(0, 1);
        w.str(b"tokenizer.ggml.tokens")
            .u32(9)
            .u32(item)
            .u64(huge)
            .zeros(64);
        let r = malformed_reason(inspect(write_tmp(&w.0).path()));
        assert!(r.contains("count"), "{r}");
    }

    // Counts of metadata and tensors claiming 2^60.
    let mut w = W(b"GGUF".to_vec());
    w.u32(3).u64(0).u64(huge).zeros(64);
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("metadata count"));
    let mut w = W(b"GGUF".to_vec());
    w.u32(3).u64(huge).u64(0).zeros(64);
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("tensor count"));

    // Plausible sizes that the file cannot hold are truncation, found before
    // any allocation of that size.
    let mut w = W::new(0, 1);
    w.str(b"general.name").u32(8).u64(1 << 29).zeros(64);
    assert!(matches!(
        inspect(write_tmp(&w.0).path()),
        Err(GgufError::Truncated { needed, .. }) if needed > 1 << 29
    ));
    let mut w = W::new(0, 1);
    w.str(b"tokenizer.ggml.tokens")
        .u32(9)
        .u32(8)
        .u64(1 << 29)
        .zeros(64);
    assert!(matches!(
        inspect(write_tmp(&w.0).path()),
        Err(GgufError::Truncated { needed, .. }) if needed > 1 << 32
    ));
}

#[test]
fn unknown_value_types_are_malformed() {
    let mut w = W::new(0, 1);
    w.str(b"x").u32(13).zeros(16);
    let r = malformed_reason(inspect(write_tmp(&w.0).path()));
    assert!(r.contains("unknown value type 13"), "{r}");

    let mut w = W::new(0, 1);
    w.str(b"x").u32(9).u32(77).u64(1).zeros(16);
    let r = malformed_reason(inspect(write_tmp(&w.0).path()));
    assert!(r.contains("unknown array element type 77"), "{r}");

    let mut w = W::new(0, 1);
    w.str(b"x").u32(9).u32(9).u64(1).zeros(16);
    let r = malformed_reason(inspect(write_tmp(&w.0).path()));
    assert!(r.contains("nested arrays"), "{r}");
}

#[test]
fn header_structure_errors() {
    // Duplicate key.
    let mut w = W::new(0, 2);
    w.kv_u32("a", 1).kv_u32("a", 2);
    assert!(
        malformed_reason(inspect(write_tmp(&w.0).path())).contains("duplicate metadata key 'a'")
    );

    // Empty key.
    let mut w = W::new(0, 1);
    w.kv_u32("", 1);
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("empty key"));

    // Five dimensions.
    let mut w = W::new(1, 0);
    w.tensor("t", &[1, 1, 1, 1, 1], 0, 0).zeros(64);
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("5 dimensions"));

    // Element count past i64.
    let mut w = W::new(1, 0);
    w.tensor("t", &[1 << 32, 1 << 32], 0, 0).zeros(64);
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("impossible shape"));

    // Alignment not a power of two, or not u32.
    let mut w = W::new(0, 1);
    w.kv_u32("general.alignment", 48);
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("power of two"));
    let mut w = W::new(0, 1);
    w.kv_str("general.alignment", "32");
    assert!(malformed_reason(inspect(write_tmp(&w.0).path())).contains("must be u32"));
}

#[test]
fn custom_alignment_is_honoured() {
    let mut w = W::new(2, 5);
    w.kv_str("general.architecture", "llama")
        .llama_hparams()
        .kv_u32("general.alignment", 64);
    w.tensor("a", &[4], 0, 0).tensor("b", &[8], 0, 64);
    w.pad(64);
    let data_offset = w.0.len();
    w.zeros(16).pad(64).zeros(32);
    let f = write_tmp(&w.0);
    let h = read_header(f.path()).unwrap();
    assert_eq!(h.alignment, 64);
    assert_eq!(h.data_offset, data_offset as u64);
    h.validate().unwrap();
}

fn two_tensor_file(second_type: u32, second_dims: &[u64], second_offset: u64) -> Vec<u8> {
    let mut w = W::new(2, 4);
    w.kv_str("general.architecture", "llama").llama_hparams();
    w.tensor("a", &[4], 0, 0)
        .tensor("b", second_dims, second_type, second_offset);
    w.pad(32).zeros(4096);
    w.0
}

#[test]
fn unknown_tensor_type_is_inspectable_but_invalid() {
    for ty in [99u32, 4, 33, 43] {
        let f = write_tmp(&two_tensor_file(ty, &[32], 32));
        let info = inspect(f.path()).unwrap();
        assert_eq!(
            info.tensor_types.get(&format!("type {ty}")),
            Some(&1),
            "{ty}"
        );
        let r = malformed_reason(validate(f.path()));
        assert!(r.contains(&format!("ggml type {ty}")), "{r}");
    }
    // Type 40 (NVFP4) is known: 64-element blocks of 36 bytes.
    let f = write_tmp(&two_tensor_file(40, &[128], 32));
    validate(f.path()).unwrap();
}

#[test]
fn tensor_layout_errors() {
    // Row not a whole number of Q4_K blocks.
    let f = write_tmp(&two_tensor_file(12, &[100], 32));
    assert!(malformed_reason(validate(f.path())).contains("not a multiple of its block size 256"));

    // Offset not where the previous tensor ends (padded).
    let f = write_tmp(&two_tensor_file(0, &[4], 16));
    assert!(malformed_reason(validate(f.path())).contains("offset 16, expected 32"));

    // Duplicate tensor name.
    let mut w = W::new(2, 1);
    w.kv_str("general.architecture", "llama");
    w.tensor("a", &[4], 0, 0)
        .tensor("a", &[4], 0, 32)
        .pad(32)
        .zeros(64);
    assert!(malformed_reason(validate(write_tmp(&w.0).path())).contains("duplicate tensor name"));

    // Name of 64 bytes.
    let mut w = W::new(1, 1);
    w.kv_str("general.architecture", "llama");
    w.tensor(&"n".repeat(64), &[4], 0, 0).pad(32).zeros(64);
    assert!(malformed_reason(validate(write_tmp(&w.0).path())).contains("64 bytes long"));

    // An absurd offset is an error, not an arithmetic overflow.
    let f = write_tmp(&two_tensor_file(0, &[4], u64::MAX - 8));
    assert!(validate(f.path()).is_err());
}

#[test]
fn missing_architecture_fails_validation_only() {
    let mut w = W::new(0, 1);
    w.kv_str("general.name", "x");
    let f = write_tmp(&w.0);
    let info = inspect(f.path()).unwrap();
    assert_eq!(info.architecture, None);
    assert_eq!(info.quantization, None);
    assert!(info.render_text().contains("Architecture:   (not set)"));
    assert!(malformed_reason(validate(f.path())).contains("general.architecture"));
}

#[test]
fn unknown_file_type_is_named_unknown() {
    let mut w = W::new(0, 5);
    w.kv_str("general.architecture", "llama")
        .llama_hparams()
        .kv_u32("general.file_type", 999);
    let info = validate(write_tmp(&w.0).path()).unwrap();
    assert_eq!(info.quantization.as_deref(), Some("unknown (999)"));
}

#[test]
fn draft_check_on_files() {
    let (bytes, _, _) = minimal();
    let a = write_tmp(&bytes);
    check_draft_compatible(a.path(), a.path()).unwrap();

    let mut w = W::new(0, 3);
    w.kv_str("general.architecture", "llama")
        .kv_str("tokenizer.ggml.model", "llama")
        .kv_tokens("tokenizer.ggml.tokens", &[b"<s>", b"hullo", b"\xff\xfe"]);
    let b = write_tmp(&w.0);
    match check_draft_compatible(a.path(), b.path()) {
        Err(GgufError::VocabMismatch { differences }) => {
            assert_eq!(
                differences,
                vec![
                    "tokenizer model: target gpt2, draft llama".to_string(),
                    "BOS token id: target 0, draft none".to_string(),
                    "token texts differ at 1 of 3 common ids, first at id 1: target \"hello\", draft \"hullo\""
                        .to_string(),
                ]
            );
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

/// One metadata value for [`hparams_file`].
#[derive(Clone, Copy)]
enum V {
    U32(u32),
    I32(i32),
    F32(f32),
    Str(&'static str),
    U32s(&'static [u32]),
}

/// A metadata key to set (or remove, with `None`).
type Change = (&'static str, Option<V>);

/// A tensor-less llama file with plausible hyperparameters (64-wide, 8
/// heads, 2 key/value heads, 2 layers), `changes` replacing or adding keys
/// (`None` removes one).
fn hparams_file(changes: &[Change]) -> tempfile::NamedTempFile {
    let mut kvs: Vec<(String, V)> = vec![
        ("general.architecture".into(), V::Str("llama")),
        ("llama.context_length".into(), V::U32(2048)),
        ("llama.embedding_length".into(), V::U32(64)),
        ("llama.block_count".into(), V::U32(2)),
        ("llama.attention.head_count".into(), V::U32(8)),
        ("llama.attention.head_count_kv".into(), V::U32(2)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            V::F32(1e-5),
        ),
    ];
    for (key, value) in changes {
        kvs.retain(|(k, _)| k != key);
        if let Some(v) = value {
            kvs.push((key.to_string(), *v));
        }
    }
    let mut w = W::new(0, kvs.len() as u64 + 1);
    w.kv_tokens("tokenizer.ggml.tokens", &[b"a", b"b", b""]);
    for (k, v) in &kvs {
        w.str(k.as_bytes());
        match *v {
            V::U32(x) => w.u32(4).u32(x),
            V::I32(x) => w.u32(5).u32(x as u32),
            V::F32(x) => w.u32(6).u32(x.to_bits()),
            V::Str(s) => w.u32(8).str(s.as_bytes()),
            V::U32s(xs) => {
                w.u32(9).u32(4).u64(xs.len() as u64);
                for &x in xs {
                    w.u32(x);
                }
                &mut w
            }
        };
    }
    write_tmp(&w.0)
}

fn hparams_reason(changes: &[Change]) -> String {
    match validate(hparams_file(changes).path()) {
        Err(GgufError::Hyperparameters { reason, .. }) => reason,
        other => panic!(
            "{:?}: expected Hyperparameters, got {other:?}",
            changes.len()
        ),
    }
}

#[test]
fn plausible_hyperparameters_pass() {
    validate(hparams_file(&[]).path()).unwrap();
    // Per-layer arrays, a MoE configuration, another known architecture.
    validate(
        hparams_file(&[
            ("llama.attention.head_count", Some(V::U32s(&[8, 4]))),
            ("llama.attention.head_count_kv", Some(V::U32s(&[2, 4]))),
            ("llama.expert_count", Some(V::U32(8))),
            ("llama.expert_used_count", Some(V::U32(2))),
        ])
        .path(),
    )
    .unwrap();
}

#[test]
fn hyperparameters_llama_cpp_asserts_on_are_refused() {
    let nan = f32::NAN;
    let cases: &[(&[Change], &str)] = &[
        (&[("llama.block_count", Some(V::U32(0)))], "1 to 512 layers"),
        (&[("llama.block_count", Some(V::U32(100_000)))], "is 100000"),
        (
            &[("llama.block_count", Some(V::U32(513)))],
            "1 to 512 layers",
        ),
        (&[("llama.block_count", None)], "block_count is missing"),
        (&[("llama.block_count", Some(V::I32(2)))], "reads it as u32"),
        (
            &[("llama.context_length", Some(V::U32(0)))],
            "context_length is 0",
        ),
        (
            &[("llama.embedding_length", Some(V::U32(0)))],
            "embedding_length is 0",
        ),
        (
            &[
                ("llama.attention.head_count", Some(V::U32(3))),
                ("llama.attention.head_count_kv", Some(V::U32(1))),
            ],
            "not a multiple of 3 attention heads",
        ),
        (
            &[("llama.attention.head_count_kv", Some(V::U32(3)))],
            "multiple of 3 key/value",
        ),
        (
            &[("llama.attention.head_count_kv", Some(V::U32(16)))],
            "multiple of 16",
        ),
        (
            &[("llama.attention.head_count", Some(V::U32s(&[8])))],
            "1 values for 2 layers",
        ),
        (&[("llama.expert_count", Some(V::U32(8)))], "dense model"),
        (
            &[("llama.expert_used_count", Some(V::U32(2)))],
            "no experts",
        ),
        (
            &[
                ("llama.expert_count", Some(V::U32(8))),
                ("llama.expert_used_count", Some(V::U32(9))),
            ],
            "more than the 8 experts",
        ),
        (
            &[("llama.expert_count", Some(V::U32(5000)))],
            "at most 1024",
        ),
        (
            &[("llama.attention.layer_norm_rms_epsilon", Some(V::F32(nan)))],
            "is NaN",
        ),
        (
            &[(
                "llama.attention.layer_norm_rms_epsilon",
                Some(V::F32(-1e-5)),
            )],
            "above 0",
        ),
        (
            &[("llama.attention.layer_norm_rms_epsilon", Some(V::F32(0.0)))],
            "above 0",
        ),
        (
            &[(
                "llama.attention.layer_norm_epsilon",
                Some(V::F32(f32::INFINITY)),
            )],
            "is inf",
        ),
        (
            &[("llama.rope.scaling.type", Some(V::Str("bogus")))],
            "'bogus'",
        ),
        (
            &[("llama.attention.key_length", Some(V::U32(16)))],
            "equal key head size",
        ),
        (
            &[("llama.rope.dimension_count", Some(V::U32(32)))],
            "more than the head size",
        ),
        (
            &[("general.architecture", Some(V::Str("llama9")))],
            "'llama9' is not one",
        ),
    ];
    for (changes, expected) in cases {
        let reason = hparams_reason(changes);
        assert!(reason.contains(expected), "{expected:?} not in {reason:?}");
    }
    // The message names the file and says it cannot be loaded.
    let f = hparams_file(&[("llama.block_count", Some(V::U32(0)))]);
    let msg = validate(f.path()).unwrap_err().to_string();
    assert!(msg.contains("cannot be loaded"), "{msg}");
    assert!(msg.contains(&f.path().display().to_string()), "{msg}");
}

#[test]
fn duplicate_token_texts_are_refused() {
    let mut w = W::new(0, 5);
    w.kv_str("general.architecture", "llama")
        .llama_hparams()
        .kv_tokens("tokenizer.ggml.tokens", &[b"a", b"[EMPTY_2]", b""]);
    let f = write_tmp(&w.0);
    match validate(f.path()) {
        Err(GgufError::Hyperparameters { reason, .. }) => {
            assert!(reason.contains("token 2"), "{reason}")
        }
        other => panic!("expected Hyperparameters, got {other:?}"),
    }
    // `inspect` still describes the file.
    assert_eq!(inspect(f.path()).unwrap().vocab_size, Some(3));
}

#[test]
fn token_embedding_shape_is_checked() {
    let make = |dims: &[u64]| {
        let mut w = W::new(1, 5);
        w.kv_str("general.architecture", "llama")
            .llama_hparams()
            .kv_tokens("tokenizer.ggml.tokens", &[b"a", b"b", b"c"]);
        w.tensor("token_embd.weight", dims, 0, 0)
            .pad(32)
            .zeros(4 * 64);
        write_tmp(&w.0)
    };
    validate(make(&[4, 3]).path()).unwrap();
    for dims in [&[8u64, 3][..], &[4, 4], &[12]] {
        match validate(make(dims).path()) {
            Err(GgufError::Hyperparameters { reason, .. }) => {
                assert!(reason.contains("expected [4, 3]"), "{reason}")
            }
            other => panic!("{dims:?}: expected Hyperparameters, got {other:?}"),
        }
    }
}
