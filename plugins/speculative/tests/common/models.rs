//! Models shared by the speculative tests, and (through a path attribute) by
//! the pipeline module's unit tests, whose negative controls must run on
//! exactly the models of the tests they back: the bigram target and drafts
//! of the distribution tests, and the history-mode (target, draft) families
//! of the greedy tests. Only augur-core is used here, so the file compiles
//! both inside and outside the crate.

#![allow(dead_code)]

use augur_core::testing::{unfiltered, ContinuationTest, InMemoryModel};
use augur_core::{Model, Rng, SamplingParams, TokenId};

/// The last prompt token of the distribution tests: every continuation
/// follows it.
pub const LAST: TokenId = 2;
/// Continuations per distribution test.
pub const N: u64 = 100_000;
/// The p-value below which a distribution test fails.
pub const THRESHOLD: f64 = 1e-3;

/// `runs` continuations of `len` tokens after [`LAST`], seeds from
/// `first_seed` on.
pub fn continuations(
    len: usize,
    runs: u64,
    first_seed: u64,
    sampling: SamplingParams,
) -> ContinuationTest {
    ContinuationTest {
        prompt: vec![LAST],
        len,
        runs,
        first_seed,
        sampling,
    }
}

/// The bigram target p of the distribution tests, over 6 tokens.
pub fn target() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![5.0, 1.0, 2.0, 0.5, 1.0, 3.0],
        vec![1.0, 6.0, 1.0, 2.0, 0.5, 1.0],
        vec![2.0, 2.0, 1.0, 4.0, 1.0, 0.5],
        vec![0.5, 1.0, 3.0, 1.0, 5.0, 2.0],
        vec![3.0, 0.5, 1.0, 1.0, 2.0, 4.0],
        vec![1.0, 3.0, 0.5, 2.0, 1.0, 5.0],
    ])
}

/// A draft that disagrees with the target at every row.
pub fn far_draft() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![1.0, 4.0, 1.0, 3.0, 2.0, 0.5],
        vec![3.0, 1.0, 2.0, 1.0, 4.0, 1.0],
        vec![1.0, 1.0, 5.0, 1.0, 1.0, 2.0],
        vec![2.0, 3.0, 1.0, 1.0, 1.0, 4.0],
        vec![1.0, 2.0, 3.0, 4.0, 1.0, 1.0],
        vec![4.0, 1.0, 2.0, 1.0, 3.0, 1.0],
    ])
}

/// A draft that disagrees with the target at every row, but not so much that
/// the pipeline's guesses never hold.
pub fn near_draft() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![3.0, 1.0, 1.0, 1.0, 2.0, 1.0],
        vec![1.0, 3.0, 2.0, 1.0, 1.0, 1.0],
        vec![1.0, 1.0, 2.0, 1.0, 1.0, 2.0],
        vec![1.0, 2.0, 1.0, 1.0, 3.0, 1.0],
        vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0],
        vec![2.0, 1.0, 1.0, 1.0, 1.0, 3.0],
    ])
}

/// A draft whose confidence varies by row (top-1 probability 0.55, 0.23,
/// 0.45, 0.22, 0.43, 0.17), so a p-min of 0.4 stops drafting after some
/// tokens and not others.
pub fn uneven_draft() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![6.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.5],
        vec![1.0, 1.0, 5.0, 1.0, 1.0, 2.0],
        vec![2.0, 2.0, 1.0, 1.0, 1.0, 2.0],
        vec![1.0, 2.0, 3.0, 6.0, 1.0, 1.0],
        vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    ])
}

/// Temperature 1 with top-k 4 and top-p 0.9.
pub fn filtered() -> SamplingParams {
    SamplingParams {
        top_k: 4,
        top_p: 0.9,
        ..unfiltered(1.0)
    }
}

/// An 11-token target in history mode and, as the draft, the same table
/// with other history noise.
pub fn sibling_pair() -> (InMemoryModel, InMemoryModel) {
    let model = |noise| InMemoryModel::random(11, 3).with_history(noise);
    (model(4), model(5))
}

