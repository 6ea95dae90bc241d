//! `POST /api/generate`: requests and streamed chunks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Extra;

use super::Metrics;

/// `POST /api/generate`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The model to use.
    pub model: String,
    /// The prompt.
    pub prompt: Option<String>,
    /// Text after the model's response (fill-in-the-middle).
    pub suffix: Option<String>,
    /// Base64-encoded images.
    pub images: Option<Vec<String>>,
    /// System prompt override.
    pub system: Option<String>,
    /// Whether to stream; Ollama's default (absent) is `true`.
    pub stream: Option<bool>,
    /// `"json"` or a JSON schema.
    pub format: Option<Value>,
    /// Model options.
    pub options: Option<Value>,
    /// How long the model stays loaded.
    pub keep_alive: Option<Value>,
    /// Whether (or how hard) the model thinks.
    pub think: Option<Value>,
    /// Fields not modelled here (`template`, `context`, `raw`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}

impl GenerateRequest {
    /// A generate request for `model` with this prompt.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            prompt: Some(prompt.into()),
            ..Self::default()
        }
    }

    setters! {
        stream: bool,
        options: Value,
    }

    /// Whether the answer streams: Ollama streams unless `stream` is `false`.
    pub fn is_streaming(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

/// One chunk of a streamed generation, or the whole answer when `stream` is `false`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenerateChunk {
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// When the chunk was made (RFC 3339).
    #[serde(default)]
    pub created_at: String,
    /// This chunk's part of the answer.
    #[serde(default)]
    pub response: String,
    /// The model's reasoning, when it thought.
    pub thinking: Option<String>,
    /// True on the last chunk.
    #[serde(default)]
    pub done: bool,
    /// Why generation stopped, on the last chunk.
    pub done_reason: Option<String>,
    /// Timing and counts, on the last chunk.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Fields not modelled here (`context`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}
