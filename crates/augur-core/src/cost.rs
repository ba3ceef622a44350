//! The one cost model every drafting policy uses: what target passes and
//! draft steps cost on this machine, and which draft length pays best.
//!
//! Drafting pays only when a target pass over γ + 1 tokens plus the time it
//! took to draft costs less than the tokens it yields would cost one pass at
//! a time. Whether it does depends on the machine far more than on the
//! models: on a memory-bound machine a pass over a few tokens costs about one
//! pass, on a compute-bound one it costs almost k passes. So the costs are
//! calibrated per pass size (and, without a calibration, measured during the
//! run), and every policy asks the same two questions of them:
//! [`speedup`] (expected tokens per unit of time of drafting γ tokens with
//! per-position acceptance α, against plain decoding) and
//! [`CostModel::best_prefix`] (the most rewarding prefix of a proposal that
//! already exists, whose drafting time is spent).

use serde::{Deserialize, Serialize};

/// Weight of a new measurement in the moving average.
const EMA_WEIGHT: f64 = 0.1;
/// The first measurements of a size are combined by their minimum: timing
/// noise on a shared machine only ever adds time, and one slow first sample
/// must not make a pass size look bad for the rest of the run.
const MIN_PHASE: u64 = 3;
/// After that, a sample counts at most this many times the estimate, so one
/// spike moves it by a few percent while a lasting slowdown still comes
/// through in a few dozen samples.
const SPIKE_CLIP: f64 = 1.5;

/// Per-pass decay of a pass size's drift (about the last 20 passes of a size
/// count).
const DRIFT_DECAY: f64 = 0.95;
/// How many passes the drift of all sizes together counts for in a size's
/// own: a size seldom run follows the machine's overall drift.
const DRIFT_PRIOR_WEIGHT: f64 = 3.0;
/// A pass counts at most this far (as a factor, either way) from its
/// calibrated time: one stall must not rewrite the table.
const DRIFT_CLIP: f64 = 2.0;
/// The context's factor on a calibrated pass stays within this factor either
/// way: the growth is measured over a few hundred tokens and extrapolated.
const CONTEXT_CLIP: f64 = 2.0;

/// Cost of one more token in a target pass, in one-token passes, assumed
/// before any pass was measured: the measured compute-bound case (a Q4_K_M
/// target on 2 cores), the cautious choice, under which only drafts right
/// more than 70 % of the time pay.
pub const UNMEASURED_TOKEN_COST: f64 = 0.7;

/// Draft step cost assumed, as a fraction of a one-token target pass, before
/// the draft has been timed: a draft a few times smaller than the target.
pub const UNMEASURED_DRAFT_RATIO: f64 = 0.25;

/// Costs of target passes (per pass size) and of draft steps, and the
/// largest pass size whose logits are bit-identical to one-token passes.
///
/// Built from a calibration ([`CostModel::calibrated`]: the costs then stay
/// fixed, so decisions depend only on the text and the seed) or empty
/// ([`CostModel::prior`]: measured during the run). Serializable so an
/// application can keep them per model file, machine and thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostModel {
    /// `target_seconds[k - 1]`: estimated seconds of one target pass over k
    /// tokens (ignored where `target_samples[k - 1]` is 0).
    pub target_seconds: Vec<f64>,
    /// `target_samples[k - 1]`: how many passes over k tokens were measured.
    pub target_samples: Vec<u64>,
    /// Estimated seconds of one draft step (one draft pass and its sampling).
    pub draft_seconds: f64,
    /// How many draft steps were measured (0: `draft_seconds` is unknown).
    pub draft_samples: u64,
    /// The largest target pass whose logits calibration found bit-identical
    /// to one-token passes; 0 when unknown, which counts as 1 (a one-token
    /// pass is the reference itself).
    pub max_exact_pass: usize,
    /// True when the target costs came from a calibration: timings of the run
    /// then leave them as they are ([`CostModel::observe_target`]).
    pub fixed: bool,
    /// How much of the draft model's work can overlap a target pass, in
    /// [0, 1]: 1 when they run on separate hardware (the target on a GPU, the
    /// draft on the CPU), 0 when they share the same cores (a CPU-only
    /// machine: two thread teams on the same cores each run slower, and
    /// doing both at once takes as long as doing one after the other).
    pub overlap: f64,
    /// How this run's passes compare with the calibrated ones, per pass
    /// size (see [`PhaseDrift`]); runtime state, never serialized.
    #[serde(skip)]
    pub drift: PhaseDrift,
    /// How calibrated costs grow with the context (see
    /// [`ContextGrowth`]); empty: they do not.
    pub growth: ContextGrowth,
    /// Tokens in the target's KV cache at the pass being costed (0:
    /// unknown, the calibrated context); the driver sets it every step
    /// ([`CostModel::set_context`]).
    #[serde(skip)]
    pub context: usize,
}

/// How the cost of a pass over k tokens, relative to a one-token pass, grows
/// with the tokens already in the KV cache.
///
/// Why: attention reads the whole cache, once per token of the pass, while
/// the weights are read once per pass; so a multi-token pass grows with the
/// context faster than a one-token pass does. On an F16 target on 2 cores a
/// 5-token pass cost 1.6 one-token passes after 300 tokens and 2.0 after
/// 1,000, and costs timed at one context over-predicted speed by 12–18 % on
/// long prompts. Calibration times the passes at two contexts; the relative
/// cost is linear in the context between and beyond them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContextGrowth {
    /// The context the calibrated costs (`CostModel::target_seconds`) were
    /// timed after.
    pub timed_after: usize,
    /// `per_token[k - 1]`: the relative change, per token of context, of
    /// the cost of a pass over k tokens in one-token passes (0 for k = 1;
    /// sizes beyond the table use its last entry).
    pub per_token: Vec<f64>,
}

impl ContextGrowth {
    /// The growth between passes timed after `short_after` tokens
    /// (`short[k - 1]`, seconds of a pass over k tokens) and after
    /// `long_after` tokens (`long`). Empty when the two contexts or the
    /// tables do not allow a comparison. A relative cost that falls with
    /// the context is timing noise and counts as flat.
    pub fn between(short_after: usize, short: &[f64], long_after: usize, long: &[f64]) -> Self {
        let (Some(&s1), Some(&l1)) = (short.first(), long.first()) else {
            return Self::default();
        };
        if long_after <= short_after || !(valid(s1) && valid(l1)) {
            return Self::default();
        }
        let span = (long_after - short_after) as f64;
        let per_token = short
            .iter()
            .zip(long)
            .map(|(&s, &l)| {
                if !(valid(s) && valid(l)) {
                    return 0.0;
                }
                (((l / l1) / (s / s1) - 1.0) / span).max(0.0)
            })
            .collect();
        Self {
            timed_after: short_after,
            per_token,
        }
    }

