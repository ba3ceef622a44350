//! Run statistics every strategy reports.

use serde::Serialize;

/// Counters and timings of one generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Prompt length in tokens.
    pub n_prompt: usize,
    /// Of those, how many the target's cache already held from earlier work
    /// and were not evaluated again (see [`crate::generate_reusing`]).
    pub n_reused: usize,
    /// Tokens generated (end-of-generation token excluded).
    pub n_generated: usize,
    /// Forward passes of the target model during decoding (prefill excluded).
    pub target_passes: u64,
    /// Forward passes of the draft model (its prefill excluded).
    pub draft_passes: u64,
    /// Tokens proposed by the drafter.
    pub drafted: u64,
    /// Drafted tokens the target accepted.
    pub accepted: u64,
    /// `drafted_by_position[i]`: drafts verified at draft position i.
    pub drafted_by_position: Vec<u64>,
    /// `accepted_by_position[i]`: of those, how many were accepted.
    pub accepted_by_position: Vec<u64>,
    /// The largest target pass (tokens) during decoding.
    pub largest_pass: usize,
    /// Verifications whose candidate came from an n-gram pool hit.
    pub pool_hits: u64,
    /// Steps whose emitted drafts came from a branch verified beside the
    /// main chain (a token tree or a lookahead candidate).
    pub branch_wins: u64,
    /// Prompt evaluation time (target and draft).
    pub prefill_seconds: f64,
    /// Decoding time, from the first step to the last token.
    pub decode_seconds: f64,
    /// Time spent drafting.
    pub draft_seconds: f64,
    /// Time spent in target passes (verification).
    pub verify_seconds: f64,
    /// Time spent turning logits into tokens (filters, softmax, verification).
    pub sample_seconds: f64,
    /// Pipelined drafting: time the target side waited for proposals (the part
    /// of `draft_seconds` the pipeline did not hide).
    pub draft_wait_seconds: f64,
    /// Pipelined drafting: draft time spent on proposals later thrown away.
    pub wasted_draft_seconds: f64,
    /// Pipelined drafting: verdicts that found the next proposal drafted ahead.
    pub guesses_tried: u64,
    /// Of those, how often the optimistic guess held and the work was kept.
    pub guesses_held: u64,
    /// `passes_by_size[k - 1]`: target passes over k tokens during decoding.
    pub passes_by_size: Vec<u64>,
    /// `seconds_by_size[k - 1]`: the time those passes took, in all.
    pub seconds_by_size: Vec<f64>,
    /// What each drafter contributed, in the order they were first used
    /// (steps with no proposal count under [`DrafterStats::NONE`]).
    pub drafters: Vec<DrafterStats>,
}

/// What one drafter contributed to a generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrafterStats {
    /// The drafter's name ([`crate::Drafter::name`]).
    pub name: String,
    /// Steps whose verified proposal came from it.
    pub steps: u64,
    /// Its drafted tokens that were verified.
    pub drafted: u64,
    /// Of those, how many the target accepted.
    pub accepted: u64,
    /// Tokens emitted in its steps (accepted drafts and the token after them).
    pub tokens: u64,
    /// Seconds it spent drafting.
    pub seconds: f64,
}

impl DrafterStats {
    /// The name steps without a proposal are counted under.
    pub const NONE: &'static str = "none";

    /// Accepted / drafted (0 when nothing was drafted).
    pub fn acceptance_rate(&self) -> f64 {
        ratio(self.accepted as f64, self.drafted as f64)
    }
}

impl RunStats {
    /// Records one verification of `drafted` tokens of which `accepted` passed.
    pub fn record_verdict(&mut self, drafted: usize, accepted: usize) {
        self.drafted += drafted as u64;
        self.accepted += accepted as u64;
        if self.drafted_by_position.len() < drafted {
            self.drafted_by_position.resize(drafted, 0);
            self.accepted_by_position.resize(drafted, 0);
        }
        // Positions past the first rejection were verified too: they count as
        // drafted and not accepted, which is what per-position acceptance means
        // for the tokens that were actually proposed.
        for i in 0..drafted {
            self.drafted_by_position[i] += 1;
            if i < accepted {
                self.accepted_by_position[i] += 1;
            }
        }
    }

    /// Records one target pass over `size` tokens that took `seconds`.
    pub fn record_pass(&mut self, size: usize, seconds: f64) {
        let Some(i) = size.checked_sub(1) else { return };
        if self.passes_by_size.len() <= i {
            self.passes_by_size.resize(i + 1, 0);
            self.seconds_by_size.resize(i + 1, 0.0);
        }
        self.passes_by_size[i] += 1;
        self.seconds_by_size[i] += seconds;
    }

