//! Sampling: speculative decoding must sample from exactly the target's
//! distribution, whatever the draft.
//!
//! A bigram target p over 6 tokens and a deliberately different bigram draft
//! q; N = 100 000 independent continuations of 3 tokens (one generation per
//! continuation, seed = its index), drafting 2 tokens per step so rejections
//! at both draft positions and the bonus token all occur. The counts of the
//! 216 continuations are compared with their exact probabilities by Pearson's
//! chi-square test (sparse cells merged). The test fails below a p-value of
//! 1e-3: with a fixed seed it is deterministic, and a correct sampler fails it
//! for one seed in a thousand. The negative controls — a verifier that always
//! accepts (output follows q) and one that resamples from p instead of the
//! residual — must fail the same test, which shows it has the power to catch
//! the mistakes that matter.

#![allow(clippy::unwrap_used)]

use augur_core::chisq::{chi_square, ChiSquare};
use augur_core::testing::{continuation_index, exact_continuation_probs, InMemoryModel};
use augur_core::{
    generate, CoreError, GenerateParams, Proposal, SamplingParams, StepContext, Strategy, TokenId,
};

use augur_speculative::{Drafter, ModelDrafter, Speculative, SpeculativeConfig};

const N: u64 = 100_000;
const LEN: usize = 3;
const V: usize = 6;
const LAST: TokenId = 2;
const THRESHOLD: f64 = 1e-3;

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

/// A draft that disagrees with the target at every row.
fn draft() -> InMemoryModel {
    InMemoryModel::bigram(&[
        vec![1.0, 4.0, 1.0, 3.0, 2.0, 0.5],
        vec![3.0, 1.0, 2.0, 1.0, 4.0, 1.0],
        vec![1.0, 1.0, 5.0, 1.0, 1.0, 2.0],
        vec![2.0, 3.0, 1.0, 1.0, 1.0, 4.0],
        vec![1.0, 2.0, 3.0, 4.0, 1.0, 1.0],
        vec![4.0, 1.0, 2.0, 1.0, 3.0, 1.0],
    ])
}

/// A draft whose confidence varies by row (top-1 probability 0.55, 0.23,
/// 0.45, 0.22, 0.43, 0.17), so a p-min of 0.4 stops drafting after some tokens
/// and not others.
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

/// Samples N continuations with `strategy` and tests them against the exact
/// probabilities under `sampling`.
fn sample_and_test(strategy: &mut dyn Strategy, sampling: &SamplingParams) -> ChiSquare {
    let mut model = target();
    let expected = exact_continuation_probs(&model, LAST, LEN, sampling);
    let mut counts = vec![0u64; V.pow(LEN as u32)];
    let mut params = GenerateParams {
        max_tokens: LEN,
        sampling: sampling.clone(),
    };
    for seed in 0..N {
        params.sampling.seed = seed;
        let g = generate(&mut model, strategy, &[LAST], &params, &mut |_| true).unwrap();
        assert_eq!(g.tokens.len(), LEN);
        counts[continuation_index(&g.tokens, V)] += 1;
        // The model records every batch size; keep it from growing.
        model.batch_sizes.clear();
    }
    chi_square(&counts, &expected)
}

fn speculative(draft: InMemoryModel, config: SpeculativeConfig) -> Speculative<InMemoryModel> {
    Speculative::new(draft, config)
}

#[test]
fn speculative_sampling_follows_the_target() {
    let mut s = speculative(draft(), SpeculativeConfig::fixed(2));
    let r = sample_and_test(&mut s, &temperature_one());
    eprintln!("temperature 1: {r:?}");
    assert!(r.p_value > THRESHOLD, "{r:?}");
    // Both draft positions were verified, and rejections happened.
    assert!(s.largest_pass() == 3);
    let a = s.tuner().alpha(2);
    assert!(a[0] > 0.05 && a[0] < 0.95, "{a:?}");
}

#[test]
fn speculative_sampling_follows_the_filtered_target() {
    let mut s = speculative(draft(), SpeculativeConfig::fixed(2));
    let r = sample_and_test(&mut s, &filtered());
    eprintln!("top-k 4, top-p 0.9: {r:?}");
    assert!(r.p_value > THRESHOLD, "{r:?}");
}

