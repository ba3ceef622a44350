//! The generation thread: it owns the engines (llama.cpp contexts) and runs
//! one generation at a time, in the order requests were admitted. The async
//! side only admits, queues and streams.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::llama::GgufModel;
use augur::{
    AugurError, CoreError, Engine, EngineOptions, ExactMode, Exactness, GenerateParams, RunStats,
    StopReason, TokenId,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::ApiError;
use crate::request::Choice;
use crate::stop::StopMatcher;

/// How many engines (one llama.cpp context each) the thread keeps: the
/// server's default strategy and the most recently used others. Each holds
/// its own KV cache, so a conversation reuses its prompt on the engine of its
/// strategy.
pub const MAX_ENGINES: usize = 3;

/// Places in the system (the running generation and those waiting); a
/// request is admitted only while one is free.
#[derive(Debug, Clone)]
pub struct Admission {
    load: Arc<AtomicUsize>,
    limit: usize,
}

/// A request's place, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    /// Room for one running generation and `max_queue` waiting ones.
    pub fn new(max_queue: usize) -> Self {
        Self {
            load: Arc::new(AtomicUsize::new(0)),
            limit: max_queue.saturating_add(1),
        }
    }

    /// A place, or `None` when the queue is full.
    pub fn try_admit(&self) -> Option<Slot> {
        self.load
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(&self.load)))
    }

    /// Requests admitted and not finished (running and waiting).
    pub fn load(&self) -> usize {
        self.load.load(Ordering::SeqCst)
    }
}

/// Why a choice ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer, or a stop string was met.
    Stop,
    /// `max_tokens` or the context's end.
    Length,
}

impl FinishReason {
    /// `stop` or `length`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// What a finished generation reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Why it ended.
    pub finish: FinishReason,
    /// The engine's reason for stopping.
    pub stop: StopReason,
    /// Counters and timings (prompt tokens reused included).
    pub stats: RunStats,
    /// The exactness guarantee of the run.
    pub exactness: Exactness,
    /// The strategy that ran.
    pub strategy: &'static str,
    /// Seconds spent waiting for the model.
    pub queue_seconds: f64,
    /// Seconds from the start of the generation to the first text.
    pub first_text_seconds: Option<f64>,
}

/// What the generation thread sends back about a job.
#[derive(Debug)]
pub enum JobEvent {
    /// Text to append to the answer (stop strings already cut).
    Text(String),
    /// The end: the outcome, or why it failed.
    Done(Box<Result<Outcome, ApiError>>),
}

/// One admitted request.
#[derive(Debug)]
pub struct Job {
    /// The strategy to run under.
    pub strategy: Choice,
    /// The tokenized prompt (it fits the context).
    pub prompt: Vec<TokenId>,
    /// Length and sampling.
    pub params: GenerateParams,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Where the text and the outcome go; when the receiver is gone (the
    /// client left), the job is cancelled.
    pub events: UnboundedSender<JobEvent>,
    /// When the request was admitted.
    pub admitted: Instant,
    /// The request's place in the queue.
    pub slot: Option<Slot>,
}

/// What the generation thread loads and how.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The target model.
    pub target: Arc<GgufModel>,
    /// The draft model, if one was loaded.
    pub draft: Option<Arc<GgufModel>>,
    /// Engine options; their strategy is the server's default.
    pub options: EngineOptions,
    /// Keep the target's cache across generations and reuse common prefixes.
    pub prompt_reuse: bool,
}

struct Pool {
    config: WorkerConfig,
    /// Most recently used last.
    engines: Vec<(Choice, Engine)>,
}

impl Pool {
    fn build(&self, strategy: &Choice) -> Result<Engine, AugurError> {
        let draft = if strategy.config.kind().uses_draft() {
            self.config.draft.clone()
        } else {
            None
        };
        let options = EngineOptions {
            strategy: strategy.config.clone(),
            exact: strategy.exact,
            ..self.config.options.clone()
        };
        let mut engine = Engine::with_models(Arc::clone(&self.config.target), draft, options)?;
        // Reused cache entries make a run kernel-level exact; a request for
        // bit-exact output evaluates its whole prompt, as a fresh run does.
        engine.set_prompt_reuse(self.config.prompt_reuse && strategy.exact != ExactMode::Bit);
        Ok(engine)
    }

    /// The engine for `strategy`, built (and the least recently used other
    /// than the default's dropped) when missing. It is the last of `engines`.
    fn engine(&mut self, strategy: &Choice) -> Result<&mut Engine, AugurError> {
        match self.engines.iter().position(|(k, _)| k == strategy) {
            Some(i) => {
                let entry = self.engines.remove(i);
                self.engines.push(entry);
            }
            None => {
                let engine = self.build(strategy)?;
                if self.engines.len() >= MAX_ENGINES {
                    let default = self.default_choice();
                    if let Some(i) = self.engines.iter().position(|(k, _)| *k != default) {
                        self.engines.remove(i);
                    }
                }
                self.engines.push((strategy.clone(), engine));
            }
        }
        let last = self.engines.len() - 1;
        Ok(&mut self.engines[last].1)
    }

    /// Drops the engine of `strategy` (after a panic its state is unknown).
    /// The server's own strategy.
    fn default_choice(&self) -> Choice {
        Choice {
            config: self.config.options.strategy.clone(),
            exact: self.config.options.exact,
        }
    }

