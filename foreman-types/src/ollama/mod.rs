//! Ollama's wire format, as its `api/types.go` and API docs define it.
//!
//! Each struct models the fields foreman reads and keeps every other field in `extra`, so a
//! request that passes through foreman reaches the target with nothing dropped, including
//! fields Ollama adds after this crate was written. Polymorphic fields (`format`, `think`,
//! `keep_alive`, `options`, `tools`) are kept as raw JSON values for the same reason. An
//! optional field that is `None` is left out when serialised (`skip_serializing_none`), as
//! Ollama leaves it out, and read as `None` when absent.

mod chat;
mod embed;
mod generate;
mod manage;
mod models;

pub use chat::{ChatChunk, ChatMessage, ChatRequest, Metrics, ToolCall, ToolCallFunction};
pub use embed::{EmbedInput, EmbedRequest, EmbedResponse, EmbeddingsRequest, EmbeddingsResponse};
pub use generate::{GenerateChunk, GenerateRequest};
pub use manage::{
    CopyRequest, CreateRequest, DeleteRequest, ProgressResponse, PullRequest, PushRequest,
    RegistryRequest,
};
pub use models::{
    ModelDetails, ModelInfo, PsResponse, RunningModel, ShowRequest, ShowResponse, TagsResponse,
    VersionResponse,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields a struct does not model, kept so that re-serialising is lossless.
pub type Extra = Map<String, Value>;

/// The key foreman compares model names by: a name without a tag means `:latest`, as in
/// Ollama (`llama3.2` and `llama3.2:latest` are the same model).
///
/// ```
/// assert_eq!(foreman_types::model_key("llama3.2"), "llama3.2:latest");
/// assert_eq!(foreman_types::model_key("qwen2.5:0.5b"), "qwen2.5:0.5b");
/// assert_eq!(foreman_types::model_key("registry.local:5000/m"), "registry.local:5000/m:latest");
/// ```
pub fn model_key(name: &str) -> String {
    let name = name.trim();
    // A tag is a colon after the last slash; a colon before it belongs to a registry port.
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if last_segment.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// The error body of Ollama's Anthropic-compatible `/v1/messages`, `{"type": "error",
/// "error": {"type", "message"}}`, its `type` chosen from the status as Ollama's
/// `anthropic.NewError` chooses it.
///
/// ```
/// let body = foreman_types::ollama_anthropic_error(404, "model \"x\" not found");
/// assert_eq!(body["error"]["type"], "not_found_error");
/// assert_eq!(foreman_types::ollama_anthropic_error(529, "busy")["error"]["type"], "overloaded_error");
/// ```
pub fn ollama_anthropic_error(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    serde_json::json!({ "type": "error", "error": { "type": kind, "message": message } })
}

/// Who owns a model, as Ollama's OpenAI-compatible `/v1/models` reports it (`owned_by`):
/// the namespace before the model's own name, or `library` for a bare name.
///
/// ```
/// assert_eq!(foreman_types::model_owner("llama3.2:latest"), "library");
/// assert_eq!(foreman_types::model_owner("me/mine:7b"), "me");
/// assert_eq!(foreman_types::model_owner("hf.co/org/model:Q4_K_M"), "org");
/// assert_eq!(foreman_types::model_owner("registry.local:5000/team/m"), "team");
/// ```
pub fn model_owner(name: &str) -> &str {
    let name = name.trim();
    // A tag is a colon after the last slash; a colon before it belongs to a registry port.
    let path = match name.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => path,
        _ => name,
    };
    let mut segments = path.rsplit('/');
    segments.next();
    segments.next().unwrap_or("library")
}

/// The error body every Ollama (and foreman) error response carries: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

impl ErrorBody {
    /// An error body with this message.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
        }
    }

    /// The message of an error as Ollama, foreman and OpenAI-compatible servers write it:
    /// the `error` of `{"error": "..."}`, or the `message` of `{"error": {"message": ...}}`
    /// (Ollama's `/v1` routes); any other `error` value as its JSON text. `None` when the
    /// value has no `error`, or a `null` one: it is not an error.
    ///
    /// This is the one reader of error bodies and NDJSON error lines; every crate uses it.
    ///
    /// ```
    /// use foreman_types::ErrorBody;
    /// use serde_json::json;
    ///
    /// assert_eq!(ErrorBody::message_of(&json!({"error": "boom"})).as_deref(), Some("boom"));
    /// let openai = json!({"error": {"message": "bad", "type": "api_error"}});
    /// assert_eq!(ErrorBody::message_of(&openai).as_deref(), Some("bad"));
    /// assert_eq!(ErrorBody::message_of(&json!({"done": true})), None);
    /// ```
    pub fn message_of(value: &Value) -> Option<String> {
        match value.get("error")? {
            Value::Null => None,
            Value::String(message) => Some(message.clone()),
            error => match error.get("message") {
                Some(Value::String(message)) => Some(message.clone()),
                _ => Some(error.to_string()),
            },
        }
    }

    /// [`message_of`](Self::message_of) a body given as bytes; `None` also when it is not
    /// JSON, so the caller can fall back to the body's text.
    ///
    /// ```
    /// use foreman_types::ErrorBody;
    ///
    /// let body = br#"{"error":"model \"x\" not found"}"#;
    /// assert_eq!(ErrorBody::message_in(body).as_deref(), Some(r#"model "x" not found"#));
    /// assert_eq!(ErrorBody::message_in(b"<html>bad gateway</html>"), None);
    /// ```
    pub fn message_in(body: &[u8]) -> Option<String> {
        Self::message_of(&serde_json::from_slice(body).ok()?)
    }
}
