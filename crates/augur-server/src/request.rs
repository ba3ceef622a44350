//! Request bodies: parsing, validation, and the mapping of augur's own
//! per-request fields onto a strategy configuration.

use augur::{ExactMode, SamplingParams, SettingKey, StrategyConfig, StrategyKind};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// The fields of a chat or text completion request that augur reads; other
/// fields are ignored, as OpenAI-compatible servers do.
#[derive(Debug, Default, Deserialize)]
pub struct CompletionRequest {
    /// The model asked for (optional: this server serves one).
    pub model: Option<String>,
    /// Chat: the conversation.
    pub messages: Option<Vec<RawMessage>>,
    /// Text completion: the prompt (a string, or a list of one string).
    pub prompt: Option<Value>,
    /// The most tokens to generate.
    pub max_tokens: Option<i64>,
    /// The newer name of `max_tokens`.
    pub max_completion_tokens: Option<i64>,
    /// Sampling temperature (0 = greedy).
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, in (0, 1].
    pub top_p: Option<f64>,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: Option<i64>,
    /// Drop tokens below this fraction of the top token's probability.
    pub min_p: Option<f64>,
    /// Seed of the sampling stream.
    pub seed: Option<u64>,
    /// Stop strings: a string or a list of strings.
    pub stop: Option<Value>,
    /// Stream the answer as server-sent events.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Number of choices (only 1 is supported).
    pub n: Option<i64>,
    /// Not supported (must be 0): augur samples the model's own distribution.
    pub frequency_penalty: Option<f64>,
    /// Not supported (must be 0).
    pub presence_penalty: Option<f64>,
    /// Not supported.
    pub logprobs: Option<Value>,
    /// Not supported (text completions).
    pub echo: Option<bool>,
    /// Not supported beyond 1 (text completions).
    pub best_of: Option<i64>,
    /// Not supported (text completions).
    pub suffix: Option<String>,
    /// Not supported (chat): no tool calls.
    pub tools: Option<Value>,
    /// augur: the decoding strategy for this request.
    pub strategy: Option<String>,
    /// augur: the most tokens drafted per step (speculative, prompt-lookup).
    pub draft_max: Option<i64>,
    /// augur: bit-exact mode (true), kernel-level (false), or the server's
    /// default (absent).
    pub exact: Option<bool>,
}

/// One chat message as sent.
#[derive(Debug, Deserialize)]
pub struct RawMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// A string, or a list of `{"type": "text", "text": ...}` parts.
    #[serde(default)]
    pub content: Value,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage counts.
    pub include_usage: Option<bool>,
}

/// What to tokenize: a conversation for the chat template, or plain text.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    /// `(role, content)` messages.
    Chat(Vec<(String, String)>),
    /// Raw text.
    Text(String),
}

/// A request checked and turned into augur's settings.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The prompt.
    pub input: PromptInput,
    /// The most tokens to generate; `None` = until the end or the context is full.
    pub max_tokens: Option<usize>,
    /// Sampling settings (the server's defaults for the fields left out).
    pub sampling: SamplingParams,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Stream as server-sent events.
    pub stream: bool,
    /// Add a usage chunk at the end of the stream.
    pub include_usage: bool,
    /// The strategy to decode with.
    pub strategy: Choice,
}

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// The server-wide settings requests start from.
#[derive(Debug, Clone)]
pub struct RequestDefaults {
    /// Sampling settings of requests that leave fields out.
    pub sampling: SamplingParams,
    /// The strategy of requests that name none, and its exactness mode.
    pub strategy: Choice,
    /// The server's strategy settings, applied where a requested strategy
    /// takes them.
    pub settings: Vec<(SettingKey, String)>,
    /// Whether a draft model is loaded (speculative needs one).
    pub has_draft: bool,
    /// `max_tokens` of text completions that leave it out (OpenAI's is 16).
    pub completion_max_tokens: usize,
}

/// The most stop strings a request may give (OpenAI's limit).
pub const MAX_STOP_STRINGS: usize = 4;

/// Parses a request body: malformed JSON and wrong types are answered with
/// the failing field in `param`.
pub fn parse(body: &[u8]) -> Result<CompletionRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_json(format!("the body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(ApiError::bad_json(
            "the body must be a JSON object".to_owned(),
            None,
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let param = (path != ".").then_some(path);
        let message = match &param {
            Some(p) => format!("invalid field '{p}': {}", e.inner()),
            None => e.inner().to_string(),
        };
        ApiError::bad_json(message, param)
    })
}

fn finite_in(
    name: &str,
    value: Option<f64>,
    ok: impl Fn(f64) -> bool,
    range: &str,
) -> Result<Option<f32>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && ok(v) => Ok(Some(v as f32)),
        Some(v) => Err(ApiError::invalid(
            name,
            format!("{name} must be {range}, got {v}"),
        )),
    }
}

