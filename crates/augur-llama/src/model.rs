//! A loaded GGUF model.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;
use llama_cpp_2::token_type::LlamaTokenAttr;
use llama_cpp_2::vocab::VocabType;

use augur_core::TokenId;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use crate::backend::init_backend;
use crate::session::{ContextParams, LlamaSession};
use crate::LlamaError;

/// How to load a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadParams {
    /// Layers to offload to the GPU (0 = CPU only; ignored by a CPU-only build).
    pub n_gpu_layers: u32,
    /// Memory-map the weights instead of reading them.
    pub use_mmap: bool,
}

impl Default for LoadParams {
    fn default() -> Self {
        Self {
            n_gpu_layers: 0,
            use_mmap: true,
        }
    }
}

/// A GGUF model loaded through llama.cpp. Shared by `Arc`: every
/// [`LlamaSession`] keeps its model alive.
pub struct GgufModel {
    inner: LlamaModel,
    path: PathBuf,
    file_size: u64,
    /// Built on the first long input (see [`GgufModel::tokenize`]); `None`
    /// when the vocabulary's tokenizer is not one that may be split.
    splitter: OnceLock<Option<SpecialSplitter>>,
}

/// Inputs shorter than this are tokenized in one llama.cpp call: its
/// special-token partitioning costs the square of the number of special
/// tokens in the text, which is harmless below this size.
const SPLIT_MIN_BYTES: usize = 64 * 1024;
/// Special tokens per piece when a long input is split.
const SPECIALS_PER_PIECE: usize = 256;

/// Finds where a text may be cut so that tokenizing the pieces one by one
/// gives exactly the tokens of one call on the whole text.
///
/// llama.cpp first partitions the text at special-token texts (longest
/// first, left to right), then tokenizes every plain fragment on its own.
/// That partition walks a linked list from its head for every match, so a
/// text with n special tokens costs O(n²): 1 MiB with `<|im_start|>` every
/// 20 bytes took 12 s. A cut right after a special-token occurrence that no
/// other occurrence of any special token overlaps is a fragment boundary of
/// that partition, whatever the order of matching, and no match can span it;
/// with a token that does not strip the whitespace after it (RSTRIP), and a
/// tokenizer whose fragments do not depend on what came before them (BPE;
/// SPM, whose fragment after a special token starts like a text does), the
/// pieces' tokens are the whole text's.
struct SpecialSplitter {
    texts: AhoCorasick,
    /// Per pattern: the token strips whitespace to its right.
    rstrip: Vec<bool>,
}

impl SpecialSplitter {
    fn new(model: &LlamaModel) -> Option<Self> {
        let vocab = model.vocab();
        if !matches!(vocab.vocab_type(), VocabType::BPE | VocabType::SPM) {
            return None;
        }
        let mut texts = Vec::new();
        let mut rstrip = Vec::new();
        for id in 0..vocab.n_tokens() {
            let token = LlamaToken(id);
            let attrs = vocab.attr(token);
            // The tokens llama.cpp's partition matches with parse_special.
            let special = attrs.contains(LlamaTokenAttr::Control)
                || attrs.contains(LlamaTokenAttr::UserDefined)
                || attrs.contains(LlamaTokenAttr::Unknown);
            let Some(text) = vocab.text(token) else {
                continue;
            };
            if special && !text.to_bytes().is_empty() {
                texts.push(text.to_bytes().to_vec());
                rstrip.push(attrs.contains(LlamaTokenAttr::RStrip));
            }
        }
        if texts.is_empty() {
            return None;
        }
        let texts = AhoCorasick::new(&texts).ok()?;
        Some(Self { texts, rstrip })
    }