/// A family of (target, draft) pairs for the greedy tests, one pair per
/// seed. The models are in history mode, so any mistake in KV positions or
/// rollback changes the logits, hence the output.
#[derive(Debug, Clone, Copy)]
pub enum Pairs {
    /// The draft is the target (11 tokens): every draft holds.
    Same,
    /// Unrelated models (11 tokens): rejections everywhere.
    Different,
    /// The same bigram table with different history noise (11 tokens):
    /// mostly accepted, sometimes not, so long accepted runs and late
    /// rejections both occur.
    Similar,
    /// `Same` over 7 tokens with this end-of-generation token.
    SameEog(TokenId),
    /// `Similar` over 7 tokens, both with this end-of-generation token.
    SimilarEog(TokenId),
    /// `Similar` over 9 tokens, both with this context size.
    Context(usize),
    /// A 9-token target with a context of 40 and, as the draft, itself with
    /// a context of 10: the draft drafts while it has room.
    SmallDraftContext,
}

/// The end-of-generation and context-end families, with their token
/// limits.
pub const EDGE_FAMILIES: [(Pairs, usize); 7] = [
    (Pairs::SameEog(0), 60),
    (Pairs::SimilarEog(0), 60),
    (Pairs::SameEog(3), 60),
    (Pairs::SimilarEog(3), 60),
    (Pairs::Context(8), 100),
    (Pairs::Context(13), 100),
    (Pairs::SmallDraftContext, 100),
];

impl Pairs {
    /// The pair for `seed`.
    pub fn make(self, seed: u64) -> (InMemoryModel, InMemoryModel) {
        let model = |n_vocab, noise| InMemoryModel::random(n_vocab, seed).with_history(noise);
        match self {
            Pairs::Same => {
                let target = model(11, seed + 50);
                (target.clone(), target)
            }
            Pairs::Different => (
                model(11, seed + 50),
                InMemoryModel::random(11, seed + 500).with_history(seed + 90),
            ),
            Pairs::Similar => (model(11, seed + 50), model(11, seed + 51)),
            Pairs::SameEog(eog) => {
                let target = model(7, seed + 50).with_eog(eog);
                (target.clone(), target)
            }
            Pairs::SimilarEog(eog) => (
                model(7, seed + 50).with_eog(eog),
                model(7, seed + 51).with_eog(eog),
            ),
            Pairs::Context(n_ctx) => (
                model(9, seed + 50).with_n_ctx(n_ctx),
                model(9, seed + 51).with_n_ctx(n_ctx),
            ),
            Pairs::SmallDraftContext => {
                let target = model(9, seed + 50).with_n_ctx(40);
                let draft = target.clone().with_n_ctx(10);
                (target, draft)
            }
        }
    }

    /// Seeds 0 to 7 of the family, four random prompts each.
    pub fn cases(self) -> impl Iterator<Item = Case> {
        (0..8u64).map(move |seed| {
            let (target, draft) = self.make(seed);
            let mut rng = Rng::new(1000 + seed);
            let prompts = (0..4)
                .map(|_| random_prompt(&mut rng, target.n_vocab(), 6))
                .collect();
            Case {
                seed,
                target,
                draft,
                prompts,
            }
        })
    }
}

/// One seed of a greedy family.
pub struct Case {
    /// The seed the pair was made with.
    pub seed: u64,
    /// The target.
    pub target: InMemoryModel,
    /// The draft.
    pub draft: InMemoryModel,
    /// Prompts of 1 to 6 random tokens.
    pub prompts: Vec<Vec<TokenId>>,
}

/// A prompt of 1 to `max_len` random tokens.
pub fn random_prompt(rng: &mut Rng, n_vocab: usize, max_len: usize) -> Vec<TokenId> {
    let len = 1 + (rng.next_u64() % max_len as u64) as usize;
    (0..len)
        .map(|_| (rng.next_u64() % n_vocab as u64) as TokenId)
        .collect()
}
