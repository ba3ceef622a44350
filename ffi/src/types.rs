//! Plain data crossing the boundary: parameter structs with their defaults,
//! the statistics struct and its codes.

use std::ffi::c_char;

use augur_facade::{Exactness, Generation, StopReason};

/// `augur_session_params.exact_mode`: bit-identical when calibration allows
/// verifying at least 2 drafts per pass that way, kernel-level otherwise.
pub const AUGUR_EXACT_AUTO: i32 = 0;
/// `augur_session_params.exact_mode`: always bit-identical to plain decoding
/// (verification passes never exceed the calibrated bit-exact size).
pub const AUGUR_EXACT_BIT: i32 = 1;
/// `augur_session_params.exact_mode`: kernel-level exactness, any pass size.
pub const AUGUR_EXACT_KERNEL: i32 = 2;

/// How a model is loaded. Get the defaults from `augur_model_params_default`
/// and change what you need; passing NULL means the defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct augur_model_params {
    /// Layers offloaded to the GPU: 0 (the default) keeps the model on the
    /// CPU; a negative value offloads every layer. Ignored by CPU-only builds.
    pub n_gpu_layers: i32,
}

/// How a session decodes. Get the defaults from `augur_session_params_default`
/// and change what you need; passing NULL means the defaults. For the
/// integer counts, 0 means "the default" unless said otherwise; negative
/// values are rejected with `AUGUR_INVALID_ARGUMENT`.
///
/// The struct only borrows `strategy`: the string must stay valid during the
/// call that receives the struct, and augur keeps no pointer to it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct augur_session_params {
    /// Strategy name, NUL-terminated UTF-8, case-insensitive: "auto" (each
    /// step the drafter expected to pay best: prompt lookup, the session's
    /// draft model when one is passed, or none), "baseline", "speculative"
    /// (needs a draft model), "lookahead", "prompt-lookup" or "repeat-last",
    /// optionally followed by settings of the one settings table, as `augur
    /// bench --strategies` takes them: "prompt-lookup:ngram-max=3:draft-max=6"
    /// (they win over the fields below). NULL means "auto". Sessions made
    /// with an application drafter ignore it.
    pub strategy: *const c_char,
    /// One of `AUGUR_EXACT_AUTO` (default), `AUGUR_EXACT_BIT`, `AUGUR_EXACT_KERNEL`.
    pub exact_mode: i32,
    /// Speculative decoding and application drafters: 0 (default) adapts the
    /// draft length to the measured acceptance (up to 8); N > 0 drafts N
    /// tokens per step. Prompt lookup: the longest draft (0: up to 15, as
    /// acceptance and costs allow). At most 256.
    pub draft_max: i32,
    /// Fewest drafts worth verifying at temperature 0 (shorter proposals are
    /// dropped). Default 0.
    pub draft_min: i32,
    /// Speculative decoding: stop drafting when the draft model's top
    /// probability falls below this, in [0, 1]; 0 (default) disables.
    pub draft_p_min: f64,
    /// Prompt lookup: shortest n-gram to match (0 = default, 1).
    pub ngram_min: i32,
    /// Prompt lookup: longest n-gram to match (0 = default, 4; at most 16).
    pub ngram_max: i32,
    /// Lookahead: window columns W (0 = default, 1).
    pub la_window: i32,
    /// Lookahead: n-gram length N (0 = default, 3; 3..=32).
    pub la_ngram: i32,
    /// Lookahead: verification candidates G per step (0 = default, 1).
    pub la_guess: i32,
    /// Softmax temperature; 0 (default) is greedy decoding. Must be finite and >= 0.
    pub temperature: f32,
    /// Keep the k most likely tokens (default 40; 0 disables). Ignored when greedy.
    pub top_k: i32,
    /// Nucleus mass in (0, 1] (default 0.95; 1 disables). Ignored when greedy.
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the top one, in [0, 1]
    /// (default 0.05; 0 disables). Ignored when greedy.
    pub min_p: f32,
    /// Seed of the sampling stream (default 0). The same seed, settings and
    /// prompt give the same output.
    pub seed: u64,
    /// Threads for the target model (0 = default, every core). At most 4 per
    /// core and never more than 512 (ggml's thread pool): more would make
    /// llama.cpp's thread team end the process.
    pub threads: i32,
    /// Threads for the draft model (0 = default: as many as the target's; with
    /// the pipelined strategy one on a CPU-only machine, half the cores with
    /// GPU offload).
    pub draft_threads: i32,
    /// Context size in tokens (0 = default: 4096, or the model's training
    /// context if smaller). At least 8, at most the model's training context.
    pub n_ctx: i32,
    /// Speculative decoding: 1 drafts ahead on a thread of its own while the
    /// target verifies, where the cost model predicts that it pays (a model
    /// on the GPU); 0 (the default) drafts in turn. Any other value is
    /// refused.
    pub pipeline: i32,
}

