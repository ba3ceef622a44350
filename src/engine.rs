//! The engine: models, sessions and a strategy, ready to generate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use augur_core::{GenerateParams, Generation, Strategy, TokenId};
use augur_llama::{ContextParams, GgufModel, LlamaSession, LoadParams, Utf8Stream};

use augur_core::Drafter;

use crate::calibration::{self, Calibration};
use crate::registry::{
    build_custom, build_with_notes, BuildOptions, DraftModel, ExactMode, StrategyConfig,
};
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
    /// The exactness guarantee drafting strategies run under.
    pub exact: ExactMode,
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
            exact: ExactMode::Auto,
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

/// A pipeline runs both models at once: unless told otherwise, give each its
/// own share of the cores (the draft half, rounded down, at least one), so the
/// two thread teams do not fight over the same cores.
fn split_pipeline_threads(options: &mut EngineOptions) {
    let pipelined = options.strategy.speculative().is_some_and(|s| s.pipeline);
    if !pipelined || options.draft_threads != 0 {
        return;
    }
    let cores = calibration::resolve_threads(0);
    let cpu_only = options.n_gpu_layers == 0 && options.n_gpu_layers_draft == 0;
    if cpu_only {
        // Both models would share the CPU's cores and memory bandwidth: the
        // cost model rules the pipeline out there (`CostModel::overlap` 0),
        // so the sequential strategy runs and keeps the default threads.
        return;
    }
    let (target, draft) = pipeline_threads(cores, options.threads, cpu_only);
    options.threads = target;
    options.draft_threads = draft;
}

/// The default (target, draft) thread counts of the pipelined strategy on a
/// machine with `cores` cores, when the user set `threads` for the target (0:
/// not set) and no draft thread count.
///
/// With a model on the GPU the CPU is mostly the draft's: it gets half the
/// cores. On a CPU-only machine both models compete for the same cores and
/// the target's speed is what matters (the small draft gains little from
/// more threads, and while drafting does not pay it is idle), so the draft
/// gets one thread and the target the rest; on 2–3 cores the target keeps
/// them all. Measured on 2 cores (F16 target, 0.5B draft): 2 + 1 threads ran
/// at 0.82× the sequential strategy (0.78× with llama.cpp at -O2, where
/// 1 + 1 made 0.6×); on the Q4_K_M target, where drafting does not pay,
/// 2 + 1 keeps plain speed and 1 + 1 halves it.
pub fn pipeline_threads(cores: usize, threads: usize, cpu_only: bool) -> (usize, usize) {
    let cores = cores.max(1);
    if !cpu_only {
        let draft = (cores / 2).max(1);
        let target = if threads == 0 {
            cores.saturating_sub(draft).max(1)
        } else {
            threads
        };
        return (target, draft);
    }
    let target = match threads {
        0 if cores <= 3 => cores,
        0 => cores - 1,
        t => t,
    };
    (target, 1)
}

/// The shared parameter limits, the context checked against the model's.
fn check_limits(options: &EngineOptions, target: &GgufModel) -> Result<(), AugurError> {
    crate::limits::check_options(options)?;
    crate::limits::check_context(options.n_ctx, Some(target.n_ctx_train()))
}

fn draft_threads(options: &EngineOptions) -> usize {
    if options.draft_threads == 0 {
        options.threads
    } else {
        options.draft_threads
    }
}

/// A target model with a context and a strategy, ready to generate.
pub struct Engine {
    // Drops before the models it borrows from (the sessions hold `Arc`s anyway).
    strategy: Box<dyn Strategy + Send>,
    target: LlamaSession,
    target_model: Arc<GgufModel>,
    draft_model: Option<Arc<GgufModel>>,
    calibration: Option<Calibration>,
    options: EngineOptions,
    /// What building the strategy decided that a user should hear about.
    notes: Vec<String>,
    /// Prompt reuse: whether it is on, and the tokens the target's cache
    /// (sequence 0) is known to hold from the last generation.
    reuse: bool,
    cached: Vec<TokenId>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish()
    }
}

