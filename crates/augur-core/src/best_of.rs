//! Several drafters behind one: each step the proposal expected to buy the
//! most tokens per unit of time, under the shared [`CostModel`].
//!
//! Drafters come in two kinds, told apart by [`Drafter::forecast`]. Free ones
//! (a lookup in the text) are simply asked, every step, and their proposals
//! are judged by the drafter's own confidences ([`CostModel::best_prefix`]).
//! Costly ones (a draft model, an application's callback) spend model time
//! before their proposal exists, so they are judged by their forecast: the
//! speedup their recent acceptance predicts with the drafting time counted.
//! A costly drafter runs only when that forecast beats the best free
//! proposal, so a sure copy in progress leaves the draft model idle; one that
//! has stopped paying is left out and re-tried now and then by its own
//! explorations (see [`crate::Tuner`]), which run when nothing free is on
//! offer.
//!
//! Exactness under sampling: the free proposals must be deterministic (a
//! function of the text, as copies are), and the choice to run a costly
//! drafter is made from its forecast, before it draws anything; so which
//! drafter drafts never depends on a token it draws, and the one verify step
//! keeps the output distribution the target's.
//!
//! [`CostModel`]: crate::CostModel
//! [`CostModel::best_prefix`]: crate::CostModel::best_prefix

use crate::draft::{DraftRequest, Drafter, Forecast, Proposal, VerifyOutcome};
use crate::error::CoreError;
use crate::model::TokenId;
use crate::rng::Rng;
use crate::sampling::SamplingParams;
use crate::stats::RunStats;

/// Upper bounds of the confidence classes a free drafter's claims are
/// checked in.
const CLAIM_CLASSES: [f64; 5] = [0.5, 0.7, 0.85, 0.95, f64::INFINITY];
/// How many verdicts a claim counts for before any verdict of its class.
const CLAIM_PRIOR_WEIGHT: f64 = 3.0;
/// Per-verdict decay of a class's counts (about the last 20 count).
const CLAIM_DECAY: f64 = 0.95;
/// The weight a greedy generation's checks keep in the next one.
const CLAIM_CARRY: f64 = 0.5;

/// How often a free drafter's tokens were accepted, by the confidence it
/// claimed for them: its claims are replaced by what verification showed
/// for claims like them. A lookup's confidence is learned from how copies
/// continue in the text; where its matches are chance matches (answers
/// that copy little), the same claim is right far less often, and this
/// is what the choice between drafters must know.
#[derive(Debug, Clone, Copy, Default)]
struct Claims {
    hits: [f64; CLAIM_CLASSES.len()],
    seen: [f64; CLAIM_CLASSES.len()],
}

impl Claims {
    fn class(claim: f64) -> usize {
        CLAIM_CLASSES
            .iter()
            .position(|&hi| claim < hi)
            .unwrap_or(CLAIM_CLASSES.len() - 1)
    }

    /// The acceptance verdicts showed for claims like `claim`.
    fn checked(&self, claim: f64) -> f64 {
        let c = Self::class(claim);
        let claim = claim.clamp(0.0, 1.0);
        (self.hits[c] + CLAIM_PRIOR_WEIGHT * claim) / (self.seen[c] + CLAIM_PRIOR_WEIGHT)
    }

    /// What a new generation keeps of this one's checks.
    fn carry_over(&mut self) {
        for x in self.hits.iter_mut().chain(self.seen.iter_mut()) {
            *x *= CLAIM_CARRY;
        }
    }

    fn observe(&mut self, claim: f64, accepted: bool) {
        let c = Self::class(claim);
        self.hits[c] = self.hits[c] * CLAIM_DECAY + f64::from(u8::from(accepted));
        self.seen[c] = self.seen[c] * CLAIM_DECAY + 1.0;
    }
}

/// A costly drafter's exploration runs unless the best free proposal is
/// expected to speed the step up by at least this much.
const EXPLORE_UNLESS_FREE_PAYS: f64 = 1.2;

/// A costly drafter that is expected to pay runs unless the best free
/// proposal is expected to pay at least this much, even where the free
/// proposal's figure is the higher: a lookup's middling figures come from
/// chance matches whose checked claims learn slowly (on F16 summaries here,
/// copies valued 1.0–1.5 had 11 of 59 drafts accepted), and a draft model's
/// forecast, made from its average acceptance by position, undervalues a
/// draft that stops where it hesitates. The free proposal still rides
/// along as a tree branch where that pays; sure copies (2x and more) win.
const FREE_SURELY_PAYS: f64 = 1.5;

