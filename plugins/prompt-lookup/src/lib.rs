//! Prompt lookup for augur: drafts copied from earlier text.
//!
//! [`PromptLookupDrafter`] proposes the continuation of the copy the output
//! is making of earlier text in the prompt or the output: a [`CopyCursor`]
//! follows the copy across small edits (and repeats the replacements it has
//! seen), an [`NgramIndex`] of the longest recent n-gram finds new copies,
//! and [`CopyStats`] learns how often a copied token is right by how long the
//! copy has run, which each drafted token carries as its confidence. It is an
//! [`augur_core::Drafter`] like every other: augur-core's driver cuts the
//! proposal to the length the shared cost model says pays, and its exact
//! verifier makes the output the target's in greedy and in sampling mode
//! ([`PromptLookup`] is that strategy).

mod budget;
mod copy_cursor;
mod error;
mod ngram_index;
mod prompt_lookup;

pub use budget::{
    CopyStats, DEFAULT_DECAY, DEFAULT_PRIOR_RATES, DEFAULT_PRIOR_WEIGHT, RUN_CLASSES,
    RUN_CLASS_COUNT,
};
pub use copy_cursor::{copy_from, CopyCursor, MAX_MISSES, RESYNC_WINDOW};
pub use error::Error;
pub use ngram_index::{Evidence, NgramIndex, NgramMatch, MAX_INDEX_NGRAM};
pub use prompt_lookup::{
    PromptLookup, PromptLookupConfig, PromptLookupDrafter, DEFAULT_DRAFT_COST, DEFAULT_DRAFT_MAX,
    DEFAULT_LOOKUP_NGRAM_MAX, DEFAULT_LOOKUP_NGRAM_MIN, NAME,
};
