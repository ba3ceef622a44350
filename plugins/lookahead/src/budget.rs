//! How many tokens prompt lookup drafts: a pure policy over past outcomes.
//!
//! Why adaptive: a drafted token is not free. On a compute-bound target a pass
//! over 2 tokens costs about 1.65 single passes, so a 1-token draft only pays
//! above roughly 40–65 % acceptance; on a memory-bound target 2–3 drafted
//! tokens are nearly free. Prompt lookup is right very often while text is
//! being copied and rarely otherwise.
//!
//! The policy keeps two things:
//! - `len`, a cap that tracks the copying regime: it grows by the accepted
//!   count when a whole draft is accepted (1, 2, 4, 8, …), falls to one more
//!   than the accepted count on a partial acceptance, and halves when nothing
//!   was accepted;
//! - `rate`, a running estimate (exponential moving average) of the
//!   probability that a drafted token is accepted given the ones before it
//!   were.
//!
//! The draft length is the k ≤ `len` that maximizes the expected tokens per
//! unit of target time, E(k) / cost(k), with E(k) = 1 + α + … + α^k (α =
//! `rate`) and cost(k) = 1 + `draft_cost`·k (speculative-math.md). k = 0 —
//! plain decoding — wins whenever α ≤ `draft_cost`, so with a low estimate the
//! strategy stops drafting.
//!
//! While it is not drafting it still learns, for free: the step's plain pass
//! emits a token, and comparing it with the candidate's first token (a
//! "shadow" check) tells whether that draft would have been accepted — in
//! greedy mode exactly, in sampling mode with the probability p(x) that
//! verification would have accepted it with. So drafting resumes as soon as
//! the candidates start being right again.

/// The policy's state between steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// The longest draft allowed now (the copying-regime cap).
    pub len: usize,
    /// Estimated probability that a drafted token is accepted, given the
    /// drafted tokens before it were.
    pub rate: f64,
}

/// What happened at one step that had a draft candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `drafted` tokens were verified and the first `accepted` passed.
    Verified {
        /// Tokens proposed.
        drafted: usize,
        /// Tokens accepted (a prefix).
        accepted: usize,
    },
    /// Nothing was drafted; `hit` tells whether the candidate's first token
    /// equals the token the plain pass emitted.
    Shadow {
        /// The candidate would have been accepted.
        hit: bool,
    },
}

/// The draft-length policy (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPolicy {
    /// The longest draft.
    pub max_len: usize,
    /// The cap at the start of a generation.
    pub initial_len: usize,
    /// The acceptance estimate at the start of a generation.
    pub initial_rate: f64,
    /// Weight of each new observation in the acceptance estimate (0, 1].
    pub learning_rate: f64,
    /// Cost of one drafted token in a target pass, in single-token passes:
    /// ≈ 0.65 on a compute-bound target, ≈ 0.05–0.2 on a memory-bound one.
    /// Used where `pass_costs` has no measurement.
    pub draft_cost: f64,
    /// Measured cost of a target pass over k + 1 tokens relative to a
    /// one-token pass, at index k (from calibration); 0 where not measured.
    /// Real costs are not linear in k (kernels change with the batch size), so
    /// a measured table chooses better than `draft_cost`.
    pub pass_costs: [f64; MAX_MEASURED_PASS],
}

/// How many pass sizes [`BudgetPolicy::pass_costs`] can hold.
pub const MAX_MEASURED_PASS: usize = 16;

impl BudgetPolicy {
    /// The state a generation starts in.
    pub fn initial(&self) -> Budget {
        Budget {
            len: self.initial_len.min(self.max_len),
            rate: self.initial_rate.clamp(0.0, 1.0),
        }
    }

    /// The draft length for state `b`: argmax over k in 0..=`b.len` of
    /// E(k) / (1 + `draft_cost`·k); ties go to the shorter draft.
    pub fn draft_len(&self, b: &Budget) -> usize {
        let alpha = b.rate.clamp(0.0, 1.0);
        let (mut best_k, mut best) = (0, 1.0);
        let (mut expected, mut term) = (1.0, 1.0);
        for k in 1..=b.len.min(self.max_len) {
            term *= alpha;
            expected += term;
            let value = expected / self.cost(k);
            // A margin keeps rounding from picking a longer, equal draft.
            if value > best * (1.0 + 1e-9) {
                best_k = k;
                best = value;
            }
        }
        best_k
    }

    /// The cost of verifying k drafts (a pass over k + 1 tokens), in
    /// one-token passes: measured where known, linear otherwise.
    pub fn cost(&self, k: usize) -> f64 {
        match self.pass_costs.get(k) {
            Some(&c) if c > 0.0 => c,
            _ => 1.0 + self.draft_cost * k as f64,
        }
    }