    /// The factor on a pass over `size` tokens calibrated after
    /// [`Self::timed_after`] tokens, after `context` tokens (1 where the
    /// context is unknown or nothing was measured).
    pub fn factor(&self, size: usize, context: usize) -> f64 {
        let slope = match size.checked_sub(1) {
            Some(i) => self.per_token.get(i).or(self.per_token.last()),
            None => None,
        };
        match slope {
            Some(&s) if context > 0 && size > 1 => {
                let delta = context as f64 - self.timed_after as f64;
                (1.0 + s * delta).clamp(1.0 / CONTEXT_CLIP, CONTEXT_CLIP)
            }
            _ => 1.0,
        }
    }
}

/// How far the machine has drifted from its calibration, per pass size.
///
/// Why: a shared machine's load does not slow every pass size alike. A
/// one-token pass of a Q4_K_M target on 2 cores reads the weights and is
/// bound by memory bandwidth, a 4-token pass is bound by compute; calibrated
/// at 77 ms and 161 ms (2.1 one-token passes), the same passes took 65 ms
/// and 160 ms (2.5) later in a bench, so every draft of 3 that the
/// calibration said paid by 10 % lost 5 %. Following the drift keeps the
/// relative costs those of the phase the run is in.
///
/// Each timed pass contributes its ratio to the calibrated time (clipped to
/// a factor of [`DRIFT_CLIP`]) to its size's decayed mean; a size's factor
/// is that mean, shrunk towards the mean of every size, so sizes seldom run
/// move with the machine as a whole. Followed only where
/// [`PhaseDrift::follow`] allows it and only at temperature 0
/// ([`CostModel::begin_generation`]): under sampling, decisions that moved
/// with the machine's load would make the text drawn from a seed depend on
/// it; at temperature 0 the text is the target's whatever is drafted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseDrift {
    /// Whether the drift may be followed at all (real backends: the
    /// in-memory models of the tests run far from any calibrated time).
    pub follow: bool,
    /// Whether it is followed in the generation under way.
    active: bool,
    /// `sums[k - 1]`, `weights[k - 1]`: decayed sum of the ratios of passes
    /// over k tokens, and their decayed count.
    sums: Vec<f64>,
    weights: Vec<f64>,
}

impl PhaseDrift {
    fn observe(&mut self, size: usize, ratio: f64) {
        if size == 0 || !(ratio.is_finite() && ratio > 0.0) {
            return;
        }
        if self.sums.len() < size {
            self.sums.resize(size, 0.0);
            self.weights.resize(size, 0.0);
        }
        let ratio = ratio.clamp(1.0 / DRIFT_CLIP, DRIFT_CLIP);
        self.sums[size - 1] = DRIFT_DECAY * self.sums[size - 1] + ratio;
        self.weights[size - 1] = DRIFT_DECAY * self.weights[size - 1] + 1.0;
    }

    /// The factor on a calibrated pass over `size` tokens (1 while not
    /// followed or before any pass).
    pub fn factor(&self, size: usize) -> f64 {
        let weight: f64 = self.weights.iter().sum();
        if !self.active || weight <= 0.0 {
            return 1.0;
        }
        let overall = self.sums.iter().sum::<f64>() / weight;
        let (sum, w) = match size.checked_sub(1) {
            Some(i) if i < self.sums.len() => (self.sums[i], self.weights[i]),
            _ => (0.0, 0.0),
        };
        (sum + DRIFT_PRIOR_WEIGHT * overall) / (w + DRIFT_PRIOR_WEIGHT)
    }
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            target_seconds: Vec::new(),
            target_samples: Vec::new(),
            draft_seconds: 0.0,
            draft_samples: 0,
            max_exact_pass: 0,
            fixed: false,
            overlap: 1.0,
            drift: PhaseDrift::default(),
            growth: ContextGrowth::default(),
            context: 0,
        }
    }
}

impl CostModel {
    /// Starts a generation: the drift ([`PhaseDrift`]) is followed in it if
    /// it may be and the decoding is greedy. What was learned of the drift
    /// carries over: it is the machine's, not the text's.
    pub fn begin_generation(&mut self, greedy: bool) {
        self.drift.active = self.drift.follow && self.fixed && greedy;
    }

    /// Sets the tokens in the target's KV cache before the next pass: the
    /// calibrated costs then follow the context ([`ContextGrowth`]).
    pub fn set_context(&mut self, tokens: usize) {
        self.context = tokens;
    }

    /// No measurements, and none to be made: costs follow the linear prior
    /// ([`CostModel::relative`]) and only one-token passes count as
    /// bit-exact.
    pub fn prior() -> Self {
        Self {
            fixed: true,
            ..Self::default()
        }
    }

    /// No measurements yet: the run's timings refine it
    /// ([`CostModel::observe_target`]), so decisions follow the machine's load.
    pub fn measured() -> Self {
        Self::default()
    }

    /// A fixed cost model where a pass over k tokens costs 1 + (k − 1)·`token_cost`
    /// one-token passes, for sizes up to `max_pass` (longer ones follow the
    /// same slope): for runs without a calibration, and for tests.
    pub fn linear(token_cost: f64, max_pass: usize) -> Self {
        let seconds: Vec<f64> = (0..max_pass.max(2))
            .map(|k| 1.0 + token_cost.max(0.0) * k as f64)
            .collect();
        let mut c = Self::calibrated(&seconds, 0.0, 0);
        // A zero token cost would be a flat (and so unmeasured-looking) table.
        c.target_seconds.iter_mut().for_each(|s| *s = s.max(1e-12));
        c
    }

    /// A cost model from a calibration: `pass_seconds[k - 1]` is the time of
    /// a target pass over k tokens (0 where not measured), `draft_seconds`
    /// the time of one draft step (0 for model-free drafting), and
    /// `max_exact_pass` the calibrated bit-exact pass size. Fixed: the run's
    /// timings do not move it.
    pub fn calibrated(pass_seconds: &[f64], draft_seconds: f64, max_exact_pass: usize) -> Self {
        let mut c = Self::measured();
        for (i, &s) in pass_seconds.iter().enumerate() {
            c.record_target(i + 1, s);
        }
        // A zero draft cost would read as "unmeasured" and be replaced by a guess.
        c.record_draft(draft_seconds.max(1e-12));
        c.max_exact_pass = max_exact_pass;
        c.fixed = true;
        c
    }

    /// The largest pass size known to give logits bit-identical to one-token
    /// passes (at least 1).
    pub fn exact_pass(&self) -> usize {
        self.max_exact_pass.max(1)
    }

