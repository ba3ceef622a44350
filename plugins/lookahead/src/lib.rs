//! Model-free drafting strategies for augur.
//!
//! - [`PromptLookup`] (`prompt-lookup`): drafts the continuation of the latest
//!   earlier occurrence of the most recent n-gram in the prompt and generated
//!   text, verified by augur-core's shared exact verifier, so it is exact in
//!   greedy and in sampling mode. An adaptive budget ([`BudgetPolicy`]) keeps it
//!   from costing much more than plain decoding when nothing is being copied.
//! - [`Lookahead`] (`lookahead`): greedy lookahead decoding (Fu et al. 2024):
//!   Jacobi iterations over a window of guesses, an n-gram pool harvested from
//!   them ([`NgramPool`]), and verification of pool candidates in the same
//!   target pass, using several KV sequences per batch. Greedy only.
//!
//! Both talk to the target only through augur-core's [`augur_core::Model`]
//! trait, so they run unchanged on the in-memory test model and on real
//! backends.

mod budget;
mod error;
mod lookahead;
mod ngram_index;
mod pool;
mod prompt_lookup;

pub use budget::{Budget, BudgetPolicy, Outcome, MAX_MEASURED_PASS};
pub use error::Error;
pub use lookahead::{
    Lookahead, LookaheadConfig, DEFAULT_CANDIDATES, DEFAULT_NGRAM, DEFAULT_WINDOW, MAX_NGRAM,
};
pub use ngram_index::{Evidence, NgramIndex, NgramMatch, MAX_INDEX_NGRAM};
pub use pool::NgramPool;
pub use prompt_lookup::{
    PromptLookup, PromptLookupConfig, DEFAULT_DRAFT_COST, DEFAULT_DRAFT_MAX, DEFAULT_INITIAL_DRAFT,
    DEFAULT_INITIAL_RATE, DEFAULT_LEARNING_RATE, DEFAULT_LOOKUP_NGRAM_MAX,
    DEFAULT_LOOKUP_NGRAM_MIN,
};
