//! Response bodies in OpenAI's shapes, with augur's statistics under `augur`.

use serde_json::{json, Value};

use crate::request::Endpoint;
use crate::worker::Outcome;

/// `usage`, with the reused prompt tokens as OpenAI's `cached_tokens`.
pub fn usage(o: &Outcome) -> Value {
    json!({
        "prompt_tokens": o.prompt_tokens,
        "completion_tokens": o.completion_tokens,
        "total_tokens": o.prompt_tokens + o.completion_tokens,
        "prompt_tokens_details": { "cached_tokens": o.stats.n_reused },
    })
}

/// augur's statistics of one generation (the extra `augur` field, like
/// llama-server's `timings`).
pub fn augur_stats(o: &Outcome) -> Value {
    let s = &o.stats;
    // What each drafter contributed (`none`: plain steps).
    let drafters: Vec<Value> = s
        .drafters
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "steps": d.steps,
                "drafted": d.drafted,
                "accepted": d.accepted,
                "acceptance_rate": d.acceptance_rate(),
                "tokens": d.tokens,
                "seconds": d.seconds,
            })
        })
        .collect();
    json!({
        "strategy": o.strategy,
        "exactness": o.exactness.label(),
        "stop": o.stop,
        "prompt_tokens_evaluated": s.n_prompt - s.n_reused,
        "prompt_tokens_reused": s.n_reused,
        "tokens_per_second": s.tokens_per_second(),
        "prefill_seconds": s.prefill_seconds,
        "decode_seconds": s.decode_seconds,
        "queue_seconds": o.queue_seconds,
        "time_to_first_text_seconds": o.first_text_seconds,
        "target_passes": s.target_passes,
        "tokens_per_target_pass": s.tokens_per_target_pass(),
        "drafted": s.drafted,
        "accepted": s.accepted,
        "acceptance_rate": s.acceptance_rate(),
        "acceptance_by_position": s.acceptance_by_position(),
        "drafters": drafters,
    })
}

/// Identity fields every response and chunk carries.
#[derive(Debug, Clone)]
pub struct Header {
    /// `chatcmpl-…` or `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The served model's name.
    pub model: String,
    /// Which endpoint.
    pub endpoint: Endpoint,
}

impl Header {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }

    fn base(&self, chunk: bool, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": concat!("augur-", env!("CARGO_PKG_VERSION")),
            "choices": choices,
        })
    }

    /// A whole (non-streamed) answer.
    pub fn complete(&self, text: &str, o: &Outcome) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "logprobs": null,
                "finish_reason": o.finish.as_str(),
            }),
            Endpoint::Completion => json!({
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": o.finish.as_str(),
            }),
        };
        let mut v = self.base(false, json!([choice]));
        v["usage"] = usage(o);
        v["augur"] = augur_stats(o);
        v
    }

    /// The first chunk of a chat stream: the assistant's role.
    pub fn role_chunk(&self) -> Value {
        self.base(
            true,
            json!([{
                "index": 0,
                "delta": { "role": "assistant", "content": "" },
                "logprobs": null,
                "finish_reason": null,
            }]),
        )
    }

    /// A chunk of streamed text.
    pub fn text_chunk(&self, text: &str) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0,
                "delta": { "content": text },
                "logprobs": null,
                "finish_reason": null,
            }),
            Endpoint::Completion => json!({
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": null,
            }),
        };
        self.base(true, json!([choice]))
    }

    /// The chunk with the finish reason, carrying augur's statistics.
    pub fn final_chunk(&self, o: &Outcome) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0,
                "delta": {},
                "logprobs": null,
                "finish_reason": o.finish.as_str(),
            }),
            Endpoint::Completion => json!({
                "index": 0,
                "text": "",
                "logprobs": null,
                "finish_reason": o.finish.as_str(),
            }),
        };
        let mut v = self.base(true, json!([choice]));
        v["augur"] = augur_stats(o);
        v
    }

    /// The usage chunk (`stream_options.include_usage`): no choices.
    pub fn usage_chunk(&self, o: &Outcome) -> Value {
        let mut v = self.base(true, json!([]));
        v["usage"] = usage(o);
        v
    }
}