    /// True if a pass over `size` tokens is known to be bit-identical.
    pub fn pass_is_exact(&self, size: usize) -> bool {
        size <= self.exact_pass()
    }

    /// Records a target pass the run timed: refines the estimate unless the
    /// costs are calibrated ([`CostModel::fixed`]).
    pub fn observe_target(&mut self, size: usize, seconds: f64) {
        if !self.fixed {
            self.record_target(size, seconds);
        } else if self.drift.active {
            if let Some(calibrated) = self.calibrated_target(size).filter(|&t| t > 0.0) {
                self.drift.observe(size, seconds / calibrated);
            }
        }
    }

    /// Records a draft step the run timed, unless the costs are calibrated.
    pub fn observe_draft(&mut self, seconds: f64) {
        if !self.fixed {
            self.record_draft(seconds);
        }
    }

    /// The cost of a target pass over `size` tokens in one-token passes:
    /// from the measurements, or before any, the linear prior
    /// 1 + [`UNMEASURED_TOKEN_COST`]·(size − 1).
    pub fn relative(&self, size: usize) -> f64 {
        match (self.target(1), self.target(size)) {
            (Some(t1), Some(tk)) if t1 > 0.0 => tk / t1,
            _ => 1.0 + UNMEASURED_TOKEN_COST * size.saturating_sub(1) as f64,
        }
    }

    /// The cost of a target pass over `size` tokens in one-token passes, from
    /// measurements only (`None` before any).
    pub fn measured_relative(&self, size: usize) -> Option<f64> {
        let t1 = self.target(1)?;
        (t1 > 0.0).then(|| self.target(size).unwrap_or(t1 * size as f64) / t1)
    }

    /// The prefix length of a proposal that buys the most expected tokens per
    /// unit of time, its drafting already paid for: the k in `0..=max` (k ≤
    /// `confidence.len()`) maximising E(k) / cost(k + 1) ([`Self::relative`]),
    /// with `confidence[i]` the chance that draft i is accepted given the ones
    /// before it were; and that expected speedup over a plain step. k = 0 (a
    /// plain step) wins ties.
    pub fn best_prefix(&self, confidence: &[f64], max: usize) -> (usize, f64) {
        let (mut best, mut best_value) = (0, 1.0);
        let (mut expected, mut reach) = (1.0, 1.0);
        for (k, &c) in confidence.iter().enumerate().take(max) {
            reach *= c.clamp(0.0, 1.0);
            expected += reach;
            let value = expected / self.relative(k + 2);
            // A margin keeps rounding from picking a longer, equal draft.
            if value > best_value * (1.0 + 1e-9) {
                best = k + 1;
                best_value = value;
            }
        }
        (best, best_value)
    }

    /// Whether drafting another token can pay, for a drafter that has
    /// drafted `confidence.len()` tokens (each with its chance of acceptance
    /// given the ones before) and expects each further one to be accepted
    /// with chance `next`: true when some longer draft, up to `max` tokens,
    /// is expected to yield more tokens per unit of time, its draft steps
    /// counted, than the best prefix of what exists, with the draft steps
    /// already taken counted too. Without measured target costs it says yes
    /// (the cap decides).
    ///
    /// A drafter may stop on this only with what it knew before drawing the
    /// next token (its confidences so far): the draft length is then a
    /// stopping time of the drafts, which keeps sampling exact.
    pub fn drafting_more_pays(&self, confidence: &[f64], next: f64, max: usize) -> bool {
        let n = confidence.len();
        if n >= max {
            return false;
        }
        let (Some(t1), Some(td)) = (self.target(1), self.draft_or_guess()) else {
            return true;
        };
        if t1 <= 0.0 {
            return true;
        }
        let step = td / t1;
        let spent = n as f64 * step;
        let (mut expected, mut reach) = (1.0, 1.0);
        let mut stop = 1.0 / (1.0 + spent);
        for (k, &c) in confidence.iter().enumerate() {
            reach *= c.clamp(0.0, 1.0);
            expected += reach;
            stop = stop.max(expected / (self.relative(k + 2) + spent));
        }
        let next = next.clamp(0.0, 1.0);
        for j in n + 1..=max {
            reach *= next;
            expected += reach;
            if expected / (self.relative(j + 1) + j as f64 * step) > stop * (1.0 + 1e-9) {
                return true;
            }
        }
        false
    }

    /// Costs from measured throughputs: `(k, tokens per second of a pass over
    /// k tokens)` pairs, and the seconds of one draft step. Each figure counts
    /// as one sample.
    pub fn from_throughput(pass_throughput: &[(usize, f64)], draft_seconds: f64) -> Self {
        let mut c = Self::prior();
        for &(k, tps) in pass_throughput {
            if k > 0 && tps > 0.0 {
                c.record_target(k, k as f64 / tps);
            }
        }
        c.record_draft(draft_seconds);
        c
    }

    /// Adds a measurement of one target pass over `size` tokens.
    /// Non-finite or non-positive durations are ignored.
    pub fn record_target(&mut self, size: usize, seconds: f64) {
        if size == 0 || !(seconds.is_finite() && seconds > 0.0) {
            return;
        }
        if self.target_seconds.len() < size {
            self.target_seconds.resize(size, 0.0);
        }
        if self.target_samples.len() < size {
            self.target_samples.resize(size, 0);
        }
        let i = size - 1;
        if !valid(self.target_seconds[i]) {
            self.target_samples[i] = 0;
        }
        self.target_samples[i] += 1;
        self.target_seconds[i] = blend(self.target_seconds[i], seconds, self.target_samples[i]);
    }

    /// Adds a measurement of one draft step.
    pub fn record_draft(&mut self, seconds: f64) {
        if !(seconds.is_finite() && seconds > 0.0) {
            return;
        }
        if !valid(self.draft_seconds) {
            self.draft_samples = 0;
        }
        self.draft_samples += 1;
        self.draft_seconds = blend(self.draft_seconds, seconds, self.draft_samples);
    }

    /// Samples behind the estimate for passes over exactly `size` tokens.
    pub fn samples(&self, size: usize) -> u64 {
        match size.checked_sub(1) {
            Some(i) if self.is_measured(i) => self.target_samples[i],
            _ => 0,
        }
    }

    fn is_measured(&self, i: usize) -> bool {
        i < self.target_seconds.len()
            && i < self.target_samples.len()
            && self.target_samples[i] > 0
            && valid(self.target_seconds[i])
    }

