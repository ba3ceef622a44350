//! How the pipelined strategy's draft thread ends: cancellation at any
//! point, a failing draft model, a failing target, a panic in the caller.
//! Every generation must return (with an error for failures) and leave no
//! draft thread running. The time bound is only a guard against hangs (a
//! hang would otherwise stall the test run), not a speed claim.
//!
//! The tests of this file run one at a time: they count the process's live
//! draft threads.

#![allow(clippy::unwrap_used)]

mod common;

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use augur_core::testing::{unfiltered, InMemoryModel};
use augur_core::{generate, CoreError, GenerateParams, Generation, SamplingParams, StopReason};
use augur_speculative::{live_workers, PipelinedSpeculative, SpeculativeConfig};

use common::{baseline, greedy, Delay, Wrapped};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on its own thread and returns its result, failing the test if
/// it has not returned within 5 seconds.
fn within_bound<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no return within 5 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

type Draft = Wrapped<InMemoryModel>;
type Pipelined = PipelinedSpeculative<Draft>;

fn target() -> InMemoryModel {
    InMemoryModel::random(11, 21).with_history(22)
}

fn draft_model() -> InMemoryModel {
    InMemoryModel::random(11, 21).with_history(23)
}

fn sampling(greedy: bool, seed: u64) -> SamplingParams {
    if greedy {
        SamplingParams::greedy()
    } else {
        SamplingParams {
            seed,
            ..unfiltered(0.9)
        }
    }
}

/// One generation on its own thread under the hang guard; gives the
/// strategy back.
fn run(
    what: String,
    mut s: Pipelined,
    mut target: Wrapped<InMemoryModel>,
    params: GenerateParams,
    stop_after: Option<usize>,
) -> (Result<Generation, CoreError>, Pipelined) {
    within_bound(&what.clone(), move || {
        let mut n = 0;
        let r = generate(&mut target, &mut s, &[1, 2, 3], &params, &mut |_| {
            n += 1;
            stop_after.is_none_or(|k| n < k)
        });
        (r, s)
    })
}

fn assert_nothing_running(s: &Pipelined, what: &str) {
    assert_eq!(live_workers(), 0, "{what}");
    assert!(!s.worker_running(), "{what}");
    assert!(s.draft().is_some(), "{what}: the draft model came back");
}

#[test]
fn cancellation_at_any_point_stops_the_draft_thread() {
    let _serial = serial();
    let want = baseline(&target(), &[1, 2, 3], 40).tokens;
    for gamma in [1, 3, 6] {
        let mut s = PipelinedSpeculative::new(
            Wrapped::new(draft_model(), Delay::Jitter(30), gamma as u64),
            SpeculativeConfig::fixed(gamma),
        );
        for k in 1..=30 {
            let greedy = k % 2 == 0;
            let params = GenerateParams {
                max_tokens: 200,
                sampling: sampling(greedy, k as u64),
            };
            let t = Wrapped::new(target(), Delay::Jitter(30), k as u64);
            let what = format!("gamma {gamma}, cancelled after {k}");
            let (r, back) = run(what.clone(), s, t, params, Some(k));
            s = back;
            let g = r.unwrap();
            assert_eq!(g.stop, StopReason::Cancelled, "{what}");
            assert_eq!(g.tokens.len(), k, "{what}");
            if greedy {
                assert_eq!(g.tokens, want[..k], "{what}");
            }
            assert_nothing_running(&s, &what);
        }
        // The strategy still works after all that.
        let t = Wrapped::new(target(), Delay::None, 0);
        let (r, back) = run(format!("gamma {gamma}, after"), s, t, greedy(40), None);
        assert_eq!(r.unwrap().tokens, want);
        assert_nothing_running(&back, "after the cancellations");
    }
}

/// The model that fails in [`check_injected_failures`].
#[derive(Debug, Clone, Copy)]
enum Failing {
    Draft,
    Target,
}

/// Generations whose draft or target fails from pass `fail_at` on (for
/// each `fail_at` in `fail_ats`) must return the injected error and leave
/// no thread running.
fn check_injected_failures(failing: Failing, fail_ats: Range<usize>) {
    for gamma in [1, 4] {
        for fail_at in fail_ats.clone() {
            for greedy in [true, false] {
                let draft = Wrapped::new(draft_model(), Delay::Jitter(30), fail_at as u64);
                let (draft, t) = match failing {
                    Failing::Draft => (
                        draft.failing_at(fail_at),
                        Wrapped::new(target(), Delay::Jitter(30), 1),
                    ),
                    Failing::Target => (
                        draft,
                        Wrapped::new(target(), Delay::Jitter(30), 2).failing_at(fail_at),
                    ),
                };
                let s = PipelinedSpeculative::new(draft, SpeculativeConfig::fixed(gamma));
                let params = GenerateParams {
                    max_tokens: 200,
                    sampling: sampling(greedy, 5),
                };
                let what =
                    format!("gamma {gamma}, {failing:?} fails at pass {fail_at}, greedy {greedy}");
                let (r, s) = run(what.clone(), s, t, params, None);
                let e = r.err().unwrap_or_else(|| panic!("{what}: no error"));
                assert!(e.to_string().contains("injected failure"), "{what}: {e}");
                assert_nothing_running(&s, &what);
            }
        }
    }
}

#[test]
fn a_failing_draft_model_fails_the_generation() {
    let _serial = serial();
    // 200 tokens take far more than 16 draft passes, and every step drafts,
    // so the failure always surfaces.
    check_injected_failures(Failing::Draft, 0..16);
}

#[test]
fn a_failing_target_stops_the_draft_thread() {
    let _serial = serial();
    check_injected_failures(Failing::Target, 1..16);
}

#[test]
fn a_panic_in_the_caller_leaves_no_thread_behind() {
    let _serial = serial();
    for k in 1..10 {
        // The token callback panics: generate unwinds without finishing the
        // strategy, and dropping the strategy joins the thread.
        let mut s = PipelinedSpeculative::new(
            Wrapped::new(draft_model(), Delay::Jitter(30), k),
            SpeculativeConfig::fixed(3),
        );
        let mut t = Wrapped::new(target(), Delay::Jitter(30), k);
        let params = GenerateParams {
            max_tokens: 100,
            sampling: sampling(false, k),
        };
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            let mut n = 0;
            generate(&mut t, &mut s, &[1, 2, 3], &params, &mut |_| {
                n += 1;
                assert!(n < k, "the callback gives up");
                true
            })
        }));
        assert!(unwound.is_err());
        assert!(s.worker_running(), "the thread outlives the unwinding");
        if k % 2 == 0 {
            drop(s);
            assert_eq!(live_workers(), 0, "dropped after {k}");
        } else {
            // Or the next generation stops the leftover thread first.
            let mut t = target();
            let g = generate(&mut t, &mut s, &[1, 2, 3], &greedy(30), &mut |_| true).unwrap();
            assert_eq!(g.tokens, baseline(&target(), &[1, 2, 3], 30).tokens);
            assert_nothing_running(&s, "reused after a panic");
        }
    }
}