    fn discard(&mut self, strategy: &Choice) {
        self.engines.retain(|(k, _)| k != strategy);
    }
}

/// Starts the generation thread. It builds the default engine first and
/// reports on `ready` whether that worked; then it runs jobs until `shutdown`
/// is set (answering what is still queued with 503) or `jobs` closes.
pub fn spawn(
    config: WorkerConfig,
    jobs: Receiver<Job>,
    shutdown: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Result<(), AugurError>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("augur-generate".into())
        .spawn(move || {
            let mut pool = Pool {
                config,
                engines: Vec::new(),
            };
            let default = pool.default_choice();
            match pool.build(&default) {
                Ok(engine) => {
                    pool.engines.push((default, engine));
                    let _ = ready.send(Ok(()));
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
            drop(ready);
            run(&mut pool, &jobs, &shutdown);
        })
}

fn run(pool: &mut Pool, jobs: &Receiver<Job>, shutdown: &AtomicBool) {
    loop {
        if shutdown.load(Ordering::SeqCst) {
            // Drain: whoever still waits learns why at once.
            while let Ok(mut job) = jobs.try_recv() {
                job.slot.take();
                let _ = job
                    .events
                    .send(JobEvent::Done(Box::new(Err(ApiError::shutting_down()))));
            }
            return;
        }
        let mut job = match jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if job.events.is_closed() {
            // The client left while waiting.
            continue;
        }
        let queue_seconds = job.admitted.elapsed().as_secs_f64();
        let result = catch_unwind(AssertUnwindSafe(|| {
            run_job(pool, &job, shutdown, queue_seconds)
        }))
        .unwrap_or_else(|_| {
            pool.discard(&job.strategy);
            Err(ApiError::internal(
                "the generation failed unexpectedly; the engine was reset",
            ))
        });
        // Free the place before answering, so that a client that sends its
        // next request as soon as it has this answer finds room.
        job.slot.take();
        let _ = job.events.send(JobEvent::Done(Box::new(result)));
    }
}

fn engine_error(e: AugurError) -> ApiError {
    match e {
        AugurError::Config(m) => ApiError::invalid("strategy", m),
        AugurError::Core(CoreError::ContextOverflow { needed, n_ctx }) => {
            ApiError::context_overflow(needed, n_ctx)
        }
        AugurError::Core(
            e @ (CoreError::InvalidSampling(_)
            | CoreError::InvalidParameter(_)
            | CoreError::Unsupported { .. }),
        ) => ApiError::invalid("strategy", e.to_string()),
        other => ApiError::internal(format!("generation failed: {other}")),
    }
}

fn run_job(
    pool: &mut Pool,
    job: &Job,
    shutdown: &AtomicBool,
    queue_seconds: f64,
) -> Result<Outcome, ApiError> {
    let engine = pool.engine(&job.strategy).map_err(engine_error)?;
    let mut matcher = StopMatcher::new(job.stop.clone());
    let mut left = false;
    let started = Instant::now();
    let mut first_text = None;
    let generation = engine
        .generate(&job.prompt, &job.params, &mut |_, piece| {
            if shutdown.load(Ordering::Relaxed) {
                return false;
            }
            let text = matcher.push(piece);
            if !text.is_empty() {
                first_text.get_or_insert_with(|| started.elapsed().as_secs_f64());
                if job.events.send(JobEvent::Text(text)).is_err() {
                    left = true;
                    return false;
                }
            }
            if job.events.is_closed() {
                left = true;
                return false;
            }
            !matcher.stopped()
        })
        .map_err(engine_error)?;
    if shutdown.load(Ordering::Relaxed) && generation.stop == StopReason::Cancelled {
        return Err(ApiError::shutting_down());
    }
    if left {
        // Nobody reads the answer; the error only ends the job.
        return Err(ApiError::internal("the client disconnected"));
    }
    let finish = if matcher.stopped() {
        FinishReason::Stop
    } else {
        let tail = matcher.finish();
        if !tail.is_empty() {
            first_text.get_or_insert_with(|| started.elapsed().as_secs_f64());
            let _ = job.events.send(JobEvent::Text(tail));
        }
        match generation.stop {
            StopReason::EndOfGeneration | StopReason::Cancelled => FinishReason::Stop,
            StopReason::MaxTokens | StopReason::ContextFull => FinishReason::Length,
        }
    };
    Ok(Outcome {
        prompt_tokens: job.prompt.len(),
        completion_tokens: generation.tokens.len(),
        finish,
        stop: generation.stop,
        stats: generation.stats,
        exactness: generation.exactness,
        strategy: engine.strategy_name(),
        queue_seconds,
        first_text_seconds: first_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_the_running_request_and_the_queue() {
        let a = Admission::new(1);
        let first = a.try_admit();
        let second = a.try_admit();
        assert!(first.is_some() && second.is_some());
        assert!(a.try_admit().is_none(), "one running + one waiting is full");
        assert_eq!(a.load(), 2);
        drop(first);
        assert!(a.try_admit().is_some());
        assert_eq!(a.load(), 1, "the new slot was dropped at once");
        drop(second);
        assert_eq!(a.load(), 0);
        let none = Admission::new(0);
        let only = none.try_admit();
        assert!(only.is_some() && none.try_admit().is_none());
    }
}