/// One drafter of a [`BestOf`], with the most tokens it may draft per step.
struct Member {
    drafter: Box<dyn Drafter + Send>,
    cap: usize,
    /// Usable in this generation (a greedy-only drafter is not under sampling).
    active: bool,
    /// A free drafter's claims, checked against verdicts.
    claims: Claims,
}

/// Chooses among several drafters every step (see the module documentation).
/// Each member keeps its own state: all of them see every verdict, and the
/// one whose proposal was verified sees it as its own.
pub struct BestOf {
    name: &'static str,
    members: Vec<Member>,
    /// The best free proposal so far this step, and a scratch one.
    best: Proposal,
    scratch: Proposal,
    /// The member whose proposal this step verifies.
    chosen: Option<usize>,
    /// The confidences the free member whose proposal is best so far (and
    /// then the chosen one) claimed, and a scratch copy.
    claimed: Vec<f64>,
    scratch_claims: Vec<f64>,
    /// Which members forecast [`Forecast::Free`] this step.
    free_now: Vec<bool>,
    /// Token trees: at temperature 0, a free proposal that disagrees with
    /// the costly one from its first token may ride along as a branch.
    trees: bool,
    /// This step's proposal carries the free member `.0`'s proposal as
    /// branch 0.
    branch_of: Option<usize>,
    /// Sampling this generation (no trees).
    greedy: bool,
    /// How many steps in a row a costly drafter has drafted since it last
    /// paid for a long catch-up (None: not in such a run).
    run_after_catch_up: Option<usize>,
    /// The mean length of those runs: the steps a catch-up's cost is
    /// spread over when deciding whether to pay it.
    mean_run: f64,
    /// Plain steps in a row (nothing drafted).
    plain_streak: usize,
    /// At temperature 0, the best free proposal of a step that verified the
    /// costly drafter's instead: its member, the position of its first
    /// token, its tokens and its claims, checked against the committed text.
    unverified: Option<(usize, usize)>,
    unverified_tokens: Vec<TokenId>,
    unverified_claims: Vec<f64>,
}

/// The steps a long catch-up is first expected to serve.
const PRIOR_RUN: f64 = 2.0;
/// Weight of the latest run in [`BestOf`]'s mean run after a catch-up.
const RUN_WEIGHT: f64 = 0.5;
/// Plain steps in a row after which a costly drafter's pending catch-up no
/// longer counts against running it.
const CATCH_UP_SUNK_AFTER: usize = 3;

impl std::fmt::Debug for BestOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BestOf")
            .field("name", &self.name)
            .field("members", &self.member_names())
            .finish()
    }
}

impl BestOf {
    /// A choice among no drafters yet, reported as `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            members: Vec::new(),
            best: Proposal::new(),
            scratch: Proposal::new(),
            chosen: None,
            claimed: Vec::new(),
            scratch_claims: Vec::new(),
            free_now: Vec::new(),
            trees: false,
            branch_of: None,
            greedy: true,
            run_after_catch_up: None,
            mean_run: PRIOR_RUN,
            plain_streak: 0,
            unverified: None,
            unverified_tokens: Vec::new(),
            unverified_claims: Vec::new(),
        }
    }

    /// The same choice verifying, at temperature 0, two candidates in one
    /// target pass where the cost model says that pays (see
    /// [`BestOf::tree_value`]): the costly drafter's chain on sequence 0 and
    /// the best free proposal as a branch on sequence 1. The target's
    /// context must offer two sequences.
    pub fn with_trees(mut self) -> Self {
        self.trees = true;
        self
    }

    /// Adds `drafter`, asked for at most `cap` tokens per step. Drafters that
    /// need sequences of their own in the target's pass are refused: the
    /// choice verifies one chain.
    pub fn with(mut self, drafter: Box<dyn Drafter + Send>, cap: usize) -> Result<Self, CoreError> {
        if drafter.sequences() > 1 {
            return Err(CoreError::InvalidParameter(format!(
                "{} drafting needs {} KV sequences; a choice among drafters verifies one chain",
                drafter.name(),
                drafter.sequences()
            )));
        }
        self.members.push(Member {
            drafter,
            cap,
            active: true,
            claims: Claims::default(),
        });
        Ok(self)
    }

    /// The members' names, in the order they were added.
    pub fn member_names(&self) -> Vec<&'static str> {
        self.members.iter().map(|m| m.drafter.name()).collect()
    }

    /// The most tokens any member drafts per step.
    pub fn cap(&self) -> usize {
        self.members.iter().map(|m| m.cap).max().unwrap_or(0)
    }
}