impl Default for augur_session_params {
    fn default() -> Self {
        let sampling = augur_facade::SamplingParams::default();
        Self {
            strategy: std::ptr::null(),
            exact_mode: AUGUR_EXACT_AUTO,
            draft_max: 0,
            draft_min: 0,
            draft_p_min: 0.0,
            ngram_min: 0,
            ngram_max: 0,
            la_window: 0,
            la_ngram: 0,
            la_guess: 0,
            temperature: sampling.temperature,
            top_k: i32::try_from(sampling.top_k).unwrap_or(i32::MAX),
            top_p: sampling.top_p,
            min_p: sampling.min_p,
            seed: sampling.seed,
            threads: 0,
            draft_threads: 0,
            n_ctx: 0,
            pipeline: 0,
        }
    }
}

/// Why a generation ended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum augur_stop_reason {
    /// The model emitted an end-of-generation token.
    AUGUR_STOP_END_OF_GENERATION = 0,
    /// `max_tokens` tokens were generated.
    AUGUR_STOP_MAX_TOKENS = 1,
    /// The context window is full.
    AUGUR_STOP_CONTEXT_FULL = 2,
    /// The token callback returned false.
    AUGUR_STOP_CANCELLED = 3,
}

impl From<StopReason> for augur_stop_reason {
    fn from(s: StopReason) -> Self {
        match s {
            StopReason::EndOfGeneration => Self::AUGUR_STOP_END_OF_GENERATION,
            StopReason::MaxTokens => Self::AUGUR_STOP_MAX_TOKENS,
            StopReason::ContextFull => Self::AUGUR_STOP_CONTEXT_FULL,
            StopReason::Cancelled => Self::AUGUR_STOP_CANCELLED,
        }
    }
}

/// The guarantee a generation ran under.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum augur_exactness {
    /// Every target pass had a size whose logits are bit-identical to
    /// one-token passes: greedy output is plain decoding's, token for token.
    AUGUR_EXACTNESS_BIT_IDENTICAL = 0,
    /// Larger passes were used: greedy output equals plain decoding's except
    /// where the kernels of a batched pass round differently.
    AUGUR_EXACTNESS_KERNEL_LEVEL = 1,
}

impl From<Exactness> for augur_exactness {
    fn from(e: Exactness) -> Self {
        match e {
            Exactness::BitIdentical => Self::AUGUR_EXACTNESS_BIT_IDENTICAL,
            Exactness::KernelLevel => Self::AUGUR_EXACTNESS_KERNEL_LEVEL,
        }
    }
}

/// The most drafters `augur_stats` reports: plain steps, prompt lookup, the
/// draft model and an application drafter, the members of `auto`.
pub const AUGUR_MAX_DRAFTERS: usize = 4;

/// What one drafter contributed to a generation (see `augur_stats.drafters`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct augur_drafter_stats {
    /// Its name, a static NUL-terminated string never to be freed: "none"
    /// (steps without a proposal), "prompt-lookup", "draft-model",
    /// "c-drafter", "lookahead", "repeat-last", or "other". NULL in unused
    /// slots.
    pub name: *const c_char,
    /// Steps whose verified proposal it made.
    pub steps: u64,
    /// Its drafted tokens that were verified.
    pub drafted: u64,
    /// Of those, how many the target accepted.
    pub accepted: u64,
    /// Tokens emitted in its steps.
    pub tokens: u64,
    /// Seconds it spent drafting.
    pub seconds: f64,
}

