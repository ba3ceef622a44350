//! Goodness-of-fit testing for distribution-exactness tests: Pearson's
//! chi-square statistic with sparse cells merged, and its p-value.

/// The result of a chi-square goodness-of-fit test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    /// Pearson's statistic.
    pub statistic: f64,
    /// Degrees of freedom (cells after merging, minus one).
    pub dof: usize,
    /// Probability of a statistic at least this large under the hypothesis.
    pub p_value: f64,
}

/// Tests `observed` counts against `expected_probs` (same length, summing to 1).
/// Cells with an expected count below 5 are merged into one pooled cell (and
/// that cell into its neighbour if it is still below 5), as the test requires.
/// Observations in cells of zero probability make the p-value 0.
pub fn chi_square(observed: &[u64], expected_probs: &[f64]) -> ChiSquare {
    assert_eq!(observed.len(), expected_probs.len());
    let n: u64 = observed.iter().sum();
    let n = n as f64;
    let mut cells: Vec<(f64, f64)> = Vec::new(); // (observed, expected)
    let mut pooled = (0.0, 0.0);
    let mut impossible = false;
    for (&o, &p) in observed.iter().zip(expected_probs) {
        let e = p * n;
        if p <= 0.0 {
            if o > 0 {
                impossible = true;
            }
            continue;
        }
        if e < 5.0 {
            pooled.0 += o as f64;
            pooled.1 += e;
        } else {
            cells.push((o as f64, e));
        }
    }
    if pooled.1 > 0.0 {
        if pooled.1 >= 5.0 || cells.is_empty() {
            cells.push(pooled);
        } else if let Some(smallest) = cells.iter_mut().min_by(|a, b| a.1.total_cmp(&b.1)) {
            smallest.0 += pooled.0;
            smallest.1 += pooled.1;
        }
    }
    let statistic: f64 = cells.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
    let dof = cells.len().saturating_sub(1);
    let p_value = if impossible {
        0.0
    } else if dof == 0 {
        1.0
    } else {
        upper_regularized_gamma(dof as f64 / 2.0, statistic / 2.0)
    };
    ChiSquare {
        statistic,
        dof,
        p_value,
    }
}

/// Q(a, x) = Γ(a, x) / Γ(a), the chi-square survival function at 2x with 2a dof.
pub fn upper_regularized_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        // Series for P(a, x), then Q = 1 − P.
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        let p = sum * (-x + a * x.ln() - ln_gamma(a)).exp();
        (1.0 - p).clamp(0.0, 1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (h * (-x + a * x.ln() - ln_gamma(a)).exp()).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survival_function_matches_tables() {
        // Chi-square critical values: P(X > c) for (dof, c).
        let cases = [
            (1.0, 3.841, 0.05),
            (2.0, 5.991, 0.05),
            (10.0, 18.307, 0.05),
            (10.0, 29.588, 0.001),
            (100.0, 124.342, 0.05),
        ];
        for (dof, c, want) in cases {
            let got = upper_regularized_gamma(dof / 2.0, c / 2.0);
            assert!((got - want).abs() < 2e-4, "dof {dof}: {got} vs {want}");
        }
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn exact_counts_pass_and_skewed_counts_fail() {
        let probs = [0.5, 0.3, 0.2];
        assert!(chi_square(&[5000, 3000, 2000], &probs).p_value > 0.99);
        assert!(chi_square(&[5300, 2800, 1900], &probs).p_value < 1e-6);
    }

    #[test]
    fn sparse_cells_are_pooled_and_impossible_cells_fail() {
        let probs = [0.6, 0.399, 0.0005, 0.0005, 0.0];
        let r = chi_square(&[600, 399, 1, 0, 0], &probs);
        assert_eq!(r.dof, 1);
        assert_eq!(chi_square(&[600, 399, 0, 0, 1], &probs).p_value, 0.0);
    }
}
