//! Tokenizer data from the header, and the draft/target compatibility check.

use std::collections::BTreeMap;

use crate::reader::MetaValue;
use crate::GgufError;

/// llama.cpp's `SPEC_VOCAB_MAX_SIZE_DIFFERENCE`: converters pad vocabularies
/// to a multiple of some size, so two models of one family can differ by a
/// few padding tokens.
pub const MAX_VOCAB_SIZE_DIFFERENCE: usize = 128;

/// llama.cpp's `LLAMA_TOKEN_TYPE_UNUSED` (`tokenizer.ggml.token_type`), the
/// type converters give padding tokens.
const TOKEN_TYPE_UNUSED: i32 = 5;

/// Token texts stored in one buffer (a 150k-token list would otherwise be
/// 150k small allocations). When only counted, `ends` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TokenTexts {
    len: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl TokenTexts {
    pub(crate) fn counted(len: u64) -> Self {
        TokenTexts {
            len,
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    pub(crate) fn kept(bytes: Vec<u8>, ends: Vec<usize>) -> Self {
        TokenTexts {
            len: ends.len() as u64,
            bytes,
            ends,
        }
    }
}

/// The tokenizer part of a GGUF header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocab {
    /// `tokenizer.ggml.model` (`gpt2`, `llama`, …).
    pub model: Option<String>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `None` when the file has no `tokenizer.ggml.tokens`.
    texts: Option<TokenTexts>,
    /// `tokenizer.ggml.token_type`, when present as `i32`s.
    token_types: Option<Vec<i32>>,
}

fn token_id(metadata: &BTreeMap<String, MetaValue>, key: &str) -> Option<u32> {
    metadata
        .get(key)
        .and_then(MetaValue::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

impl Vocab {
    pub(crate) fn from_metadata(
        metadata: &BTreeMap<String, MetaValue>,
        texts: Option<TokenTexts>,
        token_types: Option<Vec<i32>>,
    ) -> Self {
        Vocab {
            model: metadata
                .get("tokenizer.ggml.model")
                .and_then(MetaValue::as_str)
                .map(str::to_string),
            bos: token_id(metadata, "tokenizer.ggml.bos_token_id"),
            eos: token_id(metadata, "tokenizer.ggml.eos_token_id"),
            eot: token_id(metadata, "tokenizer.ggml.eot_token_id"),
            add_bos: metadata
                .get("tokenizer.ggml.add_bos_token")
                .and_then(MetaValue::as_bool),
            texts,
            token_types,
        }
    }

    /// Builds a vocabulary from token texts (for tests and callers that
    /// obtained a token list elsewhere).
    pub fn from_tokens<I, T>(model: Option<&str>, tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for t in tokens {
            bytes.extend_from_slice(t.as_ref());
            ends.push(bytes.len());
        }
        Vocab {
            model: model.map(str::to_string),
            texts: Some(TokenTexts::kept(bytes, ends)),
            ..Vocab::default()
        }
    }

    /// Sets the token types (`tokenizer.ggml.token_type`).
    pub fn with_token_types(mut self, types: Vec<i32>) -> Self {
        self.token_types = Some(types);
        self
    }

    /// Number of tokens in `tokenizer.ggml.tokens`, `None` if the list is absent.
    pub fn size(&self) -> Option<u64> {
        self.texts.as_ref().map(|t| t.len)
    }

    /// Whether the token texts were kept in memory.
    pub fn has_texts(&self) -> bool {
        self.texts
            .as_ref()
            .is_some_and(|t| t.ends.len() as u64 == t.len)
    }

    /// Text of token `id` as stored in the file (raw bytes), if kept.
    pub fn text(&self, id: usize) -> Option<&[u8]> {
        let t = self.texts.as_ref()?;
        let end = *t.ends.get(id)?;
        let start = if id == 0 { 0 } else { t.ends[id - 1] };
        t.bytes.get(start..end)
    }

    /// Type of token `id` (`tokenizer.ggml.token_type`), if present.
    pub fn token_type(&self, id: usize) -> Option<i32> {
        self.token_types.as_ref()?.get(id).copied()
    }

    /// Whether `id` is a padding token: typed UNUSED, or named `[PAD<id>]`
    /// as converters name the filler they append.
    fn is_padding(&self, id: usize) -> bool {
        if self.token_type(id) == Some(TOKEN_TYPE_UNUSED) {
            return true;
        }
        self.text(id)
            .is_some_and(|t| t == format!("[PAD{id}]").as_bytes())
    }
}

/// Thousands separators, for messages about vocabulary sizes.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A token text for a message: quoted, escaped, shortened.
fn show_token(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut shown: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        shown.push('…');
    }
    format!("{shown:?}")
}

fn show_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "none".to_string(),
    }
}

