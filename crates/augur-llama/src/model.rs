//! A loaded GGUF model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        let file_size = std::fs::metadata(path)
            .map_err(|e| load_error(e.to_string()))?
            .len();
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
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<TokenId>, LlamaError> {
        let tokens = self
            .inner
            .vocab()
            .tokenize(text.as_bytes(), add_special, true);
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
