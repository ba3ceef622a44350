//! How many tokens prompt lookup drafts: the length that buys the most
//! expected tokens per unit of target time.
//!
//! Why not a fixed length: a drafted token is not free. On a compute-bound
//! target (Q4_K_M on 2 cores) a pass over 2 tokens costs about 1.75 single
//! passes and passes of 8+ tokens jump again; on a memory-bound one 2–3
//! drafted tokens are nearly free. And prompt lookup is right very often while
//! text is being copied and rarely otherwise.
//!
//! The policy has two parts:
//! - [`CopyStats`]: how often a copied token turned out right, by how much
//!   matched context stood behind the prediction (the copy's run length: the
//!   matched n-gram, then every token copied right in a row). A long run means
//!   text is being copied verbatim; a run of 0 is a guess right after an edit.
//!   Every emitted token is an observation, drafted or not, so the statistics
//!   keep learning while the strategy is not drafting. Counts decay, so they
//!   follow the text's regime.
//! - the shared cost model's [`augur_core::CostModel::best_prefix`]: the k
//!   that maximizes E(k) / cost(k), where E(k) = 1 + α₁ + α₁α₂ + … (αᵢ the
//!   rate at the run length the i-th drafted token would be predicted with,
//!   which the drafter hands over as its confidence) and cost(k) is the
//!   measured cost of a pass over k + 1 tokens. k = 0, plain decoding, wins
//!   whenever the rates are too low for the measured costs, so on text that
//!   is not being copied the strategy costs about nothing.

/// How many run-length classes [`CopyStats`] keeps.
pub const RUN_CLASS_COUNT: usize = 6;

/// The smallest run length of each class [`CopyStats`] keeps apart.
pub const RUN_CLASSES: [usize; RUN_CLASS_COUNT] = [0, 1, 4, 8, 16, 32];

/// Acceptance rates assumed before any observation, per run class. Short
/// matches are right about half the time on code (so they are not drafted on
/// a compute-bound target until the text shows otherwise); long copies
/// nearly always.
pub const DEFAULT_PRIOR_RATES: [f64; RUN_CLASS_COUNT] = [0.35, 0.55, 0.8, 0.85, 0.9, 0.95];

/// How many observations the prior counts for.
pub const DEFAULT_PRIOR_WEIGHT: f64 = 4.0;

/// Per-observation decay of the counts of a class: about the last 1 / (1 −
/// decay) = 50 observations matter.
pub const DEFAULT_DECAY: f64 = 0.98;

/// Acceptance statistics by run length (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyStats {
    hits: [f64; RUN_CLASS_COUNT],
    seen: [f64; RUN_CLASS_COUNT],
    prior: [f64; RUN_CLASS_COUNT],
    prior_weight: f64,
    decay: f64,
}

impl Default for CopyStats {
    fn default() -> Self {
        Self::new(DEFAULT_PRIOR_RATES, DEFAULT_PRIOR_WEIGHT, DEFAULT_DECAY)
    }
}

impl CopyStats {
    /// Statistics that start from `prior` rates (per [`RUN_CLASSES`] entry,
    /// clamped to [0, 1]) worth `prior_weight` observations, whose counts
    /// decay by `decay` (clamped to [0, 1]) per observation of their class.
    pub fn new(prior: [f64; RUN_CLASS_COUNT], prior_weight: f64, decay: f64) -> Self {
        Self {
            hits: [0.0; RUN_CLASS_COUNT],
            seen: [0.0; RUN_CLASS_COUNT],
            prior: prior.map(|p| p.clamp(0.0, 1.0)),
            prior_weight: prior_weight.max(0.0),
            decay: decay.clamp(0.0, 1.0),
        }
    }

    /// The class of a run length: index into [`RUN_CLASSES`].
    pub fn class(run: usize) -> usize {
        RUN_CLASSES.iter().rposition(|&lo| run >= lo).unwrap_or(0)
    }

    /// Records whether a token predicted with `run` tokens of matched
    /// context was right.
    pub fn observe(&mut self, run: usize, hit: bool) {
        let c = Self::class(run);
        self.hits[c] = self.hits[c] * self.decay + if hit { 1.0 } else { 0.0 };
        self.seen[c] = self.seen[c] * self.decay + 1.0;
    }

    /// The estimated probability that a token predicted with `run` tokens of
    /// matched context is right.
    pub fn rate(&self, run: usize) -> f64 {
        let c = Self::class(run);
        let w = self.prior_weight;
        let total = self.seen[c] + w;
        if total <= 0.0 {
            return self.prior[c];
        }
        ((self.hits[c] + self.prior[c] * w) / total).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_classes_cover_every_length() {
        assert_eq!(CopyStats::class(0), 0);
        assert_eq!(CopyStats::class(1), 1);
        assert_eq!(CopyStats::class(3), 1);
        assert_eq!(CopyStats::class(4), 2);
        assert_eq!(CopyStats::class(7), 2);
        assert_eq!(CopyStats::class(8), 3);
        assert_eq!(CopyStats::class(16), 4);
        assert_eq!(CopyStats::class(31), 4);
        assert_eq!(CopyStats::class(32), 5);
        assert_eq!(CopyStats::class(usize::MAX), RUN_CLASS_COUNT - 1);
        // Classes are in increasing order, starting at 0.
        assert_eq!(RUN_CLASSES[0], 0);
        assert!(RUN_CLASSES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rates_start_at_the_prior_and_follow_observations() {
        let mut s = CopyStats::default();
        for (i, &lo) in RUN_CLASSES.iter().enumerate() {
            assert!((s.rate(lo) - DEFAULT_PRIOR_RATES[i]).abs() < 1e-12);
        }
        for _ in 0..200 {
            s.observe(2, false);
        }
        assert!(s.rate(1) < 0.05, "{}", s.rate(1));
        // Other classes are untouched.
        assert!((s.rate(8) - DEFAULT_PRIOR_RATES[3]).abs() < 1e-12);
        for _ in 0..200 {
            s.observe(3, true);
        }
        assert!(
            s.rate(2) > 0.95,
            "decay forgets the old misses: {}",
            s.rate(2)
        );
    }

    #[test]
    fn one_miss_in_a_long_copy_keeps_the_rate_high() {
        let mut s = CopyStats::default();
        for _ in 0..30 {
            s.observe(20, true);
        }
        s.observe(20, false);
        assert!(s.rate(20) > 0.9, "{}", s.rate(20));
    }

    #[test]
    fn no_prior_weight_and_no_data_uses_the_prior() {
        let s = CopyStats::new([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.0, 0.5);
        assert!((s.rate(5) - 0.3).abs() < 1e-12);
        let mut s = CopyStats::new([2.0, -1.0, 0.3, 0.4, 0.5, 0.6], 0.0, 7.0);
        assert_eq!(s.rate(0), 1.0);
        assert_eq!(s.rate(1), 0.0);
        s.observe(0, false);
        assert_eq!(s.rate(0), 0.0);
    }
}