#[test]
fn stopping_rules_keep_the_distribution() {
    // p-min stops drafting after unsure draft positions, the draft's own
    // end-of-generation token (not one for the target) ends proposals, and
    // draft-min must not drop the short proposals this makes at temperature
    // > 0 (whether they are short depends on the drafts drawn).
    let config = SpeculativeConfig {
        draft_p_min: 0.4,
        draft_min: 2,
        ..SpeculativeConfig::fixed(2)
    };
    let mut s = speculative(uneven_draft().with_eog(4), config);
    let r = sample_and_test(&mut s, &temperature_one());
    eprintln!("stopping rules: {r:?}");
    assert!(r.p_value > THRESHOLD, "{r:?}");
}

/// The wrong verification rules of the negative controls.
#[derive(Clone, Copy, Debug)]
enum Wrong {
    /// Accept every draft (the output then follows q).
    AlwaysAccept,
    /// On rejection, draw from p instead of norm(max(0, p − q)).
    ResampleFromP,
}

/// Speculative decoding with the same drafting code and a wrong verifier.
struct Control {
    drafter: ModelDrafter<InMemoryModel>,
    gamma: usize,
    wrong: Wrong,
    proposal: Proposal,
}

impl Strategy for Control {
    fn name(&self) -> &'static str {
        "control"
    }

    fn start(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        self.drafter.start(ctx.tokens, ctx.target.n_vocab())
    }

    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let gamma = self.gamma.min(ctx.max_drafts());
        self.proposal.truncate(0);
        if gamma > 0 {
            self.drafter
                .propose(ctx.tokens, gamma, ctx.sampling, ctx.rng, &mut self.proposal)?;
        }
        let n = self.proposal.len();
        let pos = ctx.pending_pos();
        ctx.batch.clear();
        ctx.batch.add(ctx.pending(), pos, &[0], true);
        for (i, &t) in self.proposal.tokens.iter().enumerate() {
            ctx.batch.add(t, pos + 1 + i, &[0], true);
        }
        ctx.target.eval(ctx.batch, ctx.logits)?;
        let mut accepted = 0;
        let mut next = None;
        for i in 0..n {
            let x = self.proposal.tokens[i];
            let p = ctx.target_dist(i);
            let keep = match self.wrong {
                Wrong::AlwaysAccept => true,
                Wrong::ResampleFromP => {
                    let ratio = p.prob(x) / self.proposal.q[i].prob(x);
                    ratio >= 1.0 || ctx.rng.uniform() < ratio
                }
            };
            if !keep {
                next = Some(p.sample(ctx.rng));
                break;
            }
            accepted += 1;
        }
        let next = match next {
            Some(t) => t,
            None => ctx.target_dist(n).sample(ctx.rng),
        };
        if accepted < n {
            ctx.target.remove_from(0, pos + 1 + accepted)?;
        }
        let drafts = self.proposal.tokens[..accepted].to_vec();
        ctx.tokens.extend_from_slice(&drafts);
        ctx.tokens.push(next);
        if gamma > 0 {
            self.drafter.on_verdict(ctx.tokens, accepted)?;
        }
        Ok(())
    }
}

fn control(wrong: Wrong, sampling: &SamplingParams) -> ChiSquare {
    let mut c = Control {
        drafter: ModelDrafter::new(draft(), 0.0),
        gamma: 2,
        wrong,
        proposal: Proposal::new(),
    };
    let r = sample_and_test(&mut c, sampling);
    eprintln!("{wrong:?}: {r:?}");
    r
}

#[test]
fn always_accepting_verifier_fails_the_test() {
    let r = control(Wrong::AlwaysAccept, &temperature_one());
    assert!(r.p_value < THRESHOLD, "{r:?}");
}

#[test]
fn resampling_from_p_fails_the_test() {
    let r = control(Wrong::ResampleFromP, &temperature_one());
    assert!(r.p_value < THRESHOLD, "{r:?}");
}

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let target = InMemoryModel::random(9, 4).with_history(3);
    let run = |seed: u64| {
        let mut t = target.clone();
        let mut s = speculative(
            InMemoryModel::random(9, 5).with_history(1),
            SpeculativeConfig::fixed(3),
        );
        let params = GenerateParams {
            max_tokens: 40,
            sampling: SamplingParams {
                seed,
                ..temperature_one()
            },
        };
        generate(&mut t, &mut s, &[1, 2], &params, &mut |_| true)
            .unwrap()
            .tokens
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    assert_ne!(run(8), run(9));
}