    /// Records one step whose proposal came from drafter `name`: `drafted`
    /// drafts verified, `accepted` of them accepted, `emitted` tokens out,
    /// `seconds` spent drafting.
    pub fn record_drafter(
        &mut self,
        name: &str,
        drafted: usize,
        accepted: usize,
        emitted: usize,
        seconds: f64,
    ) {
        let i = match self.drafters.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => {
                self.drafters.push(DrafterStats {
                    name: name.to_string(),
                    ..DrafterStats::default()
                });
                self.drafters.len() - 1
            }
        };
        let d = &mut self.drafters[i];
        d.steps += 1;
        d.drafted += drafted as u64;
        d.accepted += accepted as u64;
        d.tokens += emitted as u64;
        d.seconds += seconds;
    }

    /// One line per drafter's share, for stats lines: `name: steps, accepted/
    /// drafted, tokens` joined by "; " (empty when no drafter was recorded).
    pub fn drafter_summary(&self) -> String {
        self.drafters
            .iter()
            .map(|d| {
                if d.drafted > 0 {
                    format!(
                        "{} {} steps, {}/{} drafts accepted, {} tokens, {:.2} s",
                        d.name, d.steps, d.accepted, d.drafted, d.tokens, d.seconds
                    )
                } else {
                    format!("{} {} steps, {} tokens", d.name, d.steps, d.tokens)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Mean seconds of a pass over `size` tokens in this run, if any was made.
    pub fn mean_pass_seconds(&self, size: usize) -> Option<f64> {
        let i = size.checked_sub(1)?;
        let n = *self.passes_by_size.get(i)?;
        (n > 0).then(|| self.seconds_by_size[i] / n as f64)
    }

    /// Accepted / drafted (0 when nothing was drafted).
    pub fn acceptance_rate(&self) -> f64 {
        ratio(self.accepted as f64, self.drafted as f64)
    }

    /// Acceptance rate at each draft position.
    pub fn acceptance_by_position(&self) -> Vec<f64> {
        self.drafted_by_position
            .iter()
            .zip(&self.accepted_by_position)
            .map(|(&d, &a)| ratio(a as f64, d as f64))
            .collect()
    }

    /// Tokens emitted per target pass (1 for plain decoding).
    pub fn tokens_per_target_pass(&self) -> f64 {
        ratio(self.n_generated as f64, self.target_passes as f64)
    }

    /// Decoding throughput in tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        ratio(self.n_generated as f64, self.decode_seconds)
    }

    /// Drafting time on the critical path: all of it when drafting and
    /// verifying alternate, only the waiting when a pipeline overlaps them.
    pub fn draft_critical_seconds(&self) -> f64 {
        if self.guesses_tried > 0 || self.draft_wait_seconds > 0.0 {
            self.draft_wait_seconds
        } else {
            self.draft_seconds
        }
    }

    /// Decoding time not spent drafting (on the critical path), verifying or
    /// sampling.
    pub fn other_seconds(&self) -> f64 {
        (self.decode_seconds
            - self.draft_critical_seconds()
            - self.verify_seconds
            - self.sample_seconds)
            .max(0.0)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_accumulate_per_position() {
        let mut s = RunStats::default();
        s.record_verdict(3, 1);
        s.record_verdict(2, 2);
        s.record_verdict(0, 0);
        assert_eq!(s.drafted, 5);
        assert_eq!(s.accepted, 3);
        assert_eq!(s.drafted_by_position, vec![2, 2, 1]);
        assert_eq!(s.accepted_by_position, vec![2, 1, 0]);
        assert_eq!(s.acceptance_by_position(), vec![1.0, 0.5, 0.0]);
        assert!((s.acceptance_rate() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn drafters_are_counted_by_name_in_first_use_order() {
        let mut s = RunStats::default();
        s.record_drafter("prompt-lookup", 4, 3, 4, 0.0);
        s.record_drafter(DrafterStats::NONE, 0, 0, 1, 0.0);
        s.record_drafter("prompt-lookup", 2, 0, 1, 0.5);
        let names: Vec<&str> = s.drafters.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["prompt-lookup", "none"]);
        let d = &s.drafters[0];
        assert_eq!((d.steps, d.drafted, d.accepted, d.tokens), (2, 6, 3, 5));
        assert!((d.acceptance_rate() - 0.5).abs() < 1e-12 && d.seconds == 0.5);
        let line = s.drafter_summary();
        assert!(
            line.contains("prompt-lookup 2 steps, 3/6 drafts accepted, 5 tokens"),
            "{line}"
        );
        assert!(line.contains("none 1 steps, 1 tokens"), "{line}");
    }

    #[test]
    fn rates_are_zero_without_denominator() {
        let s = RunStats::default();
        assert_eq!(s.acceptance_rate(), 0.0);
        assert_eq!(s.tokens_per_second(), 0.0);
        assert_eq!(s.tokens_per_target_pass(), 0.0);
    }

    #[test]
    fn throughput_and_other_time() {
        let s = RunStats {
            n_generated: 50,
            target_passes: 20,
            decode_seconds: 2.0,
            draft_seconds: 0.5,
            verify_seconds: 1.0,
            sample_seconds: 0.25,
            ..Default::default()
        };
        assert_eq!(s.tokens_per_second(), 25.0);
        assert_eq!(s.tokens_per_target_pass(), 2.5);
        assert!((s.other_seconds() - 0.25).abs() < 1e-12);
    }
}