    /// Estimated seconds of a target pass over `size` tokens; `None` before any
    /// measurement.
    ///
    /// Sizes never measured are estimated from measured ones: linearly between
    /// the nearest measured sizes; below the smallest measured size in
    /// proportion to the size (a pass over fewer tokens is assumed to cost no
    /// more per token, the cautious side for the one-token baseline); above the
    /// largest, along the slope of the two largest measured sizes (never
    /// decreasing), or flat when only one size was measured. The flat guess is
    /// optimistic on purpose: trying a larger pass measures it, so an
    /// optimistic guess corrects itself while a pessimistic one never would.
    ///
    /// Calibrated costs are scaled by the machine's drift where it is
    /// followed ([`PhaseDrift`]).
    pub fn target(&self, size: usize) -> Option<f64> {
        self.calibrated_target(size)
            .map(|t| t * self.drift.factor(size))
    }

    /// [`Self::target`] without the drift: the calibrated (or measured)
    /// cost at the current context ([`ContextGrowth`]).
    fn calibrated_target(&self, size: usize) -> Option<f64> {
        self.table_target(size)
            .map(|t| t * self.growth.factor(size, self.context))
    }

    /// The cost of a pass over `size` tokens from the table alone.
    fn table_target(&self, size: usize) -> Option<f64> {
        if size == 0 {
            return Some(0.0);
        }
        let n = self.target_seconds.len().min(self.target_samples.len());
        let point = |i: usize| (i + 1, self.target_seconds[i]);
        let below = (0..n.min(size)).rev().find(|&i| self.is_measured(i));
        if below == Some(size - 1) {
            return Some(self.target_seconds[size - 1]);
        }
        let above = (size..n).find(|&i| self.is_measured(i));
        match (below.map(point), above.map(point)) {
            (Some((k0, t0)), Some((k1, t1))) => {
                let f = (size - k0) as f64 / (k1 - k0) as f64;
                Some(t0 + f * (t1 - t0))
            }
            (None, Some((k1, t1))) => Some(t1 * size as f64 / k1 as f64),
            (Some((k0, t0)), None) => {
                let prev = below.and_then(|b| (0..b).rev().find(|&i| self.is_measured(i)));
                let slope = match prev.map(point) {
                    Some((kp, tp)) => ((t0 - tp) / (k0 - kp) as f64).max(0.0),
                    None => 0.0,
                };
                Some(t0 + slope * (size - k0) as f64)
            }
            (None, None) => None,
        }
    }

    /// Estimated seconds of one draft step; `None` before any measurement.
    ///
    /// Where the drift is followed, a draft step moves with the one-token
    /// target pass: both are small passes bound by memory bandwidth.
    pub fn draft(&self) -> Option<f64> {
        (self.draft_samples > 0 && valid(self.draft_seconds))
            .then(|| self.draft_seconds * self.drift.factor(1))
    }

    /// The draft step cost the length choice uses: the measured one, or
    /// [`UNMEASURED_DRAFT_RATIO`] of a one-token target pass before that.
    pub fn draft_or_guess(&self) -> Option<f64> {
        self.draft()
            .or_else(|| self.target(1).map(|t| t * UNMEASURED_DRAFT_RATIO))
    }
}

fn valid(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// The estimate after a new sample `new`, `samples` counting it: the minimum
/// over the first [`MIN_PHASE`] samples, then an exponential moving average
/// of samples clipped at [`SPIKE_CLIP`] times the estimate.
fn blend(old: f64, new: f64, samples: u64) -> f64 {
    if samples <= 1 {
        new
    } else if samples <= MIN_PHASE {
        old.min(new)
    } else {
        old + EMA_WEIGHT * (new.min(old * SPIKE_CLIP) - old)
    }
}

/// Expected tokens per target pass when drafting γ = `alpha.len()` tokens:
/// E(γ) = 1 + Σ_{k=1..γ} Π_{i≤k} α_i, where α_i is the probability that draft
/// position i is accepted given that the positions before it were.
pub fn expected_tokens(alpha: &[f64]) -> f64 {
    let mut e = 1.0;
    let mut run = 1.0;
    for &a in alpha {
        run *= a.clamp(0.0, 1.0);
        e += run;
    }
    e
}

/// Expected speedup over plain decoding of drafting `gamma` tokens:
/// E(γ)·T_target(1) / (γ·T_draft + T_target(γ + 1)), with `alpha[i]` the
/// acceptance of draft position i + 1. γ = 0 is plain decoding (speedup 1).
/// `None` when no target pass was measured or `alpha` is shorter than γ.
pub fn speedup(alpha: &[f64], costs: &CostModel, gamma: usize) -> Option<f64> {
    if gamma == 0 {
        return Some(1.0);
    }
    let alpha = alpha.get(..gamma)?;
    let t1 = costs.target(1)?;
    let tk = costs.target(gamma + 1)?;
    let td = costs.draft_or_guess()?;
    let time = gamma as f64 * td + tk;
    (time > 0.0).then(|| expected_tokens(alpha) * t1 / time)
}

/// Expected speedup over plain decoding of drafting `gamma` tokens per step
/// in the pipelined strategy ([`the pipelined drafter`]), where the
/// draft thread drafts the next proposal while the target verifies this one.
///
/// While the target verifies γ drafts, the draft thread drafts a guess of the
/// bonus token and the γ drafts after it, γ + 1 draft steps. When every draft
/// is accepted and the bonus equals the guess (probability h), the next
/// proposal is ready when the verification ends, or at most
/// (γ + 1)·T_draft after it started: the step costs
/// max((γ + 1)·T_draft, T_target(γ + 1)). Otherwise the drafted-ahead work is
/// thrown away and the step costs what a sequential one does,
/// γ·T_draft + T_target(γ + 1). So
///
/// speedup(γ) = E(γ)·T_target(1) / (h·max((γ + 1)·T_draft, T_target(γ + 1))
///              + (1 − h)·(γ·T_draft + T_target(γ + 1))),
///
/// with h = α_1·…·α_{γ+1}: the acceptance at position γ + 1 stands for the
/// chance that the guess equals the bonus token (the same event at
/// temperature 0; at temperature > 0 a match is rarer than an acceptance, so
/// h is optimistic there). `alpha` must hold γ + 1 estimates. The costs are
/// those of each model alone; [`CostModel::overlap`] says how much of the
/// draft work a target pass can hide (none where both share the same cores:
/// the held case then costs (γ + 1)·T_draft + T_target(γ + 1), more than a
/// sequential step, and the pipeline never pays). γ = 0 is plain decoding (speedup 1; the draft
/// thread is idle).
pub fn pipelined_speedup(alpha: &[f64], costs: &CostModel, gamma: usize) -> Option<f64> {
    if gamma == 0 {
        return Some(1.0);
    }
    let alpha = alpha.get(..gamma + 1)?;
    let t1 = costs.target(1)?;
    let tk = costs.target(gamma + 1)?;
    let td = costs.draft_or_guess()?;
    let held: f64 = alpha.iter().map(|a| a.clamp(0.0, 1.0)).product();
    let g = gamma as f64;
    // With partial overlap, the part of the work that cannot overlap adds up.
    let o = costs.overlap.clamp(0.0, 1.0);
    let overlapped = o * ((g + 1.0) * td).max(tk) + (1.0 - o) * ((g + 1.0) * td + tk);
    let sequential = g * td + tk;
    let time = held * overlapped + (1.0 - held) * sequential;
    (time > 0.0).then(|| expected_tokens(&alpha[..gamma]) * t1 / time)
}

/// How the time of a speculative step is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Draft, then verify: [`speedup`].
    #[default]
    Sequential,
    /// Drafting overlaps verification: [`pipelined_speedup`].
    Pipelined,
}

