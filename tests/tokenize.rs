//! Tokenization of long texts full of special tokens: linear in the text,
//! and token for token what one llama.cpp call gives.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use augur::llama::GgufModel;
use augur::TokenId;

fn load(name: &str) -> std::sync::Arc<GgufModel> {
    let path = augur::models::path_of(name).unwrap_or_else(|e| panic!("{e}"));
    augur::load_model(&path, 0).unwrap()
}

/// One llama.cpp call on the whole text, as `tokenize` did before.
fn whole(model: &GgufModel, text: &str, add_special: bool) -> Vec<TokenId> {
    model
        .raw()
        .vocab()
        .tokenize(text.as_bytes(), add_special, true)
        .into_iter()
        .map(|t| t.0 as TokenId)
        .collect()
}

/// Texts with special tokens in every position llama.cpp's partition
/// treats specially: at the start and end, adjacent, around whitespace and
/// newlines, cut short, inside words and next to multi-byte characters.
fn texts(specials: &[&str]) -> Vec<String> {
    let mut out = vec![
        String::new(),
        "plain text without special tokens, but long enough to matter.".repeat(3),
    ];
    for s in specials {
        let cut = &s[..s.len() / 2];
        out.push(format!("{s}{s}{s}"));
        out.push(format!(
            "{s}system\nYou are helpful.{s}\n{s}user\n  x  {s}  \n\n{s}"
        ));
        out.push(format!("a{s}b {s} c\t{s}\td\n{s}\ne {cut} f{cut}{s}{cut}"));
        out.push(format!("héllo{s}wörld 日本{s}語 {s}🙂{s}"));
        out.push(format!("   {s}   ").repeat(5));
    }
    let all: String = specials.concat();
    out.push(format!("x{all}y{all} {all}\n{all}"));
    out
}

fn check_model(name: &str, specials: &[&str]) {
    let model = load(name);
    for text in texts(specials) {
        for add_special in [false, true] {
            let expected = whole(&model, &text, add_special);
            for per_piece in [1, 2, 3, 7] {
                let got = model.tokenize_split(&text, add_special, per_piece).unwrap();
                assert_eq!(
                    got, expected,
                    "{name}: {per_piece} per piece, add_special {add_special}, text {text:?}"
                );
            }
            assert_eq!(model.tokenize(&text, add_special).unwrap(), expected);
        }
    }
}

#[test]
fn split_tokenization_is_exact_on_bpe_vocabularies() {
    check_model(
        "smollm2-135m",
        &["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>"],
    );
    check_model(
        "qwen2.5-coder-0.5b",
        &[
            "<|im_start|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|endoftext|>",
        ],
    );
}

#[test]
fn split_tokenization_is_exact_on_spm_vocabularies() {
    check_model(
        "gemma3-270m",
        &[
            "<start_of_turn>",
            "<end_of_turn>",
            "<bos>",
            "<unused7>",
            "<unused77>",
        ],
    );
}

#[test]
fn many_special_tokens_take_linear_time() {
    let model = load("smollm2-135m");
    // 2 MiB with <|im_start|> every 20 bytes: 46 s when llama.cpp's
    // partition (quadratic in the number of special tokens) ran on it whole.
    let unit = "<|im_start|>abcdefgh";
    let text = unit.repeat((2 << 20) / unit.len());
    let start = Instant::now();
    let tokens = model.tokenize(&text, true).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert!(tokens.len() > text.len() / 20, "{} tokens", tokens.len());
    assert!(seconds < 20.0, "2 MiB took {seconds:.1} s");
    // The same tokens as one call on a part small enough for it.
    let part = &text[..64 * unit.len() * 4];
    assert_eq!(
        model.tokenize_split(part, true, 16).unwrap(),
        whole(&model, part, true)
    );
}
