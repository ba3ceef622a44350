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

/// One drafter of a [`BestOf`], with the most tokens it may draft per step.
struct Member {
    drafter: Box<dyn Drafter + Send>,
    cap: usize,
    /// Usable in this generation (a greedy-only drafter is not under sampling).
    active: bool,
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
}

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
        }
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

/// Value of a free proposal: the expected speedup of its best prefix (its
/// drafting is already done and cost next to nothing).
fn free_value(p: &Proposal, req: &DraftRequest<'_>) -> f64 {
    if p.is_empty() {
        return 1.0;
    }
    req.costs.best_prefix(&p.confidence, p.len()).1
}

impl Drafter for BestOf {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(
        &mut self,
        tokens: &[TokenId],
        target_n_vocab: usize,
        sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        self.chosen = None;
        for m in &mut self.members {
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
        self.best.clear();
        let mut best_free: Option<(usize, f64)> = None;
        // The costly member with the best forecast: (index, speedup, exploring).
        let mut costly: Option<(usize, f64, bool)> = None;
        for (i, m) in self.members.iter_mut().enumerate() {
            if !m.active {
                continue;
            }
            let member_req = DraftRequest {
                max: req.max.min(m.cap),
                ..*req
            };
            match m.drafter.forecast(&member_req) {
                Forecast::Free => {
                    self.scratch.clear();
                    m.drafter.propose(&member_req, rng, &mut self.scratch)?;
                    self.scratch.truncate(member_req.max);
                    let value = free_value(&self.scratch, req);
                    if value > best_free.map_or(1.0, |(_, v)| v) {
                        best_free = Some((i, value));
                        std::mem::swap(&mut self.best, &mut self.scratch);
                    }
                }
                Forecast::Skip => {}
                Forecast::Draft {
                    speedup, exploring, ..
                } => {
                    if costly.is_none_or(|(_, s, _)| speedup > s) {
                        costly = Some((i, speedup, exploring));
                    }
                }
            }
        }
        let free = best_free.map_or(1.0, |(_, v)| v);
        // A costly drafter runs when it is expected to beat what is free, or
        // to explore when nothing free is on offer.
        let run_costly = costly.filter(|&(_, speedup, exploring)| {
            if exploring {
                best_free.is_none()
            } else {
                speedup > free
            }
        });
        if let Some((i, _, _)) = run_costly {
            let m = &mut self.members[i];
            let member_req = DraftRequest {
                max: req.max.min(m.cap),
                ..*req
            };
            m.drafter.propose(&member_req, rng, out)?;
            out.source = Some(m.drafter.name());
            self.chosen = Some(i);
        } else if let Some((i, _)) = best_free {
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
        let chosen = self.chosen.take();
        for (i, m) in self.members.iter_mut().enumerate() {
            if m.active {
                let seen = if chosen == Some(i) { outcome } else { &idle };
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
