//! The statistics of a bench report: medians, paired ratios, worst ratios and
//! geometric means. Pure functions, so the numbers in a report can be
//! checked on known inputs.
//!
//! Ratios are paired: a strategy's run is divided by the baseline's run of
//! the same prompt and repeat, so a prompt that is slow for every strategy
//! (a long prompt, a moment of machine contention) does not skew the
//! comparison. The median of the ratios, not the ratio of medians, is the
//! headline figure for the same reason.

/// The median of `xs` (mean of the two middle values for an even count);
/// `None` when empty. NaNs sort last, so they only matter when most values
/// are NaN.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// The arithmetic mean; `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// The geometric mean of positive values; `None` when empty or when any
/// value is not a positive finite number (a ratio of zero means a run
/// produced nothing, and no mean makes sense of it).
pub fn geometric_mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|&x| !(x.is_finite() && x > 0.0)) {
        return None;
    }
    Some((xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

/// The smallest value (the worst speedup); `None` when empty.
pub fn worst(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().min_by(f64::total_cmp)
}

/// Paired ratios `candidate[key] / baseline[key]` for every key present in
/// both with a positive baseline value, in the order of `candidate`.
///
/// Keys are whatever identifies one measurement (prompt and repeat); a key
/// missing on either side is skipped rather than paired with something else.
pub fn paired_ratios<K: PartialEq>(baseline: &[(K, f64)], candidate: &[(K, f64)]) -> Vec<f64> {
    candidate
        .iter()
        .filter_map(|(k, c)| {
            baseline
                .iter()
                .find(|(bk, _)| bk == k)
                .and_then(|&(_, b)| (b > 0.0 && b.is_finite() && c.is_finite()).then(|| c / b))
        })
        .collect()
}

/// A ratio with a zero denominator reported as zero (rates of runs that
/// drafted nothing).
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
        // Unsorted input with duplicates.
        assert_eq!(median(&[5.0, 5.0, 1.0, 9.0, 5.0]), Some(5.0));
    }

    #[test]
    fn geometric_mean_on_known_values() {
        let g = geometric_mean(&[1.0, 4.0]).unwrap();
        assert!((g - 2.0).abs() < 1e-12);
        let g = geometric_mean(&[2.0, 0.5]).unwrap();
        assert!((g - 1.0).abs() < 1e-12);
        let g = geometric_mean(&[1.0, 3.0, 9.0]).unwrap();
        assert!((g - 3.0).abs() < 1e-12);
        assert_eq!(geometric_mean(&[]), None);
        assert_eq!(geometric_mean(&[1.0, 0.0]), None);
        assert_eq!(geometric_mean(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn worst_and_mean() {
        assert_eq!(worst(&[1.2, 0.8, 1.5]), Some(0.8));
        assert_eq!(worst(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn ratios_pair_by_key_not_by_position() {
        let base = [(("a", 0), 10.0), (("b", 0), 20.0), (("c", 0), 0.0)];
        // Candidate in another order, one key missing from the baseline,
        // one with a zero baseline.
        let cand = [
            (("b", 0), 30.0),
            (("a", 0), 5.0),
            (("z", 0), 99.0),
            (("c", 0), 4.0),
        ];
        assert_eq!(paired_ratios(&base, &cand), vec![1.5, 0.5]);
        let r = paired_ratios(&base, &cand);
        assert_eq!(median(&r), Some(1.0));
        assert_eq!(worst(&r), Some(0.5));
        // The same repeat index of another prompt is a different key.
        let base = [(("a", 1), 2.0)];
        let cand = [(("a", 0), 4.0), (("a", 1), 3.0)];
        assert_eq!(paired_ratios(&base, &cand), vec![1.5]);
    }

    #[test]
    fn ratio_guards_zero() {
        assert_eq!(ratio(3.0, 0.0), 0.0);
        assert_eq!(ratio(3.0, 4.0), 0.75);
    }
}