/// `speedup` of a costly drafter's step of `tokens` drafts once a catch-up
/// of `catch_up` seconds, spread over `steps` steps, is counted too.
fn with_catch_up(
    costs: &crate::CostModel,
    speedup: f64,
    tokens: usize,
    catch_up: f64,
    steps: f64,
) -> f64 {
    let step = match (costs.target(tokens + 1), costs.draft_or_guess()) {
        (Some(target), Some(draft)) => target + tokens as f64 * draft,
        _ => return speedup,
    };
    speedup * step / (step + catch_up / steps.max(1.0))
}

/// Value of a free proposal: the expected speedup of its best prefix (its
/// drafting is already done and cost next to nothing).
fn free_value(p: &Proposal, req: &DraftRequest<'_>) -> f64 {
    if p.is_empty() {
        return 1.0;
    }
    req.costs.best_prefix(&p.confidence, p.len()).1
}

impl BestOf {
    /// Whether verifying `branch` beside `main` in the same pass buys more
    /// expected tokens per unit of time than `main` alone, and how many of
    /// `branch`'s tokens to take. The two must disagree from their first
    /// token, so that at most one of them is accepted: the expected tokens
    /// add up, E = 1 + Σ reach_main + Σ reach_branch, at the cost of a pass
    /// over 1 + |main| + |branch| tokens.
    pub fn tree_value(costs: &crate::CostModel, main: &[f64], branch: &[f64]) -> Option<usize> {
        let (k_main, v_main) = costs.best_prefix(main, main.len());
        let main = &main[..k_main];
        let base = crate::cost::expected_tokens(main);
        let mut best: Option<(usize, f64)> = None;
        let mut reach = 1.0;
        let mut gain = 0.0;
        for (j, &c) in branch.iter().enumerate() {
            reach *= c.clamp(0.0, 1.0);
            gain += reach;
            let value = (base + gain) / costs.relative(1 + main.len() + j + 1);
            if value > best.map_or(v_main * (1.0 + 1e-9), |(_, v)| v) {
                best = Some((j + 1, value));
            }
        }
        best.map(|(n, _)| n)
    }
}

impl BestOf {
    /// Keeps the runs of costly steps after long catch-ups and the plain
    /// streak up to date with this step's choice.
    fn count_run(&mut self, costly: bool, catching_up: bool, free: bool) {
        if costly && !catching_up {
            if let Some(n) = &mut self.run_after_catch_up {
                *n += 1;
            }
        } else if let Some(n) = self.run_after_catch_up.take() {
            self.mean_run = (1.0 - RUN_WEIGHT) * self.mean_run + RUN_WEIGHT * n as f64;
        }
        if costly && catching_up {
            self.run_after_catch_up = Some(1);
        }
        self.plain_streak = if costly || free {
            0
        } else {
            self.plain_streak + 1
        };
    }
}

