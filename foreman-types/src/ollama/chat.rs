//! `POST /api/chat`: requests, messages, tool calls, streamed chunks and their metrics.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Extra;

/// One message of a chat.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text of the message.
    #[serde(default)]
    pub content: String,
    /// The model's reasoning, when it thought (`think: true`).
    pub thinking: Option<String>,
    /// Base64-encoded images for multimodal models.
    pub images: Option<Vec<String>>,
    /// Tools the model asked to call.
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Fields not modelled here (`tool_name`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatMessage {
    /// A message with this role and text.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            ..Self::default()
        }
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// Attaches base64-encoded images.
    pub fn images(mut self, images: Vec<String>) -> Self {
        self.images = Some(images);
        self
    }
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The function to call.
    pub function: ToolCallFunction,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The function half of a [`ToolCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallFunction {
    /// The tool's name.
    pub name: String,
    /// The arguments, as the model wrote them.
    #[serde(default)]
    pub arguments: Value,
    /// Fields not modelled here (`index`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /api/chat`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model to chat with.
    pub model: String,
    /// The conversation so far.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// Whether to stream; Ollama's default (absent) is `true`.
    pub stream: Option<bool>,
    /// Tools the model may call, passed through as given.
    pub tools: Option<Value>,
    /// `"json"` or a JSON schema, passed through as given.
    pub format: Option<Value>,
    /// Model options (`temperature`, `num_ctx`, ...), passed through as given.
    pub options: Option<Value>,
    /// How long the model stays loaded (`"5m"`, `0`, `-1`), passed through as given.
    pub keep_alive: Option<Value>,
    /// Whether (or how hard) the model thinks: `true`, `false`, `"high"`...
    pub think: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatRequest {
    /// A chat request for `model` with these messages.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            ..Self::default()
        }
    }

    setters! {
        stream: bool,
        options: Value,
        format: Value,
    }

    /// Sets `think`.
    pub fn think(mut self, think: bool) -> Self {
        self.think = Some(Value::Bool(think));
        self
    }

    setters! {
        keep_alive: Value,
        tools: Value,
    }

    /// Whether the answer streams: Ollama streams unless `stream` is `false`.
    pub fn is_streaming(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

/// The timing and count metrics Ollama reports on a final chunk (durations in nanoseconds).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Time spent generating the whole response.
    pub total_duration: Option<u64>,
    /// Time spent loading the model.
    pub load_duration: Option<u64>,
    /// Tokens in the prompt.
    pub prompt_eval_count: Option<u64>,
    /// Time spent evaluating the prompt.
    pub prompt_eval_duration: Option<u64>,
    /// Tokens in the response.
    pub eval_count: Option<u64>,
    /// Time spent generating the response.
    pub eval_duration: Option<u64>,
}

/// One chunk of a streamed chat, or the whole answer when `stream` is `false`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// When the chunk was made (RFC 3339), as Ollama wrote it.
    #[serde(default)]
    pub created_at: String,
    /// This chunk's part of the answer.
    #[serde(default)]
    pub message: ChatMessage,
    /// True on the last chunk.
    #[serde(default)]
    pub done: bool,
    /// Why generation stopped (`stop`, `length`, `load`...), on the last chunk.
    pub done_reason: Option<String>,
    /// Timing and counts, on the last chunk.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}
