//! Turning a drafter's raw score for a token (a draft model's top-1
//! probability) into a calibrated chance of acceptance, learned online from
//! the verdicts.
//!
//! A draft model's top-1 probability says a lot about whether the target
//! will agree with its token, but not on the same scale: a small model of the
//! same family is right more often than its probability says when it is
//! sure, and less often when it hesitates, by amounts that depend on the
//! pair of models and the text. [`ConfidenceMap`] keeps decayed acceptance
//! counts per score bin, each starting from the score itself, so the
//! estimate starts as the raw score and moves to what the verdicts show.

/// Score bins: [0, 0.1), [0.1, 0.2), …, [0.9, 1].
const BINS: usize = 10;
/// Strength of the raw score as a prior, in pseudo-observations.
const PRIOR_WEIGHT: f64 = 2.0;
/// Per-observation decay of a bin's counts (about the last 50 verdicts in a
/// bin count), so the map follows the text.
const DECAY: f64 = 0.98;

/// Calibrated acceptance chances for raw scores in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct ConfidenceMap {
    /// Decayed (accepted, tried) counts per bin.
    counts: [(f64, f64); BINS],
}

impl Default for ConfidenceMap {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfidenceMap {
    /// A map that knows nothing yet: every score maps to itself.
    pub fn new() -> Self {
        Self {
            counts: [(0.0, 0.0); BINS],
        }
    }

    fn bin(score: f64) -> usize {
        let s = if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ((s * BINS as f64) as usize).min(BINS - 1)
    }

    /// The estimated chance that a token with raw score `score` is accepted
    /// (given that the drafts before it were).
    pub fn estimate(&self, score: f64) -> f64 {
        let prior = if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (accepted, tried) = self.counts[Self::bin(score)];
        (accepted + PRIOR_WEIGHT * prior) / (tried + PRIOR_WEIGHT)
    }

    /// Records that a token with raw score `score` was verified, and whether
    /// it was accepted.
    pub fn record(&mut self, score: f64, accepted: bool) {
        let c = &mut self.counts[Self::bin(score)];
        *c = (
            c.0 * DECAY + f64::from(u8::from(accepted)),
            c.1 * DECAY + 1.0,
        );
    }

    /// Forgets every verdict.
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_score_and_learns_the_verdicts() {
        let mut m = ConfidenceMap::new();
        assert!((m.estimate(0.42) - 0.42).abs() < 1e-12);
        assert_eq!(m.estimate(f64::NAN), 0.0);
        assert!((m.estimate(7.0) - 1.0).abs() < 1e-12);
        // A hesitant draft that the target agrees with nine times in ten.
        for i in 0..200 {
            m.record(0.45, i % 10 != 0);
        }
        let e = m.estimate(0.45);
        assert!((e - 0.9).abs() < 0.03, "{e}");
        // Other bins are untouched.
        assert!((m.estimate(0.95) - 0.95).abs() < 1e-12);
        // Recent verdicts dominate.
        for _ in 0..200 {
            m.record(0.41, false);
        }
        assert!(m.estimate(0.45) < 0.05);
        m.clear();
        assert!((m.estimate(0.45) - 0.45).abs() < 1e-12);
    }
}