    /// Byte offsets to cut `text` at: after every `per_piece`-th special
    /// token, at the next occurrence that is safe to cut after.
    fn cuts(&self, text: &[u8], per_piece: usize) -> Vec<usize> {
        let mut found: Vec<(usize, usize, usize)> = self
            .texts
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect();
        found.sort_unstable();
        let mut cuts = Vec::new();
        let mut since_cut = 0;
        let mut end_so_far = 0;
        for (i, &(start, end, pattern)) in found.iter().enumerate() {
            let overlaps_earlier = end_so_far > start;
            let overlaps_later = found.get(i + 1).is_some_and(|next| next.0 < end);
            end_so_far = end_so_far.max(end);
            since_cut += 1;
            if since_cut >= per_piece
                && !overlaps_earlier
                && !overlaps_later
                && !self.rstrip[pattern]
                && end < text.len()
            {
                cuts.push(end);
                since_cut = 0;
            }
        }
        cuts
    }
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .field("n_vocab", &self.n_vocab())
            .finish()
    }
}

impl GgufModel {
    /// Loads the model at `path`. The file should have been validated first
    /// (augur-gguf), since llama.cpp trusts the header it parses.
    pub fn load(path: &Path, params: &LoadParams) -> Result<Arc<Self>, LlamaError> {
        let load_error = |reason: String| LlamaError::Load {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| load_error(e.to_string()))?;
        // llama.cpp would open a FIFO and wait for a writer, or read a device.
        if !meta.is_file() {
            return Err(load_error("not a regular file".into()));
        }
        let file_size = meta.len();
        let backend = init_backend()?;
        let model_params = LlamaModelParams::default()
            .with_n_gpu_layers(params.n_gpu_layers)
            .with_use_mmap(params.use_mmap);
        let inner = LlamaModel::load_from_file(backend, path, &model_params)
            .map_err(|e| load_error(format!("llama.cpp refused the file ({e})")))?;
        if inner.n_vocab() <= 0 {
            return Err(load_error("the model has an empty vocabulary".into()));
        }
        Ok(Arc::new(Self {
            inner,
            path: path.to_path_buf(),
            file_size,
            splitter: OnceLock::new(),
        }))
    }

    /// The underlying llama-cpp-2 model.
    pub fn raw(&self) -> &LlamaModel {
        &self.inner
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A stable identity of the weights: path, size and modification time.
    pub fn identity(&self) -> String {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        format!("{}:{}:{}", self.path.display(), self.file_size, mtime)
    }

    /// Vocabulary size.
    pub fn n_vocab(&self) -> usize {
        usize::try_from(self.inner.n_vocab()).unwrap_or(0)
    }

    /// The context length the model was trained with.
    pub fn n_ctx_train(&self) -> usize {
        self.inner.n_ctx_train() as usize
    }

    /// Parameter count.
    pub fn n_params(&self) -> u64 {
        self.inner.n_params()
    }

    /// True for recurrent or hybrid architectures, whose caches cannot drop a tail.
    pub fn is_recurrent(&self) -> bool {
        self.inner.is_recurrent() || self.inner.is_hybrid()
    }

    /// True if `token` ends generation.
    pub fn is_eog(&self, token: TokenId) -> bool {
        i32::try_from(token).is_ok_and(|t| self.inner.vocab().is_eog(LlamaToken(t)))
    }

    /// Tokenizes `text`; `add_special` adds BOS where the model wants it, and
    /// special-token text (like `<|im_start|>`) is parsed as special tokens.
    ///
    /// Time is linear in the text: a long text is cut into pieces at special
    /// tokens where that gives the same tokens (see [`Self::tokenize_split`]).
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<TokenId>, LlamaError> {
        if text.len() < SPLIT_MIN_BYTES {
            return Self::token_ids(self.inner.vocab().tokenize(
                text.as_bytes(),
                add_special,
                true,
            ));
        }
        self.tokenize_split(text, add_special, SPECIALS_PER_PIECE)
    }

    /// [`Self::tokenize`] with the text cut into pieces of about
    /// `specials_per_piece` special tokens each (at least 1), tokenized one
    /// by one: the same tokens as one llama.cpp call on the whole text, in
    /// linear time. The cuts fall only where llama.cpp's own partition cuts
    /// (after a special token that no other special-token text overlaps);
    /// tokenizers other than BPE and SPM, and texts without such a place,
    /// are tokenized in one call.
    pub fn tokenize_split(
        &self,
        text: &str,
        add_special: bool,
        specials_per_piece: usize,
    ) -> Result<Vec<TokenId>, LlamaError> {
        let vocab = self.inner.vocab();
        let whole = || Self::token_ids(vocab.tokenize(text.as_bytes(), add_special, true));
        let Some(splitter) = self
            .splitter
            .get_or_init(|| SpecialSplitter::new(&self.inner))
        else {
            return whole();
        };
        let bytes = text.as_bytes();
        let cuts = splitter.cuts(bytes, specials_per_piece.max(1));
        if cuts.is_empty() {
            return whole();
        }
        // What `add_special` adds around a text (BOS, EOS, CLS/SEP), from a
        // probe: the pieces are tokenized without it.
        let (prefix, suffix) = if add_special {
            let framed = vocab.tokenize(b"a", true, true);
            let bare = vocab.tokenize(b"a", false, true);
            let Some(at) = (0..=framed.len().saturating_sub(bare.len()))
                .find(|&i| framed[i..].starts_with(&bare))
            else {
                return whole();
            };
            (framed[..at].to_vec(), framed[at + bare.len()..].to_vec())
        } else {
            (Vec::new(), Vec::new())
        };
        let mut tokens = prefix;
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            tokens.extend(vocab.tokenize(&bytes[start..end], false, true));
            start = end;
        }
        tokens.extend(suffix);
        Self::token_ids(tokens)
    }

