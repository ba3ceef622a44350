//! The HTTP side: routes, authentication, request handling and streaming.
//! Handlers validate and tokenize, then hand the job to the generation
//! thread and relay what it sends back.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use augur::llama::GgufModel;
use augur::{GenerateParams, TokenId};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ApiError;
use crate::request::{self, Endpoint, PromptInput, RequestDefaults};
use crate::response::Header;
use crate::worker::{Admission, Job, JobEvent};

/// What every handler shares.
pub struct AppState {
    /// The name `/v1/models` lists and requests may ask for.
    pub model_id: String,
    /// Other names accepted in `model` (the file name, with and without `.gguf`).
    pub model_aliases: Vec<String>,
    /// The target model, for tokenizing on the async side.
    pub target: Arc<GgufModel>,
    /// The context size every engine has.
    pub n_ctx: usize,
    /// Request defaults.
    pub defaults: RequestDefaults,
    /// The bearer token `/v1/*` requires, if any.
    pub api_key: Option<String>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Waiting requests allowed beyond the running one.
    pub max_queue: usize,
    /// Places in the queue.
    pub admission: Admission,
    /// Jobs for the generation thread.
    pub jobs: std::sync::mpsc::Sender<Job>,
    /// Set when the server stops: new requests get 503 and running
    /// generations end at their next token.
    pub shutdown: Arc<AtomicBool>,
    /// Response ids.
    pub next_id: AtomicU64,
}

impl AppState {
    fn check_model(&self, name: &str) -> Result<(), ApiError> {
        if name == self.model_id || self.model_aliases.iter().any(|a| a == name) {
            Ok(())
        } else {
            Err(ApiError::unknown_model(name, &self.model_id))
        }
    }
}

/// The router: the OpenAI endpoints (behind the API key when one is set),
/// `/health`, and JSON errors for everything else.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.max_body_bytes;
    let api = Router::new()
        .route("/v1/chat/completions", with_405(post(chat)))
        .route("/v1/completions", with_405(post(completions)))
        .route("/v1/models", with_405(get(models)))
        .route("/v1/models/{id}", with_405(get(model)))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth));
    Router::new()
        .merge(api)
        .route("/health", with_405(get(health)))
        .fallback(|uri: Uri| async move { ApiError::no_route(uri.path()) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn with_405(route: MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>> {
    route.fallback(|method: Method, uri: Uri| async move {
        ApiError::wrong_method(method.as_str(), uri.path())
    })
}

/// Compares without an early exit, so timing does not reveal the key.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &s.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same_key(g.as_bytes(), key.as_bytes())) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

async fn health(State(s): State<Arc<AppState>>) -> Response {
    if s.shutdown.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting down" })),
        )
            .into_response();
    }
    Json(json!({
        "status": "ok",
        "model": s.model_id,
        "requests": s.admission.load(),
        "max_queue": s.max_queue,
    }))
    .into_response()
}

fn model_object(s: &AppState) -> serde_json::Value {
    json!({ "id": s.model_id, "object": "model", "created": 0, "owned_by": "augur" })
}

async fn models(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({ "object": "list", "data": [model_object(&s)] }))
}

async fn model(
    State(s): State<Arc<AppState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.check_model(&id)?;
    Ok(Json(model_object(&s)))
}

async fn chat(State(s): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    handle(s, Endpoint::Chat, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn completions(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(s, Endpoint::Completion, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is larger than this server's limit of {limit} bytes \
                 (augur serve --max-body)"
            ),
        )
    } else {
        ApiError::with_status(
            rejection.status(),
            "invalid_body",
            format!("could not read the request body: {}", rejection.body_text()),
        )
    }
}

fn tokenize(target: &GgufModel, input: &PromptInput) -> Result<Vec<TokenId>, ApiError> {
    // The same steps as `augur run` (and `--chat`): the GGUF's chat
    // template, then tokenization with the model's special tokens.
    let text = match input {
        PromptInput::Text(t) => t.clone(),
        PromptInput::Chat(messages) => {
            let pairs: Vec<(&str, &str)> = messages
                .iter()
                .map(|(r, c)| (r.as_str(), c.as_str()))
                .collect();
            target
                .apply_chat_messages(&pairs, true)
                .map_err(|e| ApiError::invalid("messages", format!("{e} (use /v1/completions)")))?
        }
    };
    target
        .tokenize(&text, true)
        .map_err(|e| ApiError::invalid("prompt", e.to_string()))
}

