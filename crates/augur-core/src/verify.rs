//! Verification: the one place where exactness lives.
//!
//! A drafter proposes tokens x1..xγ, each with the distribution q_i it was drawn
//! from (one-hot for deterministic drafters). The target scores the pending token
//! and the drafts in one pass, giving p_1..p_{γ+1} after the same filters.
//! [`verify`] applies Leviathan et al.'s rule: accept x_i with probability
//! min(1, p_i(x_i)/q_i(x_i)); on the first rejection emit a token drawn from
//! norm(max(0, p_i − q_i)); when all pass, emit a bonus token drawn from p_{γ+1}.
//!
//! At temperature 0, p and q are one-hot: a draft is accepted iff it equals the
//! target's argmax, the correction is the argmax, and no random number is drawn.

use crate::draft::Proposal;
use crate::model::TokenId;
use crate::rng::Rng;
use crate::sampling::SparseDist;

/// The outcome of verifying a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// How many drafts were accepted (a prefix of the proposal).
    pub accepted: usize,
    /// The token emitted after the accepted drafts: the correction drawn from the
    /// residual, or the bonus token when every draft passed.
    pub next: TokenId,
}

impl Verdict {
    /// The tokens this verdict emits: the accepted drafts, then `next`.
    pub fn emitted(&self, proposal: &Proposal) -> Vec<TokenId> {
        let mut out = proposal.tokens[..self.accepted].to_vec();
        out.push(self.next);
        out
    }
}

/// The decision for one draft token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The draft is accepted.
    Accept,
    /// The draft is rejected; emit this token instead.
    Reject(TokenId),
}

/// Decides one draft token `x` against target distribution `p` and draft
/// distribution `q`. Draws a random number only when 0 < p(x)/q(x) < 1, and
/// samples the residual only when it has more than one token.
pub fn decide(x: TokenId, p: &SparseDist, q: &SparseDist, rng: &mut Rng) -> Decision {
    let px = p.prob(x);
    let qx = q.prob(x);
    // q(x) = 0 cannot happen for a token drawn from q; treat it as "ratio
    // infinite" only if p(x) > 0, which keeps a buggy drafter from biasing output
    // towards tokens the target rules out.
    let accept = if px <= 0.0 {
        false
    } else if qx <= 0.0 || px >= qx {
        true
    } else {
        rng.uniform() < px / qx
    };
    if accept {
        return Decision::Accept;
    }
    // p > q somewhere whenever a rejection is possible; guard against rounding.
    let correction = match SparseDist::residual(p, q) {
        Some(r) => r.sample(rng),
        None => p.sample(rng),
    };
    Decision::Reject(correction)
}

/// Verifies `proposal` against the target's distributions `p` (one per draft
/// plus one for the bonus token: `p.len() == proposal.len() + 1`). A shorter `p`
/// cuts the proposal to `p.len() - 1` drafts.
///
/// # Panics
/// If `p` is empty.
pub fn verify(proposal: &Proposal, p: &[SparseDist], rng: &mut Rng) -> Verdict {
    assert!(
        !p.is_empty(),
        "verify needs at least the bonus distribution"
    );
    let n = proposal.len().min(p.len() - 1);
    verify_lazy(
        &proposal.tokens[..n],
        &proposal.q[..n],
        |i| p[i].clone(),
        rng,
    )
}

/// [`verify`] with the target's distributions computed on demand: `p_at(i)` is
/// called for i = 0, 1, … only as far as the decision needs (filters over a
/// large vocabulary are not free).
pub fn verify_lazy(
    tokens: &[TokenId],
    q: &[SparseDist],
    mut p_at: impl FnMut(usize) -> SparseDist,
    rng: &mut Rng,
) -> Verdict {
    let n = tokens.len().min(q.len());
    for i in 0..n {
        match decide(tokens[i], &p_at(i), &q[i], rng) {
            Decision::Accept => {}
            Decision::Reject(next) => return Verdict { accepted: i, next },
        }
    }
    Verdict {
        accepted: n,
        next: p_at(n).sample(rng),
    }
}

