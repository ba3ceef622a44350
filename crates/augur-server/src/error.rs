//! The server's errors: those that stop it from starting, and those a request
//! is answered with (in OpenAI's error shape).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thiserror::Error;

/// Why the server could not start or stopped abnormally.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The models or the default engine could not be loaded.
    #[error(transparent)]
    Engine(#[from] augur::AugurError),
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
    /// Serving failed (the listener broke).
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The generation thread could not be started or died while starting.
    #[error("the generation thread failed: {0}")]
    Worker(String),
}

/// A request's failure, answered as
/// `{"error": {"message", "type", "param", "code"}}` with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A stable machine-readable code (`invalid_value`, `model_not_found`...).
    pub code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code: Some(code),
        }
    }

    /// 400: a field's value is out of range or not supported.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_value", message)
        }
    }

    /// 400: the body is not the JSON the endpoint takes.
    pub fn bad_json(message: impl Into<String>, param: Option<String>) -> Self {
        Self {
            param,
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
        }
    }

    /// 400: the prompt does not fit the context.
    pub fn context_overflow(needed: usize, available: usize) -> Self {
        Self {
            param: Some("messages".into()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "context_length_exceeded",
                format!(
                    "the prompt needs {needed} tokens of context ({} of prompt and at least one \
                     to generate) but the server's context holds {available} (augur serve -c)",
                    needed - 1
                ),
            )
        }
    }

    /// 401: a missing or wrong API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "invalid or missing API key: send the server's --api-key as \
             'Authorization: Bearer KEY'",
        )
    }

    /// 404: a model this server does not serve.
    pub fn unknown_model(name: &str, served: &str) -> Self {
        Self {
            param: Some("model".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("the model '{name}' is not served here; this server serves '{served}'"),
            )
        }
    }

    /// 404: no such endpoint.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_url",
            format!(
                "no endpoint {path}; augur serves POST /v1/chat/completions, POST \
                 /v1/completions, GET /v1/models and GET /health"
            ),
        )
    }

    /// 405: the endpoint exists with another method.
    pub fn wrong_method(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    }

    /// 503: the queue for the model is full.
    pub fn queue_full(max_queue: usize) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            format!(
                "the server is busy: {max_queue} requests already wait for the model \
                 (augur serve --max-queue); try again later"
            ),
        )
    }

    /// 503: the server is stopping.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
    }

    /// 500: something failed inside the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// Any status, with a code and message (body rejections, say).
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }

    /// OpenAI's error `type` for this status.
    pub fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            404 if self.code == Some("model_not_found") => "invalid_request_error",
            503 => "server_overloaded",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            param: Option<&'a str>,
            code: Option<&'a str>,
        }
        serde_json::json!({
            "error": Inner {
                message: &self.message,
                kind: self.kind(),
                param: self.param.as_deref(),
                code: self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_openais_shape() {
        let e = ApiError::invalid("temperature", "temperature must be >= 0, got -1");
        let body = e.body();
        assert_eq!(body["error"]["param"], "temperature");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "invalid_value");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("-1")));
        assert_eq!(ApiError::unauthorized().status, StatusCode::UNAUTHORIZED);
        let overflow = ApiError::context_overflow(5001, 4096);
        assert!(
            overflow.message.contains("5001") && overflow.message.contains("4096"),
            "{}",
            overflow.message
        );
    }
}