/// Checks that a draft model can propose tokens for a target model: the ids
/// must mean the same text in both.
///
/// Rules (a [`GgufError::VocabMismatch`] lists every one that fails):
/// - same tokenizer model (`tokenizer.ggml.model`);
/// - same BOS and EOS ids (both absent counts as equal);
/// - both have a token list, and the sizes are equal, or differ by at most
///   [`MAX_VOCAB_SIZE_DIFFERENCE`] (as llama.cpp allows) **and** every extra
///   token of the larger one is padding (token type UNUSED or text `[PAD<id>]`),
///   so a real token can never be proposed that the other model lacks;
/// - identical token text at every id below the smaller size. llama.cpp skips
///   ids 0–4; we compare all of them, since a draft that proposes id 0 must mean
///   what the target means by it.
///
/// A draft whose ids mean something else would not make the output wrong
/// (verification keeps only what the target agrees with), but it would be
/// useless, and an id past the target's vocabulary would be out of range.
///
/// Both vocabularies must have been read with their texts kept (as
/// [`crate::read_header`] does).
pub fn check_vocab_compatible(target: &Vocab, draft: &Vocab) -> Result<(), GgufError> {
    let mut diffs = Vec::new();
    if target.model != draft.model {
        diffs.push(format!(
            "tokenizer model: target {}, draft {}",
            show_opt(&target.model),
            show_opt(&draft.model)
        ));
    }
    if target.bos != draft.bos {
        diffs.push(format!(
            "BOS token id: target {}, draft {}",
            show_opt(&target.bos),
            show_opt(&draft.bos)
        ));
    }
    if target.eos != draft.eos {
        diffs.push(format!(
            "EOS token id: target {}, draft {}",
            show_opt(&target.eos),
            show_opt(&draft.eos)
        ));
    }

    match (target.has_texts(), draft.has_texts()) {
        (true, true) => compare_texts(target, draft, &mut diffs),
        (t, d) => {
            for (side, has) in [("target", t), ("draft", d)] {
                if !has {
                    diffs.push(format!("{side} has no token list (tokenizer.ggml.tokens)"));
                }
            }
        }
    }

    if diffs.is_empty() {
        Ok(())
    } else {
        Err(GgufError::VocabMismatch { differences: diffs })
    }
}