fn message_text(index: usize, content: &Value) -> Result<String, ApiError> {
    let param = || format!("messages[{index}].content");
    match content {
        Value::String(s) => Ok(s.clone()),
        // An assistant turn that only called tools has no content.
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(t))) => texts.push(t.as_str()),
                    (Some(kind), _) if kind != "text" => {
                        return Err(ApiError::invalid(
                            &param(),
                            format!("content parts of type '{kind}' are not supported; only text"),
                        ))
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            &param(),
                            "a content part must be {\"type\": \"text\", \"text\": \"...\"}",
                        ))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        other => Err(ApiError::invalid(
            &param(),
            format!("content must be a string or a list of text parts, got {other}"),
        )),
    }
}

fn chat_input(messages: &[RawMessage]) -> Result<PromptInput, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages must hold at least one message",
        ));
    }
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].role"),
                    format!("unsupported role '{other}'; use system, developer, user or assistant"),
                ))
            }
        };
        out.push((role.to_owned(), message_text(i, &m.content)?));
    }
    Ok(PromptInput::Chat(out))
}

fn text_input(prompt: &Value) -> Result<PromptInput, ApiError> {
    match prompt {
        Value::String(s) => Ok(PromptInput::Text(s.clone())),
        Value::Array(items) if items.len() == 1 && items[0].is_string() => Ok(PromptInput::Text(
            items[0].as_str().unwrap_or_default().to_owned(),
        )),
        Value::Array(_) => Err(ApiError::invalid(
            "prompt",
            "prompt must be a string or a list of exactly one string (one prompt per request)",
        )),
        other => Err(ApiError::invalid(
            "prompt",
            format!("prompt must be a string, got {other}"),
        )),
    }
}

fn stop_strings(stop: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match stop {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid("stop", format!("stop strings must be strings, got {v}"))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::invalid(
                "stop",
                format!("stop must be a string or a list of strings, got {other}"),
            ))
        }
    };
    if list.len() > MAX_STOP_STRINGS {
        return Err(ApiError::invalid(
            "stop",
            format!(
                "at most {MAX_STOP_STRINGS} stop strings, got {}",
                list.len()
            ),
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err(ApiError::invalid("stop", "stop strings must not be empty"));
    }
    Ok(list)
}

fn unsupported(req: &CompletionRequest) -> Result<(), ApiError> {
    if let Some(n) = req.n.filter(|&n| n != 1) {
        return Err(ApiError::invalid(
            "n",
            format!("only n = 1 is supported (one generation per request), got {n}"),
        ));
    }
    for (name, v) in [
        ("frequency_penalty", req.frequency_penalty),
        ("presence_penalty", req.presence_penalty),
    ] {
        if let Some(v) = v.filter(|&v| v != 0.0) {
            return Err(ApiError::invalid(
                name,
                format!(
                    "{name} is not supported (augur samples the model's own distribution \
                     exactly), got {v}"
                ),
            ));
        }
    }
    match &req.logprobs {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(_) => return Err(ApiError::invalid("logprobs", "logprobs are not supported")),
    }
    if req.echo == Some(true) {
        return Err(ApiError::invalid("echo", "echo is not supported"));
    }
    if let Some(b) = req.best_of.filter(|&b| b != 1) {
        return Err(ApiError::invalid(
            "best_of",
            format!("only best_of = 1 is supported, got {b}"),
        ));
    }
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid("suffix", "suffix is not supported"));
    }
    match &req.tools {
        None | Some(Value::Null) => {}
        Some(Value::Array(t)) if t.is_empty() => {}
        Some(_) => return Err(ApiError::invalid("tools", "tool calls are not supported")),
    }
    Ok(())
}

