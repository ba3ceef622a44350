//! Online choice of the draft length for drafters that pay for every token
//! they draft (a draft model, an application's callback): acceptance
//! estimates per draft position, judged against the shared [`CostModel`], and
//! a backoff that keeps a run where drafting cannot pay close to plain
//! decoding.

use serde::{Deserialize, Serialize};

use crate::cost::{best_between, CostModel, Timing};

/// How many tokens to draft per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DraftLength {
    /// Always draft this many (capped by `draft_max` and what is left to generate).
    Fixed(usize),
    /// Choose the length each step from the measured acceptance and costs;
    /// back off to plain decoding when drafting does not pay.
    #[default]
    Adaptive,
}

/// Prior mean of the acceptance at the first draft position.
const PRIOR_MEAN: f64 = 0.5;
/// Strength of the prior, in pseudo-observations. Each later position's prior
/// mean is the estimate at the position before it (acceptance rates by
/// position are alike), so a position never tried starts where its
/// predecessor stands rather than at a fixed guess.
const PRIOR_WEIGHT: f64 = 2.0;
/// Per-observation decay of past counts: about the last 30 trials at a
/// position count, so the estimate follows the text.
const DECAY: f64 = 0.97;
/// One-token passes measured before the costs are trusted (the first pass
/// after a prefill is often slower).
const BOOTSTRAP_PASSES: u64 = 2;
/// Plain steps before the first re-exploration; doubles after each one that
/// does not change the decision.
const INITIAL_BACKOFF: usize = 8;
/// The longest wait between re-explorations.
const MAX_BACKOFF: usize = 256;
/// Acceptance assumed when asking whether exploring could pay at all.
const OPTIMISTIC_ALPHA: f64 = 0.9;
/// Speedup an optimistic acceptance must promise for an exploration.
const EXPLORE_MARGIN: f64 = 1.05;
/// The most first-position trials one catch-up's hindsight counts for.
const HINDSIGHT_TRIALS: usize = 12;
/// Two-token passes measured before their cost may rule exploration out.
const TRUSTED_SAMPLES: u64 = 4;

/// Decides how many tokens to draft each step from what the run measured.
///
/// In [`DraftLength::Adaptive`] mode each step drafts the length with the best
/// expected speedup ([`crate::cost::choose_draft_len`], or
/// [`crate::cost::pipelined_speedup`] for a pipelined drafter) under the current
/// estimates.
///
/// The tuner owns no costs: it reads the [`CostModel`] it is handed each
/// step. Calibrated costs stay fixed ([`CostModel::fixed`]), so the draft
/// lengths, and with them the text at temperature > 0 and the pass sizes at
/// temperature 0, depend only on the seed and the text, never on how long a
/// pass happened to take. Unfixed costs are measured during the run (and the
/// choice then follows the machine's load). The acceptance estimates are always
/// updated: they depend only on the run's own verdicts.
/// When plain decoding wins, the drafter is left alone and re-exploration is
/// rare: one short draft after 8, 16, 32, … (at most 256) plain steps, and,
/// once two-token passes are well measured, only if the costs leave room for
/// speculation to pay with a good draft (on a compute-bound machine they do
/// not, and the run stays plain).
#[derive(Debug, Clone)]
pub struct Tuner {
    mode: DraftLength,
    model: Timing,
    /// Decayed (accepted, tried) counts per draft position, conditional on the
    /// positions before having been accepted.
    counts: Vec<(f64, f64)>,
    plain_streak: usize,
    backoff: usize,
    explorations: u64,
    /// The step just planned is an exploration.
    exploring: bool,
    /// The last exploration was accepted whole: explore again at once rather
    /// than after the backoff (a good draft is learned in a few steps instead
    /// of after 8 + 16 + 32 plain ones, which is most of a short answer).
    explore_again: bool,
}

impl Tuner {
    /// A tuner in `mode` for sequential drafting.
    pub fn new(mode: DraftLength) -> Self {
        Self {
            mode,
            model: Timing::Sequential,
            counts: Vec::new(),
            plain_streak: 0,
            backoff: INITIAL_BACKOFF,
            explorations: 0,
            exploring: false,
            explore_again: false,
        }
    }