fn compare_texts(target: &Vocab, draft: &Vocab, diffs: &mut Vec<String>) {
    let nt = target.size().unwrap_or(0) as usize;
    let nd = draft.size().unwrap_or(0) as usize;
    if nt != nd {
        let size = format!(
            "vocabulary size: target {}, draft {}",
            group(nt as u64),
            group(nd as u64)
        );
        let (larger, side) = if nt > nd {
            (target, "target")
        } else {
            (draft, "draft")
        };
        let (lo, hi) = (nt.min(nd), nt.max(nd));
        if hi - lo > MAX_VOCAB_SIZE_DIFFERENCE {
            diffs.push(size);
        } else if let Some(id) = (lo..hi).find(|&id| !larger.is_padding(id)) {
            diffs.push(format!(
                "{size} (the {side}'s extra ids are not all padding: id {id} is {})",
                show_token(larger.text(id).unwrap_or_default())
            ));
        }
    }

    let common = nt.min(nd);
    let mut n_diff = 0u64;
    let mut first = None;
    for id in 0..common {
        let a = target.text(id).unwrap_or_default();
        let b = draft.text(id).unwrap_or_default();
        if a != b {
            n_diff += 1;
            if first.is_none() {
                first = Some((id, a, b));
            }
        }
    }
    if let Some((id, a, b)) = first {
        diffs.push(format!(
            "token texts differ at {} of {} common ids, first at id {id}: target {}, draft {}",
            group(n_diff),
            group(common as u64),
            show_token(a),
            show_token(b)
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vocab(model: &str, tokens: &[&str]) -> Vocab {
        Vocab::from_tokens(Some(model), tokens.iter().map(|t| t.as_bytes()))
    }

    fn mismatch(r: Result<(), GgufError>) -> Vec<String> {
        match r {
            Err(GgufError::VocabMismatch { differences }) => differences,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn identical_vocabs_are_compatible() {
        let a = vocab("gpt2", &["a", "b", "c"]);
        check_vocab_compatible(&a, &a.clone()).unwrap();
    }

    #[test]
    fn text_difference_is_counted_and_first_shown() {
        let a = vocab("gpt2", &["a", "b", "c", "d"]);
        let b = vocab("gpt2", &["a", "x", "c", "y"]);
        let d = mismatch(check_vocab_compatible(&a, &b));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("differ at 2 of 4 common ids"), "{}", d[0]);
        assert!(
            d[0].contains("first at id 1: target \"b\", draft \"x\""),
            "{}",
            d[0]
        );
    }

    #[test]
    fn model_and_special_ids_are_compared() {
        let a = vocab("gpt2", &["a"]);
        let mut b = vocab("llama", &["a"]);
        b.bos = Some(0);
        let d = mismatch(check_vocab_compatible(&a, &b));
        assert!(
            d.iter()
                .any(|m| m == "tokenizer model: target gpt2, draft llama"),
            "{d:?}"
        );
        assert!(
            d.iter().any(|m| m == "BOS token id: target none, draft 0"),
            "{d:?}"
        );
        assert_eq!(d.len(), 2, "{d:?}");
    }

    #[test]
    fn large_size_difference_is_a_mismatch() {
        let a = vocab("gpt2", &vec!["t"; 300]);
        let b = vocab("gpt2", &vec!["t"; 100]);
        let d = mismatch(check_vocab_compatible(&a, &b));
        assert_eq!(
            d,
            vec!["vocabulary size: target 300, draft 100".to_string()]
        );
    }

    #[test]
    fn small_padding_difference_is_tolerated() {
        let base: Vec<String> = (0..10).map(|i| format!("tok{i}")).collect();
        let mut padded = base.clone();
        padded.extend((10..20).map(|i| format!("[PAD{i}]")));
        let a = Vocab::from_tokens(Some("gpt2"), &padded);
        let b = Vocab::from_tokens(Some("gpt2"), &base);
        check_vocab_compatible(&a, &b).unwrap();
        check_vocab_compatible(&b, &a).unwrap();

        // Padding recognised by type even with another text.
        let mut typed = base.clone();
        typed.push("<unused>".to_string());
        let types = [vec![1; 10], vec![TOKEN_TYPE_UNUSED]].concat();
        let c = Vocab::from_tokens(Some("gpt2"), &typed).with_token_types(types);
        check_vocab_compatible(&b, &c).unwrap();
    }

    #[test]
    fn small_difference_of_real_tokens_is_a_mismatch() {
        let base: Vec<String> = (0..10).map(|i| format!("tok{i}")).collect();
        let mut more = base.clone();
        more.push("[PAD10]".to_string());
        more.push("hello".to_string());
        let a = Vocab::from_tokens(Some("gpt2"), &base);
        let b = Vocab::from_tokens(Some("gpt2"), &more);
        let d = mismatch(check_vocab_compatible(&a, &b));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].starts_with("vocabulary size: target 10, draft 12"),
            "{}",
            d[0]
        );
        assert!(d[0].contains("id 11 is \"hello\""), "{}", d[0]);
    }

    #[test]
    fn missing_token_list_is_a_mismatch() {
        let a = vocab("gpt2", &["a"]);
        let b = Vocab {
            model: Some("gpt2".into()),
            ..Vocab::default()
        };
        let d = mismatch(check_vocab_compatible(&a, &b));
        assert_eq!(
            d,
            vec!["draft has no token list (tokenizer.ggml.tokens)".to_string()]
        );
    }

    #[test]
    fn mismatch_display_lists_differences() {
        let a = vocab("gpt2", &["a", "b"]);
        let b = vocab("llama", &["a", "c"]);
        let msg = check_vocab_compatible(&a, &b).unwrap_err().to_string();
        assert!(
            msg.contains("tokenizer model: target gpt2, draft llama"),
            "{msg}"
        );
        assert!(
            msg.contains("token texts differ at 1 of 2 common ids"),
            "{msg}"
        );
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(151936), "151,936");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn text_access() {
        let v = vocab("gpt2", &["", "ab", "c"]);
        assert_eq!(v.size(), Some(3));
        assert_eq!(v.text(0), Some(&b""[..]));
        assert_eq!(v.text(1), Some(&b"ab"[..]));
        assert_eq!(v.text(2), Some(&b"c"[..]));
        assert_eq!(v.text(3), None);
    }
}