/// Checks a request for `endpoint` and turns it into augur's settings.
pub fn validate(
    req: &CompletionRequest,
    endpoint: Endpoint,
    defaults: &RequestDefaults,
) -> Result<Validated, ApiError> {
    unsupported(req)?;
    let input = match endpoint {
        Endpoint::Chat => {
            let messages = req.messages.as_deref().ok_or_else(|| {
                ApiError::invalid("messages", "a chat completion needs 'messages'")
            })?;
            chat_input(messages)?
        }
        Endpoint::Completion => {
            let prompt = req
                .prompt
                .as_ref()
                .ok_or_else(|| ApiError::invalid("prompt", "a text completion needs 'prompt'"))?;
            text_input(prompt)?
        }
    };
    let (max_name, max_value) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(v), _) => ("max_completion_tokens", Some(v)),
        (None, v) => ("max_tokens", v),
    };
    let max_tokens = match max_value {
        Some(v) if v < 1 => {
            return Err(ApiError::invalid(
                max_name,
                format!("{max_name} must be at least 1, got {v}"),
            ))
        }
        Some(v) => Some(usize::try_from(v).unwrap_or(usize::MAX)),
        None if endpoint == Endpoint::Completion => Some(defaults.completion_max_tokens),
        None => None,
    };

    let mut sampling = defaults.sampling.clone();
    if let Some(t) = finite_in(
        "temperature",
        req.temperature,
        |v| v >= 0.0,
        "a number >= 0",
    )? {
        sampling.temperature = t;
    }
    if let Some(p) = finite_in("top_p", req.top_p, |v| v > 0.0 && v <= 1.0, "in (0, 1]")? {
        sampling.top_p = p;
    }
    if let Some(p) = finite_in(
        "min_p",
        req.min_p,
        |v| (0.0..=1.0).contains(&v),
        "in [0, 1]",
    )? {
        sampling.min_p = p;
    }
    if let Some(k) = req.top_k {
        sampling.top_k = usize::try_from(k).map_err(|_| {
            ApiError::invalid("top_k", format!("top_k must be >= 0 (0 = off), got {k}"))
        })?;
    }
    if let Some(seed) = req.seed {
        sampling.seed = seed;
    }
    sampling
        .validate()
        .map_err(|e| ApiError::invalid("temperature", e.to_string()))?;

    let strategy = strategy_for_request(
        &defaults.strategy,
        &defaults.settings,
        defaults.has_draft,
        req.strategy.as_deref(),
        req.draft_max,
        req.exact,
    )?;
    Ok(Validated {
        input,
        max_tokens,
        sampling,
        stop: stop_strings(req.stop.as_ref())?,
        stream: req.stream.unwrap_or(false),
        include_usage: req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        strategy,
    })
}

/// A strategy with its settings, and the exactness mode to run it under.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The strategy and its settings.
    pub config: StrategyConfig,
    /// The exactness guarantee asked for.
    pub exact: ExactMode,
}