    /// Forgets what the last generation taught about acceptance (estimates,
    /// backoff), keeping the costs: each generation then starts from the
    /// same state, so with calibrated costs the same seed and prompt give the
    /// same text in every generation of a process, not only in its first.
    pub fn new_generation(&mut self) {
        self.counts.clear();
        self.plain_streak = 0;
        self.backoff = INITIAL_BACKOFF;
        self.explorations = 0;
        self.exploring = false;
        self.explore_again = false;
    }

    /// The same tuner judging draft lengths by `model`.
    pub fn with_cost_model(mut self, model: Timing) -> Self {
        self.model = model;
        self
    }

    /// The cost model the draft lengths are judged by.
    pub fn cost_model(&self) -> Timing {
        self.model
    }

    /// The draft-length mode.
    pub fn mode(&self) -> DraftLength {
        self.mode
    }

    /// True if the step just planned is an exploration.
    pub fn exploring(&self) -> bool {
        self.exploring
    }

    /// How many re-explorations the backoff has made.
    pub fn explorations(&self) -> u64 {
        self.explorations
    }

    /// Acceptance estimates α_1..α_n (conditional on the positions before).
    pub fn alpha(&self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        let mut prior = PRIOR_MEAN;
        for i in 0..n {
            let (acc, tried) = self.counts.get(i).copied().unwrap_or((0.0, 0.0));
            let a = (acc + PRIOR_WEIGHT * prior) / (tried + PRIOR_WEIGHT);
            out.push(a);
            prior = a;
        }
        out
    }

    /// How many tokens to draft this step: 0 (plain decoding) or a length in
    /// `max(min, 1)..=cap`.
    pub fn plan(&mut self, min: usize, cap: usize, costs: &CostModel) -> usize {
        self.plan_valued(min, cap, costs).0
    }

    /// [`Tuner::plan`], with the speedup over a plain step the current
    /// estimates expect of that length (1 for plain decoding; below 1 for an
    /// exploration that is not expected to pay).
    pub fn plan_valued(&mut self, min: usize, cap: usize, costs: &CostModel) -> (usize, f64) {
        let min = min.max(1);
        if cap < min {
            // Too close to the end (or drafting disabled): not a choice, so it
            // does not count towards the backoff.
            return (0, 1.0);
        }
        let gamma = match self.mode {
            DraftLength::Fixed(g) => {
                let g = g.min(cap);
                if g >= min {
                    g
                } else {
                    0
                }
            }
            DraftLength::Adaptive => self.plan_adaptive(min, cap, costs),
        };
        let value = self
            .model
            .speedup(&self.alpha(gamma + 1), costs, gamma)
            .unwrap_or(1.0);
        (gamma, value)
    }

