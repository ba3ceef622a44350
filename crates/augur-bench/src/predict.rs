//! The speedup the paper's formula predicts from a run's own measurements.
//!
//! Leviathan et al.'s expected speedup of drafting γ tokens is
//! E(γ)·T(1) / (γ·T_draft + T(γ+1)), with E(γ) = 1 + Σ_{k≤γ} Π_{i≤k} α_i.
//! A bench run has everything it needs: the target's pass costs T(k) from
//! calibration, the draft step's cost from the run's timings, and the
//! acceptance at each draft position from the run's counters. Adaptive
//! strategies draft different lengths at different steps, so the prediction
//! weights each length by how many verifications actually used it; for a
//! run that always drafted γ tokens it is exactly
//! [`augur::core::cost::speedup`] at γ.

use augur::core::cost::expected_tokens;
use augur::core::CostModel;

/// Conditional acceptance per draft position, α_i = P(position i accepted |
/// positions before it accepted), from `RunStats`' per-position counters.
///
/// `RunStats` counts, for each position i, the verifications that carried a
/// draft there and those whose accepted prefix reached past it, so
/// `accepted[i] / drafted[i]` is the probability that the first i + 1
/// drafts were all accepted; dividing neighbours gives the conditional rate
/// the formula wants.
pub fn conditional_acceptance(
    drafted_by_position: &[u64],
    accepted_by_position: &[u64],
) -> Vec<f64> {
    let cumulative: Vec<f64> = drafted_by_position
        .iter()
        .zip(accepted_by_position)
        .map(|(&d, &a)| if d > 0 { a as f64 / d as f64 } else { 0.0 })
        .collect();
    let mut prev = 1.0;
    cumulative
        .iter()
        .map(|&c| {
            let alpha = if prev > 0.0 {
                (c / prev).clamp(0.0, 1.0)
            } else {
                0.0
            };
            prev = c;
            alpha
        })
        .collect()
}

/// Costs from calibration's seconds per pass size (`pass_seconds[k - 1]`)
/// and the measured seconds of one draft step (0 for model-free drafting,
/// which costs next to nothing).
pub fn costs_from_calibration(pass_seconds: &[f64], draft_seconds: f64) -> CostModel {
    let throughput: Vec<(usize, f64)> = pass_seconds
        .iter()
        .enumerate()
        .filter(|(_, &s)| s > 0.0)
        .map(|(i, &s)| (i + 1, (i + 1) as f64 / s))
        .collect();
    // A zero draft cost would read as "unmeasured" and be replaced by a guess.
    CostModel::from_throughput(&throughput, draft_seconds.max(1e-12))
}

/// The predicted speedup over plain decoding of a run (or of pooled runs)
/// that made `target_passes` verification passes, with the per-position
/// counters of `RunStats`. Passes that carried no drafts count as plain
/// steps. `None` when nothing was measured.
pub fn predicted_speedup(
    drafted_by_position: &[u64],
    accepted_by_position: &[u64],
    target_passes: u64,
    costs: &CostModel,
) -> Option<f64> {
    let alpha = conditional_acceptance(drafted_by_position, accepted_by_position);
    let t1 = costs.target(1)?;
    let t_draft = costs.draft_or_guess()?;
    let first = drafted_by_position.first().copied().unwrap_or(0);
    let mut verifications = vec![target_passes.saturating_sub(first)];
    for g in 1..=drafted_by_position.len() {
        let here = drafted_by_position[g - 1];
        let longer = drafted_by_position.get(g).copied().unwrap_or(0);
        verifications.push(here.saturating_sub(longer));
    }
    let mut time = 0.0;
    let mut tokens = 0.0;
    for (g, &n) in verifications.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let n = n as f64;
        time += n * (g as f64 * t_draft + costs.target(g + 1)?);
        tokens += n * expected_tokens(&alpha[..g]);
    }
    (time > 0.0).then(|| tokens * t1 / time)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use augur::core::cost::speedup;

    #[test]
    fn cumulative_counters_become_conditional_rates() {
        let a = conditional_acceptance(&[10, 10, 5], &[8, 4, 1]);
        assert!((a[0] - 0.8).abs() < 1e-12);
        assert!((a[1] - 0.5).abs() < 1e-12);
        assert!((a[2] - 0.5).abs() < 1e-12);
        // After a position nobody passed, later ones are 0, not NaN.
        let a = conditional_acceptance(&[4, 4], &[0, 0]);
        assert_eq!(a, vec![0.0, 0.0]);
    }

    #[test]
    fn fixed_length_runs_match_the_paper_formula() {
        // A compute-bound table: a pass over k tokens costs 0.6 + 0.4·k.
        let pass: Vec<f64> = (1..=9).map(|k| 0.6 + 0.4 * k as f64).collect();
        let costs = costs_from_calibration(&pass, 0.3);
        for g in 1..=8usize {
            // 100 verifications of g drafts each, acceptance halving.
            let drafted = vec![100u64; g];
            let accepted: Vec<u64> = (0..g).map(|i| 80u64 >> i).collect();
            let alpha = conditional_acceptance(&drafted, &accepted);
            let want = speedup(&alpha, &costs, g).unwrap();
            let got = predicted_speedup(&drafted, &accepted, 100, &costs).unwrap();
            assert!((got - want).abs() < 1e-12, "γ {g}: {got} vs {want}");
        }
    }

    #[test]
    fn known_values_and_mixtures() {
        // Passes cost the same at every size, drafting is free: the speedup
        // is the tokens per pass.
        let costs = costs_from_calibration(&[1.0; 8], 0.0);
        let p = predicted_speedup(&[10, 10, 10], &[10, 10, 10], 10, &costs).unwrap();
        assert!((p - 4.0).abs() < 1e-9, "{p}");
        // Half the passes were plain steps (1 token), half drafted 3 that
        // were all accepted (4 tokens): 2.5 tokens per pass.
        let p = predicted_speedup(&[10, 10, 10], &[10, 10, 10], 20, &costs).unwrap();
        assert!((p - 2.5).abs() < 1e-9, "{p}");
        // Nothing drafted: plain decoding, speedup 1.
        let p = predicted_speedup(&[], &[], 7, &costs).unwrap();
        assert!((p - 1.0).abs() < 1e-12);
        // Linear costs and a draft step of half a pass, one draft always
        // accepted: 2 tokens for 0.5 + 2 pass units.
        let linear: Vec<f64> = (1..=4).map(|k| k as f64).collect();
        let costs = costs_from_calibration(&linear, 0.5);
        let p = predicted_speedup(&[5], &[5], 5, &costs).unwrap();
        assert!((p - 2.0 / 2.5).abs() < 1e-9, "{p}");
        // Nothing measured, nothing predicted.
        assert_eq!(predicted_speedup(&[1], &[1], 1, &CostModel::prior()), None);
    }
}