impl Default for augur_drafter_stats {
    fn default() -> Self {
        Self {
            name: std::ptr::null(),
            steps: 0,
            drafted: 0,
            accepted: 0,
            tokens: 0,
            seconds: 0.0,
        }
    }
}

/// The static C string of a drafter's name.
fn drafter_name(name: &str) -> *const c_char {
    let c: &'static std::ffi::CStr = match name {
        "none" => c"none",
        "prompt-lookup" => c"prompt-lookup",
        "draft-model" => c"draft-model",
        crate::drafter::C_DRAFTER_NAME => c"c-drafter",
        "lookahead" => c"lookahead",
        "repeat-last" => c"repeat-last",
        _ => c"other",
    };
    c.as_ptr()
}

/// What one generation did. Filled by `augur_generate` when the caller
/// passes a non-NULL pointer; the caller owns the struct (stack or heap).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct augur_stats {
    /// Prompt length in tokens.
    pub n_prompt: u64,
    /// Tokens generated (the end-of-generation token excluded).
    pub n_generated: u64,
    /// Decoding throughput: generated tokens per second of decoding.
    pub tokens_per_second: f64,
    /// Seconds spent evaluating the prompt.
    pub prefill_seconds: f64,
    /// Seconds from the first decoding step to the last token.
    pub decode_seconds: f64,
    /// Forward passes of the target model while decoding (prefill excluded).
    pub target_passes: u64,
    /// Forward passes of the draft model (0 for model-free drafting).
    pub draft_passes: u64,
    /// Tokens proposed by the drafter.
    pub drafted: u64,
    /// Drafted tokens the target accepted.
    pub accepted: u64,
    /// accepted / drafted (0 when nothing was drafted).
    pub acceptance_rate: f64,
    /// The guarantee this generation had.
    pub exactness: augur_exactness,
    /// Why it stopped.
    pub stop_reason: augur_stop_reason,
    /// How many entries of `drafters` are filled.
    pub n_drafters: u64,
    /// What each drafter contributed, in the order they were first used
    /// (steps without a proposal count as "none").
    pub drafters: [augur_drafter_stats; AUGUR_MAX_DRAFTERS],
}

/// All zeros: what a failed generation leaves in the caller's struct.
impl Default for augur_stats {
    fn default() -> Self {
        Self {
            n_prompt: 0,
            n_generated: 0,
            tokens_per_second: 0.0,
            prefill_seconds: 0.0,
            decode_seconds: 0.0,
            target_passes: 0,
            draft_passes: 0,
            drafted: 0,
            accepted: 0,
            acceptance_rate: 0.0,
            exactness: augur_exactness::AUGUR_EXACTNESS_BIT_IDENTICAL,
            stop_reason: augur_stop_reason::AUGUR_STOP_END_OF_GENERATION,
            n_drafters: 0,
            drafters: [augur_drafter_stats::default(); AUGUR_MAX_DRAFTERS],
        }
    }
}

impl From<&Generation> for augur_stats {
    fn from(g: &Generation) -> Self {
        let s = &g.stats;
        Self {
            n_prompt: s.n_prompt as u64,
            n_generated: s.n_generated as u64,
            tokens_per_second: s.tokens_per_second(),
            prefill_seconds: s.prefill_seconds,
            decode_seconds: s.decode_seconds,
            target_passes: s.target_passes,
            draft_passes: s.draft_passes,
            drafted: s.drafted,
            accepted: s.accepted,
            acceptance_rate: s.acceptance_rate(),
            exactness: g.exactness.into(),
            stop_reason: g.stop.into(),
            n_drafters: s.drafters.len().min(AUGUR_MAX_DRAFTERS) as u64,
            drafters: std::array::from_fn(|i| {
                s.drafters
                    .get(i)
                    .map_or_else(augur_drafter_stats::default, |d| augur_drafter_stats {
                        name: drafter_name(&d.name),
                        steps: d.steps,
                        drafted: d.drafted,
                        accepted: d.accepted,
                        tokens: d.tokens,
                        seconds: d.seconds,
                    })
            }),
        }
    }
}