    fn plan_adaptive(&mut self, min: usize, cap: usize, costs: &CostModel) -> usize {
        self.exploring = false;
        let measure_costs = !costs.fixed;
        if measure_costs && costs.samples(1) < BOOTSTRAP_PASSES {
            return 0;
        }
        // One more than the cap: the pipelined model weighs the guess after
        // the last draft too.
        let alpha = self.alpha(cap + 1);
        let (gamma, _) = best_between(self.model, &alpha, costs, min, cap);
        if gamma > 0 {
            self.plain_streak = 0;
            self.backoff = INITIAL_BACKOFF;
            self.explore_again = false;
            return gamma;
        }
        // The first choice of a generation explores at once: nothing is
        // known of this text yet, and waiting out the backoff would spend the
        // first steps of every answer plain (8 of 128 tokens) where drafting
        // may pay. Where it cannot pay even with a good draft (a
        // compute-bound target), the check below still keeps the run plain.
        let first = self.counts.is_empty() && self.explorations == 0;
        let again = std::mem::take(&mut self.explore_again) || first;
        if !again && self.plain_streak < self.backoff {
            self.plain_streak += 1;
            return 0;
        }
        self.plain_streak = 0;
        if !again {
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        // Once the costs are well measured, explore only if a good draft
        // could make speculation pay at these costs; otherwise nothing the
        // exploration could learn would change the decision. The exploration
        // drafts the length that would pay best with a good draft: where
        // short passes cost nearly as much as long ones (F16 on a CPU: 2
        // tokens 1.7 one-token passes, 5 tokens 2.1), a one-token probe could
        // never show that drafting pays, and a long one learns every
        // position's acceptance at once.
        let optimistic: Vec<f64> = alpha.iter().map(|a| a.max(OPTIMISTIC_ALPHA)).collect();
        let (probe, best) = best_between(self.model, &optimistic, costs, min, cap);
        // Given costs are trusted as they are; measured ones once two-token
        // passes have enough samples.
        let trusted = !measure_costs || costs.samples(2) >= TRUSTED_SAMPLES;
        if best > EXPLORE_MARGIN || !trusted {
            self.explorations += 1;
            self.exploring = true;
            probe.max(min)
        } else {
            0
        }
    }

    /// Records `seen` trials of the first draft position of which `agreed`
    /// would have been accepted, measured in hindsight on text drafted by
    /// nobody ([`crate::Hindsight`]), as if they had come one by one, spread
    /// evenly. An exploration after a long plain stretch then learns the
    /// first position's acceptance from the whole stretch rather than from
    /// its one draft: two unlucky first drafts no longer keep a run plain
    /// for 8 + 16 + 32 steps where the draft agrees with the target on most
    /// tokens.
    pub fn record_hindsight(&mut self, agreed: usize, seen: usize) {
        if seen == 0 {
            return;
        }
        let rate = agreed.min(seen) as f64 / seen as f64;
        // Text caught up on is not a fair sample of what the draft will
        // face: after a long copy it is text the draft knows as well as the
        // copy did. One catch-up weighs at most HINDSIGHT_TRIALS verdicts,
        // so the verdicts that follow can still overrule it within a few
        // steps.
        let seen = seen.min(HINDSIGHT_TRIALS);
        let decay = DECAY.powi(seen as i32);
        // Σ DECAY^i over the `seen` trials, the newest weighing 1.
        let weight = (1.0 - decay) / (1.0 - DECAY);
        if self.counts.is_empty() {
            self.counts.push((0.0, 0.0));
        }
        let c = &mut self.counts[0];
        *c = (c.0 * decay + weight * rate, c.1 * decay + weight);
    }

    /// Records a verification of `drafted` tokens of which the first
    /// `accepted` were accepted.
    pub fn record_verdict(&mut self, drafted: usize, accepted: usize) {
        if std::mem::take(&mut self.exploring) && drafted > 0 && accepted == drafted {
            self.explore_again = true;
        }
        // Position i was tried only if every position before it was accepted.
        let tried = drafted.min(accepted + 1);
        if self.counts.len() < tried {
            self.counts.resize(tried, (0.0, 0.0));
        }
        for (i, c) in self.counts.iter_mut().enumerate().take(tried) {
            let ok = if i < accepted { 1.0 } else { 0.0 };
            *c = (c.0 * DECAY + ok, c.1 * DECAY + 1.0);
        }
    }
}

/// A drafter that pays for every token it drafts (a draft model, an
/// application's callback), with its draft length chosen by a [`Tuner`]: the
/// inner drafter is asked for `γ` tokens (0: not asked at all), and the
/// proposal carries the tuner's acceptance estimate by position as its
/// confidence. An inner drafter that paces itself
/// ([`crate::Drafter::paces_itself`]) is, in adaptive mode, only told whether
/// to draft: it drafts up to the cap and stops by its own calibrated
/// confidence, which the proposal keeps. A fixed draft length, and an
/// exploration (a step drafted to measure acceptance rather than because it
/// pays), are verified whole.
#[derive(Debug, Clone)]
pub struct Tuned<D> {
    inner: D,
    tuner: Tuner,
    draft_min: usize,
    drafted: bool,
    /// What [`Drafter::forecast`] planned for this step: the length, and the
    /// tuner as it would be after that plan (committed when the plan is
    /// drafted, or when the step passes without it, unless it was an
    /// exploration: an exploration not made is asked for again).
    planned: Option<(usize, Box<Tuner>)>,
    /// The last proposal's hindsight, recorded with its verdict (where the
    /// tuner's estimates set the proposal's confidences it is recorded at
    /// once instead).
    hindsight: crate::Hindsight,
}

impl<D: crate::Drafter> Tuned<D> {
    /// `inner` with its length chosen in `mode`; lengths below `draft_min`
    /// are not drafted.
    pub fn new(inner: D, mode: DraftLength, draft_min: usize) -> Self {
        Self {
            inner,
            tuner: Tuner::new(mode),
            draft_min,
            drafted: false,
            planned: None,
            hindsight: crate::Hindsight::default(),
        }
    }

