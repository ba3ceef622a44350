//! Greedy lookahead decoding (Fu, Bailis, Stoica & Zhang, ICML 2024).
//!
//! Sequences: 0 is the committed text, `1..=W` the window columns,
//! `W+1..=W+G` the verification candidates. Between steps every sequence holds
//! the committed text `tokens[..P]`; the pending token x is at position P.
//!
//! One step is ONE target pass over:
//! 1. x at P on every sequence `{0, 1, …, W+G}` (0 first, so x attends to the
//!    committed text), logits on;
//! 2. each of the g ≤ G pool continuations stored under x, at P+1…P+N−1 on
//!    sequence W+1+c, logits on;
//! 3. window level 0, columns 1..W−1: `L[0][i]` at P+i on `{i+1, …, W}`,
//!    logits off (column 0's level-0 slot is x itself);
//! 4. levels 1..N−2 of every column i: `L[j][i]` at P+i+j on `{i+1}`, logits
//!    on at the last level only.
//!
//! Sequence i+1 is then the causal chain x, `L[0][1..=i]`, `L[1..][i]` (the
//! paper's lookahead branch), and each candidate sees only the committed text,
//! x and its own earlier tokens. The emitted tokens are the target's argmax at
//! x and then at the tokens of a candidate that agrees with everything emitted
//! so far, so they are the baseline's argmax chain: each of those positions
//! attends to exactly the committed text plus the emitted tokens before it.
//!
//! After the pass: the window shifts one level per emitted token (the first
//! shift brings in the Jacobi update — the argmax at each column's last level —
//! later ones a copy of the new level 0), the pool harvests one n-gram per
//! column (key: the column's level-0 token, x for column 0), and the KV cache
//! is cleaned: positions ≥ the new P are removed from every sequence; if a
//! candidate won, its sequence is kept alone, copied to 0, and 0 is copied to
//! every other sequence.
//!
//! Two pool sources beyond the paper, both on by default and both only
//! affecting speed: the prompt's n-grams at the start, and the n-grams of the
//! committed text as it grows (see [`LookaheadConfig`]). With both off the
//! pool is filled by the window's harvest alone, as in the paper and
//! llama.cpp.

use std::collections::VecDeque;

use augur_core::strategy::Exactness;
use augur_core::{
    Branch, BuildEnv, Built, CoreError, CostModel, DraftRequest, DraftSettings, DraftVerify,
    Drafter, Proposal, Rng, RunStats, SamplingParams, SeqId, SettingKey, SideEntry, Strategy,
    StrategyPlugin, TokenId, VerifyOutcome,
};

use crate::error::Error;
use crate::pool::NgramPool;

/// The strategy's and drafter's name.
pub const NAME: &str = "lookahead";

/// Window columns by default. On a 2-core CPU every extra column costs N−1
/// tokens per pass and nothing layout-wise pays except the smallest one (see
/// lookahead.md); to be tuned on real models.
pub const DEFAULT_WINDOW: usize = 1;

/// N-gram length by default (the paper's smallest useful value).
pub const DEFAULT_NGRAM: usize = 3;

/// Verification candidates per step by default.
pub const DEFAULT_CANDIDATES: usize = 1;

/// The longest n-gram accepted by [`LookaheadConfig::validate`].
pub const MAX_NGRAM: usize = 32;

/// The most window columns or candidates accepted by
/// [`LookaheadConfig::validate`] (the backend's sequence limit is checked when
/// a generation starts).
const MAX_SEQS: usize = 1024;

/// Settings of [`Lookahead`].
#[derive(Debug, Clone, PartialEq)]
pub struct LookaheadConfig {
    /// W: window columns (≥ 1).
    pub window: usize,
    /// N: n-gram length (≥ 3): the window has N−1 levels, candidates N−1 tokens.
    pub ngram: usize,
    /// G: the most candidates verified per step, and the most continuations
    /// the pool keeps per key (≥ 1).
    pub candidates: usize,
    /// Also fill the pool with the prompt's own n-grams at the start (not in
    /// the paper; helps when the output repeats the prompt). Default on.
    pub seed_pool_from_prompt: bool,
    /// Also add the n-grams of the generated text to the pool as they are
    /// committed (not in the paper; the committed text is the target's own
    /// argmax chain, so these candidates are right whenever it repeats).
    /// Default on: with small G the window's harvest keeps overwriting the
    /// pool, and on the in-memory model this more than doubled the tokens
    /// per pass of W=1, N=3, G=1 on repeated text (`examples/tune.rs`).
    pub pool_from_output: bool,
}