impl Engine {
    /// Loads the models of `options` and builds its strategy. A draft model is
    /// checked against the target's vocabulary before its weights are loaded.
    pub fn new(options: EngineOptions) -> Result<Self, AugurError> {
        // Before any model is loaded: a bad parameter fails at once.
        crate::limits::check_options(&options)?;
        let kind = options.strategy.kind();
        let draft_path = if kind.needs_draft() || (kind.uses_draft() && options.draft.is_some()) {
            let path = options.draft.clone().ok_or_else(|| {
                AugurError::Config(format!(
                    "the {kind} strategy needs a draft model (-md FILE)"
                ))
            })?;
            augur_gguf::check_draft_compatible(&options.target, &path)?;
            Some(path)
        } else {
            None
        };
        let target = load_model(&options.target, options.n_gpu_layers)?;
        let draft = match draft_path {
            Some(path) => Some(load_model(&path, options.n_gpu_layers_draft)?),
            None => None,
        };
        Self::with_models(target, draft, options)
    }

    /// Like [`Engine::new`] with the models already loaded (several engines
    /// may share them). The draft must already have been checked against the
    /// target ([`augur_gguf::check_draft_compatible`]).
    pub fn with_models(
        target_model: Arc<GgufModel>,
        draft_model: Option<Arc<GgufModel>>,
        options: EngineOptions,
    ) -> Result<Self, AugurError> {
        Self::assemble(target_model, draft_model, options, None)
    }

    /// An engine whose drafts come from an application's [`Drafter`]
    /// (retrieval, a cache of earlier answers, an editor's buffer), verified by
    /// the same exact rule as every other strategy. `name` labels its reports.
    pub fn with_drafter(
        target_model: Arc<GgufModel>,
        options: EngineOptions,
        name: &'static str,
        drafter: Box<dyn Drafter + Send>,
    ) -> Result<Self, AugurError> {
        Self::assemble(target_model, None, options, Some((name, drafter)))
    }

    /// An engine running an application's own [`Strategy`] (for experiments
    /// and tests; it gets no calibration and must keep the output exact itself).
    pub fn with_strategy(
        target_model: Arc<GgufModel>,
        options: EngineOptions,
        strategy: Box<dyn Strategy + Send>,
    ) -> Result<Self, AugurError> {
        check_limits(&options, &target_model)?;
        let target = target_model.new_session(&ContextParams {
            n_ctx: options.n_ctx,
            n_threads: options.threads,
            n_seq_max: options.strategy.sequences_needed(),
            ..ContextParams::default()
        })?;
        Ok(Self {
            strategy,
            target,
            target_model,
            draft_model: None,
            calibration: None,
            options,
            notes: Vec::new(),
            reuse: false,
            cached: Vec::new(),
        })
    }