    /// The same with the tuner judging lengths by `timing`.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.tuner = self.tuner.with_cost_model(timing);
        self
    }

    /// The inner drafter.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The inner drafter, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Gives the inner drafter back.
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// The tuner (acceptance estimates, explorations).
    pub fn tuner(&self) -> &Tuner {
        &self.tuner
    }

    /// A forecast's plan that was not drafted: the step passed without the
    /// drafter, which the tuner counts as the plan says (a plain step
    /// towards the next exploration), except an exploration, which is asked
    /// for again at the next step.
    fn commit_unused_plan(&mut self) {
        if let Some((_, after)) = self.planned.take() {
            if !after.exploring() {
                self.tuner = *after;
            }
        }
    }
}

impl<D: crate::Drafter> crate::Drafter for Tuned<D> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn sequences(&self) -> usize {
        self.inner.sequences()
    }
    fn greedy_only(&self) -> bool {
        self.inner.greedy_only()
    }
    fn catch_up_seconds(&self, tokens: &[crate::TokenId]) -> f64 {
        self.inner.catch_up_seconds(tokens)
    }
    fn start(
        &mut self,
        tokens: &[crate::TokenId],
        target_n_vocab: usize,
        sampling: &crate::SamplingParams,
    ) -> Result<(), crate::CoreError> {
        self.tuner.new_generation();
        self.drafted = false;
        self.planned = None;
        self.hindsight = crate::Hindsight::default();
        self.inner.start(tokens, target_n_vocab, sampling)
    }
    fn forecast(&mut self, req: &crate::DraftRequest<'_>) -> crate::draft::Forecast {
        self.commit_unused_plan();
        let mut after = Box::new(self.tuner.clone());
        let (gamma, speedup) = after.plan_valued(self.draft_min, req.max, req.costs);
        let exploring = after.exploring();
        self.planned = Some((gamma, after));
        if gamma == 0 {
            crate::draft::Forecast::Skip
        } else {
            crate::draft::Forecast::Draft {
                tokens: gamma,
                speedup,
                exploring,
            }
        }
    }
    fn propose(
        &mut self,
        req: &crate::DraftRequest<'_>,
        rng: &mut crate::Rng,
        out: &mut crate::Proposal,
    ) -> Result<(), crate::CoreError> {
        let gamma = match self.planned.take() {
            Some((g, after)) => {
                self.tuner = *after;
                g.min(req.max)
            }
            None => self.tuner.plan(self.draft_min, req.max, req.costs),
        };
        self.drafted = gamma > 0;
        if gamma == 0 {
            return Ok(());
        }
        let fixed = matches!(self.tuner.mode(), DraftLength::Fixed(_));
        if self.inner.paces_itself() && !fixed {
            // The tuner said "draft"; the drafter knows better than an
            // average by position how far its draft is worth taking.
            let inner_req = crate::DraftRequest {
                draft_all: false,
                ..*req
            };
            self.inner.propose(&inner_req, rng, out)?;
            out.truncate(req.max);
            self.hindsight = out.hindsight;
        } else {
            let inner_req = crate::DraftRequest {
                max: gamma,
                draft_all: true,
                ..*req
            };
            self.inner.propose(&inner_req, rng, out)?;
            out.truncate(gamma);
            // Learned before the estimates below are read: the caught-up
            // text precedes this draft.
            self.tuner
                .record_hindsight(out.hindsight.agreed, out.hindsight.seen);
            let alpha = self.tuner.alpha(out.len());
            out.confidence.clear();
            out.confidence.extend_from_slice(&alpha);
        }
        out.keep_whole = self.tuner.exploring() || fixed;
        Ok(())
    }
    fn on_verdict(
        &mut self,
        tokens: &[crate::TokenId],
        outcome: &crate::VerifyOutcome,
    ) -> Result<(), crate::CoreError> {
        self.commit_unused_plan();
        let hindsight = std::mem::take(&mut self.hindsight);
        self.tuner
            .record_hindsight(hindsight.agreed, hindsight.seen);
        if std::mem::take(&mut self.drafted) && outcome.verified > 0 {
            self.tuner
                .record_verdict(outcome.verified, outcome.accepted);
        }
        self.inner.on_verdict(tokens, outcome)
    }
    fn finish(&mut self, stats: &mut crate::RunStats) {
        self.inner.finish(stats)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A tuner with the cost model it reads, as a draft-then-verify driver
    /// pairs them: given costs stay fixed, missing ones are measured from the
    /// run's timings.
    struct Sim {
        tuner: Tuner,
        costs: CostModel,
    }

    impl Sim {
        fn new(mode: DraftLength, given: Option<CostModel>) -> Self {
            Self {
                tuner: Tuner::new(mode),
                costs: given.unwrap_or_else(CostModel::measured),
            }
        }
        fn with_cost_model(mut self, model: Timing) -> Self {
            self.tuner = self.tuner.with_cost_model(model);
            self
        }
        fn plan(&mut self, min: usize, cap: usize) -> usize {
            self.tuner.plan(min, cap, &self.costs)
        }
        fn record_target_pass(&mut self, size: usize, seconds: f64) {
            self.costs.observe_target(size, seconds);
        }
        fn record_draft(&mut self, seconds: f64, passes: u64) {
            if passes > 0 {
                self.costs.observe_draft(seconds / passes as f64);
            }
        }
        fn record_verdict(&mut self, drafted: usize, accepted: usize) {
            self.tuner.record_verdict(drafted, accepted);
        }
        fn costs(&self) -> &CostModel {
            &self.costs
        }
        fn measures_costs(&self) -> bool {
            !self.costs.fixed
        }
        fn alpha(&self, n: usize) -> Vec<f64> {
            self.tuner.alpha(n)
        }
        fn new_generation(&mut self) {
            self.tuner.new_generation();
        }
        fn cost_model(&self) -> Timing {
            self.tuner.cost_model()
        }
    }
    use crate::cost::speedup;
    use crate::Rng;

    #[test]
    fn acceptance_estimates_are_conditional_and_start_at_the_prior() {
        let mut t = Sim::new(DraftLength::Adaptive, None);
        assert_eq!(t.alpha(3), vec![PRIOR_MEAN; 3]);
        for _ in 0..200 {
            // First accepted, second rejected, third never tried.
            t.record_verdict(3, 1);
        }
        let a = t.alpha(3);
        assert!(a[0] > 0.95, "{a:?}");
        // The prior (two pseudo-observations at the first position's rate)
        // still weighs a little against ~33 decayed observations.
        assert!(a[1] < 0.1, "{a:?}");
        // Untried: starts from its predecessor's estimate.
        assert!((a[2] - a[1]).abs() < 1e-12);
        for _ in 0..200 {
            t.record_verdict(2, 0);
        }
        assert!(t.alpha(1)[0] < 0.1, "recent observations dominate");
    }

    #[test]
    fn hindsight_counts_as_first_position_trials() {
        let mut t = Sim::new(DraftLength::Adaptive, None);
        // Two first drafts rejected: the estimate falls below the prior.
        t.record_verdict(4, 0);
        t.record_verdict(4, 0);
        assert!(t.alpha(1)[0] < 0.3, "{:?}", t.alpha(1));
        // A catch-up over 30 tokens where the draft's guess was the
        // target's token 27 times outweighs them.
        t.tuner.record_hindsight(27, 30);
        let a = t.alpha(2)[0];
        assert!((0.75..0.9).contains(&a), "{a}");
        // One catch-up weighs at most HINDSIGHT_TRIALS verdicts, however
        // long: a long one where the draft never agreed halves the estimate
        // rather than erasing it, and a few verdicts or catch-ups more
        // decide.
        t.tuner.record_hindsight(0, 600);
        let a = t.alpha(1)[0];
        assert!((0.25..0.5).contains(&a), "{a}");
        t.tuner.record_hindsight(0, 600);
        t.tuner.record_hindsight(0, 600);
        assert!(t.alpha(1)[0] < 0.2, "{:?}", t.alpha(1));
        // Nothing seen changes nothing.
        let before = t.alpha(3);
        t.tuner.record_hindsight(0, 0);
        assert_eq!(t.alpha(3), before);
    }

    #[test]
    fn hindsight_after_a_failed_exploration_resumes_drafting() {
        // F16-like costs: drafting pays at a good acceptance.
        let costs = CostModel::calibrated(&[1.0, 1.29, 1.47, 1.56, 1.69, 1.81, 1.95], 0.1, 1);
        let mut t = Sim::new(DraftLength::Adaptive, Some(costs));
        assert!(t.plan(1, 8) > 0, "the first step explores");
        t.record_verdict(5, 0);
        assert_eq!(t.plan(1, 8), 0, "a rejected first draft backs off");
        t.tuner.record_hindsight(20, 24);
        assert!(t.plan(1, 8) > 0, "hindsight says the draft agrees");
    }

    /// A simulated run: costs from a table, acceptance a fixed α per
    /// position, deterministic random draws. Returns (tokens, seconds, steps
    /// that drafted).
    fn simulate(
        table: &[(usize, f64)],
        t_draft: f64,
        alpha: f64,
        steps: usize,
    ) -> (f64, f64, usize) {
        // Sizes missing from the table (7 for Q4, 9) follow `CostModel`'
        // interpolation and extrapolation.
        let machine = CostModel::from_throughput(table, t_draft);
        let t = |k: usize| machine.target(k).unwrap();
        let mut tuner = Sim::new(DraftLength::Adaptive, None);
        let mut rng = Rng::new(5);
        let (mut tokens, mut seconds, mut drafting) = (0.0, 0.0, 0);
        for _ in 0..steps {
            let g = tuner.plan(1, 8);
            let accepted = (0..g).take_while(|_| rng.uniform() < alpha).count();
            if g > 0 {
                drafting += 1;
                seconds += g as f64 * t_draft;
                tuner.record_draft(g as f64 * t_draft, g as u64);
            }
            seconds += t(g + 1);
            tuner.record_target_pass(g + 1, t(g + 1));
            if g > 0 {
                tuner.record_verdict(g, accepted);
            }
            tokens += accepted as f64 + 1.0;
        }
        (tokens, seconds, drafting)
    }

    const Q4: [(usize, f64); 7] = [
        (1, 19.6),
        (2, 23.7),
        (3, 24.6),
        (4, 24.5),
        (5, 28.0),
        (6, 32.7),
        (8, 26.3),
    ];
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

    #[test]
    fn compute_bound_run_stays_plain() {
        let t_draft = 1.0 / 19.6 / 3.0;
        for alpha in [0.3, 0.8, 0.9] {
            let steps = 2000;
            let (tokens, seconds, drafting) = simulate(&Q4, t_draft, alpha, steps);
            // A few explorations at the start, then none.
            assert!(drafting <= 10, "alpha {alpha}: {drafting} drafting steps");
            let achieved = tokens / seconds;
            let plain_rate = 19.6;
            assert!(
                achieved >= 0.98 * plain_rate,
                "alpha {alpha}: {achieved} tok/s"
            );
        }
    }

    #[test]
    fn memory_bound_run_finds_the_best_length() {
        let t_draft = 1.0 / 8.2 / 3.0;
        for alpha in [0.7, 0.8, 0.9] {
            let (tokens, seconds, drafting) = simulate(&F16, t_draft, alpha, 3000);
            assert!(drafting > 2900, "alpha {alpha}: {drafting}");
            let achieved = tokens / seconds;
            // The best fixed length's expected throughput, from the formula.
            let costs = CostModel::from_throughput(&F16, t_draft);
            let a = vec![alpha; 8];
            let best = (1..=8)
                .map(|g| speedup(&a, &costs, g).unwrap())
                .fold(1.0, f64::max)
                * 8.2;
            assert!(
                achieved >= 0.95 * best,
                "alpha {alpha}: {achieved} tok/s vs best fixed {best}"
            );
        }
    }

    /// Qwen2.5-Coder-1.5B F16 on 2 cores (llama.cpp at -O3) after a
    /// 300-token context: a two-token pass costs 1.7 one-token passes, a
    /// five-token pass only 2.1, so drafting one token never pays while four
    /// or five do.
    const F16_O3: [(usize, f64); 8] = [
        (1, 13.46),
        (2, 15.85),
        (3, 21.38),
        (4, 26.56),
        (5, 31.46),
        (6, 35.26),
        (7, 32.44),
        (8, 34.38),
    ];

    #[test]
    fn finds_long_drafts_early_when_short_ones_do_not_pay() {
        // The bench's setting: costs calibrated beforehand and given, answers
        // of 160 tokens, each generation starting afresh.
        let t_draft = 0.0203;
        let costs = CostModel::from_throughput(&F16_O3, t_draft);
        for alpha in [0.8, 0.9, 0.97] {
            let mut tuner = Sim::new(DraftLength::Adaptive, Some(costs.clone()));
            let mut rng = Rng::new(7);
            let (mut tokens, mut seconds) = (0.0, 0.0);
            for _ in 0..20 {
                tuner.new_generation();
                let mut emitted = 0;
                while emitted < 160 {
                    let g = tuner.plan(1, 8);
                    let accepted = (0..g).take_while(|_| rng.uniform() < alpha).count();
                    seconds += g as f64 * t_draft + costs.target(g + 1).unwrap();
                    if g > 0 {
                        tuner.record_verdict(g, accepted);
                    }
                    emitted += accepted + 1;
                }
                tokens += emitted as f64;
            }
            let a = vec![alpha; 9];
            let best = (1..=8)
                .map(|g| speedup(&a, &costs, g).unwrap())
                .fold(1.0, f64::max);
            let achieved = tokens / seconds * costs.target(1).unwrap();
            assert!(
                achieved >= 0.9 * best,
                "alpha {alpha}: {achieved:.3}x vs best fixed {best:.3}x"
            );
        }
    }

    #[test]
    fn useless_draft_on_a_memory_bound_machine_costs_little() {
        let t_draft = 1.0 / 8.2 / 3.0;
        let (tokens, seconds, drafting) = simulate(&F16, t_draft, 0.02, 3000);
        let achieved = tokens / seconds;
        assert!(
            achieved >= 0.97 * 8.2,
            "{achieved} tok/s, {drafting} drafting steps"
        );
        assert!(drafting > 0, "it keeps re-exploring, rarely");
    }

    #[test]
    fn fixed_mode_ignores_measurements() {
        let mut t = Sim::new(DraftLength::Fixed(4), None);
        assert_eq!(t.plan(1, 8), 4);
        assert_eq!(t.plan(1, 2), 2);
        assert_eq!(t.plan(3, 2), 0);
        assert_eq!(t.plan(5, 8), 0);
        assert_eq!(Sim::new(DraftLength::Fixed(0), None).plan(0, 8), 0);
    }

    #[test]
    fn given_costs_stay_fixed_and_acceptance_is_still_learned() {
        // Calibrated costs: one sample per size, which is enough.
        let given = CostModel::from_throughput(&F16, 0.01);
        let mut t = Sim::new(DraftLength::Adaptive, Some(given.clone()));
        assert!(!t.measures_costs());
        assert!(t.plan(1, 8) > 0, "no bootstrap when the costs are given");
        t.record_target_pass(1, 100.0);
        t.record_target_pass(5, 1e-9);
        t.record_draft(50.0, 1);
        assert_eq!(t.costs(), &given);
        for _ in 0..100 {
            t.record_verdict(3, 0);
        }
        assert!(t.alpha(1)[0] < 0.1);
        // Without given costs, timings are measured.
        let mut m = Sim::new(DraftLength::Adaptive, None);
        assert!(m.measures_costs());
        m.record_target_pass(1, 0.1);
        m.record_draft(0.2, 2);
        assert_eq!(m.costs().samples(1), 1);
        assert!((m.costs().draft().unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn with_given_costs_the_plan_ignores_timings() {
        // Two runs with the same verdicts and wildly different timings make
        // the same choices.
        let given = CostModel::from_throughput(&F16, 1.0 / 8.2 / 3.0);
        let mut a = Sim::new(DraftLength::Adaptive, Some(given.clone()));
        let mut b = Sim::new(DraftLength::Adaptive, Some(given));
        let mut rng = Rng::new(3);
        let mut drafted = 0;
        for step in 0..500 {
            let (ga, gb) = (a.plan(1, 8), b.plan(1, 8));
            assert_eq!(ga, gb, "step {step}");
            let accepted = (0..ga).take_while(|_| rng.uniform() < 0.6).count();
            a.record_target_pass(ga + 1, 0.01);
            b.record_target_pass(ga + 1, 0.01 * (ga + 1) as f64 * 50.0);
            a.record_draft(0.001, 1);
            b.record_draft(5.0, 1);
            if ga > 0 {
                a.record_verdict(ga, accepted);
                b.record_verdict(ga, accepted);
                drafted += 1;
            }
        }
        assert!(drafted > 0);
    }

    #[test]
    fn the_pipelined_model_drafts_where_overlap_pays() {
        // Compute-bound costs, a draft a third of a target pass, a draft that
        // is almost always right: only the overlap makes drafting pay.
        let costs = CostModel::from_throughput(&Q4, 1.0 / 19.6 / 3.0);
        let mut seq = Sim::new(DraftLength::Adaptive, Some(costs.clone()));
        let mut pipe =
            Sim::new(DraftLength::Adaptive, Some(costs)).with_cost_model(Timing::Pipelined);
        assert_eq!(pipe.cost_model(), Timing::Pipelined);
        // One draft per verdict, nine in ten accepted: α ≈ 0.9 everywhere.
        for i in 0..200 {
            let accepted = usize::from(i % 10 != 0);
            seq.record_verdict(1, accepted);
            pipe.record_verdict(1, accepted);
        }
        let a = pipe.alpha(3);
        assert!(a.iter().all(|&x| (x - 0.9).abs() < 0.05), "{a:?}");
        assert_eq!(seq.plan(1, 7), 0);
        assert!(pipe.plan(1, 7) > 0);
    }

    #[test]
    fn adaptive_bootstraps_with_plain_passes() {
        let mut t = Sim::new(DraftLength::Adaptive, None);
        assert_eq!(t.plan(1, 8), 0);
        t.record_target_pass(1, 0.1);
        assert_eq!(t.plan(1, 8), 0);
        t.record_target_pass(1, 0.1);
        // Only one size measured: larger passes are assumed to cost the same
        // until measured, so drafting is tried.
        assert!(t.plan(1, 8) > 0);
        // Cached costs skip the bootstrap.
        let cached = CostModel::from_throughput(&F16, 0.01);
        let mut c = Sim::new(
            DraftLength::Adaptive,
            Some(CostModel {
                target_samples: vec![5; 9],
                ..cached
            }),
        );
        assert!(c.plan(1, 8) > 0);
    }
}
