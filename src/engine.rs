//! The engine: models, sessions and a strategy, ready to generate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use augur_core::{GenerateParams, Generation, Strategy, TokenId};
use augur_llama::{ContextParams, GgufModel, LlamaSession, LoadParams, Utf8Stream};

use crate::registry::{build, StrategyConfig};
use crate::AugurError;

/// What an [`Engine`] loads and how it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// The target model: its output is what augur reproduces exactly.
    pub target: PathBuf,
    /// A draft model (same vocabulary), for `speculative`.
    pub draft: Option<PathBuf>,
    /// Context size in tokens.
    pub n_ctx: usize,
    /// Threads for the target (0 = all cores).
    pub threads: usize,
    /// Threads for the draft (0 = same as the target).
    pub draft_threads: usize,
    /// Target layers offloaded to the GPU.
    pub n_gpu_layers: u32,
    /// Draft layers offloaded to the GPU.
    pub n_gpu_layers_draft: u32,
    /// The strategy and its parameters.
    pub strategy: StrategyConfig,
}

impl EngineOptions {
    /// Defaults for `target`: baseline strategy, 4096-token context, all cores.
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
            draft: None,
            n_ctx: 4096,
            threads: 0,
            draft_threads: 0,
            n_gpu_layers: 0,
            n_gpu_layers_draft: 0,
            strategy: StrategyConfig::default(),
        }
    }
}

/// Validates a GGUF file's header (so that llama.cpp never parses a truncated
/// or hostile file) and loads it.
pub fn load_model(path: &Path, n_gpu_layers: u32) -> Result<Arc<GgufModel>, AugurError> {
    augur_gguf::validate(path)?;
    let params = LoadParams {
        n_gpu_layers,
        ..LoadParams::default()
    };
    Ok(GgufModel::load(path, &params)?)
}

/// A target model with a context and a strategy, ready to generate.
pub struct Engine {
    // Drops before the models it borrows from (the sessions hold `Arc`s anyway).
    strategy: Box<dyn Strategy + Send>,
    target: LlamaSession,
    target_model: Arc<GgufModel>,
    options: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish()
    }
}

impl Engine {
    /// Loads the models of `options` and builds its strategy.
    pub fn new(options: EngineOptions) -> Result<Self, AugurError> {
        let target = load_model(&options.target, options.n_gpu_layers)?;
        Self::with_target(target, options)
    }

    /// Like [`Engine::new`] with the target already loaded (several engines
    /// may share one model).
    pub fn with_target(
        target_model: Arc<GgufModel>,
        options: EngineOptions,
    ) -> Result<Self, AugurError> {
        options.strategy.validate()?;
        if options.n_ctx < 8 {
            return Err(AugurError::Config(format!(
                "context size must be at least 8 tokens, got {}",
                options.n_ctx
            )));
        }
        let target = target_model.new_session(&ContextParams {
            n_ctx: options.n_ctx,
            n_threads: options.threads,
            ..ContextParams::default()
        })?;
        let strategy = build(&options.strategy)?;
        Ok(Self {
            strategy,
            target,
            target_model,
            options,
        })
    }

    /// The target model.
    pub fn target_model(&self) -> &Arc<GgufModel> {
        &self.target_model
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The strategy's name.
    pub fn strategy_name(&self) -> &'static str {
        self.strategy.name()
    }

    /// Tokenizes a prompt; with `chat`, wraps it as one user message in the
    /// model's chat template first.
    pub fn tokenize_prompt(&self, text: &str, chat: bool) -> Result<Vec<TokenId>, AugurError> {
        let text = if chat {
            self.target_model.apply_chat_template(text)?
        } else {
            text.to_owned()
        };
        Ok(self.target_model.tokenize(&text, true)?)
    }

    /// Generates after `prompt`. `on_piece` receives each token with the text
    /// it completes (whole UTF-8 characters only; possibly empty) and returns
    /// `false` to stop.
    pub fn generate(
        &mut self,
        prompt: &[TokenId],
        params: &GenerateParams,
        on_piece: &mut dyn FnMut(TokenId, &str) -> bool,
    ) -> Result<Generation, AugurError> {
        let model = Arc::clone(&self.target_model);
        let mut utf8 = Utf8Stream::new();
        let mut on_token = |t: TokenId| {
            let text = utf8.push(&model.token_to_piece(t, false));
            on_piece(t, &text)
        };
        let generation = augur_core::generate(
            &mut self.target,
            self.strategy.as_mut(),
            prompt,
            params,
            &mut on_token,
        )?;
        let tail = utf8.finish();
        if !tail.is_empty() {
            if let Some(&last) = generation.tokens.last() {
                on_piece(last, &tail);
            }
        }
        Ok(generation)
    }
}
