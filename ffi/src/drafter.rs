//! Drafts from the host application: C callbacks behind augur's `Drafter`.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use augur_facade::core::{CoreError, DraftRequest, Drafter, Proposal, Rng, SparseDist};
use augur_facade::{SamplingParams, TokenId};

/// The label sessions with an application drafter report as their strategy.
pub const C_DRAFTER_NAME: &str = "c-drafter";

/// Proposes draft tokens: reads the `n_context` tokens of the text so far
/// (prompt and generated tokens; the last one is the newest) and writes up
/// to `max_out` guesses of the tokens that follow into `out_tokens`,
/// returning how many it wrote (0 = no guess this step).
///
/// The pointers are valid only during the call. Returning more than
/// `max_out`, or a token id outside the vocabulary, fails the generation
/// with `AUGUR_DRAFTER`. Drafts need not be right: augur verifies them with
/// the target model and keeps only what the target itself would have
/// generated, so the output is the target's whatever the drafter says; good
/// guesses only make it faster. The drafter must be deterministic given the
/// context for the output to stay the target's at temperature > 0 too (it
/// must not look at random numbers augur has not yet drawn: it cannot).
pub type augur_propose_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        context_tokens: *const i32,
        n_context: usize,
        out_tokens: *mut i32,
        max_out: usize,
    ) -> usize,
>;

/// Called at the start of every generation, before the first proposal (for
/// drafters that keep state between proposals). Optional.
pub type augur_reset_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// An application's source of draft tokens (retrieval, a cache of earlier
/// answers, an editor's buffer, another model), for
/// `augur_session_new_with_drafter`.
///
/// Ownership: the session copies this struct; `user_data` stays the
/// application's, and must stay valid until the session is freed (augur
/// never frees it).
///
/// Threads: the callbacks run on the thread that called `augur_generate`,
/// during that call only, never concurrently for one session. They must not
/// unwind (C++ exceptions, longjmp) into augur, and must not call back into
/// the same session.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct augur_drafter {
    /// Required: proposes drafts (see `augur_propose_fn`).
    pub propose: augur_propose_fn,
    /// Optional (may be NULL): called when a generation starts.
    pub reset: augur_reset_fn,
    /// Passed unchanged to the callbacks.
    pub user_data: *mut c_void,
}

/// Where a misbehaving drafter's failure waits for the session to report it
/// with `AUGUR_DRAFTER` (the generation itself fails with a core error).
pub type FailureSlot = Arc<Mutex<Option<String>>>;

/// `augur_drafter` as a [`Drafter`]: its drafts are deterministic, so each
/// one is recorded with a one-hot distribution.
pub struct CDrafter {
    propose: unsafe extern "C" fn(*mut c_void, *const i32, usize, *mut i32, usize) -> usize,
    reset: augur_reset_fn,
    user_data: *mut c_void,
    n_vocab: usize,
    context: Vec<i32>,
    out: Vec<i32>,
    failure: FailureSlot,
}

// SAFETY: the application promises (in the header) that `user_data` may be
// used by the callbacks on whichever thread calls `augur_generate`; a
// session is never used by two threads at once, so neither is the drafter.
unsafe impl Send for CDrafter {}

impl CDrafter {
    /// Wraps the application's callbacks; `None` without a `propose` callback.
    pub fn new(d: &augur_drafter, failure: FailureSlot) -> Option<Self> {
        Some(Self {
            propose: d.propose?,
            reset: d.reset,
            user_data: d.user_data,
            n_vocab: 0,
            context: Vec::new(),
            out: Vec::new(),
            failure,
        })
    }

    fn fail(&self, reason: String) -> CoreError {
        if let Ok(mut slot) = self.failure.lock() {
            *slot = Some(reason.clone());
        }
        CoreError::Internal {
            strategy: C_DRAFTER_NAME,
            reason,
        }
    }
}

impl Drafter for CDrafter {
    fn name(&self) -> &'static str {
        C_DRAFTER_NAME
    }

    fn start(
        &mut self,
        _tokens: &[TokenId],
        target_n_vocab: usize,
        _sampling: &SamplingParams,
    ) -> Result<(), CoreError> {
        self.n_vocab = target_n_vocab;
        if let Some(reset) = self.reset {
            // SAFETY: the application's callback with its own user data.
            unsafe { reset(self.user_data) };
        }
        Ok(())
    }

    fn propose(
        &mut self,
        req: &DraftRequest<'_>,
        _rng: &mut Rng,
        out: &mut Proposal,
    ) -> Result<(), CoreError> {
        let (tokens, max) = (req.tokens, req.max);
        self.context.clear();
        // Text token ids come from the vocabulary, whose size fits in i32.
        self.context
            .extend(tokens.iter().map(|&t| i32::try_from(t).unwrap_or(i32::MAX)));
        self.out.clear();
        self.out.resize(max, -1);
        // SAFETY: the context pointer is valid for `context.len()` reads and
        // the output for `max` writes, during the call only.
        let n = unsafe {
            (self.propose)(
                self.user_data,
                self.context.as_ptr(),
                self.context.len(),
                self.out.as_mut_ptr(),
                max,
            )
        };
        if n > max {
            return Err(self.fail(format!(
                "the drafter returned {n} tokens but at most {max} were asked for"
            )));
        }
        for (i, &t) in self.out[..n].iter().enumerate() {
            let id = match TokenId::try_from(t) {
                Ok(id) if (id as usize) < self.n_vocab => id,
                _ => {
                    return Err(self.fail(format!(
                        "the drafter's token {i} is {t}, outside the vocabulary (0..{})",
                        self.n_vocab
                    )))
                }
            };
            // The tuner around this drafter sets the confidence.
            out.push(id, SparseDist::one_hot(id), 1.0);
        }
        // Model-free as far as augur can tell: no draft-model passes.
        Ok(())
    }
}
