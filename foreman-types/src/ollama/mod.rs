//! Ollama's wire format, as its `api/types.go` and API docs define it.
//!
//! Each struct models the fields foreman reads and keeps every other field in `extra`, so a
//! request that passes through foreman reaches the target with nothing dropped, including
//! fields Ollama adds after this crate was written. Polymorphic fields (`format`, `think`,
//! `keep_alive`, `options`, `tools`) are kept as raw JSON values for the same reason.

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
}