/// A lookahead step must be expected to emit this much more than its pass
/// costs (in one-token passes), or the step is a plain one.
const PAYS_MARGIN: f64 = 1.1;
/// The chance a pool candidate's token is right (given the ones before it
/// were) assumed before any candidate was checked: cautious, since checking
/// costs nothing (see [`CandidateRates`]).
const PRIOR_RATE: f64 = 0.3;
/// How many checks [`PRIOR_RATE`] counts for.
const PRIOR_WEIGHT: f64 = 2.0;
/// Per-check decay of the counts (about the last 20 checks of a position
/// count), so the rates follow the text's regime.
const RATE_DECAY: f64 = 0.95;

/// How often the pool's candidates turned out right, per candidate position.
///
/// Every step's candidates are checked against the text that was committed
/// after them, whether or not they were verified: the committed text is the
/// target's argmax chain, so it is what verification would have accepted.
/// So the rates keep learning during plain steps, for free, and lookahead
/// steps run only when the pool is right often enough to pay for their
/// larger pass, never as probes that only cost.
#[derive(Debug, Clone, Default)]
struct CandidateRates {
    hits: Vec<f64>,
    seen: Vec<f64>,
}

impl CandidateRates {
    fn clear(&mut self, positions: usize) {
        self.hits = vec![0.0; positions];
        self.seen = vec![0.0; positions];
    }

    /// The chance that candidate position `i` is right given the ones before
    /// it were.
    fn rate(&self, i: usize) -> f64 {
        let (h, n) = (
            self.hits.get(i).copied().unwrap_or(0.0),
            self.seen.get(i).copied().unwrap_or(0.0),
        );
        (h + PRIOR_RATE * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT)
    }

    /// Candidates whose longest one was right for its first `matched`
    /// tokens, out of `len`.
    fn observe(&mut self, matched: usize, len: usize) {
        for i in 0..len.min(self.seen.len()) {
            if matched < i {
                break;
            }
            self.seen[i] = RATE_DECAY * self.seen[i] + 1.0;
            self.hits[i] = RATE_DECAY * self.hits[i] + f64::from(u8::from(matched > i));
        }
    }

    /// Expected tokens a step emits whose longest candidate has `len` tokens:
    /// 1 + r₀ + r₀r₁ + ….
    fn expected(&self, len: usize) -> f64 {
        let (mut expected, mut reach) = (1.0, 1.0);
        for i in 0..len {
            reach *= self.rate(i);
            expected += reach;
        }
        expected
    }
}

impl Default for LookaheadConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            ngram: DEFAULT_NGRAM,
            candidates: DEFAULT_CANDIDATES,
            seed_pool_from_prompt: true,
            pool_from_output: true,
        }
    }
}

impl LookaheadConfig {
    /// A configuration with W, N, G and the other settings at their defaults.
    pub fn new(window: usize, ngram: usize, candidates: usize) -> Self {
        Self {
            window,
            ngram,
            candidates,
            ..Default::default()
        }
    }

    /// Checks the parameters (the backend's limits are checked at the start of
    /// a generation).
    pub fn validate(&self) -> Result<(), Error> {
        if self.window == 0 {
            return Err(Error::config(
                NAME,
                "the window needs at least 1 column (W >= 1)",
            ));
        }
        if self.ngram < 3 || self.ngram > MAX_NGRAM {
            return Err(Error::config(
                NAME,
                format!(
                    "the n-gram length must be in 3..={MAX_NGRAM} (N >= 3: with N = 2 the window has \
                     no level to iterate), got {}",
                    self.ngram
                ),
            ));
        }
        if self.candidates == 0 {
            return Err(Error::config(
                NAME,
                "at least 1 verification candidate is needed (G >= 1): without candidates \
                 lookahead only costs extra",
            ));
        }
        if self.window > MAX_SEQS || self.candidates > MAX_SEQS {
            return Err(Error::config(
                NAME,
                format!(
                    "W = {} and G = {} must each be at most {MAX_SEQS}",
                    self.window, self.candidates
                ),
            ));
        }
        Ok(())
    }

    /// KV sequences a generation needs: W + G + 1.
    pub fn sequences_needed(&self) -> usize {
        self.window + self.candidates + 1
    }

    /// Tokens in one step's batch with `g` candidates: (W + g)(N − 1).
    pub fn batch_len(&self, g: usize) -> usize {
        (self.window + g) * (self.ngram - 1)
    }
}

