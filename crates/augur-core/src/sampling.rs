//! Sampling settings, the filters and the softmax.
//!
//! The filters run in llama.cpp's default order (top-k, top-p, min-p, then
//! temperature) and are applied identically to the target's and the draft's
//! logits, which is what speculative sampling's exactness needs.

use crate::error::CoreError;
use crate::model::TokenId;
use crate::rng::Rng;

/// Sampling settings. `temperature == 0` means greedy (argmax).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; 0 selects the argmax.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 disables).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass reaches p (1 disables).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0 disables).
    pub min_p: f32,
    /// Seed of the random stream.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self::greedy()
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            seed: 0,
        }
    }

    /// True when the settings select the argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), CoreError> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(CoreError::InvalidSampling(format!(
                "temperature must be a finite number >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(CoreError::InvalidSampling(format!(
                "top-p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(CoreError::InvalidSampling(format!(
                "min-p must be in [0, 1], got {}",
                self.min_p
            )));
        }
        Ok(())
    }

    /// The filtered, renormalized distribution for one logits row.
    pub fn distribution(&self, logits: &[f32]) -> SparseDist {
        if self.is_greedy() {
            return SparseDist::one_hot(argmax(logits));
        }
        filtered_softmax(logits, self)
    }
}

/// Index of the largest logit; ties go to the lowest id, NaN never wins.
pub fn argmax(logits: &[f32]) -> TokenId {
    let mut best = 0usize;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best as TokenId
}

/// A probability distribution over token ids with finite support, sorted by id.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseDist {
    ids: Vec<TokenId>,
    probs: Vec<f64>,
}

impl SparseDist {
    /// All mass on one token.
    pub fn one_hot(token: TokenId) -> Self {
        Self {
            ids: vec![token],
            probs: vec![1.0],
        }
    }

    /// Builds a distribution from (id, weight) pairs: weights are normalized,
    /// non-positive ones dropped, duplicates summed. `None` if no mass is left.
    pub fn from_weights(pairs: impl IntoIterator<Item = (TokenId, f64)>) -> Option<Self> {
        let mut v: Vec<(TokenId, f64)> = pairs
            .into_iter()
            .filter(|(_, w)| *w > 0.0 && w.is_finite())
            .collect();
        v.sort_unstable_by_key(|(id, _)| *id);
        let mut ids = Vec::with_capacity(v.len());
        let mut probs: Vec<f64> = Vec::with_capacity(v.len());
        for (id, w) in v {
            if ids.last() == Some(&id) {
                if let Some(last) = probs.last_mut() {
                    *last += w;
                }
            } else {
                ids.push(id);
                probs.push(w);
            }
        }
        let total: f64 = probs.iter().sum();
        if ids.is_empty() || total <= 0.0 {
            return None;
        }
        probs.iter_mut().for_each(|p| *p /= total);
        Some(Self { ids, probs })
    }

    /// The probability of `token` (0 outside the support).
    pub fn prob(&self, token: TokenId) -> f64 {
        match self.ids.binary_search(&token) {
            Ok(i) => self.probs[i],
            Err(_) => 0.0,
        }
    }

    /// Number of tokens with non-zero probability.
    pub fn support_len(&self) -> usize {
        self.ids.len()
    }

    /// (id, probability) pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (TokenId, f64)> + '_ {
        self.ids.iter().copied().zip(self.probs.iter().copied())
    }

    /// The most likely token (lowest id on ties).
    pub fn mode(&self) -> TokenId {
        let mut best = 0;
        for i in 1..self.ids.len() {
            if self.probs[i] > self.probs[best] {
                best = i;
            }
        }
        self.ids[best]
    }

    /// The largest probability.
    pub fn max_prob(&self) -> f64 {
        self.probs.iter().copied().fold(0.0, f64::max)
    }

    /// Draws one token. A one-token support consumes no random number, so greedy
    /// decoding never touches the stream.
    pub fn sample(&self, rng: &mut Rng) -> TokenId {
        if self.ids.len() == 1 {
            return self.ids[0];
        }
        let r = rng.uniform();
        let mut acc = 0.0;
        for (i, &p) in self.probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return self.ids[i];
            }
        }
        // Rounding left r above the total: the last token with mass takes it.
        self.ids[self.ids.len() - 1]
    }

    /// norm(max(0, p − q)) over token ids; `None` when p ≤ q everywhere.
    pub fn residual(p: &SparseDist, q: &SparseDist) -> Option<SparseDist> {
        SparseDist::from_weights(p.iter().map(|(id, pv)| (id, pv - q.prob(id))))
    }
}