impl Timing {
    /// The expected speedup of drafting `gamma` tokens under this model.
    pub fn speedup(self, alpha: &[f64], costs: &CostModel, gamma: usize) -> Option<f64> {
        match self {
            Timing::Sequential => speedup(alpha, costs, gamma),
            Timing::Pipelined => pipelined_speedup(alpha, costs, gamma),
        }
    }
}

/// The draft length γ* in `0..=min(max, alpha.len())` with the largest
/// expected [`speedup`]; 0 (plain decoding) when nothing beats it or nothing
/// was measured. Ties go to the shorter draft.
pub fn choose_draft_len(alpha: &[f64], costs: &CostModel, max: usize) -> usize {
    choose_draft_len_between(alpha, costs, 1, max)
}

/// [`choose_draft_len`] with drafting lengths restricted to `min..=max`
/// (γ = 0 always competes).
pub fn choose_draft_len_between(alpha: &[f64], costs: &CostModel, min: usize, max: usize) -> usize {
    best_between(Timing::Sequential, alpha, costs, min, max).0
}

/// The best γ in {0} ∪ [max(min, 1), max] under `model` and its speedup
/// (lengths the estimates in `alpha` do not cover are skipped).
pub fn best_between(
    model: Timing,
    alpha: &[f64],
    costs: &CostModel,
    min: usize,
    max: usize,
) -> (usize, f64) {
    let max = max.min(alpha.len());
    let mut best = (0, 1.0);
    for gamma in min.max(1)..=max {
        if let Some(s) = model.speedup(alpha, costs, gamma) {
            if s > best.1 {
                best = (gamma, s);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Qwen2.5-Coder-1.5B Q4_K_M on 2 CPU cores, tokens/s of a pass over k
    /// tokens (k = 7 was not measured).
    const Q4: [(usize, f64); 7] = [
        (1, 19.6),
        (2, 23.7),
        (3, 24.6),
        (4, 24.5),
        (5, 28.0),
        (6, 32.7),
        (8, 26.3),
    ];
    /// The same model in F16.
    const F16: [(usize, f64); 8] = [
        (1, 8.2),
        (2, 16.8),
        (3, 24.4),
        (4, 26.9),
        (5, 32.6),
        (6, 34.8),
        (7, 36.5),
        (8, 38.7),
    ];

    fn seconds(table: &[(usize, f64)], k: usize) -> f64 {
        let &(_, tps) = table.iter().find(|(kk, _)| *kk == k).unwrap();
        k as f64 / tps
    }

    /// An independent brute force over γ of the speedup formula, from the
    /// raw table (linear interpolation for a missing size).
    fn brute_force(table: &[(usize, f64)], t_draft: f64, alpha: f64, max: usize) -> usize {
        let t = |k: usize| {
            if table.iter().any(|(kk, _)| *kk == k) {
                seconds(table, k)
            } else {
                (seconds(table, k - 1) + seconds(table, k + 1)) / 2.0
            }
        };
        let mut best = (0, 1.0);
        for g in 1..=max {
            let e: f64 = (0..=g).map(|i| alpha.powi(i as i32)).sum();
            let s = e * t(1) / (g as f64 * t_draft + t(g + 1));
            if s > best.1 {
                best = (g, s);
            }
        }
        best.0
    }

    #[test]
    fn passes_of_several_tokens_grow_with_the_context_as_calibrated() {
        // Timed after 300 tokens: 1-token 0.10 s, 2-token 0.13, 5-token 0.16;
        // after 1000: 0.11, 0.154, 0.22 (relative 1.3, 1.6 -> 1.4, 2.0).
        let short = [0.10, 0.13, 0.14, 0.15, 0.16];
        let long = [0.11, 0.154, 0.165, 0.19, 0.22];
        let growth = ContextGrowth::between(300, &short, 1000, &long);
        assert_eq!(growth.timed_after, 300);
        assert_eq!(growth.per_token[0], 0.0);
        let mut c = CostModel::calibrated(&short, 0.0, 0);
        c.growth = growth.clone();
        // Unknown context and the calibrated one: the table as it is.
        assert!((c.relative(5) - 1.6).abs() < 1e-9);
        c.set_context(300);
        assert!((c.relative(5) - 1.6).abs() < 1e-9);
        // After 1000 tokens, the long timing's relative costs.
        c.set_context(1000);
        assert!((c.relative(2) - 1.4).abs() < 1e-9, "{}", c.relative(2));
        assert!((c.relative(5) - 2.0).abs() < 1e-9, "{}", c.relative(5));
        // Halfway, halfway; a one-token pass does not move.
        c.set_context(650);
        assert!((c.relative(5) - 1.8).abs() < 1e-9);
        assert_eq!(c.target(1), Some(0.10));
        // Sizes beyond the table grow like its largest.
        let f9 = c.growth.factor(9, 650);
        assert!((f9 - c.growth.factor(5, 650)).abs() < 1e-12);
        // Extrapolation is bounded, and a relative cost that falls with the
        // context (noise) counts as flat.
        assert!(c.growth.factor(5, 1_000_000) <= CONTEXT_CLIP);
        let noisy = ContextGrowth::between(300, &short, 1000, &[0.11, 0.12, 0.13, 0.14, 0.15]);
        assert!(noisy.per_token.iter().all(|&g| g == 0.0));
        // Nothing to compare: no growth.
        assert_eq!(
            ContextGrowth::between(300, &short, 300, &long),
            ContextGrowth::default()
        );
        assert_eq!(
            ContextGrowth::between(300, &short, 1000, &[]),
            ContextGrowth::default()
        );
        // A longer context makes drafting pay less: at a 60 % acceptance a
        // draft of 4 pays after 300 tokens, not after 1000.
        let conf = [0.6; 4];
        c.set_context(300);
        let (_, value_short) = c.best_prefix(&conf, 4);
        c.set_context(1000);
        let (_, value_long) = c.best_prefix(&conf, 4);
        assert!(value_long < value_short, "{value_long} vs {value_short}");
    }

    #[test]
    fn calibrated_costs_follow_the_machines_drift_at_temperature_0_only() {
        // Calibrated: 4 tokens cost 2 one-token passes; draft step 0.25.
        let calibrated = || {
            let mut c = CostModel::calibrated(&[1.0, 1.6, 2.0, 2.0], 0.25, 1);
            c.drift.follow = true;
            c
        };
        let run = |c: &mut CostModel| {
            // The one-token passes now take 0.8, the 4-token ones what
            // the calibration said.
            for _ in 0..40 {
                c.observe_target(1, 0.8);
            }
            for _ in 0..20 {
                c.observe_target(4, 2.0);
            }
        };
        let mut c = calibrated();
        c.begin_generation(true);
        for _ in 0..40 {
            c.observe_target(1, 0.8);
        }
        // A size not run yet moves with the machine as a whole.
        assert!((c.relative(4) - 2.0).abs() < 1e-9, "{}", c.relative(4));
        assert!((c.draft().unwrap() - 0.2).abs() < 0.01);
        for _ in 0..20 {
            c.observe_target(4, 2.0);
        }
        let followed = c.relative(4);
        assert!(followed > 2.3 && followed < 2.5 + 1e-9, "{followed}");
        // Decisions follow: a draft of 3 at 0.6 paid by the calibration,
        // not in this phase.
        let conf = [0.6; 3];
        assert_eq!(calibrated().best_prefix(&conf, 3).0, 3);
        assert_eq!(c.best_prefix(&conf, 3).0, 0);
        // It carries over to the next greedy generation, but a sampled one
        // uses the calibration as it is and learns nothing.
        c.begin_generation(true);
        assert!((c.relative(4) - followed).abs() < 1e-12);
        c.begin_generation(false);
        assert!((c.relative(4) - 2.0).abs() < 1e-12);
        c.observe_target(4, 100.0);
        c.begin_generation(true);
        assert!((c.relative(4) - followed).abs() < 1e-12);
        // Not allowed to follow (the default), or costs measured in the run:
        // no drift.
        let mut off = CostModel::calibrated(&[1.0, 1.6, 2.0, 2.0], 0.25, 1);
        off.begin_generation(true);
        run(&mut off);
        assert!((off.relative(4) - 2.0).abs() < 1e-12);
        let mut measured = CostModel::measured();
        measured.drift.follow = true;
        measured.begin_generation(true);
        run(&mut measured);
        assert!((measured.relative(4) - 2.5).abs() < 0.05);
        // One stall counts as at most twice the calibrated time.
        let mut stall = calibrated();
        stall.begin_generation(true);
        stall.observe_target(1, 1000.0);
        assert!((stall.target(1).unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn drafting_more_pays_while_the_confidence_covers_the_draft_step() {
        // F16 on 2 cores, measured in runs: relative pass costs 1, 1.29,
        // 1.47, 1.56, 1.69, and a draft step a quarter of a target pass.
        let costs = CostModel::calibrated(&[1.0, 1.29, 1.47, 1.56, 1.69, 1.81], 0.26, 1);
        // Sure drafts: keep going up to the cap, and not beyond.
        assert!(costs.drafting_more_pays(&[], 0.95, 5));
        assert!(costs.drafting_more_pays(&[0.95, 0.95], 0.95, 5));
        assert!(!costs.drafting_more_pays(&[0.95; 5], 0.95, 5));
        // A hesitant token: a step that cannot be won back.
        assert!(!costs.drafting_more_pays(&[0.9, 0.2], 0.2, 5));
        // One more draft step is not worth a 30 % chance after a sure run.
        assert!(!costs.drafting_more_pays(&[0.95, 0.95, 0.95], 0.3, 5));
        // Compute-bound (every token a full pass): nothing pays.
        let q4 = CostModel::linear(0.95, 8);
        assert!(!q4.drafting_more_pays(&[], 0.7, 5));
        // Unknown costs: the cap decides.
        assert!(CostModel::prior().drafting_more_pays(&[0.1], 0.1, 5));
    }

    #[test]
    fn expected_tokens_matches_the_closed_form() {
        for &a in &[0.3, 0.7, 0.9] {
            for g in 0..8 {
                let closed = (1.0 - f64::powi(a, g as i32 + 1)) / (1.0 - a);
                assert!((expected_tokens(&vec![a; g]) - closed).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn compute_bound_machine_never_speculates() {
        // A 0.5B draft costs about a third of a one-token target pass.
        let draft = seconds(&Q4, 1) / 3.0;
        let costs = CostModel::from_throughput(&Q4, draft);
        for &a in &[0.5, 0.6, 0.7, 0.8, 0.9] {
            let alpha = vec![a; 8];
            assert_eq!(choose_draft_len(&alpha, &costs, 7), 0, "alpha {a}");
            assert_eq!(brute_force(&Q4, draft, a, 7), 0, "alpha {a}");
            for g in 1..=7 {
                assert!(speedup(&alpha, &costs, g).unwrap() < 1.0);
            }
        }
    }

    #[test]
    fn memory_bound_machine_speculates() {
        for draft_ratio in [1.0 / 3.0, 0.1, 0.02] {
            let draft = seconds(&F16, 1) * draft_ratio;
            let costs = CostModel::from_throughput(&F16, draft);
            for &a in &[0.7, 0.75, 0.8] {
                let alpha = vec![a; 8];
                let g = choose_draft_len(&alpha, &costs, 7);
                assert_eq!(g, brute_force(&F16, draft, a, 7), "alpha {a}");
                assert!((2..=6).contains(&g), "alpha {a}, draft {draft_ratio}: {g}");
                assert!(speedup(&alpha, &costs, g).unwrap() > 1.3);
            }
        }
        // A very cheap draft at α = 0.8 goes past the 3-token plateau.
        let draft = seconds(&F16, 1) * 0.02;
        let costs = CostModel::from_throughput(&F16, draft);
        assert!(choose_draft_len(&[0.8; 8], &costs, 7) >= 3);
    }

    #[test]
    fn useless_draft_means_plain_decoding() {
        let costs = CostModel::from_throughput(&F16, seconds(&F16, 1) / 3.0);
        assert_eq!(choose_draft_len(&[0.05; 8], &costs, 7), 0);
        // A perfect free draft goes as far as allowed.
        let costs = CostModel::from_throughput(&F16, 1e-9);
        assert_eq!(choose_draft_len(&[1.0; 8], &costs, 7), 7);
        assert_eq!(choose_draft_len(&[1.0; 8], &costs, 3), 3);
        assert_eq!(choose_draft_len(&[1.0; 2], &costs, 7), 2);
        assert_eq!(choose_draft_len(&[1.0; 8], &costs, 0), 0);
    }

    #[test]
    fn nothing_measured_means_plain_decoding() {
        assert_eq!(choose_draft_len(&[1.0; 8], &CostModel::prior(), 8), 0);
        assert_eq!(speedup(&[1.0; 8], &CostModel::prior(), 3), None);
    }

    #[test]
    fn min_restricts_the_choice() {
        let costs = CostModel::from_throughput(&F16, seconds(&F16, 1) / 3.0);
        let alpha = [0.75; 8];
        for min in 1..=8 {
            let g = choose_draft_len_between(&alpha, &costs, min, 8);
            // The restricted argmax, computed directly.
            let mut want = (0, 1.0);
            for gamma in min..=8 {
                let s = speedup(&alpha, &costs, gamma).unwrap();
                if s > want.1 {
                    want = (gamma, s);
                }
            }
            assert_eq!(g, want.0, "min {min}");
            assert!(g == 0 || g >= min);
        }
        assert_eq!(
            choose_draft_len_between(&alpha, &costs, 1, 8),
            choose_draft_len(&alpha, &costs, 8)
        );
    }

    #[test]
    fn interpolation_and_extrapolation() {
        let mut c = CostModel::prior();
        assert_eq!(c.target(1), None);
        c.record_target(2, 2.0);
        // Below the smallest measured size: in proportion.
        assert!((c.target(1).unwrap() - 1.0).abs() < 1e-12);
        // One size only: flat above.
        assert!((c.target(6).unwrap() - 2.0).abs() < 1e-12);
        c.record_target(4, 3.0);
        assert!((c.target(3).unwrap() - 2.5).abs() < 1e-12);
        // Above: the slope of the two largest (0.5 per token).
        assert!((c.target(8).unwrap() - 5.0).abs() < 1e-12);
        // A decreasing pair extrapolates flat, never below.
        let mut d = CostModel::prior();
        d.record_target(1, 2.0);
        d.record_target(2, 1.5);
        assert!((d.target(5).unwrap() - 1.5).abs() < 1e-12);
        // The Q4 table's missing k = 7 lies between 6 and 8.
        let q4 = CostModel::from_throughput(&Q4, 0.01);
        let t7 = q4.target(7).unwrap();
        assert!(t7 > seconds(&Q4, 6) && t7 < seconds(&Q4, 8));
    }

    #[test]
    fn estimates_resist_spikes_and_follow_lasting_changes() {
        let mut c = CostModel::prior();
        // A slow first sample does not stick.
        c.record_target(2, 5.0);
        c.record_target(2, 2.0);
        c.record_target(2, 2.2);
        assert!((c.target(2).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(c.samples(2), 3);
        // One spike moves the average by a few percent at most.
        c.record_target(2, 50.0);
        let after_spike = c.target(2).unwrap();
        assert!(
            after_spike > 2.0 && after_spike < 2.0 * 1.06,
            "{after_spike}"
        );
        // A lasting slowdown comes through (at most 5% per sample), and so
        // does a speedup.
        for _ in 0..100 {
            c.record_target(2, 10.0);
        }
        assert!((c.target(2).unwrap() - 10.0).abs() < 1e-2);
        for _ in 0..100 {
            c.record_target(2, 1.0);
        }
        assert!((c.target(2).unwrap() - 1.0).abs() < 1e-2);
        // Junk is ignored.
        c.record_target(2, f64::NAN);
        c.record_target(2, -1.0);
        assert_eq!(c.samples(2), 204);
        c.record_draft(1.5);
        c.record_draft(0.5);
        assert!((c.draft().unwrap() - 0.5).abs() < 1e-12);
    }

    /// The pipelined formula, written out independently for one case.
    fn pipelined_by_hand(alpha: f64, t: impl Fn(usize) -> f64, td: f64, g: usize) -> f64 {
        let e: f64 = (0..=g).map(|i| alpha.powi(i as i32)).sum();
        let h = alpha.powi(g as i32 + 1);
        let held = ((g + 1) as f64 * td).max(t(g + 1));
        let failed = g as f64 * td + t(g + 1);
        e * t(1) / (h * held + (1.0 - h) * failed)
    }

    #[test]
    fn pipelined_speedup_matches_the_formula() {
        let td = seconds(&F16, 1) / 3.0;
        let costs = CostModel::from_throughput(&F16, td);
        for &a in &[0.0, 0.3, 0.8, 1.0] {
            for g in 1..=7 {
                let got = pipelined_speedup(&vec![a; g + 1], &costs, g).unwrap();
                let want = pipelined_by_hand(a, |k| seconds(&F16, k), td, g);
                assert!(
                    (got - want).abs() < 1e-9,
                    "alpha {a}, gamma {g}: {got} vs {want}"
                );
            }
        }
        assert_eq!(pipelined_speedup(&[0.9; 8], &costs, 0), Some(1.0));
        // The guess needs one more estimate than the drafts.
        assert_eq!(pipelined_speedup(&[0.9; 3], &costs, 3), None);
        assert_eq!(pipelined_speedup(&[0.9; 4], &CostModel::prior(), 3), None);
    }

    #[test]
    fn pipelined_speedup_bounds() {
        let td = seconds(&F16, 1) / 3.0;
        let costs = CostModel::from_throughput(&F16, td);
        for &a in &[0.2, 0.6, 0.9] {
            for g in 1..=7 {
                let alpha = vec![a; g + 1];
                let pipe = pipelined_speedup(&alpha, &costs, g).unwrap();
                let seq = speedup(&alpha, &costs, g).unwrap();
                // A draft step cheaper than a target pass: overlap never hurts.
                assert!(pipe >= seq - 1e-12, "alpha {a}, gamma {g}");
                // Never better than free drafting.
                let free = expected_tokens(&alpha[..g]) * seconds(&F16, 1) / seconds(&F16, g + 1);
                assert!(pipe <= free + 1e-12, "alpha {a}, gamma {g}");
            }
        }
        // A guess that never holds: exactly the sequential estimate.
        let mut alpha = vec![0.9; 4];
        alpha[3] = 0.0;
        assert!(
            (pipelined_speedup(&alpha, &costs, 3).unwrap() - speedup(&alpha, &costs, 3).unwrap())
                .abs()
                < 1e-12
        );
        // A perfect draft: the step costs the slower of the two threads.
        let t4 = seconds(&F16, 4);
        let want = 4.0 * seconds(&F16, 1) / t4.max(4.0 * td);
        assert!((pipelined_speedup(&[1.0; 4], &costs, 3).unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn overlap_can_make_speculation_pay_on_a_compute_bound_machine() {
        // The sequential model never speculates on the Q4 table (see above);
        // with a good draft, hiding the draft time behind the target pass
        // pays for one draft.
        let draft = seconds(&Q4, 1) / 3.0;
        let costs = CostModel::from_throughput(&Q4, draft);
        let alpha = [0.9; 9];
        assert_eq!(choose_draft_len(&alpha, &costs, 7), 0);
        let (g, s) = best_between(Timing::Pipelined, &alpha, &costs, 1, 7);
        assert!(g >= 1 && s > 1.0, "{g} {s}");
        // A poor draft still does not pay.
        let (g, _) = best_between(Timing::Pipelined, &[0.3; 9], &costs, 1, 7);
        assert_eq!(g, 0);
    }

    #[test]
    fn unmeasured_draft_uses_a_guess_relative_to_the_target() {
        let mut c = CostModel::prior();
        assert_eq!(c.draft_or_guess(), None);
        c.record_target(1, 2.0);
        assert!((c.draft_or_guess().unwrap() - 2.0 * UNMEASURED_DRAFT_RATIO).abs() < 1e-12);
    }

    #[test]
    fn costs_round_trip_through_json_and_tolerate_bad_input() {
        let c = CostModel::from_throughput(&F16, 0.01);
        let s = serde_json::to_string(&c).unwrap();
        let back: CostModel = serde_json::from_str(&s).unwrap();
        assert_eq!(back.target_samples, c.target_samples);
        assert_eq!(back.draft_samples, c.draft_samples);
        for k in 1..=8 {
            assert!((back.target(k).unwrap() / c.target(k).unwrap() - 1.0).abs() < 1e-12);
        }
        // Mismatched lengths and junk values count as unmeasured.
        let bad: CostModel = serde_json::from_str(
            r#"{"target_seconds":[0.1,-3.0],"target_samples":[1,5,7],"draft_seconds":0.0,"draft_samples":4}"#,
        )
        .unwrap();
        assert_eq!(bad.samples(2), 0);
        assert_eq!(bad.samples(3), 0);
        assert!((bad.target(2).unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(bad.draft(), None);
    }
    /// The draft-length choice of a model-free drafter, as the driver makes
    /// it: the best prefix of `available` drafts whose i-th is right with
    /// `rate(i)`, at most `max_len`.
    #[derive(Clone)]
    struct Policy {
        max_len: usize,
        draft_cost: f64,
        pass_costs: [f64; 16],
    }

    impl Policy {
        fn model(&self) -> CostModel {
            if self.pass_costs[0] > 0.0 {
                let n = self.pass_costs.iter().take_while(|&&c| c > 0.0).count();
                CostModel::calibrated(&self.pass_costs[..n], 0.0, 0)
            } else {
                CostModel::linear(self.draft_cost, 16)
            }
        }
        fn draft_len(&self, available: usize, rate: impl Fn(usize) -> f64) -> usize {
            let rates: Vec<f64> = (0..available).map(rate).collect();
            self.model().best_prefix(&rates, self.max_len).0
        }
        fn cost(&self, k: usize) -> f64 {
            self.model().relative(k + 1)
        }
    }

    const LINEAR: Policy = Policy {
        max_len: 8,
        draft_cost: 0.65,
        pass_costs: [0.0; 16],
    };

    /// Brute force: the expected tokens per cost of every k.
    fn best_by_enumeration(p: &Policy, available: usize, rates: &[f64]) -> usize {
        let value = |k: usize| {
            let e: f64 = (0..=k).map(|j| rates[..j].iter().product::<f64>()).sum();
            e / p.cost(k)
        };
        (0..=available.min(p.max_len)).fold(0, |best, k| {
            if value(k) > value(best) * (1.0 + 1e-9) {
                k
            } else {
                best
            }
        })
    }

    #[test]
    fn drafting_pays_only_above_the_draft_cost() {
        // One drafted token: E = 1 + α against cost 1 + c: pays iff α > c.
        assert_eq!(LINEAR.draft_len(1, |_| 0.6), 0);
        assert_eq!(LINEAR.draft_len(1, |_| 0.7), 1);
        let cheap = Policy {
            draft_cost: 0.1,
            ..LINEAR
        };
        assert_eq!(cheap.draft_len(1, |_| 0.2), 1);
        assert_eq!(cheap.draft_len(1, |_| 0.05), 0);
        // Nothing available, nothing drafted.
        assert_eq!(cheap.draft_len(0, |_| 1.0), 0);
    }

    #[test]
    fn draft_length_maximizes_tokens_per_cost() {
        let mut table = [0.0; 16];
        // Q4_K_M on 2 cores: passes of 8+ tokens cost a jump more.
        table[..10].copy_from_slice(&[1.0, 1.74, 2.38, 2.96, 3.65, 4.26, 4.92, 7.76, 8.43, 8.65]);
        let measured = Policy {
            max_len: 12,
            pass_costs: table,
            ..LINEAR
        };
        for p in [
            LINEAR,
            Policy {
                draft_cost: 0.1,
                ..LINEAR
            },
            Policy {
                draft_cost: 0.0,
                ..LINEAR
            },
            measured.clone(),
        ] {
            for available in 0..=12 {
                for i in 0..=20 {
                    let base = i as f64 / 20.0;
                    // Rates that rise along the draft, as a copy's do.
                    let rates: Vec<f64> =
                        (0..16).map(|j| (base + 0.02 * j as f64).min(1.0)).collect();
                    assert_eq!(
                        p.draft_len(available, |j| rates[j]),
                        best_by_enumeration(&p, available, &rates),
                        "cost {} available {available} base {base}",
                        p.draft_cost
                    );
                }
            }
        }
        // Sure drafts are taken up to the cap.
        assert_eq!(LINEAR.draft_len(20, |_| 1.0), 8);
        // Measured costs: a sure copy stops short of the 8-token jump when
        // the cap does not allow the longer passes that amortize it.
        let capped = Policy {
            max_len: 8,
            ..measured
        };
        assert_eq!(capped.draft_len(20, |_| 1.0), 6);
        // On a compute-bound target a 90 % rate is worth only a few tokens.
        let k = LINEAR.draft_len(20, |_| 0.9);
        assert!((2..=4).contains(&k), "{k}");
    }

    #[test]
    fn zero_max_len_never_drafts() {
        let never = Policy {
            max_len: 0,
            ..LINEAR
        };
        assert_eq!(never.draft_len(5, |_| 1.0), 0);
    }
}
