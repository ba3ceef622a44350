//! Greedy lookahead decoding for augur (Fu, Bailis, Stoica & Zhang, ICML
//! 2024): Jacobi iterations over a window of guesses, an n-gram pool
//! harvested from them ([`NgramPool`]), and verification of pool candidates
//! in the same target pass, using several KV sequences per batch. Greedy
//! only.
//!
//! [`LookaheadDrafter`] is an [`augur_core::Drafter`]: its window and
//! candidates travel in the proposal ([`augur_core::Proposal::side`],
//! [`augur_core::Proposal::branches`]) and augur-core's one verify step
//! evaluates and verifies them, so it runs unchanged on the in-memory test
//! model and on real backends. [`Lookahead`] is the assembled strategy.

mod error;
mod lookahead;
mod pool;

pub use error::Error;
pub use lookahead::{
    Lookahead, LookaheadConfig, LookaheadDrafter, DEFAULT_CANDIDATES, DEFAULT_NGRAM,
    DEFAULT_WINDOW, MAX_NGRAM, NAME,
};
pub use pool::NgramPool;