    fn token_ids(tokens: Vec<LlamaToken>) -> Result<Vec<TokenId>, LlamaError> {
        tokens
            .into_iter()
            .map(|t| {
                TokenId::try_from(t.0)
                    .map_err(|_| LlamaError::Tokenize(format!("negative token id {}", t.0)))
            })
            .collect()
    }

    /// The raw bytes of one token (special tokens rendered as text when
    /// `special`). Empty for an id outside the vocabulary.
    pub fn token_to_piece(&self, token: TokenId, special: bool) -> Vec<u8> {
        if token as usize >= self.n_vocab() {
            return Vec::new();
        }
        self.inner
            .vocab()
            .token_to_piece(LlamaToken(token as i32), special, None)
    }

    /// Detokenizes a whole sequence (lossy on invalid UTF-8).
    pub fn detokenize(&self, tokens: &[TokenId]) -> String {
        let mut bytes = Vec::new();
        for &t in tokens {
            bytes.extend(self.token_to_piece(t, false));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// True if the model ships a chat template.
    pub fn has_chat_template(&self) -> bool {
        self.inner.chat_template(None).is_ok()
    }

    /// Wraps `user_message` as one user turn with the model's chat template,
    /// ending with the assistant's opening so the model answers.
    pub fn apply_chat_template(&self, user_message: &str) -> Result<String, LlamaError> {
        self.apply_chat_messages(&[("user", user_message)], true)
    }

    /// Renders a conversation of `(role, content)` messages (roles such as
    /// `system`, `user`, `assistant`) with the model's chat template; with
    /// `add_assistant`, ends with the assistant's opening so the model answers.
    pub fn apply_chat_messages(
        &self,
        messages: &[(&str, &str)],
        add_assistant: bool,
    ) -> Result<String, LlamaError> {
        let template = self.inner.chat_template(None).map_err(|_| {
            LlamaError::ChatTemplate(format!(
                "{} has no chat template; run without --chat",
                self.path.display()
            ))
        })?;
        let messages = messages
            .iter()
            .map(|&(role, content)| {
                // The C API takes NUL-terminated strings.
                LlamaChatMessage::new(role.into(), content.into())
                    .map_err(|e| LlamaError::ChatTemplate(format!("invalid message: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.inner
            .apply_chat_template(&template, &messages, add_assistant)
            .map_err(|e| LlamaError::ChatTemplate(e.to_string()))
    }

    /// A new llama.cpp context (KV cache) over this model.
    pub fn new_session(
        self: &Arc<Self>,
        params: &ContextParams,
    ) -> Result<LlamaSession, LlamaError> {
        LlamaSession::new(Arc::clone(self), params)
    }
}
