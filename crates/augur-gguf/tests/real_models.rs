//! Checks on the real models augur ships with. They must be present: these
//! tests fail, not skip, when one is missing.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::PathBuf;

use augur_gguf::{check_draft_compatible, inspect, read_header, validate, GgufError, ModelInfo};

const QWEN_1_5B: &str = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf";
const QWEN_0_5B: &str = "Qwen2.5-Coder-0.5B-Instruct-Q5_0.gguf";
const SMOLLM2: &str = "SmolLM2-135M-Instruct-Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-Q4_K_M.gguf";

/// `$AUGUR_MODELS_DIR`, else `~/.cache/augur/models`.
fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AUGUR_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set and AUGUR_MODELS_DIR is not set");
    PathBuf::from(home).join(".cache/augur/models")
}

fn model(name: &str) -> PathBuf {
    let path = models_dir().join(name);
    assert!(
        path.is_file(),
        "model {name} is missing from {}: run `augur models pull --all` \
         (or point AUGUR_MODELS_DIR at a folder that has it)",
        models_dir().display()
    );
    path
}

/// Expected facts, from the models' published descriptions.
struct Expect {
    file: &'static str,
    arch: &'static str,
    file_size: u64,
    vocab: u64,
    tokenizer: &'static str,
    /// (id, text) of BOS and EOS.
    bos: (u32, &'static str),
    eos: (u32, &'static str),
    chat_template: bool,
}

/// The Qwen2.5-Coder models share a tokenizer and its special tokens.
const fn qwen(file: &'static str, file_size: u64) -> Expect {
    Expect {
        file,
        arch: "qwen2",
        file_size,
        vocab: 151_936,
        tokenizer: "gpt2",
        bos: (151_643, "<|endoftext|>"),
        eos: (151_645, "<|im_end|>"),
        chat_template: true,
    }
}

const MODELS: [Expect; 4] = [
    qwen(QWEN_1_5B, 1_117_320_768),
    qwen(QWEN_0_5B, 491_400_064),
    Expect {
        file: SMOLLM2,
        arch: "llama",
        file_size: 98_362_432,
        vocab: 49_152,
        tokenizer: "gpt2",
        bos: (1, "<|im_start|>"),
        eos: (2, "<|im_end|>"),
        chat_template: true,
    },
    Expect {
        // The base (not instruction-tuned) Gemma 3 270M: no chat template.
        file: GEMMA3,
        arch: "gemma3",
        file_size: 253_113_024,
        vocab: 262_144,
        tokenizer: "llama",
        bos: (2, "<bos>"),
        eos: (1, "<eos>"),
        chat_template: false,
    },
];

#[test]
fn real_models_validate_with_expected_facts() {
    for e in &MODELS {
        let path = model(e.file);
        let info = validate(&path).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(info.architecture.as_deref(), Some(e.arch), "{}", e.file);
        assert_eq!(info.file_size, e.file_size, "{}", e.file);
        assert_eq!(info.vocab_size, Some(e.vocab), "{}", e.file);
        assert_eq!(
            info.tokenizer_model.as_deref(),
            Some(e.tokenizer),
            "{}",
            e.file
        );
        assert_eq!(info.has_chat_template, e.chat_template, "{}", e.file);
        assert_eq!(info.gguf_version, 3, "{}", e.file);
        assert_eq!(info.bos_token_id, Some(e.bos.0), "{}", e.file);
        assert_eq!(info.eos_token_id, Some(e.eos.0), "{}", e.file);
        assert_eq!(
            info.tensor_types.values().sum::<u64>(),
            info.tensor_count,
            "{}",
            e.file
        );
        assert!(info.context_length.is_some_and(|n| n >= 8192), "{}", e.file);

        // The metadata and the tensors and token list agree with each other.
        let h = read_header(&path).unwrap();
        assert_eq!(h.info(), info);
        let embd = h
            .tensors
            .iter()
            .find(|t| t.name == "token_embd.weight")
            .unwrap();
        assert_eq!(
            embd.dims,
            vec![info.embedding_length.unwrap(), e.vocab],
            "{}",
            e.file
        );
        let blocks = h
            .tensors
            .iter()
            .filter_map(|t| {
                t.name
                    .strip_prefix("blk.")?
                    .split('.')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .map(|m| m + 1);
        assert_eq!(blocks, info.block_count, "{}", e.file);
        for (id, text) in [e.bos, e.eos] {
            assert_eq!(
                h.vocab.text(id as usize),
                Some(text.as_bytes()),
                "{}",
                e.file
            );
        }
        assert!(info.render_text().contains(e.arch));
    }
}

/// The type of most tensors, leaving out the F32 ones (norms, biases).
fn most_common_quantized(info: &ModelInfo) -> Option<&str> {
    info.tensor_types
        .iter()
        .filter(|(t, _)| *t != "F32")
        .max_by_key(|(_, n)| **n)
        .map(|(t, _)| t.as_str())
}

#[test]
fn quantization_names_follow_file_names() {
    let q15 = inspect(&model(QWEN_1_5B)).unwrap();
    assert_eq!(q15.quantization.as_deref(), Some("Q4_K_M"));
    // Q4_K_M keeps some tensors in Q6_K; most are Q4_K.
    assert_eq!(most_common_quantized(&q15), Some("Q4_K"));
    assert!(q15.tensor_types.contains_key("Q6_K"));

    let smol = inspect(&model(SMOLLM2)).unwrap();
    assert_eq!(smol.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(smol.file_type, Some(3));
    // 135M parameters, as the name says.
    assert!(
        (130_000_000..140_000_000).contains(&smol.parameter_count),
        "{}",
        smol.parameter_count
    );

    // The 0.5B file says file type 15 (Q4_K_M) though most of its tensors are
    // Q5_0: the tensor counts show what the file really holds.
    let q05 = inspect(&model(QWEN_0_5B)).unwrap();
    assert_eq!(most_common_quantized(&q05), Some("Q5_0"));
}

#[test]
fn qwen_pair_is_draft_compatible() {
    check_draft_compatible(&model(QWEN_1_5B), &model(QWEN_0_5B)).unwrap();
    check_draft_compatible(&model(QWEN_0_5B), &model(QWEN_1_5B)).unwrap();
}

#[test]
fn qwen_and_smollm2_are_incompatible() {
    let err = check_draft_compatible(&model(QWEN_1_5B), &model(SMOLLM2)).unwrap_err();
    let GgufError::VocabMismatch { differences } = &err else {
        panic!("expected VocabMismatch, got {err:?}");
    };
    assert!(
        differences.contains(&"vocabulary size: target 151,936, draft 49,152".to_string()),
        "{differences:?}"
    );
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("token texts differ at ")),
        "{differences:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("vocabulary size"), "{msg}");
}

#[test]
fn truncated_download_fails_validation() {
    let src = model(SMOLLM2);
    let cut = 50 * 1024 * 1024;
    let mut head = vec![0u8; cut];
    std::fs::File::open(&src)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.write_all(&head).unwrap();
    tmp.flush().unwrap();

    // The header is whole, so it can still be inspected…
    let info = inspect(tmp.path()).unwrap();
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    // …but loading would fail.
    match validate(tmp.path()) {
        Err(GgufError::Truncated {
            needed,
            file_size,
            what,
            ..
        }) => {
            assert_eq!(file_size, cut as u64);
            assert!(needed > file_size && needed <= 98_362_432, "{needed}");
            assert!(what.starts_with("the data of tensor '"), "{what}");
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}