impl StrategyPlugin for LookaheadConfig {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str =
        "Jacobi iterations over a window of guesses plus an n-gram pool, verified in the same pass";
    const KEYS: &'static [SettingKey] = &[
        SettingKey::LaWindow,
        SettingKey::LaNgram,
        SettingKey::LaGuess,
    ];
    const GREEDY_ONLY: bool = true;

    fn set(&mut self, key: SettingKey, value: &str) -> Result<(), String> {
        match key {
            SettingKey::LaWindow => self.window = key.usize(value)?,
            SettingKey::LaNgram => self.ngram = key.usize(value)?,
            SettingKey::LaGuess => self.candidates = key.usize(value)?,
            other => return Err(format!("{NAME} has no setting {other}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), CoreError> {
        Ok(LookaheadConfig::validate(self)?)
    }

    fn largest_pass(&self) -> usize {
        self.batch_len(self.candidates)
    }

    fn sequences(&self) -> usize {
        self.sequences_needed()
    }

    fn build(&self, env: BuildEnv) -> Result<Built, CoreError> {
        let costs = env.costs.unwrap_or_else(CostModel::prior);
        let smallest = self.batch_len(0).max(self.batch_len(1));
        if env.bit_exact_forced && smallest > costs.exact_pass() {
            return Err(CoreError::InvalidParameter(format!(
                "lookahead's batch ({smallest} tokens) exceeds the bit-exact pass size of this \
                 model and build ({}); run it without --exact",
                costs.exact_pass()
            )));
        }
        Ok(Built::plain(Box::new(Lookahead::with_costs(
            self.clone(),
            costs,
        )?)))
    }
}

/// The lookahead drafter: Jacobi iterations over a window of guesses and an
/// n-gram pool harvested from them (see the module documentation for the
/// batch layout). Each step it proposes the pool's continuations under the
/// pending token as branches on sequences of their own and the window as
/// side entries, all in the one target pass of augur-core's verify step;
/// [`Drafter::on_verdict`] brings the window's Jacobi update back.
///
/// The window starts from the prompt: the guess for position P+d (column i,
/// level j with i + j = d) is what followed the latest earlier occurrence of
/// the pending token in the prompt, continued periodically, or the prompt's
/// tokens in order when the pending token did not occur before. Guesses only
/// affect speed, never the output.
///
/// With a calibrated cost model a step is a lookahead step only while the
/// tokens it is expected to emit (from how often the pool's candidates were
/// right, checked every step against the committed text) cover what its pass
/// costs; otherwise it is a plain step.
#[derive(Debug, Clone)]
pub struct LookaheadDrafter {
    config: LookaheadConfig,
    /// `window[j][i]`: level j (0..N−1), column i (0..W).
    window: Vec<Vec<TokenId>>,
    pool: NgramPool,
    /// The next key position whose n-gram [`LookaheadConfig::pool_from_output`]
    /// adds.
    output_from: usize,
    /// The candidates of the step in flight (empty: a plain step).
    candidates: Vec<Vec<TokenId>>,
    /// The step in flight is a lookahead step.
    in_flight: bool,
    /// How often candidates were right.
    rates: CandidateRates,
    /// Candidates offered and not yet checked: the text length when they
    /// were offered (they continue its last token), and the candidates.
    watched: VecDeque<(usize, Vec<Vec<TokenId>>)>,
    /// Steps whose candidate was accepted.
    pool_hits: u64,
}

impl LookaheadDrafter {
    /// A lookahead drafter with `config`, validated.
    pub fn new(config: LookaheadConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: LookaheadConfig) -> Self {
        Self {
            window: vec![vec![0; config.window]; config.ngram - 1],
            pool: NgramPool::new(config.ngram - 1, config.candidates),
            output_from: 0,
            candidates: Vec::new(),
            in_flight: false,
            rates: CandidateRates::default(),
            watched: VecDeque::new(),
            pool_hits: 0,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &LookaheadConfig {
        &self.config
    }

    /// The n-gram pool (for reports and tests).
    pub fn pool(&self) -> &NgramPool {
        &self.pool
    }

    /// The window, `window()[level][column]` (for reports and tests).
    pub fn window(&self) -> &[Vec<TokenId>] {
        &self.window
    }

    /// Fills the window from the prompt (see the type documentation).
    fn init_window(&mut self, tokens: &[TokenId]) {
        let len = tokens.len();
        let Some(&x) = tokens.last() else {
            return;
        };
        let earlier = tokens[..len - 1].iter().rposition(|&t| t == x);
        let guess = |d: usize| -> TokenId {
            match earlier {
                // tokens[k..len-1] followed by x is a cycle of period len-1-k.
                Some(k) => tokens[k + d % (len - 1 - k)],
                None => tokens[d % len],
            }
        };
        for (j, level) in self.window.iter_mut().enumerate() {
            for (i, slot) in level.iter_mut().enumerate() {
                *slot = guess(i + j);
            }
        }
    }

    /// Adds the n-grams of `tokens` whose key is at `from` or later and which
    /// are complete; returns the next key position to add.
    fn add_text_ngrams(&mut self, tokens: &[TokenId], from: usize) -> usize {
        let n1 = self.config.ngram - 1;
        let mut k = from;
        while k + n1 < tokens.len() {
            self.pool.insert(tokens[k], &tokens[k + 1..=k + n1]);
            k += 1;
        }
        k
    }

    /// Checks the watched candidates that the committed `tokens` now cover
    /// (see [`CandidateRates`]).
    fn check_watched(&mut self, tokens: &[TokenId]) {
        while let Some((at, cands)) = self.watched.front() {
            let len = cands.iter().map(Vec::len).max().unwrap_or(0);
            if tokens.len() < at + len {
                break;
            }
            let text = &tokens[*at..];
            let matched = cands
                .iter()
                .map(|c| c.iter().zip(text).take_while(|(a, b)| a == b).count())
                .max()
                .unwrap_or(0);
            self.rates.observe(matched, len);
            self.watched.pop_front();
        }
    }
}

impl Drafter for LookaheadDrafter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sequences(&self) -> usize {
        self.config.sequences_needed()
    }

    fn greedy_only(&self) -> bool {
        true
    }

    fn start(
        &mut self,
        tokens: &[TokenId],
        _target_n_vocab: usize,
        _sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        self.pool.clear();
        self.rates.clear(self.config.ngram - 1);
        self.watched.clear();
        self.pool_hits = 0;
        self.in_flight = false;
        self.init_window(tokens);
        self.output_from = tokens.len().saturating_sub(1);
        if self.config.seed_pool_from_prompt {
            self.add_text_ngrams(tokens, 0);
        }
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        let w = self.config.window;
        let n = self.config.ngram;
        let g_max = self.config.candidates;
        self.in_flight = false;
        // The farthest position the batch reaches: P + max(W+N−3, N−1).
        let extent = (w + n - 3).max(n - 1);
        if extent > req.room {
            return Ok(());
        }
        let Some(&x) = req.tokens.last() else {
            return Ok(());
        };
        // Candidates: the pool's continuations under x, each on its own
        // sequence. They are checked against the text to come whether or
        // not this step verifies them.
        self.candidates.clear();
        self.candidates
            .extend(self.pool.get(x).take(g_max).map(<[TokenId]>::to_vec));
        if !self.candidates.is_empty() {
            self.watched
                .push_back((req.tokens.len(), self.candidates.clone()));
        }
        // A lookahead step only where the tokens it is expected to emit cover
        // what its pass costs (with W = 1, N = 3, G = 1 a pass of 4 tokens
        // costs 2.1-2.5 one-token passes on a Q4_K_M target on 2 cores, 1.6
        // on its F16 conversion; a step without candidates emits one token
        // whatever it costs).
        let size = 1 + self.candidates.iter().map(Vec::len).sum::<usize>() + (w - 1) + (n - 2) * w;
        let longest = self.candidates.iter().map(Vec::len).max().unwrap_or(0);
        if let Some(cost) = req.costs.measured_relative(size) {
            if self.rates.expected(longest) < cost * PAYS_MARGIN {
                self.candidates.clear();
                return Ok(());
            }
        }
        self.in_flight = true;
        for (c, cand) in self.candidates.iter().enumerate() {
            out.branches.push(Branch {
                seq: (w + 1 + c) as SeqId,
                tokens: cand.clone(),
                source: None,
            });
        }
        // Level 0, columns 1..W−1, shared by the branches to their right.
        for i in 1..w {
            out.side.push(SideEntry {
                token: self.window[0][i],
                offset: i,
                seqs: ((i + 1) as SeqId..=w as SeqId).collect(),
                logits: false,
            });
        }
        // Levels 1..N−2 of every column, logits at the last level.
        for j in 1..n - 1 {
            let last = j == n - 2;
            for i in 0..w {
                out.side.push(SideEntry {
                    token: self.window[j][i],
                    offset: i + j,
                    seqs: vec![(i + 1) as SeqId],
                    logits: last,
                });
            }
        }
        Ok(())
    }

    fn on_verdict(&mut self, tokens: &[TokenId], outcome: &VerifyOutcome) -> Result<(), CoreError> {
        let n = self.config.ngram;
        if std::mem::take(&mut self.in_flight) && outcome.side_argmax.len() == self.config.window {
            let m = outcome.emitted();
            let x = tokens[tokens.len() - 1 - m];
            let jacobi = &outcome.side_argmax;
            // Harvest: per column, key = its level-0 token (x for column 0,
            // the token actually decoded there), value = the column after the
            // first shift: levels 1..N−2, then the Jacobi update.
            let mut ngram = Vec::with_capacity(n - 1);
            for (i, &new_last) in jacobi.iter().enumerate() {
                let key = if i == 0 { x } else { self.window[0][i] };
                ngram.clear();
                ngram.extend((1..n - 1).map(|j| self.window[j][i]));
                ngram.push(new_last);
                self.pool.insert(key, &ngram);
            }
            // Shift one level per emitted token; the new last level is the
            // Jacobi update on the first shift and a copy of the new level 0
            // afterwards. (N >= 3, so there are at least two levels.)
            let levels = self.window.len();
            for k in 0..m {
                self.window.rotate_left(1);
                let (head, last) = self.window.split_at_mut(levels - 1);
                if k == 0 {
                    last[0].copy_from_slice(jacobi);
                } else {
                    last[0].copy_from_slice(&head[0]);
                }
            }
            if m > 1 {
                self.pool_hits += 1;
            }
        }
        self.check_watched(tokens);
        if self.config.pool_from_output {
            self.output_from = self.add_text_ngrams(tokens, self.output_from);
        }
        Ok(())
    }

    fn finish(&mut self, stats: &mut RunStats) {
        stats.pool_hits += self.pool_hits;
    }
}

/// Greedy lookahead decoding (strategy name `lookahead`): the
/// [`LookaheadDrafter`] under augur-core's draft-then-verify driver.
#[derive(Debug)]
pub struct Lookahead {
    inner: DraftVerify<LookaheadDrafter>,
}

impl Default for Lookahead {
    fn default() -> Self {
        Self::build(LookaheadConfig::default(), CostModel::prior())
    }
}

impl Lookahead {
    /// A lookahead strategy with `config`, validated, without a calibration
    /// (it never backs off, and only one-token passes count as bit-exact).
    pub fn new(config: LookaheadConfig) -> Result<Self, Error> {
        Self::with_costs(config, CostModel::prior())
    }

    /// A lookahead strategy with `config`, judged by `costs` (a calibration
    /// of this machine).
    pub fn with_costs(config: LookaheadConfig, costs: CostModel) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::build(config, costs))
    }

    fn build(config: LookaheadConfig, costs: CostModel) -> Self {
        let settings = DraftSettings {
            draft_max: 0,
            draft_min: 0,
            exact: false,
        };
        Self {
            inner: DraftVerify::new(NAME, LookaheadDrafter::build(config), settings, costs),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LookaheadConfig {
        self.inner.drafter().config()
    }

    /// The n-gram pool (for reports and tests).
    pub fn pool(&self) -> &NgramPool {
        self.inner.drafter().pool()
    }

    /// The window, `window()[level][column]` (for reports and tests).
    pub fn window(&self) -> &[Vec<TokenId>] {
        self.inner.drafter().window()
    }

    /// The largest target pass of the current generation, in tokens.
    pub fn largest_batch(&self) -> usize {
        self.inner.largest_pass()
    }

    /// The guarantee the last generation had (the driver's rule).
    pub fn exactness(&self) -> Exactness {
        Exactness::of(self.inner.largest_pass(), self.inner.max_exact_pass())
    }
}

augur_core::delegate_strategy!(Lookahead, inner, NAME);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use augur_core::model::RunLogits;
    use augur_core::testing::InMemoryModel;
    use augur_core::StepContext;
    use augur_core::{
        generate, Batch, GenerateParams, LogitRows, Model, ModelError, Rng, RunStats,
        SamplingParams,
    };

    /// The in-memory model with fewer KV sequences.
    struct FewSeqs(InMemoryModel, usize);

    impl Model for FewSeqs {
        fn n_vocab(&self) -> usize {
            self.0.n_vocab()
        }
        fn n_ctx(&self) -> usize {
            self.0.n_ctx()
        }
        fn n_seq_max(&self) -> usize {
            self.1
        }
        fn is_eog(&self, token: TokenId) -> bool {
            self.0.is_eog(token)
        }
        fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
            self.0.eval(batch, out)
        }
        fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError> {
            self.0.remove_from(seq, from)
        }
        fn copy_seq(&mut self, src: SeqId, dst: SeqId, from: usize) -> Result<(), ModelError> {
            self.0.copy_seq(src, dst, from)
        }
        fn keep_only(&mut self, seq: SeqId) -> Result<(), ModelError> {
            self.0.keep_only(seq)
        }
    }

    #[test]
    fn nonsense_parameters_are_refused() {
        for (w, n, g) in [
            (0, 3, 1),
            (1, 2, 1),
            (1, 0, 1),
            (1, 3, 0),
            (1, MAX_NGRAM + 1, 1),
        ] {
            let c = LookaheadConfig::new(w, n, g);
            let e = c.validate().unwrap_err();
            assert!(
                matches!(e, Error::InvalidConfig { strategy: NAME, .. }),
                "{c:?}"
            );
            assert!(Lookahead::new(c).is_err());
        }
        for (w, n, g) in [(1, 3, 1), (15, 5, 15), (1, MAX_NGRAM, 1)] {
            assert!(LookaheadConfig::new(w, n, g).validate().is_ok());
        }
        assert_eq!(LookaheadConfig::new(2, 4, 3).sequences_needed(), 6);
        assert_eq!(LookaheadConfig::new(2, 4, 3).batch_len(1), 9);
    }

    #[test]
    fn too_few_sequences_is_an_error() {
        let mut m = FewSeqs(InMemoryModel::random(8, 1), 4);
        let params = GenerateParams {
            max_tokens: 5,
            ..Default::default()
        };
        let mut s = Lookahead::new(LookaheadConfig::new(2, 3, 2)).unwrap();
        let e = generate(&mut m, &mut s, &[1, 2], &params, &mut |_| true).unwrap_err();
        match e {
            CoreError::Unsupported { strategy, reason } => {
                assert_eq!(strategy, NAME);
                assert!(reason.contains("need 5 KV sequences"), "{reason}");
            }
            other => panic!("expected Unsupported, got {other}"),
        }
        // Exactly enough is fine.
        let mut m = FewSeqs(InMemoryModel::random(8, 1), 5);
        assert!(generate(&mut m, &mut s, &[1, 2], &params, &mut |_| true).is_ok());
    }

    /// Drives the strategy step by step and checks the KV invariant after each
    /// step: every sequence holds exactly the committed text tokens[..len-1].
    fn check_kv_invariant(
        model: InMemoryModel,
        prompt: &[TokenId],
        config: LookaheadConfig,
    ) -> u64 {
        let mut m = model;
        let v = m.n_vocab();
        let n_seqs = config.sequences_needed() as SeqId;
        let mut s = Lookahead::new(config).unwrap();
        let mut tokens = prompt.to_vec();
        let mut stats = RunStats::default();
        let mut rng = Rng::new(0);
        let mut batch = Batch::new();
        let mut logits = LogitRows::new(v);
        let sampling = SamplingParams::greedy();
        if prompt.len() > 1 {
            batch.add_run(&prompt[..prompt.len() - 1], 0, RunLogits::None);
            m.eval(&batch, &mut logits).unwrap();
        }
        for step in 0..40 {
            let mut ctx = StepContext {
                target: &mut m,
                tokens: &mut tokens,
                n_prompt: prompt.len(),
                sampling: &sampling,
                rng: &mut rng,
                stats: &mut stats,
                max_new: 1000,
                batch: &mut batch,
                logits: &mut logits,
            };
            if step == 0 {
                s.start(&mut ctx).unwrap();
            }
            s.step(&mut ctx).unwrap();
            let committed = &tokens[..tokens.len() - 1];
            for seq in 0..n_seqs {
                assert_eq!(
                    m.sequence(seq),
                    committed,
                    "sequence {seq} after step {step}"
                );
            }
            assert_eq!(
                m.cache_len(),
                committed.len(),
                "stray cells after step {step}"
            );
        }
        assert_eq!(stats.target_passes, 40);
        stats.accepted
    }

    #[test]
    fn every_sequence_holds_the_committed_text_between_steps() {
        let mut accepted = 0;
        for seed in 0..6 {
            for (w, n, g) in [(1, 3, 1), (3, 4, 2), (4, 5, 4)] {
                let m = InMemoryModel::random(6 + seed as usize, seed).with_history(seed + 10);
                let config = LookaheadConfig {
                    seed_pool_from_prompt: seed % 2 == 0,
                    pool_from_output: seed % 3 == 0,
                    ..LookaheadConfig::new(w, n, g)
                };
                accepted += check_kv_invariant(m, &[1, 2, 3, 1, 2, 3, 1], config);
            }
        }
        // The invariant was also checked after steps where candidates won.
        assert!(accepted > 0);
    }

    /// 0 → 1 → 2 → 0 deterministically (bigram, argmax cycle).
    fn cycle_model() -> InMemoryModel {
        let rows: Vec<Vec<f64>> = (0..4)
            .map(|i| {
                (0..4)
                    .map(|j| if j == (i + 1) % 3 { 10.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        InMemoryModel::bigram(&rows)
    }

    #[test]
    fn window_starts_from_the_prompt() {
        let mut s = LookaheadDrafter::new(LookaheadConfig::new(3, 3, 1)).unwrap();
        // x = 7 occurred at 1: the cycle 7, 5, 6 continues periodically.
        s.init_window(&[4, 7, 5, 6, 7]);
        assert_eq!(s.window(), &[vec![7, 5, 6], vec![5, 6, 7]]);
        // x = 9 never occurred: the prompt in order.
        s.init_window(&[4, 8, 9]);
        assert_eq!(s.window(), &[vec![4, 8, 9], vec![8, 9, 4]]);
    }

    #[test]
    fn harvest_keys_column_zero_by_the_pending_token() {
        // W = 1, N = 3: the batch is x and the level-1 token; the harvested
        // 3-gram is (x, old level 1, its Jacobi update).
        let mut m = cycle_model();
        let mut s = Lookahead::new(LookaheadConfig::new(1, 3, 1)).unwrap();
        let params = GenerateParams {
            max_tokens: 1,
            ..Default::default()
        };
        // Prompt [3, 0]: x = 0 never occurred before, so the window is the
        // prompt in order: level 0 = [3], level 1 = [0].
        generate(&mut m, &mut s, &[3, 0], &params, &mut |_| true).unwrap();
        // The level-1 token 0 sat at P+1; its argmax is 1.
        assert_eq!(s.pool().get(0).collect::<Vec<_>>(), vec![&[0, 1][..]]);
        assert_eq!(s.pool().len(), 1);
        // After the shift: level 0 = old level 1, level 1 = the Jacobi update.
        assert_eq!(s.window(), &[vec![0], vec![1]]);
    }

    #[test]
    fn pool_candidates_are_accepted_on_a_cycle() {
        let mut m = cycle_model();
        let mut s = Lookahead::new(LookaheadConfig::new(2, 4, 2)).unwrap();
        let params = GenerateParams {
            max_tokens: 40,
            ..Default::default()
        };
        let g = generate(&mut m, &mut s, &[0], &params, &mut |_| true).unwrap();
        let want: Vec<TokenId> = (0..40).map(|i| ((i + 1) % 3) as TokenId).collect();
        assert_eq!(g.tokens, want);
        assert!(g.stats.pool_hits > 0);
        assert!(g.stats.accepted > 0);
        // Up to N tokens per pass once the pool knows the cycle.
        assert!(g.stats.target_passes <= 20, "{:?}", g.stats);
        assert_eq!(g.stats.drafted % 3, 0);
        assert!(s.largest_batch() >= LookaheadConfig::new(2, 4, 2).batch_len(1));
    }

    #[test]
    fn text_ngrams_are_added_once_complete() {
        let mut s = LookaheadDrafter::new(LookaheadConfig::new(1, 3, 2)).unwrap();
        assert_eq!(s.add_text_ngrams(&[5, 6, 7, 8], 0), 2);
        assert_eq!(s.pool().get(5).collect::<Vec<_>>(), vec![&[6, 7][..]]);
        assert_eq!(s.pool().get(6).collect::<Vec<_>>(), vec![&[7, 8][..]]);
        assert_eq!(s.pool().len(), 2);
        // Nothing new until a token completes the next n-gram.
        assert_eq!(s.add_text_ngrams(&[5, 6, 7, 8], 2), 2);
        assert_eq!(s.add_text_ngrams(&[5, 6, 7, 8, 5], 2), 3);
        assert_eq!(s.pool().get(7).collect::<Vec<_>>(), vec![&[8, 5][..]]);
    }

    #[test]
    fn output_ngrams_feed_the_pool() {
        let run = |pool_from_output| {
            let mut m = cycle_model().with_history(3);
            let config = LookaheadConfig {
                seed_pool_from_prompt: false,
                pool_from_output,
                ..LookaheadConfig::new(1, 3, 1)
            };
            let mut s = Lookahead::new(config).unwrap();
            let params = GenerateParams {
                max_tokens: 60,
                ..Default::default()
            };
            generate(&mut m, &mut s, &[0], &params, &mut |_| true).unwrap()
        };
        let (without, with) = (run(false), run(true));
        assert_eq!(without.tokens, with.tokens);
        assert!(
            with.stats.target_passes < without.stats.target_passes,
            "{:?} vs {:?}",
            with.stats,
            without.stats
        );
    }

    #[test]
    fn exactness_label_follows_the_largest_batch() {
        let mut m = cycle_model();
        let params = GenerateParams {
            max_tokens: 10,
            ..Default::default()
        };
        let exact_upto = |size| CostModel {
            max_exact_pass: size,
            ..CostModel::prior()
        };
        let mut s = Lookahead::with_costs(LookaheadConfig::new(1, 3, 1), exact_upto(3)).unwrap();
        generate(&mut m, &mut s, &[0], &params, &mut |_| true).unwrap();
        assert_eq!(s.exactness(), Exactness::KernelLevel);
        let mut s = Lookahead::with_costs(LookaheadConfig::new(1, 3, 1), exact_upto(64)).unwrap();
        generate(&mut m, &mut s, &[0], &params, &mut |_| true).unwrap();
        assert_eq!(s.exactness(), Exactness::BitIdentical);
    }

    #[test]
    fn near_the_end_of_the_context_plain_steps_take_over() {
        let mut m = cycle_model().with_n_ctx(8);
        let mut s = Lookahead::new(LookaheadConfig::new(3, 4, 2)).unwrap();
        let g = generate(
            &mut m,
            &mut s,
            &[0, 1],
            &GenerateParams::default(),
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(g.stop, augur_core::StopReason::ContextFull);
        let want: Vec<TokenId> = (0..7).map(|i| ((i + 2) % 3) as TokenId).collect();
        assert_eq!(g.tokens, want);
    }

    #[test]
    fn runs_lookahead_steps_only_while_checked_candidates_pay() {
        let greedy = |max_tokens| GenerateParams {
            max_tokens,
            sampling: SamplingParams::greedy(),
        };
        // Passes of more than one token after the prefill.
        let big = |m: &InMemoryModel| m.batch_sizes.iter().skip(1).filter(|&&b| b > 1).count();
        // Text the pool cannot predict: its candidates come out wrong.
        let target = InMemoryModel::random(12, 5).with_history(3);
        let prompt = [1, 2, 3, 4, 5, 6];
        let mut base_model = target.clone();
        let base = generate(
            &mut base_model,
            &mut augur_baseline::Baseline,
            &prompt,
            &greedy(120),
            &mut |_| true,
        )
        .unwrap();
        // A pass of 4 tokens costs 1.6 one-token passes (an F16 target).
        let cheap = CostModel::linear(0.2, 16);
        let mut s = Lookahead::with_costs(LookaheadConfig::new(1, 3, 1), cheap.clone()).unwrap();
        let mut m = target.clone();
        let g = generate(&mut m, &mut s, &prompt, &greedy(120), &mut |_| true).unwrap();
        assert_eq!(g.tokens, base.tokens);
        // Candidates were checked on plain steps too, and came out wrong
        // often enough that no step pays for its pass.
        let rates: Vec<f64> = (0..2).map(|i| s.inner.drafter().rates.rate(i)).collect();
        assert!(rates[0] < 0.5, "{rates:?}");
        assert!(
            big(&m) <= 3,
            "{} lookahead steps in {:?}",
            big(&m),
            m.batch_sizes
        );
        // Without measured costs every step is a lookahead step.
        let mut s = Lookahead::new(LookaheadConfig::new(1, 3, 1)).unwrap();
        let mut m = target.clone();
        let g = generate(&mut m, &mut s, &prompt, &greedy(120), &mut |_| true).unwrap();
        assert_eq!(g.tokens, base.tokens);
        assert!(big(&m) > 60, "{}", big(&m));
        // Text the pool predicts (a cycle): the checks learn it, and the
        // lookahead steps run and emit several tokens each.
        let mut s = Lookahead::with_costs(LookaheadConfig::new(1, 3, 1), cheap).unwrap();
        let mut m = cycle_model();
        let g = generate(&mut m, &mut s, &[0, 1, 2, 0], &greedy(60), &mut |_| true).unwrap();
        let want: Vec<TokenId> = (0..60).map(|i| ((i + 1) % 3) as TokenId).collect();
        assert_eq!(g.tokens, want);
        assert!(s.inner.drafter().rates.rate(1) > 0.8);
        assert!(g.stats.target_passes <= 30, "{:?}", g.stats);
        // Where a pass of 4 costs ten one-token passes nothing pays, however
        // right the candidates are.
        let mut seconds = vec![1.0];
        seconds.extend(std::iter::repeat_n(10.0, 15));
        let dear = CostModel::calibrated(&seconds, 0.0, 1);
        let mut s = Lookahead::with_costs(LookaheadConfig::new(1, 3, 1), dear).unwrap();
        let mut m = cycle_model();
        let g = generate(&mut m, &mut s, &[0, 1, 2, 0], &greedy(60), &mut |_| true).unwrap();
        assert_eq!(g.tokens, want);
        assert_eq!(big(&m), 0, "{:?}", m.batch_sizes);
    }
}