    fn observe(&self, rate: f64, accepted: bool) -> f64 {
        let x = if accepted { 1.0 } else { 0.0 };
        (rate + self.learning_rate * (x - rate)).clamp(0.0, 1.0)
    }

    /// The state after `outcome`:
    /// - verified: the estimate sees one success per accepted token and one
    ///   failure at the first rejected one (tokens after it were never
    ///   decided); the cap grows by the accepted count when all were
    ///   accepted (up to `max_len`), becomes accepted + 1 on a partial
    ///   acceptance, and halves (not below 1) when none was;
    /// - shadow: the estimate sees one observation; the cap is unchanged;
    /// - an empty verification changes nothing.
    pub fn next(&self, b: Budget, outcome: Outcome) -> Budget {
        match outcome {
            Outcome::Verified { drafted: 0, .. } => b,
            Outcome::Verified { drafted, accepted } => {
                let accepted = accepted.min(drafted);
                let mut rate = b.rate;
                for _ in 0..accepted {
                    rate = self.observe(rate, true);
                }
                if accepted < drafted {
                    rate = self.observe(rate, false);
                }
                let len = if accepted == drafted {
                    b.len.max(drafted).saturating_add(accepted)
                } else if accepted > 0 {
                    accepted + 1
                } else {
                    (b.len.min(drafted) / 2).max(1)
                };
                Budget {
                    len: len.min(self.max_len),
                    rate,
                }
            }
            Outcome::Shadow { hit } => Budget {
                len: b.len,
                rate: self.observe(b.rate, hit),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BudgetPolicy = BudgetPolicy {
        max_len: 8,
        initial_len: 1,
        initial_rate: 0.8,
        learning_rate: 0.25,
        draft_cost: 0.65,
        pass_costs: [0.0; MAX_MEASURED_PASS],
    };

    fn b(len: usize, rate: f64) -> Budget {
        Budget { len, rate }
    }

    fn verified(drafted: usize, accepted: usize) -> Outcome {
        Outcome::Verified { drafted, accepted }
    }

    /// Brute force: the expected tokens per cost of every k ≤ cap.
    fn best_by_enumeration(p: &BudgetPolicy, len: usize, alpha: f64) -> usize {
        let value = |k: usize| {
            let e: f64 = (0..=k).map(|i| alpha.powi(i as i32)).sum();
            e / p.cost(k)
        };
        (0..=len.min(p.max_len)).fold(0, |best, k| {
            if value(k) > value(best) * (1.0 + 1e-9) {
                k
            } else {
                best
            }
        })
    }

    #[test]
    fn starts_at_the_initial_state_capped() {
        assert_eq!(P.initial(), b(1, 0.8));
        let p = BudgetPolicy {
            initial_len: 20,
            initial_rate: 3.0,
            ..P
        };
        assert_eq!(p.initial(), b(8, 1.0));
    }

    #[test]
    fn drafting_pays_only_above_the_draft_cost() {
        // One drafted token: E = 1 + α against cost 1 + c: pays iff α > c.
        assert_eq!(P.draft_len(&b(1, 0.6)), 0);
        assert_eq!(P.draft_len(&b(1, 0.7)), 1);
        let cheap = BudgetPolicy {
            draft_cost: 0.1,
            ..P
        };
        assert_eq!(cheap.draft_len(&b(1, 0.2)), 1);
        assert_eq!(cheap.draft_len(&b(1, 0.05)), 0);
        // A zero cap never drafts.
        assert_eq!(cheap.draft_len(&b(0, 1.0)), 0);
    }

    #[test]
    fn draft_length_maximizes_tokens_per_cost() {
        for p in [
            P,
            BudgetPolicy {
                draft_cost: 0.1,
                ..P
            },
            BudgetPolicy {
                draft_cost: 0.0,
                ..P
            },
        ] {
            for len in 0..=10 {
                for i in 0..=20 {
                    let alpha = i as f64 / 20.0;
                    assert_eq!(
                        p.draft_len(&b(len, alpha)),
                        best_by_enumeration(&p, len, alpha),
                        "cost {} len {len} alpha {alpha}",
                        p.draft_cost
                    );
                }
            }
        }
        // Sure drafts are taken up to the cap; on a compute-bound target a
        // 90 % rate is worth only a few tokens.
        assert_eq!(P.draft_len(&b(8, 1.0)), 8);
        assert_eq!(P.draft_len(&b(20, 1.0)), 8);
        let k = P.draft_len(&b(8, 0.9));
        assert!((2..=4).contains(&k), "{k}");
    }

    #[test]
    fn full_acceptance_grows_the_cap_by_the_accepted_count() {
        assert_eq!(P.next(b(1, 1.0), verified(1, 1)).len, 2);
        assert_eq!(P.next(b(2, 1.0), verified(2, 2)).len, 4);
        assert_eq!(P.next(b(4, 1.0), verified(4, 4)).len, 8);
        assert_eq!(P.next(b(8, 1.0), verified(8, 8)).len, 8);
        // A draft cut short (context, token limit, estimate) grows from the cap.
        assert_eq!(P.next(b(4, 1.0), verified(1, 1)).len, 5);
    }

    #[test]
    fn partial_acceptance_keeps_what_worked_plus_one() {
        assert_eq!(P.next(b(8, 0.5), verified(8, 3)).len, 4);
        assert_eq!(P.next(b(8, 0.5), verified(8, 7)).len, 8);
        assert_eq!(P.next(b(2, 0.5), verified(2, 1)).len, 2);
    }

    #[test]
    fn misses_halve_the_cap_but_not_below_one() {
        assert_eq!(P.next(b(8, 0.5), verified(8, 0)).len, 4);
        assert_eq!(P.next(b(2, 0.5), verified(2, 0)).len, 1);
        assert_eq!(P.next(b(1, 0.5), verified(1, 0)).len, 1);
        assert_eq!(P.next(b(8, 0.5), verified(2, 0)).len, 1);
    }

    #[test]
    fn the_estimate_sees_accepts_and_the_first_rejection_only() {
        let r = P.next(b(4, 0.5), verified(4, 2)).rate;
        // Two successes then one failure.
        let want = ((0.5 + 0.25 * 0.5) * 0.75 + 0.25) * 0.75;
        assert!((r - want).abs() < 1e-12, "{r} vs {want}");
        let r = P.next(b(4, 0.5), verified(3, 3)).rate;
        let want = 1.0 - 0.5 * 0.75f64.powi(3);
        assert!((r - want).abs() < 1e-12);
    }

    #[test]
    fn misses_turn_drafting_off_and_shadow_hits_turn_it_back_on() {
        let mut s = P.initial();
        assert_eq!(P.draft_len(&s), 1);
        s = P.next(s, verified(1, 0));
        s = P.next(s, verified(1, 0));
        assert_eq!(P.draft_len(&s), 0, "{s:?}");
        // Shadow misses keep it off, hits bring it back.
        s = P.next(s, Outcome::Shadow { hit: false });
        assert_eq!(P.draft_len(&s), 0);
        let mut hits = 0;
        while P.draft_len(&s) == 0 {
            s = P.next(s, Outcome::Shadow { hit: true });
            hits += 1;
            assert!(hits < 10);
        }
        assert!(hits >= 2, "one lucky shadow hit must not be enough: {hits}");
        assert_eq!(s.len, 1);
    }

    #[test]
    fn empty_verification_changes_nothing() {
        assert_eq!(P.next(b(3, 0.4), verified(0, 0)), b(3, 0.4));
    }

    #[test]
    fn measured_pass_costs_replace_the_linear_model() {
        // Q4_K_M-like measurements on 2 cores: 1.8 for 2 tokens, 3.85 for 5.
        let mut costs = [0.0; MAX_MEASURED_PASS];
        costs[..6].copy_from_slice(&[1.0, 1.8, 2.49, 3.19, 3.85, 4.54]);
        let p = BudgetPolicy {
            draft_cost: 0.8,
            pass_costs: costs,
            ..P
        };
        assert_eq!(p.cost(4), 3.85);
        assert_eq!(p.cost(7), 1.0 + 0.8 * 7.0);
        // At α = 0.95 four drafts pay (E = 4.52 > 3.85) although the linear
        // model (cost 4.2) would rank them lower than with the table.
        let k = p.draft_len(&b(8, 0.95));
        assert!(k >= 4, "{k}");
        for len in 0..=10 {
            for i in 0..=20 {
                let alpha = i as f64 / 20.0;
                assert_eq!(
                    p.draft_len(&b(len, alpha)),
                    best_by_enumeration(&p, len, alpha)
                );
            }
        }
    }

    #[test]
    fn zero_max_len_never_drafts() {
        let never = BudgetPolicy {
            max_len: 0,
            initial_len: 3,
            ..P
        };
        assert_eq!(never.initial().len, 0);
        assert_eq!(never.draft_len(&b(5, 1.0)), 0);
        assert_eq!(never.next(b(0, 1.0), verified(2, 2)).len, 0);
    }
}
