//! Model-free drafting strategies for augur.
//!
//! - [`PromptLookup`] (`prompt-lookup`): drafts the continuation of the latest
//!   earlier occurrence of the most recent n-gram in the prompt and generated
//!   text, verified by augur-core's shared exact verifier, so it is exact in
//!   greedy and in sampling mode. It follows the copy across small edits
//!   ([`CopyCursor`]), and an adaptive budget ([`BudgetPolicy`]) drafts long
//!   while text is copied and not at all when nothing is.
//! - [`Lookahead`] (`lookahead`): greedy lookahead decoding (Fu et al. 2024):
//!   Jacobi iterations over a window of guesses, an n-gram pool harvested from
//!   them ([`NgramPool`]), and verification of pool candidates in the same
//!   target pass, using several KV sequences per batch. Greedy only.
//!
//! Both talk to the target only through augur-core's [`augur_core::Model`]
//! trait, so they run unchanged on the in-memory test model and on real
//! backends.

mod budget;
mod copy_cursor;
mod error;
mod lookahead;
mod ngram_index;
mod pool;
mod prompt_lookup;

pub use budget::{
    BudgetPolicy, CopyStats, DEFAULT_DECAY, DEFAULT_PRIOR_RATES, DEFAULT_PRIOR_WEIGHT,
    MAX_MEASURED_PASS, RUN_CLASSES, RUN_CLASS_COUNT,
};
pub use copy_cursor::{copy_from, CopyCursor, MAX_MISSES, RESYNC_WINDOW};
pub use error::Error;
pub use lookahead::{
    Lookahead, LookaheadConfig, DEFAULT_CANDIDATES, DEFAULT_NGRAM, DEFAULT_WINDOW, MAX_NGRAM,
};
pub use ngram_index::{Evidence, NgramIndex, NgramMatch, MAX_INDEX_NGRAM};
pub use pool::NgramPool;
pub use prompt_lookup::{
    PromptLookup, PromptLookupConfig, DEFAULT_DRAFT_COST, DEFAULT_DRAFT_MAX,
    DEFAULT_LOOKUP_NGRAM_MAX, DEFAULT_LOOKUP_NGRAM_MIN,
};