/// The strategy a request decodes with: the server's, or the one the
/// request's `strategy` names (with the server's settings where it takes
/// them), with the request's `draft_max` and `exact` applied, all through
/// the one settings table. This is the one place where augur's per-request
/// fields meet the strategy settings.
pub fn strategy_for_request(
    base: &Choice,
    settings: &[(SettingKey, String)],
    has_draft: bool,
    strategy: Option<&str>,
    draft_max: Option<i64>,
    exact: Option<bool>,
) -> Result<Choice, ApiError> {
    let mut choice = base.clone();
    if let Some(name) = strategy {
        let kind = name
            .parse::<StrategyKind>()
            .map_err(|e| ApiError::invalid("strategy", e.to_string()))?;
        if kind != base.config.kind() {
            let mut config = StrategyConfig::new(kind);
            config
                .apply_where_taken(settings)
                .map_err(|e| ApiError::invalid("strategy", e.to_string()))?;
            choice.config = config;
        }
    }
    let kind = choice.config.kind();
    if kind.needs_draft() && !has_draft {
        return Err(ApiError::invalid(
            "strategy",
            format!(
                "the {kind} strategy needs a draft model, and this server was started without one \
                 (augur serve -md DRAFT)"
            ),
        ));
    }
    if let Some(max) = draft_max {
        let max = usize::try_from(max)
            .ok()
            .filter(|&m| m >= 1)
            .ok_or_else(|| {
                ApiError::invalid("draft_max", format!("draft_max must be >= 1, got {max}"))
            })?;
        choice
            .config
            .set(SettingKey::DraftMax, &max.to_string())
            .map_err(|e| ApiError::invalid("draft_max", e.to_string()))?;
    }
    if let Some(exact) = exact {
        choice.exact = if exact {
            ExactMode::Bit
        } else {
            ExactMode::Kernel
        };
    }
    choice
        .config
        .validate()
        .map_err(|e| ApiError::invalid("strategy", e.to_string()))?;
    Ok(choice)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn defaults() -> RequestDefaults {
        RequestDefaults {
            sampling: SamplingParams::greedy(),
            strategy: Choice {
                config: StrategyConfig::default(),
                exact: ExactMode::Auto,
            },
            settings: Vec::new(),
            has_draft: false,
            completion_max_tokens: 16,
        }
    }

    fn check(body: &str, endpoint: Endpoint) -> Result<Validated, ApiError> {
        validate(&parse(body.as_bytes())?, endpoint, &defaults())
    }

    fn param_of(body: &str, endpoint: Endpoint) -> String {
        let e = check(body, endpoint).unwrap_err();
        assert_eq!(e.status.as_u16(), 400, "{e:?}");
        e.param.unwrap_or_default()
    }

    #[test]
    fn a_chat_request_maps_onto_augurs_settings() {
        let v = check(
            r#"{"model": "x", "messages": [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                "max_tokens": 7, "temperature": 0.5, "top_k": 3, "seed": 9,
                "stop": "END", "stream": true, "stream_options": {"include_usage": true},
                "strategy": "prompt-lookup", "draft_max": 4, "exact": false,
                "user": "ignored"}"#,
            Endpoint::Chat,
        )
        .unwrap();
        assert_eq!(
            v.input,
            PromptInput::Chat(vec![
                ("system".into(), "Be brief.".into()),
                ("user".into(), "Hi".into())
            ])
        );
        assert_eq!(v.max_tokens, Some(7));
        assert_eq!(v.sampling.temperature, 0.5);
        assert_eq!(v.sampling.top_k, 3);
        assert_eq!(v.sampling.seed, 9);
        assert_eq!(v.stop, vec!["END".to_owned()]);
        assert!(v.stream && v.include_usage);
        assert_eq!(v.strategy.config.kind(), StrategyKind::PromptLookup);
        let StrategyConfig::PromptLookup(pl) = &v.strategy.config else {
            panic!("{:?}", v.strategy)
        };
        assert_eq!(pl.draft_max, 4);
        assert_eq!(v.strategy.exact, ExactMode::Kernel);
    }

    #[test]
    fn completions_default_to_sixteen_tokens_and_chat_to_the_context() {
        let v = check(r#"{"prompt": ["Once"]}"#, Endpoint::Completion).unwrap();
        assert_eq!(v.input, PromptInput::Text("Once".into()));
        assert_eq!(v.max_tokens, Some(16));
        let v = check(
            r#"{"messages": [{"role": "user", "content": "a"}]}"#,
            Endpoint::Chat,
        )
        .unwrap();
        assert_eq!(v.max_tokens, None);
        assert_eq!(v.strategy.config.kind(), StrategyKind::Baseline);
    }

    #[test]
    fn bad_values_name_their_field() {
        let chat =
            |extra: &str| format!(r#"{{"messages": [{{"role": "user", "content": "a"}}]{extra}}}"#);
        assert_eq!(param_of("{not json", Endpoint::Chat), "");
        assert_eq!(param_of("[1, 2]", Endpoint::Chat), "");
        assert_eq!(
            param_of(&chat(r#", "temperature": -1"#), Endpoint::Chat),
            "temperature"
        );
        assert_eq!(
            param_of(&chat(r#", "temperature": "hot""#), Endpoint::Chat),
            "temperature"
        );
        assert_eq!(param_of(&chat(r#", "top_p": 0"#), Endpoint::Chat), "top_p");
        assert_eq!(
            param_of(&chat(r#", "top_p": 1.5"#), Endpoint::Chat),
            "top_p"
        );
        assert_eq!(
            param_of(&chat(r#", "max_tokens": 0"#), Endpoint::Chat),
            "max_tokens"
        );
        assert_eq!(
            param_of(&chat(r#", "max_tokens": -3"#), Endpoint::Chat),
            "max_tokens"
        );
        assert_eq!(
            param_of(&chat(r#", "stream": "yes""#), Endpoint::Chat),
            "stream"
        );
        assert_eq!(param_of(&chat(r#", "n": 2"#), Endpoint::Chat), "n");
        assert_eq!(param_of(&chat(r#", "stop": [1]"#), Endpoint::Chat), "stop");
        assert_eq!(
            param_of(&chat(r#", "strategy": "warp""#), Endpoint::Chat),
            "strategy"
        );
        assert_eq!(
            param_of(&chat(r#", "strategy": "speculative""#), Endpoint::Chat),
            "strategy"
        );
        assert_eq!(
            param_of(&chat(r#", "draft_max": 3"#), Endpoint::Chat),
            "draft_max"
        );
        assert_eq!(param_of(r#"{"messages": []}"#, Endpoint::Chat), "messages");
        assert_eq!(param_of(r#"{"prompt": "a"}"#, Endpoint::Chat), "messages");
        assert_eq!(
            param_of(
                r#"{"messages": [{"role": "tool", "content": "a"}]}"#,
                Endpoint::Chat
            ),
            "messages[0].role"
        );
        assert_eq!(
            param_of(
                r#"{"messages": [{"role": "user", "content": 5}]}"#,
                Endpoint::Chat
            ),
            "messages[0].content"
        );
        assert_eq!(
            param_of(r#"{"messages": [{"content": "a"}]}"#, Endpoint::Chat),
            "messages[0]"
        );
        assert_eq!(
            param_of(r#"{"prompt": ["a", "b"]}"#, Endpoint::Completion),
            "prompt"
        );
    }
}