/// Greedy verification from the target's argmax at each position:
/// keep drafts while they equal the argmax; `next` is the argmax after them.
pub fn verify_greedy(drafts: &[TokenId], target_argmax: &[TokenId]) -> Verdict {
    assert!(
        !target_argmax.is_empty(),
        "verify_greedy needs the bonus argmax"
    );
    let n = drafts.len().min(target_argmax.len() - 1);
    let accepted = drafts[..n]
        .iter()
        .zip(target_argmax)
        .take_while(|(d, t)| d == t)
        .count();
    Verdict {
        accepted,
        next: target_argmax[accepted],
    }
}

/// Greedy verification of several candidate chains at once (lookahead's
/// pool candidates, a token tree's branches): the first emitted token is the
/// argmax after the pending token (`argmax_at(None)`); then, while some chain
/// agrees with every token emitted so far, the first such chain's next
/// argmax (`argmax_at(Some((chain, i)))`, the row of its i-th token) is
/// emitted. Stops after `limit` accepted drafts or after accepting a token
/// `stop` accepts (end of generation). Returns the winning chain (if any draft was accepted),
/// how many of its drafts were accepted, and the token after them. With one
/// chain this is [`verify_greedy`].
pub fn verify_greedy_chains(
    chains: &[&[TokenId]],
    limit: usize,
    mut argmax_at: impl FnMut(Option<(usize, usize)>) -> TokenId,
    stop: impl Fn(TokenId) -> bool,
) -> (Option<usize>, usize, TokenId) {
    let mut id = argmax_at(None);
    let mut winner = None;
    let mut accepted = 0;
    let mut active = vec![true; chains.len()];
    while accepted < limit {
        let v = accepted;
        for (c, a) in active.iter_mut().enumerate() {
            *a = *a && chains[c].get(v) == Some(&id);
        }
        let Some(c) = active.iter().position(|&a| a) else {
            break;
        };
        winner = Some(c);
        accepted += 1;
        // A draft equal to an end-of-generation token is accepted (the text
        // ends there), but nothing after it is looked at.
        let ended = stop(id);
        id = argmax_at(Some((c, v)));
        if ended {
            break;
        }
    }
    (winner, accepted, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(pairs: &[(TokenId, f64)]) -> SparseDist {
        SparseDist::from_weights(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn greedy_all_accepted_gives_bonus() {
        let v = verify_greedy(&[4, 5, 6], &[4, 5, 6, 7]);
        assert_eq!(
            v,
            Verdict {
                accepted: 3,
                next: 7
            }
        );
    }

    #[test]
    fn greedy_first_rejected() {
        let v = verify_greedy(&[4, 5, 6], &[9, 5, 6, 7]);
        assert_eq!(
            v,
            Verdict {
                accepted: 0,
                next: 9
            }
        );
    }

    #[test]
    fn greedy_middle_rejected() {
        let v = verify_greedy(&[4, 5, 6], &[4, 8, 6, 7]);
        assert_eq!(
            v,
            Verdict {
                accepted: 1,
                next: 8
            }
        );
    }

    #[test]
    fn greedy_empty_proposal_is_plain_decoding() {
        assert_eq!(
            verify_greedy(&[], &[3]),
            Verdict {
                accepted: 0,
                next: 3
            }
        );
    }

    #[test]
    fn one_hot_rule_equals_greedy_rule_without_randomness() {
        let mut rng = Rng::new(1);
        let mut untouched = Rng::new(1);
        let prop = Proposal::deterministic(&[4, 5, 6]);
        let p: Vec<SparseDist> = [4, 8, 6, 7]
            .iter()
            .map(|&t| SparseDist::one_hot(t))
            .collect();
        let v = verify(&prop, &p, &mut rng);
        assert_eq!(v, verify_greedy(&[4, 5, 6], &[4, 8, 6, 7]));
        assert_eq!(rng.next_u64(), untouched.next_u64());
    }

    #[test]
    fn p_zero_is_always_rejected() {
        let p = dist(&[(1, 1.0)]);
        let q = dist(&[(0, 0.5), (1, 0.5)]);
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            assert_eq!(decide(0, &p, &q, &mut rng), Decision::Reject(1));
        }
    }

    #[test]
    fn q_zero_with_p_positive_is_accepted() {
        let p = dist(&[(0, 0.5), (1, 0.5)]);
        let q = dist(&[(1, 1.0)]);
        let mut rng = Rng::new(3);
        assert_eq!(decide(0, &p, &q, &mut rng), Decision::Accept);
    }

    #[test]
    fn p_at_least_q_is_always_accepted() {
        let p = dist(&[(0, 0.6), (1, 0.4)]);
        let q = dist(&[(0, 0.5), (1, 0.5)]);
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            assert_eq!(decide(0, &p, &q, &mut rng), Decision::Accept);
        }
    }

    #[test]
    fn rejection_samples_from_residual_only() {
        // p = (0.2, 0.8), q = (1, 0): accept 0 with prob 0.2; else residual = token 1.
        let p = dist(&[(0, 0.2), (1, 0.8)]);
        let q = dist(&[(0, 1.0)]);
        let mut rng = Rng::new(11);
        let n = 50_000;
        let mut accepted = 0;
        for _ in 0..n {
            match decide(0, &p, &q, &mut rng) {
                Decision::Accept => accepted += 1,
                Decision::Reject(t) => assert_eq!(t, 1),
            }
        }
        let frac = accepted as f64 / n as f64;
        assert!((frac - 0.2).abs() < 0.01, "{frac}");
    }

    #[test]
    fn emitted_marginal_equals_p() {
        // One position: P(emit x) must equal p(x) for any q.
        let p = dist(&[(0, 0.5), (1, 0.3), (2, 0.2)]);
        let q = dist(&[(0, 0.1), (1, 0.6), (2, 0.3)]);
        let mut rng = Rng::new(5);
        let n = 200_000;
        let mut counts = [0usize; 3];
        for _ in 0..n {
            let x = q.sample(&mut rng);
            let t = match decide(x, &p, &q, &mut rng) {
                Decision::Accept => x,
                Decision::Reject(t) => t,
            };
            counts[t as usize] += 1;
        }
        for (i, want) in [0.5, 0.3, 0.2].iter().enumerate() {
            let got = counts[i] as f64 / n as f64;
            assert!((got - want).abs() < 0.006, "token {i}: {got} vs {want}");
        }
    }

    #[test]
    fn verify_stops_at_first_rejection_and_uses_bonus_when_all_pass() {
        let mut rng = Rng::new(0);
        let prop = Proposal::deterministic(&[1, 2]);
        let p = vec![
            SparseDist::one_hot(1),
            SparseDist::one_hot(2),
            SparseDist::one_hot(9),
        ];
        assert_eq!(
            verify(&prop, &p, &mut rng),
            Verdict {
                accepted: 2,
                next: 9
            }
        );
        let p = vec![
            SparseDist::one_hot(1),
            SparseDist::one_hot(3),
            SparseDist::one_hot(9),
        ];
        assert_eq!(
            verify(&prop, &p, &mut rng),
            Verdict {
                accepted: 1,
                next: 3
            }
        );
    }

    #[test]
    fn verify_with_short_p_truncates_the_proposal() {
        let mut rng = Rng::new(0);
        let prop = Proposal::deterministic(&[1, 2, 3]);
        let p = vec![SparseDist::one_hot(1), SparseDist::one_hot(5)];
        assert_eq!(
            verify(&prop, &p, &mut rng),
            Verdict {
                accepted: 1,
                next: 5
            }
        );
    }

    #[test]
    fn emitted_lists_accepted_then_next() {
        let prop = Proposal::deterministic(&[1, 2, 3]);
        let v = Verdict {
            accepted: 2,
            next: 7,
        };
        assert_eq!(v.emitted(&prop), vec![1, 2, 7]);
    }
}