impl Drafter for BestOf {
    fn name(&self) -> &'static str {
        self.name
    }

    fn sequences(&self) -> usize {
        if self.trees {
            2
        } else {
            1
        }
    }

    fn start(
        &mut self,
        tokens: &[TokenId],
        target_n_vocab: usize,
        sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        self.chosen = None;
        self.branch_of = None;
        // Claims checked at temperature 0 carry over to the next greedy
        // generation, at half weight: a lookup's chance matches are a trait
        // of the model and the kind of text, and relearning them costs every
        // generation its first few steps. Under sampling (and after it)
        // every generation starts afresh, so a seed's output does not depend
        // on what ran before.
        self.run_after_catch_up = None;
        self.plain_streak = 0;
        self.unverified = None;
        let carry = self.greedy && sampling.is_greedy();
        self.greedy = sampling.is_greedy();
        for m in &mut self.members {
            if carry {
                m.claims.carry_over();
            } else {
                m.claims = Claims::default();
            }
            m.active = sampling.is_greedy() || !m.drafter.greedy_only();
            if m.active {
                m.drafter.start(tokens, target_n_vocab, sampling)?;
            }
        }
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        self.chosen = None;
        self.unverified = None;
        self.best.clear();
        self.claimed.clear();
        let mut best_free: Option<(usize, f64)> = None;
        // The costly member with the best forecast: (index, speedup, exploring).
        let mut costly: Option<(usize, f64, bool)> = None;
        let mut catching_up = false;
        self.free_now.clear();
        self.free_now.resize(self.members.len(), false);
        for (i, m) in self.members.iter_mut().enumerate() {
            if !m.active {
                continue;
            }
            let member_req = DraftRequest {
                max: req.max.min(m.cap),
                ..*req
            };
            match m.drafter.forecast(&member_req) {
                Forecast::Free => self.free_now[i] = true,
                Forecast::Skip => {}
                Forecast::Draft {
                    tokens,
                    speedup,
                    exploring,
                } => {
                    // A long catch-up (after another drafter's copy) is paid
                    // once and serves the steps that follow, as many as such
                    // runs have lasted: edits whose copy resumes after one
                    // step otherwise pay a 100-token catch-up for one draft.
                    // After a few plain steps in a row no copy is resuming,
                    // and the catch-up is due whenever the drafter runs
                    // again: it no longer counts against running now.
                    let catch_up =
                        if self.greedy && !exploring && self.plain_streak < CATCH_UP_SUNK_AFTER {
                            m.drafter.catch_up_seconds(req.tokens)
                        } else {
                            0.0
                        };
                    let speedup = if catch_up > 0.0 {
                        with_catch_up(req.costs, speedup, tokens, catch_up, self.mean_run)
                    } else {
                        speedup
                    };
                    if costly.is_none_or(|(_, s, _)| speedup > s) {
                        costly = Some((i, speedup, exploring));
                        catching_up = catch_up > 0.0;
                    }
                }
            }
        }
        // Claims are checked where a free proposal competes with a costly
        // drafter: that choice needs both on one scale, and a lookup's chance
        // matches claim more than they are worth. With no costly drafter in
        // the running, a free drafter decides as it would alone (its own
        // confidences, learned from its own verdicts): checking them there
        // only cut copies short (Q4_K_M summaries: 0.93x of prompt lookup
        // alone, with 9 of its 57 drafting steps left plain).
        let check = costly.is_some();
        for (i, m) in self.members.iter_mut().enumerate() {
            if !self.free_now[i] {
                continue;
            }
            let member_req = DraftRequest {
                max: req.max.min(m.cap),
                ..*req
            };
            self.scratch.clear();
            m.drafter.propose(&member_req, rng, &mut self.scratch)?;
            self.scratch.truncate(member_req.max);
            self.scratch_claims.clear();
            self.scratch_claims
                .extend_from_slice(&self.scratch.confidence);
            if check {
                // Judged by what its claims have been worth.
                for c in &mut self.scratch.confidence {
                    *c = m.claims.checked(*c);
                }
            }
            let value = free_value(&self.scratch, req);
            if value > best_free.map_or(1.0, |(_, v)| v) {
                best_free = Some((i, value));
                std::mem::swap(&mut self.best, &mut self.scratch);
                std::mem::swap(&mut self.claimed, &mut self.scratch_claims);
            }
        }
        let free = best_free.map_or(1.0, |(_, v)| v);
        // A costly drafter runs when it is expected to beat what is free, or
        // to explore unless a free proposal is expected to pay well (a sure
        // copy in progress): its explorations are how it learns that it pays.
        let run_costly = costly.filter(|&(_, speedup, exploring)| {
            if exploring {
                free < EXPLORE_UNLESS_FREE_PAYS
            } else {
                speedup > free || (speedup > 1.0 && free < FREE_SURELY_PAYS)
            }
        });
        self.count_run(run_costly.is_some(), catching_up, best_free.is_some());
        if let Some((i, _, _)) = run_costly {
            let m = &mut self.members[i];
            let member_req = DraftRequest {
                max: req.max.min(m.cap),
                ..*req
            };
            m.drafter.propose(&member_req, rng, out)?;
            out.source = Some(m.drafter.name());
            self.chosen = Some(i);
            // A free proposal that disagrees from its first token rides
            // along as a branch where the cost model says that pays
            // (temperature 0 only: branches are checked against the argmax).
            let tree = match best_free {
                // Not for a proposal verified whole (an exploration).
                Some((f, _)) if self.trees && self.greedy && !out.is_empty() && !out.keep_whole => {
                    let disagree = self.best.tokens.first() != out.tokens.first();
                    let n = if disagree {
                        Self::tree_value(req.costs, &out.confidence, &self.best.confidence)
                    } else {
                        None
                    };
                    n.map(|n| (f, n))
                }
                _ => None,
            };
            match tree {
                Some((f, n)) => {
                    // Main-chain drafts past the best prefix would be cut by
                    // the driver anyway; cut them here so the pass is the one
                    // the tree was valued at.
                    let (k, _) = req.costs.best_prefix(&out.confidence, out.len());
                    out.truncate(k);
                    out.branches.push(crate::Branch {
                        seq: 1,
                        tokens: self.best.tokens[..n].to_vec(),
                        source: Some(self.members[f].drafter.name()),
                    });
                    self.claimed.truncate(n);
                    self.branch_of = Some(f);
                }
                None => {
                    // Not verified: at temperature 0 its claims are checked
                    // against the text the step commits (what the target
                    // chose there is what verification would have accepted).
                    match best_free {
                        Some((f, _)) if self.greedy => {
                            self.unverified = Some((f, req.tokens.len()));
                            self.unverified_tokens.clear();
                            self.unverified_tokens.extend_from_slice(&self.best.tokens);
                            std::mem::swap(&mut self.unverified_claims, &mut self.claimed);
                        }
                        _ => {}
                    }
                    self.claimed.clear();
                }
            }
        } else if let Some((i, _)) = best_free {
            // It carries the checked confidences; `claimed` keeps the claims
            // as made, to be checked against the verdict.
            std::mem::swap(out, &mut self.best);
            out.source = Some(self.members[i].drafter.name());
            self.chosen = Some(i);
        }
        Ok(())
    }

    fn on_verdict(&mut self, tokens: &[TokenId], outcome: &VerifyOutcome) -> Result<(), CoreError> {
        // The others verified nothing this step; they follow the text.
        let idle = VerifyOutcome {
            accepted: 0,
            branch: None,
            verified: 0,
            side_argmax: Vec::new(),
            ..outcome.clone()
        };
        if let Some((f, start)) = self.unverified.take() {
            if let Some(m) = self.members.get_mut(f) {
                let committed = tokens.get(start..).unwrap_or(&[]);
                for ((&t, &claim), &c) in self
                    .unverified_tokens
                    .iter()
                    .zip(&self.unverified_claims)
                    .zip(committed)
                {
                    m.claims.observe(claim, t == c);
                    if t != c {
                        break;
                    }
                }
            }
        }
        let chosen = self.chosen.take();
        let branch_of = self.branch_of.take();
        // Which member's tokens the verdict judged: the branch's owner when
        // the branch won, else the main chain's.
        let (main_seen, branch_seen);
        let (main_outcome, claims_owner, claims_outcome) = match (branch_of, outcome.branch) {
            (Some(f), Some(_)) => {
                // The main chain's first draft was rejected.
                main_seen = VerifyOutcome {
                    accepted: 0,
                    branch: None,
                    ..outcome.clone()
                };
                branch_seen = VerifyOutcome {
                    verified: self.claimed.len(),
                    branch: None,
                    ..outcome.clone()
                };
                (&main_seen, Some(f), &branch_seen)
            }
            (Some(f), None) => {
                // The branch's first draft was rejected (if the main chain's
                // was accepted) or both were.
                branch_seen = VerifyOutcome {
                    accepted: 0,
                    verified: self.claimed.len(),
                    branch: None,
                    ..outcome.clone()
                };
                main_seen = outcome.clone();
                (&main_seen, Some(f), &branch_seen)
            }
            (None, _) => (outcome, chosen, outcome),
        };
        if let Some(m) = claims_owner.and_then(|i| self.members.get_mut(i)) {
            // A free member's claims meet their verdict: positions up to the
            // first rejection were tried.
            let tried = claims_outcome.verified.min(claims_outcome.accepted + 1);
            for (j, &claim) in self.claimed.iter().enumerate().take(tried) {
                m.claims.observe(claim, j < claims_outcome.accepted);
            }
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if m.active {
                let seen = if chosen == Some(i) {
                    main_outcome
                } else if branch_of == Some(i) {
                    claims_outcome
                } else {
                    &idle
                };
                m.drafter.on_verdict(tokens, seen)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, stats: &mut RunStats) {
        for m in &mut self.members {
            if m.active {
                m.drafter.finish(stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::{generate_greedy, ScriptedModel};
    use crate::{CostModel, DraftLength, DraftSettings, DraftVerify, Tuned};

    #[test]
    fn claims_are_replaced_by_what_verdicts_showed() {
        let mut c = Claims::default();
        assert!(
            (c.checked(0.9) - 0.9).abs() < 1e-12,
            "the claim until checked"
        );
        for _ in 0..30 {
            c.observe(0.9, false);
        }
        assert!(c.checked(0.9) < 0.15, "{}", c.checked(0.9));
        // Other classes keep their claims.
        assert!((c.checked(0.6) - 0.6).abs() < 1e-12);
        for _ in 0..30 {
            c.observe(0.6, true);
        }
        assert!(c.checked(0.6) > 0.9);
    }

    /// A second candidate pays where extra tokens in a pass are cheap, and
    /// not where each costs nearly a pass.
    #[test]
    fn trees_pay_only_where_passes_of_many_tokens_are_cheap() {
        let cheap: Vec<f64> = (0..16).map(|k| 1.0 + 0.1 * k as f64).collect();
        let cheap = CostModel::calibrated(&cheap, 0.0, 1);
        let dear = CostModel::linear(0.9, 16);
        let main = [0.7, 0.7, 0.7];
        let copy = [0.5, 0.5];
        assert_eq!(BestOf::tree_value(&cheap, &main, &copy), Some(2));
        assert_eq!(BestOf::tree_value(&dear, &main, &copy), None);
        // A copy that is never right adds nothing.
        assert_eq!(BestOf::tree_value(&cheap, &main, &[0.0, 0.0]), None);
    }

    /// A choice between a free drafter and a costly one (tuned, adaptive),
    /// where a target pass of k tokens costs 1 + 0.1k and a draft step 0.3.
    fn choice(
        free: Box<dyn Drafter + Send>,
        free_cap: usize,
        costly: impl Drafter + Send + 'static,
        costly_cap: usize,
    ) -> DraftVerify<BestOf> {
        let passes: Vec<f64> = (0..16).map(|k| 1.0 + 0.1 * k as f64).collect();
        let costs = CostModel::calibrated(&passes, 0.3, 1);
        let best = BestOf::new("choice")
            .with(free, free_cap)
            .unwrap()
            .with(
                Box::new(Tuned::new(costly, DraftLength::Adaptive, 0)),
                costly_cap,
            )
            .unwrap();
        let settings = DraftSettings {
            draft_max: 8,
            draft_min: 0,
            exact: false,
        };
        DraftVerify::new("choice", best, settings, costs)
    }

    /// The liar against the oracle, as `checked_claims_…` below sets them up.
    fn liar_or_oracle(text: &[TokenId]) -> DraftVerify<BestOf> {
        choice(Box::new(Liar), 4, Oracle(text.to_vec()), 8)
    }

    /// A greedy generation starts with what the one before it checked (at
    /// half weight); a sampled one starts afresh, so its output for a seed
    /// is a fresh strategy's.
    #[test]
    fn checked_claims_carry_over_between_greedy_generations_only() {
        let text: Vec<TokenId> = (1..200).collect();
        let prompt = text[..10].to_vec();
        let liar_steps = |g: &crate::Generation| {
            g.stats
                .drafters
                .iter()
                .find(|d| d.name == "liar")
                .map_or(0, |d| d.steps)
        };
        let mut strategy = liar_or_oracle(&text);
        let mut target = ScriptedModel::new(text.clone(), 256, None);
        let first = generate_greedy(&mut target, &mut strategy, &prompt, 100);
        let second = generate_greedy(&mut target, &mut strategy, &prompt, 100);
        assert_eq!(second.tokens, first.tokens);
        assert!(liar_steps(&first) >= 3, "{}", first.stats.drafter_summary());
        assert!(
            liar_steps(&second) < liar_steps(&first),
            "first: {}; second: {}",
            first.stats.drafter_summary(),
            second.stats.drafter_summary()
        );
        // Under sampling: the same as a fresh strategy's, token for token
        // and step for step.
        let params = crate::GenerateParams {
            max_tokens: 100,
            sampling: SamplingParams {
                seed: 7,
                ..crate::testing::unfiltered(1.0)
            },
        };
        let used =
            crate::generate(&mut target, &mut strategy, &prompt, &params, &mut |_| true).unwrap();
        let mut fresh = liar_or_oracle(&text);
        let new =
            crate::generate(&mut target, &mut fresh, &prompt, &params, &mut |_| true).unwrap();
        assert_eq!(used.tokens, new.tokens);
        assert_eq!(used.stats.drafter_summary(), new.stats.drafter_summary());
        assert!(liar_steps(&used) >= 3, "{}", used.stats.drafter_summary());
    }

    /// Copies the text, sure of it, except at the last two positions of
    /// every 30 and from position 120 on (new text).
    struct Copier(Vec<TokenId>);

    impl Drafter for Copier {
        fn name(&self) -> &'static str {
            "copier"
        }
        fn propose(
            &mut self,
            req: &DraftRequest<'_>,
            _rng: &mut Rng,
            out: &mut Proposal,
        ) -> Result<(), CoreError> {
            let at = req.tokens.len();
            if at % 30 >= 28 || at >= 120 {
                return Ok(());
            }
            // Up to the next falter (the bonus token lands the step on it).
            for &t in self.0.iter().skip(at).take(req.max.min(28 - at % 30)) {
                out.push(t, crate::SparseDist::one_hot(t), 0.99);
            }
            Ok(())
        }
    }

    /// The oracle, with a catch-up that costs `per_token` seconds for each
    /// token it did not see.
    struct SlowToCatchUp {
        oracle: Oracle,
        seen: usize,
        per_token: f64,
    }

    impl Drafter for SlowToCatchUp {
        fn name(&self) -> &'static str {
            "oracle"
        }
        fn paces_itself(&self) -> bool {
            true
        }
        fn start(
            &mut self,
            tokens: &[TokenId],
            _target_n_vocab: usize,
            _sampling: &SamplingParams,
        ) -> Result<(), CoreError> {
            self.seen = tokens.len() - 1;
            Ok(())
        }
        fn catch_up_seconds(&self, tokens: &[TokenId]) -> f64 {
            let extra = tokens.len().saturating_sub(self.seen + 2);
            if extra > 8 {
                extra as f64 * self.per_token
            } else {
                0.0
            }
        }
        fn propose(
            &mut self,
            req: &DraftRequest<'_>,
            rng: &mut Rng,
            out: &mut Proposal,
        ) -> Result<(), CoreError> {
            self.seen = req.tokens.len();
            self.oracle.propose(req, rng, out)
        }
    }

    /// A draft model that must catch up on a long copy is not run for the one
    /// step where the copy falters; on new text, after a few plain steps, it
    /// is, catch-up and all, even with a modest forecast.
    #[test]
    fn a_long_catch_up_is_paid_where_the_steps_after_it_need_the_draft() {
        let text: Vec<TokenId> = (1..220).collect();
        let prompt = text[..10].to_vec();
        let run = |per_token: f64| {
            let slow = SlowToCatchUp {
                oracle: Oracle(text.clone()),
                seen: 0,
                per_token,
            };
            let mut strategy = choice(Box::new(Copier(text.clone())), 8, slow, 4);
            let mut target = ScriptedModel::new(text.clone(), 256, None);
            let g = generate_greedy(&mut target, &mut strategy, &prompt, 200);
            assert_eq!(g.tokens, text[10..210]);
            g
        };
        let oracle = |g: &crate::Generation| {
            g.stats
                .drafters
                .iter()
                .find(|d| d.name == "oracle")
                .cloned()
                .unwrap_or_default()
        };
        // Free to catch up: the oracle fills in wherever the copy falters.
        let free = run(0.0);
        // 0.1 s per token (a target pass costs 1.1 s, a draft step 0.3):
        // catching up on a copy of 28 tokens costs more than the one draft
        // it would serve.
        let dear = run(0.1);
        assert!(
            oracle(&dear).steps + 2 <= oracle(&free).steps,
            "free: {}; dear: {}",
            free.stats.drafter_summary(),
            dear.stats.drafter_summary()
        );
        // The new text from 120 on is still the oracle's.
        assert!(
            oracle(&dear).tokens >= 80,
            "{}",
            dear.stats.drafter_summary()
        );
    }

    /// Copies the text, always right, claiming only 0.3.
    struct Modest(Vec<TokenId>);

    impl Drafter for Modest {
        fn name(&self) -> &'static str {
            "modest"
        }
        fn propose(
            &mut self,
            req: &DraftRequest<'_>,
            _rng: &mut Rng,
            out: &mut Proposal,
        ) -> Result<(), CoreError> {
            for &t in self.0.iter().skip(req.tokens.len()).take(req.max) {
                out.push(t, crate::SparseDist::one_hot(t), 0.3);
            }
            Ok(())
        }
    }

    /// At temperature 0 a free proposal the step did not verify is checked
    /// against the text committed after it: a lookup that claims too little
    /// learns what it is worth without ever being chosen, and wins the steps.
    #[test]
    fn unverified_free_proposals_are_checked_in_hindsight_at_temperature_0() {
        let text: Vec<TokenId> = (1..200).collect();
        let prompt = text[..10].to_vec();
        let mut strategy = choice(Box::new(Modest(text.clone())), 8, Oracle(text.clone()), 8);
        let mut target = ScriptedModel::new(text.clone(), 256, None);
        let g = generate_greedy(&mut target, &mut strategy, &prompt, 150);
        assert_eq!(g.tokens, text[10..160]);
        let by = |n: &str| g.stats.drafters.iter().find(|d| d.name == n).cloned();
        let modest = by("modest").unwrap_or_default();
        // Without the check the oracle takes every step (modest's claims
        // are never verified); with it, one.
        assert!(modest.tokens >= 120, "{}", g.stats.drafter_summary());
    }

    /// Proposes a wrong token every step, claiming it is nearly sure.
    struct Liar;

    impl Drafter for Liar {
        fn name(&self) -> &'static str {
            "liar"
        }
        fn propose(
            &mut self,
            _req: &DraftRequest<'_>,
            _rng: &mut Rng,
            out: &mut Proposal,
        ) -> Result<(), CoreError> {
            for _ in 0..4 {
                out.push(0, crate::SparseDist::one_hot(0), 0.97);
            }
            Ok(())
        }
    }

    /// Knows the text (a draft model that is always right), at a price.
    struct Oracle(Vec<TokenId>);

    impl Drafter for Oracle {
        fn name(&self) -> &'static str {
            "oracle"
        }
        fn propose(
            &mut self,
            req: &DraftRequest<'_>,
            _rng: &mut Rng,
            out: &mut Proposal,
        ) -> Result<(), CoreError> {
            let at = req.tokens.len();
            for &t in self.0.iter().skip(at).take(req.max) {
                out.push(t, crate::SparseDist::one_hot(t), 1.0);
            }
            out.draft_passes = out.len() as u64;
            Ok(())
        }
    }

    /// An over-confident free drafter loses the steps to a costly one that
    /// is right, once its claims have been checked.
    #[test]
    fn checked_claims_decide_between_free_and_costly_drafters() {
        let text: Vec<TokenId> = (1..200).collect();
        let prompt = text[..10].to_vec();
        // A draft step costs 0.3 target passes: at face value the liar's
        // four "sure" tokens (3.4x) beat the oracle's best (2.1x).
        let mut strategy = liar_or_oracle(&text);
        let mut target = ScriptedModel::new(text.clone(), 256, None);
        let g = generate_greedy(&mut target, &mut strategy, &prompt, 150);
        assert_eq!(g.tokens, text[10..160]);
        let by = |n: &str| g.stats.drafters.iter().find(|d| d.name == n).cloned();
        let liar = by("liar").map_or(0, |d| d.steps);
        let oracle = by("oracle").unwrap();
        // Without the check the liar takes every step (the oracle never
        // runs); with it, a few misses at its claim's class are enough.
        assert!(liar <= 25, "{}", g.stats.drafter_summary());
        assert!(oracle.tokens >= 120, "{}", g.stats.drafter_summary());
    }
}