async fn handle(
    s: Arc<AppState>,
    endpoint: Endpoint,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let admitted = Instant::now();
    let body = body.map_err(|r| body_error(&r, s.max_body_bytes))?;
    let req = request::parse(&body)?;
    if let Some(name) = &req.model {
        s.check_model(name)?;
    }
    let v = request::validate(&req, endpoint, &s.defaults)?;
    if s.shutdown.load(Ordering::SeqCst) {
        return Err(ApiError::shutting_down());
    }
    let target = Arc::clone(&s.target);
    let input = v.input.clone();
    let prompt = tokio::task::spawn_blocking(move || tokenize(&target, &input))
        .await
        .map_err(|_| ApiError::internal("tokenization failed unexpectedly"))??;
    if prompt.is_empty() {
        return Err(ApiError::invalid(
            if endpoint == Endpoint::Chat {
                "messages"
            } else {
                "prompt"
            },
            "the prompt is empty",
        ));
    }
    if prompt.len() >= s.n_ctx {
        return Err(ApiError::context_overflow(prompt.len() + 1, s.n_ctx));
    }
    // Without a limit the answer may run to the end of the context (where
    // generation stops by itself).
    let max_tokens = v.max_tokens.unwrap_or(s.n_ctx - prompt.len());
    let slot = s
        .admission
        .try_admit()
        .ok_or_else(|| ApiError::queue_full(s.max_queue))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let job = Job {
        strategy: v.strategy,
        prompt,
        params: GenerateParams {
            max_tokens,
            sampling: v.sampling,
        },
        stop: v.stop,
        events: tx,
        admitted,
        slot: Some(slot),
    };
    s.jobs
        .send(job)
        .map_err(|_| ApiError::internal("the generation thread has stopped"))?;

    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let prefix = match endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completion => "cmpl",
    };
    let header = Header {
        id: format!("{prefix}-augur{created:x}{n:04x}"),
        created,
        model: s.model_id.clone(),
        endpoint,
    };
    if v.stream {
        Ok(stream(header, rx, v.include_usage).into_response())
    } else {
        collect(header, rx).await
    }
}

/// A non-streamed answer: gathers the text, then answers once. Dropping
/// this future (the client left) drops the receiver, which cancels the job.
async fn collect(
    header: Header,
    mut rx: mpsc::UnboundedReceiver<JobEvent>,
) -> Result<Response, ApiError> {
    let mut text = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            JobEvent::Text(t) => text.push_str(&t),
            JobEvent::Done(result) => {
                let outcome = (*result)?;
                return Ok(Json(header.complete(&text, &outcome)).into_response());
            }
        }
    }
    Err(ApiError::internal("the generation thread stopped"))
}

fn data(value: &serde_json::Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(value.to_string()))
}

/// A streamed answer. A relay task turns job events into server-sent events;
/// when the client goes away the response body (and the relay's channel) is
/// dropped, the relay drops the job's receiver, and the generation thread
/// cancels at its next token.
fn stream(
    header: Header,
    mut rx: mpsc::UnboundedReceiver<JobEvent>,
    include_usage: bool,
) -> impl IntoResponse {
    let (tx, out) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        if header.endpoint == Endpoint::Chat && tx.send(data(&header.role_chunk())).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                event = rx.recv() => event,
                () = tx.closed() => return,
            };
            let sent = match event {
                Some(JobEvent::Text(t)) => tx.send(data(&header.text_chunk(&t))).await,
                Some(JobEvent::Done(result)) => match *result {
                    Ok(outcome) => {
                        let _ = tx.send(data(&header.final_chunk(&outcome))).await;
                        if include_usage {
                            let _ = tx.send(data(&header.usage_chunk(&outcome))).await;
                        }
                        let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
                        return;
                    }
                    Err(e) => {
                        // The status line has gone out already: the error comes
                        // as an event, which OpenAI's clients raise.
                        let _ = tx.send(data(&e.body())).await;
                        return;
                    }
                },
                None => {
                    let e = ApiError::internal("the generation thread stopped");
                    let _ = tx.send(data(&e.body())).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Sse::new(ReceiverStream::new(out)).keep_alive(KeepAlive::default())
}
