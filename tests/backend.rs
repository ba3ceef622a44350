//! The llama.cpp backend on a real model (SmolLM2-135M): tokenization, greedy
//! determinism, KV rollback, and bad input.
#![allow(clippy::unwrap_used)]

mod common;

use augur::core::model::RunLogits;
use augur::core::sampling::argmax;
use augur::{Batch, LogitRows, Model, TokenId};
use common::{model, session, Plain};

const SMOL: &str = "smollm2-135m";

#[test]
fn tokenize_detokenize_round_trip() {
    let m = model(SMOL);
    for text in [
        "Hello, world!",
        "fn main() { println!(\"hi\"); }\n",
        "Grüße aus Köln — 東京 🚀",
        "  leading spaces and\ttabs\n\nnewlines",
    ] {
        let tokens = m.tokenize(text, false).unwrap();
        assert!(!tokens.is_empty());
        assert_eq!(m.detokenize(&tokens), text, "round trip of {text:?}");
    }
}

#[test]
fn streaming_pieces_rebuild_the_text_without_splitting_characters() {
    let m = model(SMOL);
    let text = "emoji 🚀🎉 and accents éèê, CJK 東京";
    let tokens = m.tokenize(text, false).unwrap();
    let mut stream = augur::llama::Utf8Stream::new();
    let mut out = String::new();
    for t in tokens {
        let piece = stream.push(&m.token_to_piece(t, false));
        out.push_str(&piece);
    }
    out.push_str(&stream.finish());
    assert_eq!(out, text);
}

fn greedy(n: usize, prompt: &[TokenId]) -> Vec<TokenId> {
    let m = model(SMOL);
    let mut s = session(&m, 512, 1);
    let params = augur::GenerateParams {
        max_tokens: n,
        ..Default::default()
    };
    augur::generate(&mut s, &mut Plain, prompt, &params, &mut |_| true)
        .unwrap()
        .tokens
}

#[test]
fn greedy_generation_is_deterministic() {
    let m = model(SMOL);
    let prompt = m.tokenize("The three primary colors are", true).unwrap();
    let a = greedy(24, &prompt);
    let b = greedy(24, &prompt);
    assert_eq!(a.len(), 24);
    assert_eq!(a, b);
}

#[test]
fn rollback_then_redecode_gives_the_same_continuation() {
    let m = model(SMOL);
    let prompt = m
        .tokenize("Once upon a time, in a small village,", true)
        .unwrap();
    let mut s = session(&m, 512, 1);
    let mut batch = Batch::new();
    let mut out = LogitRows::new(s.n_vocab());
    batch.add_run(&prompt, 0, RunLogits::Last);
    s.eval(&batch, &mut out).unwrap();
    // Greedy continuation, one token per pass.
    let mut seq = prompt.clone();
    let mut next = argmax(out.row(0));
    let mut first_run = Vec::new();
    for _ in 0..16 {
        first_run.push(next);
        seq.push(next);
        batch.clear();
        batch.add(next, seq.len() - 1, &[0], true);
        s.eval(&batch, &mut out).unwrap();
        next = argmax(out.row(0));
    }
    // Roll back the last k positions and decode the same tokens again.
    let k = 6;
    let cut = seq.len() - k;
    s.remove_from(0, cut).unwrap();
    for (i, &t) in seq[cut..].iter().enumerate() {
        batch.clear();
        batch.add(t, cut + i, &[0], true);
        s.eval(&batch, &mut out).unwrap();
        if cut + i + 1 < seq.len() {
            assert_eq!(
                argmax(out.row(0)),
                seq[cut + i + 1],
                "after rollback, position {}",
                cut + i
            );
        }
    }
    assert_eq!(
        argmax(out.row(0)),
        next,
        "the continuation after the re-decoded tokens"
    );
    // Forgetting the rollback is an error, not silent corruption.
    batch.clear();
    batch.add(next, 3, &[0], true);
    assert!(s.eval(&batch, &mut out).is_err());
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let m = model(SMOL);
    let mut s = session(&m, 64, 1);
    // llama.cpp may round the context up: use the size it really has.
    let n_ctx = s.n_ctx();
    let prompt: Vec<TokenId> = m.tokenize(&"word ".repeat(n_ctx + 10), true).unwrap();
    let err = augur::generate(
        &mut s,
        &mut Plain,
        &prompt,
        &augur::GenerateParams::default(),
        &mut |_| true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("context holds only {n_ctx}")),
        "{err}"
    );
}

#[test]
fn non_gguf_and_truncated_files_are_refused_before_llama_cpp_sees_them() {
    let dir = std::env::temp_dir().join(format!("augur-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"this is not a model").unwrap();
    let err = augur::load_model(&junk, 0).unwrap_err().to_string();
    assert!(err.to_lowercase().contains("gguf"), "{err}");

    let src = augur::models::path_of(SMOL).unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = augur::load_model(&truncated, 0).unwrap_err().to_string();
    assert!(
        err.contains("truncated") || err.contains("Truncated"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