/// top-k, top-p, min-p on the temperature-1 distribution, then temperature on the
/// survivors, as llama.cpp's default sampler chain does.
fn filtered_softmax(logits: &[f32], params: &SamplingParams) -> SparseDist {
    let mut cand: Vec<(TokenId, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_nan() && **l > f32::NEG_INFINITY)
        .map(|(i, &l)| (i as TokenId, l))
        .collect();
    if cand.is_empty() {
        return SparseDist::one_hot(argmax(logits));
    }
    // Descending by logit, ties by ascending id: a total order, so the result
    // never depends on the sort algorithm.
    let by_rank =
        |a: &(TokenId, f32), b: &(TokenId, f32)| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if params.top_k > 0 && params.top_k < cand.len() {
        cand.select_nth_unstable_by(params.top_k - 1, by_rank);
        cand.truncate(params.top_k);
    }
    cand.sort_unstable_by(by_rank);

    let max_logit = cand[0].1 as f64;
    if params.top_p < 1.0 {
        let weights: Vec<f64> = cand
            .iter()
            .map(|c| (c.1 as f64 - max_logit).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut keep = cand.len();
        for (i, w) in weights.iter().enumerate() {
            acc += w / total;
            if acc >= params.top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        cand.truncate(keep.max(1));
    }
    if params.min_p > 0.0 {
        let threshold = max_logit + (params.min_p as f64).ln();
        let keep = cand.iter().take_while(|c| c.1 as f64 >= threshold).count();
        cand.truncate(keep.max(1));
    }
    let t = params.temperature as f64;
    let weights = cand
        .iter()
        .map(|c| (c.0, ((c.1 as f64 - max_logit) / t).exp()));
    SparseDist::from_weights(weights).unwrap_or_else(|| SparseDist::one_hot(cand[0].0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, k: usize, p: f32, m: f32) -> SamplingParams {
        SamplingParams {
            temperature: t,
            top_k: k,
            top_p: p,
            min_p: m,
            seed: 1,
        }
    }

    fn ln(ps: &[f64]) -> Vec<f32> {
        ps.iter().map(|p| p.ln() as f32).collect()
    }

    #[test]
    fn greedy_is_argmax_with_lowest_id_on_ties() {
        let d = params(0.0, 0, 1.0, 0.0).distribution(&[0.1, 3.0, 3.0, -1.0]);
        assert_eq!(d, SparseDist::one_hot(1));
    }

    #[test]
    fn argmax_ignores_nan() {
        assert_eq!(argmax(&[f32::NAN, 1.0, 0.5]), 1);
    }

    #[test]
    fn unfiltered_softmax_recovers_probabilities() {
        let p = [0.1, 0.2, 0.3, 0.4];
        let d = params(1.0, 0, 1.0, 0.0).distribution(&ln(&p));
        for (i, want) in p.iter().enumerate() {
            assert!((d.prob(i as u32) - want).abs() < 1e-6);
        }
    }

    #[test]
    fn top_k_keeps_k_most_likely() {
        let d = params(1.0, 2, 1.0, 0.0).distribution(&ln(&[0.1, 0.2, 0.3, 0.4]));
        assert_eq!(d.support_len(), 2);
        assert!((d.prob(3) - 0.4 / 0.7).abs() < 1e-6);
        assert!((d.prob(2) - 0.3 / 0.7).abs() < 1e-6);
        assert_eq!(d.prob(0), 0.0);
    }

    #[test]
    fn top_k_larger_than_vocab_is_no_filter() {
        let d = params(1.0, 100, 1.0, 0.0).distribution(&ln(&[0.5, 0.5]));
        assert_eq!(d.support_len(), 2);
    }

    #[test]
    fn top_p_keeps_smallest_prefix_reaching_p() {
        // 0.4 + 0.3 = 0.7 >= 0.65: two tokens survive.
        let d = params(1.0, 0, 0.65, 0.0).distribution(&ln(&[0.1, 0.2, 0.3, 0.4]));
        assert_eq!(d.support_len(), 2);
        // A tiny p still keeps the top token.
        let d = params(1.0, 0, 1e-6, 0.0).distribution(&ln(&[0.1, 0.2, 0.3, 0.4]));
        assert_eq!(d, SparseDist::one_hot(3));
    }

    #[test]
    fn min_p_drops_tokens_below_fraction_of_max() {
        // max 0.4; min-p 0.45 keeps p >= 0.18: tokens 1, 2, 3.
        let d = params(1.0, 0, 1.0, 0.45).distribution(&ln(&[0.1, 0.2, 0.3, 0.4]));
        assert_eq!(d.support_len(), 3);
        assert_eq!(d.prob(0), 0.0);
        // min-p 1 keeps only the max.
        let d = params(1.0, 0, 1.0, 1.0).distribution(&ln(&[0.1, 0.2, 0.3, 0.4]));
        assert_eq!(d, SparseDist::one_hot(3));
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        let logits = ln(&[0.2, 0.8]);
        let cold = params(0.5, 0, 1.0, 0.0).distribution(&logits);
        let hot = params(2.0, 0, 1.0, 0.0).distribution(&logits);
        // p^(1/T) normalized.
        let want_cold = 0.8f64.powi(2) / (0.8f64.powi(2) + 0.2f64.powi(2));
        assert!((cold.prob(1) - want_cold).abs() < 1e-6);
        let want_hot = 0.8f64.sqrt() / (0.8f64.sqrt() + 0.2f64.sqrt());
        assert!((hot.prob(1) - want_hot).abs() < 1e-6);
    }

    #[test]
    fn filters_ignore_negative_infinity_and_nan() {
        let d = params(1.0, 0, 1.0, 0.0).distribution(&[f32::NEG_INFINITY, 0.0, f32::NAN, 0.0]);
        assert_eq!(d.support_len(), 2);
        assert!((d.prob(1) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn validate_rejects_out_of_range() {
        assert!(params(-0.1, 0, 1.0, 0.0).validate().is_err());
        assert!(params(f32::NAN, 0, 1.0, 0.0).validate().is_err());
        assert!(params(1.0, 0, 0.0, 0.0).validate().is_err());
        assert!(params(1.0, 0, 1.5, 0.0).validate().is_err());
        assert!(params(1.0, 0, 1.0, -0.5).validate().is_err());
        assert!(params(0.7, 40, 0.9, 0.05).validate().is_ok());
    }

    #[test]
    fn residual_is_positive_part_normalized() {
        let p = SparseDist::from_weights([(0, 0.5), (1, 0.3), (2, 0.2)]).unwrap();
        let q = SparseDist::from_weights([(0, 0.7), (1, 0.3)]).unwrap();
        let r = SparseDist::residual(&p, &q).unwrap();
        assert_eq!(r, SparseDist::one_hot(2));
        assert!(SparseDist::residual(&p, &p).is_none());
    }

    #[test]
    fn one_token_support_consumes_no_randomness() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(SparseDist::one_hot(5).sample(&mut a), 5);
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn sampling_follows_probabilities() {
        let d = SparseDist::from_weights([(3, 0.25), (9, 0.75)]).unwrap();
        let mut rng = Rng::new(42);
        let n = 100_000;
        let nines = (0..n).filter(|_| d.sample(&mut rng) == 9).count();
        let frac = nines as f64 / n as f64;
        // 0.75 ± 5 standard deviations (σ ≈ 0.00137).
        assert!((frac - 0.75).abs() < 0.007, "{frac}");
    }
}
