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

use augur_core::chisq::ChiSquare;
use augur_core::testing::{unfiltered, InMemoryModel};
use augur_core::CostModel;
use augur_core::SamplingParams;
use augur_speculative::{PipelinedSpeculative, SpeculativeConfig};

use common::models::{continuations, filtered, near_draft, target, uneven_draft, N, THRESHOLD};
use common::{Delay, Wrapped};

/// Tokens per continuation.
const LEN: usize = 4;
/// Microseconds of the longest spin before a pass.
const SPIN_US: u64 = 5;

/// Pipeline counters summed over all generations of a run.
#[derive(Debug, Default)]
struct Seen {
    tried: u64,
    held: u64,
    wasted: u64,
    ready: u64,
    drafted: u64,
}

/// Samples N continuations with the pipelined strategy (seeds `offset..offset
/// + N`) and tests them against the exact probabilities under `sampling`.
fn sample_and_test(
    draft: InMemoryModel,
    config: SpeculativeConfig,
    sampling: SamplingParams,
    offset: u64,
) -> (ChiSquare, Seen) {
    let test = continuations(LEN, N, offset, sampling);
    let mut model = Wrapped::new(target(), Delay::Jitter(SPIN_US), offset + 1);
    let mut s = PipelinedSpeculative::new(
        Wrapped::new(draft, Delay::Jitter(SPIN_US), offset + 2),
        config,
    );
    let mut seen = Seen::default();
    let counts = test.counts(&mut model, &mut s, |g, strategy, target| {
        let p = strategy.pipeline_stats();
        seen.tried += p.guesses_tried;
        seen.held += p.guesses_held;
        seen.wasted += p.wasted_drafts;
        seen.ready += p.drafts_ready;
        seen.drafted += g.stats.drafted;
        // The in-memory model records every batch size; keep it small.
        target.inner.batch_sizes.clear();
    });
    (test.chi_square(&counts, &target()), seen)
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
        near_draft(),
        SpeculativeConfig::fixed(1),
        unfiltered(1.0),
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
    let mut costs = CostModel::prior();
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
    let (r, seen) = sample_and_test(uneven_draft().with_eog(4), config, filtered(), 20_000_000);
    eprintln!("filtered, stopping rules, adaptive: {r:?} {seen:?}");
    assert!(r.p_value > THRESHOLD, "{r:?}");
    assert!(seen.drafted > 0 && seen.wasted > 0, "{seen:?}");
}