    fn assemble(
        target_model: Arc<GgufModel>,
        draft_model: Option<Arc<GgufModel>>,
        mut options: EngineOptions,
        custom: Option<(&'static str, Box<dyn Drafter + Send>)>,
    ) -> Result<Self, AugurError> {
        options.strategy.validate()?;
        check_limits(&options, &target_model)?;
        split_pipeline_threads(&mut options);
        let drafting = custom.is_some() || options.strategy.kind().drafts();
        let mut calibration = None;
        let mut build = BuildOptions {
            costs: None,
            exact: options.exact,
        };
        if drafting {
            let cap = options.strategy.largest_pass().clamp(2, 16);
            let target_cal = calibration::cached_or_measure(&target_model, options.threads, cap)?;
            let draft_seconds = match &draft_model {
                Some(d) => calibration::cached_or_measure(d, draft_threads(&options), 2)?
                    .draft_step_seconds(),
                // Model-free drafters cost (next to) nothing.
                None => 0.0,
            };
            // Both models on the same CPU cores: drafting ahead on a thread of
            // its own hides nothing (see `CostModel::overlap`).
            let cpu_only = options.n_gpu_layers == 0 && options.n_gpu_layers_draft == 0;
            let overlap = if cpu_only { 0.0 } else { 1.0 };
            let mut costs = target_cal.costs(draft_seconds);
            costs.overlap = overlap;
            // A real backend on a real machine: follow its drift from the
            // calibration (at temperature 0 only; see `PhaseDrift`).
            costs.drift.follow = true;
            build.costs = Some(costs);
            calibration = Some(target_cal);
        }
        let target = target_model.new_session(&ContextParams {
            n_ctx: options.n_ctx,
            n_threads: options.threads,
            n_seq_max: options.strategy.sequences_needed(),
            ..ContextParams::default()
        })?;
        let draft: Option<DraftModel> = match &draft_model {
            Some(d) => Some(Box::new(d.new_session(&ContextParams {
                n_ctx: options.n_ctx,
                n_threads: draft_threads(&options),
                ..ContextParams::default()
            })?)),
            None => None,
        };
        let (strategy, notes) = match custom {
            Some((name, drafter)) => (
                build_custom(name, drafter, &options.strategy, &build)?,
                Vec::new(),
            ),
            None => build_with_notes(&options.strategy, &build, draft)?,
        };
        Ok(Self {
            strategy,
            target,
            target_model,
            draft_model,
            calibration,
            options,
            notes,
            reuse: false,
            cached: Vec::new(),
        })
    }

    /// The calibration drafting strategies run with (pass costs, bit-exact size).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// What building the strategy decided that a user should hear about
    /// (whether the pipeline runs, and why), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The draft model, if the strategy uses one.
    pub fn draft_model(&self) -> Option<&Arc<GgufModel>> {
        self.draft_model.as_ref()
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

    /// Turns prompt reuse on or off (off by default). When on, a prompt that
    /// begins with what the target's cache holds from the previous generation
    /// (its prompt and output: the next turn of a conversation) evaluates only
    /// the rest; [`augur_core::RunStats::n_reused`] reports how many tokens were
    /// kept. The drafters still start afresh from the whole prompt. A run that
    /// reused entries is kernel-level exact: they were computed by passes of
    /// other sizes than a fresh prefill's, so greedy output may differ from a
    /// fresh run's where those round differently.
    pub fn set_prompt_reuse(&mut self, on: bool) {
        self.reuse = on;
        if !on {
            self.cached.clear();
        }
    }

    /// How many leading tokens of `prompt` the next [`Engine::generate`]
    /// would keep from the cache instead of evaluating: the common prefix
    /// with what the cache holds, leaving at least one prompt token to
    /// evaluate (its logits start the generation). 0 with reuse off.
    pub fn reusable_prefix(&self, prompt: &[TokenId]) -> usize {
        if !self.reuse || !augur_core::Model::supports_rollback(&self.target) {
            return 0;
        }
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        common.min(prompt.len().saturating_sub(1))
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
        let reuse_prefix = self.reusable_prefix(prompt);
        // Whatever happens below changes the cache: until it succeeds,
        // nothing in it is known.
        self.cached.clear();
        let model = Arc::clone(&self.target_model);
        let mut utf8 = Utf8Stream::new();
        let mut on_token = |t: TokenId| {
            let text = utf8.push(&model.token_to_piece(t, false));
            on_piece(t, &text)
        };
        let mut generation = augur_core::generate_reusing(
            &mut self.target,
            self.strategy.as_mut(),
            prompt,
            reuse_prefix,
            params,
            &mut on_token,
        )?;
        if reuse_prefix > 0 {
            // The reused entries were computed by passes of other sizes (the
            // earlier prompt's, one-token decoding) than a fresh prefill's,
            // which round differently on most builds.
            generation.exactness = augur_core::Exactness::KernelLevel;
        }
        if self.reuse {
            // The cache holds every token but the last, pending one; after an
            // end-of-generation token (not in `tokens`) it was the pending one.
            self.cached.extend_from_slice(prompt);
            self.cached.extend_from_slice(&generation.tokens);
            if generation.stop != augur_core::StopReason::EndOfGeneration {
                self.cached.pop();
            }
        }
        let tail = utf8.finish();
        if !tail.is_empty() {
            if let Some(&last) = generation.tokens.last() {
                on_piece(last, &tail);
            }
        }
        Ok(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::pipeline_threads;

    #[test]
    fn pipeline_thread_defaults() {
        // CPU only: the draft gets one thread, the target the rest (all of
        // them on small machines); a target count set by the user is kept.
        assert_eq!(pipeline_threads(2, 0, true), (2, 1));
        assert_eq!(pipeline_threads(3, 0, true), (3, 1));
        assert_eq!(pipeline_threads(8, 0, true), (7, 1));
        assert_eq!(pipeline_threads(8, 4, true), (4, 1));
        assert_eq!(pipeline_threads(1, 0, true), (1, 1));
        // A model on the GPU: half the cores for the draft.
        assert_eq!(pipeline_threads(8, 0, false), (4, 4));
        assert_eq!(pipeline_threads(2, 0, false), (1, 1));
        assert_eq!(pipeline_threads(8, 1, false), (1, 4));
        assert_eq!(pipeline_threads(0, 0, false), (1, 1));
    }
}
