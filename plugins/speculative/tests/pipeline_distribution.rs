//! Sampling with the pipelined strategy: the output must follow exactly the
//! target's distribution, whatever the draft and however the two threads
//! interleave.
//!
//! As in `distribution.rs`: a bigram target p over 6 tokens and a different
//! bigram draft q, N = 100 000 continuations (one generation each, seed = a
//! per-run offset + its index), Pearson's chi-square against the exact
//! probabilities, failing below p = 1e-3. The continuations have 4 tokens,
//! so that with one draft per step a proposal drafted ahead (on a guess that
//! held) is verified within a generation. Both models wait a pseudo-random
//! moment (nothing, a yield or a short spin) before each pass, so verdicts
//! arrive before, during and after the draft thread's work ahead; the runs
//! check that guesses both held and failed and that drafts made ahead were
//! used and thrown away. The negative controls (a pipeline that takes the
//! guess for the bonus token, and one whose draft randomness ignores the
//! seed) are unit tests of the pipeline module, on the same harness.

#![allow(clippy::unwrap_used)]

mod common;

use augur_core::chisq::{chi_square, ChiSquare};
use augur_core::testing::{continuation_index, exact_continuation_probs, InMemoryModel};
use augur_core::{generate, GenerateParams, SamplingParams, TokenId};
use augur_speculative::{Costs, PipelinedSpeculative, SpeculativeConfig};

use common::{Delay, Wrapped};

const N: u64 = 100_000;
const V: usize = 6;
const LAST: TokenId = 2;
const THRESHOLD: f64 = 1e-3;
/// Microseconds of the longest spin before a pass.
const SPIN_US: u64 = 5;

fn target() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![5.0, 1.0, 2.0, 0.5, 1.0, 3.0],
        vec![1.0, 6.0, 1.0, 2.0, 0.5, 1.0],
        vec![2.0, 2.0, 1.0, 4.0, 1.0, 0.5],
        vec![0.5, 1.0, 3.0, 1.0, 5.0, 2.0],
        vec![3.0, 0.5, 1.0, 1.0, 2.0, 4.0],
        vec![1.0, 3.0, 0.5, 2.0, 1.0, 5.0],
    ])
}

/// A draft that disagrees with the target at every row, but not so much that
/// guesses never hold.
fn draft() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![3.0, 1.0, 1.0, 1.0, 2.0, 1.0],
        vec![1.0, 3.0, 2.0, 1.0, 1.0, 1.0],
        vec![1.0, 1.0, 2.0, 1.0, 1.0, 2.0],
        vec![1.0, 2.0, 1.0, 1.0, 3.0, 1.0],
        vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0],
        vec![2.0, 1.0, 1.0, 1.0, 1.0, 3.0],
    ])
}

/// A draft whose confidence varies by row, so a p-min of 0.4 stops drafting
/// after some tokens and not others.
fn uneven_draft() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![6.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.5],
        vec![1.0, 1.0, 5.0, 1.0, 1.0, 2.0],
        vec![2.0, 2.0, 1.0, 1.0, 1.0, 2.0],
        vec![1.0, 2.0, 3.0, 6.0, 1.0, 1.0],
        vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    ])
}

fn temperature_one() -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 0,
    }
}

fn filtered() -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        top_k: 4,
        top_p: 0.9,
        min_p: 0.0,
        seed: 0,
    }
}

/// Pipeline counters summed over all generations of a run.
#[derive(Debug, Default)]
struct Seen {
    tried: u64,
    held: u64,
    wasted: u64,
    ready: u64,
    drafted: u64,
}

/// Samples N continuations of `len` tokens with the pipelined strategy
/// (seeds `offset..offset + N`) and tests them against the exact
/// probabilities under `sampling`.
fn sample_and_test(
    draft: InMemoryModel,
    config: SpeculativeConfig,
    sampling: &SamplingParams,
    len: usize,
    offset: u64,
) -> (ChiSquare, Seen) {
    let expected = exact_continuation_probs(&target(), LAST, len, sampling);
    let mut model = Wrapped::new(target(), Delay::Jitter(SPIN_US), offset + 1);
    let mut s = PipelinedSpeculative::new(
        Wrapped::new(draft, Delay::Jitter(SPIN_US), offset + 2),
        config,
    );
    let mut counts = vec![0u64; V.pow(len as u32)];
    let mut params = GenerateParams {
        max_tokens: len,
        sampling: sampling.clone(),
    };
    let mut seen = Seen::default();
    for i in 0..N {
        params.sampling.seed = offset + i;
        let g = generate(&mut model, &mut s, &[LAST], &params, &mut |_| true).unwrap();
        assert_eq!(g.tokens.len(), len);
        counts[continuation_index(&g.tokens, V)] += 1;
        let p = s.pipeline_stats();
        seen.tried += p.guesses_tried;
        seen.held += p.guesses_held;
        seen.wasted += p.wasted_drafts;
        seen.ready += p.drafts_ready;
        seen.drafted += g.stats.drafted;
        // The in-memory model records every batch size; keep it small.
        model.inner.batch_sizes.clear();
    }
    (chi_square(&counts, &expected), seen)
}

/// Every kind of interleaving happened: guesses held and failed, drafts
/// made ahead were used and thrown away. (A matter of timing, but over
/// 100 000 generations with jittered passes each kind occurs thousands of
/// times.)
fn assert_interleavings(seen: &Seen) {
    assert!(seen.held > 0 && seen.held < seen.tried, "{seen:?}");
    assert!(seen.ready > 0 && seen.wasted > 0, "{seen:?}");
}

#[test]
fn one_draft_per_step_follows_the_target() {
    let (r, seen) = sample_and_test(
        draft(),
        SpeculativeConfig::fixed(1),
        &temperature_one(),
        4,
        0,
    );
    eprintln!("gamma 1: {r:?} {seen:?}");
    assert!(r.p_value > THRESHOLD, "{r:?}");
    assert_interleavings(&seen);
}

#[test]
fn stopping_rules_and_adaptive_length_follow_the_filtered_target() {
    // Top-k and top-p filters; the adaptive length (with fixed costs that
    // favour drafting) choosing up to 3 drafts; p-min stopping the chain
    // after unsure positions; the draft's own end-of-generation token (not
    // one for the target) ending it; draft-min, which must not drop the
    // short proposals this makes at temperature > 0.
    let mut costs = Costs::new();
    for k in 1..=9 {
        costs.record_target(k, 1.0);
    }
    costs.record_draft(0.01);
    let config = SpeculativeConfig {
        draft_p_min: 0.4,
        draft_min: 2,
        draft_max: 3,
        initial_costs: Some(costs),
        ..SpeculativeConfig::default()
    };
    let (r, seen) = sample_and_test(
        uneven_draft().with_eog(4),
        config,
        &filtered(),
        4,
        20_000_000,
    );
    eprintln!("filtered, stopping rules, adaptive: {r:?} {seen:?}");
    assert!(r.p_value > THRESHOLD, "{r:?}");
    assert!(seen.drafted > 0 && seen.wasted > 0, "{seen:?}");
}
