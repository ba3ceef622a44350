//! augur-server: an OpenAI-compatible HTTP server over an augur [`augur::Engine`].
//!
//! `POST /v1/chat/completions` and `POST /v1/completions` (whole answers, or
//! streamed as server-sent events), `GET /v1/models`, `GET /health`. Requests
//! take OpenAI's fields plus augur's own `strategy`, `draft_max` and `exact`;
//! answers carry `usage` and augur's statistics under `augur`.
//!
//! One thread owns the models' contexts and runs one generation at a time;
//! requests wait in a bounded queue (503 beyond it). The target's KV cache is
//! kept between generations, so a request that continues the previous one
//! (the next turn of a conversation) evaluates only its new tokens.
//!
//! ```no_run
//! use augur_server::{serve, ServerConfig};
//! let config = ServerConfig::new(augur::EngineOptions::new("model.gguf"));
//! serve(config, |addr| eprintln!("listening on http://{addr}"))?;
//! # Ok::<(), augur_server::ServerError>(())
//! ```

mod error;
mod http;
pub mod request;
mod response;
pub mod stop;
mod worker;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use augur::{EngineOptions, SamplingParams};

pub use error::{ApiError, ServerError};
pub use request::{strategy_for_request, Choice};
pub use worker::MAX_ENGINES;

/// How the server listens, whom it serves and what requests default to.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The models, context, threads and default strategy.
    pub engine: EngineOptions,
    /// Address to bind (loopback by default: the server is for this machine).
    pub host: String,
    /// Port (0 picks a free one; the callback of [`serve`] is told which).
    pub port: u16,
    /// Bearer token required on `/v1/*` (`/health` stays open).
    pub api_key: Option<String>,
    /// Requests that may wait while one generates; more are answered 503.
    pub max_queue: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// The model's name in `/v1/models` (defaults to the file's stem).
    pub model_name: Option<String>,
    /// Keep the target's cache between requests and skip common prefixes.
    pub prompt_reuse: bool,
    /// Sampling settings of requests that leave fields out.
    pub sampling: SamplingParams,
    /// `max_tokens` of text completions that give none.
    pub completion_max_tokens: usize,
    /// The strategy settings the server was started with (its flags, for the
    /// one settings table): requests that name another strategy get them
    /// where that strategy takes them.
    pub settings: Vec<(augur::SettingKey, String)>,
    /// After Ctrl-C or SIGTERM, how long running answers get to end before
    /// their connections are closed.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// Defaults: 127.0.0.1:8080, no key, 8 waiting requests, 4 MiB bodies,
    /// prompt reuse on, greedy sampling.
    pub fn new(engine: EngineOptions) -> Self {
        Self {
            engine,
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
            max_queue: 8,
            max_body_bytes: 4 << 20,
            model_name: None,
            prompt_reuse: true,
            sampling: SamplingParams::greedy(),
            completion_max_tokens: 16,
            settings: Vec::new(),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// Loads the models, listens, and serves until Ctrl-C or SIGTERM; then stops
/// accepting, cancels running generations at their next token, and returns
/// `Ok` within a few seconds. `on_listening` is called with the bound address
/// once the models are loaded and requests are accepted.
pub fn serve(
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let addr = format!("{}:{}", config.host, config.port);
    // Bind first: a taken port fails at once, not after loading the models.
    let listener = std::net::TcpListener::bind(&addr).map_err(|source| ServerError::Bind {
        addr: addr.clone(),
        source,
    })?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;

    let options = &config.engine;
    if config.max_body_bytes == 0 {
        return Err(ServerError::Config(
            "the body size limit must be at least 1 byte".into(),
        ));
    }
    let target = augur::load_model(&options.target, options.n_gpu_layers)?;
    let draft = match &options.draft {
        Some(path) => {
            augur::gguf::check_draft_compatible(&options.target, path)
                .map_err(augur::AugurError::from)?;
            Some(augur::load_model(path, options.n_gpu_layers_draft)?)
        }
        None => None,
    };
    if options.strategy.kind().needs_draft() && draft.is_none() {
        return Err(ServerError::Config(format!(
            "the {} strategy needs a draft model (-md FILE)",
            options.strategy.kind()
        )));
    }

    let shutdown = Arc::new(AtomicBool::new(false));
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let worker = worker::spawn(
        worker::WorkerConfig {
            target: Arc::clone(&target),
            draft: draft.clone(),
            options: options.clone(),
            prompt_reuse: config.prompt_reuse,
        },
        jobs_rx,
        Arc::clone(&shutdown),
        ready_tx,
    )?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            return Err(ServerError::Worker(
                "it stopped while building the engine".into(),
            ))
        }
    }

    let stem = options
        .target
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_owned();
    let file_name = options
        .target
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("model.gguf")
        .to_owned();
    let model_id = config.model_name.clone().unwrap_or_else(|| stem.clone());
    let state = Arc::new(http::AppState {
        model_id,
        model_aliases: vec![stem, file_name],
        target,
        n_ctx: options.n_ctx,
        defaults: request::RequestDefaults {
            sampling: config.sampling.clone(),
            strategy: request::Choice {
                config: options.strategy.clone(),
                exact: options.exact,
            },
            settings: config.settings.clone(),
            has_draft: draft.is_some(),
            completion_max_tokens: config.completion_max_tokens,
        },
        api_key: config.api_key.clone().filter(|k| !k.is_empty()),
        max_body_bytes: config.max_body_bytes,
        max_queue: config.max_queue,
        admission: worker::Admission::new(config.max_queue),
        jobs: jobs_tx,
        shutdown: Arc::clone(&shutdown),
        next_id: AtomicU64::new(0),
    });

    // Two threads are plenty for relaying; the cores belong to the model.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("augur-http")
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app = http::router(state);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let flag = Arc::clone(&shutdown);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            stop_signal().await;
            // Running generations end at their next token; queued ones are
            // answered 503 by the generation thread.
            flag.store(true, Ordering::SeqCst);
            let _ = stopping_tx.send(());
        });
        on_listening(local);
        let grace = config.shutdown_grace;
        tokio::select! {
            r = server.into_future() => r,
            () = async {
                if stopping_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => Ok(()),
        }
    });
    shutdown.store(true, Ordering::SeqCst);
    // The generation thread notices within one token (or one prompt pass);
    // do not wait on a pass longer than the grace period.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !worker.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.shutdown_timeout(Duration::from_millis(500));
    result.map_err(ServerError::Io)
}

async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
