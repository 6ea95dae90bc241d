//! Ollama's wire format, as its `api/types.go` and API docs define it.
//!
//! Each struct models the fields foreman reads and keeps every other field in `extra`, so a
//! request that passes through foreman reaches the target with nothing dropped, including
//! fields Ollama adds after this crate was written. Polymorphic fields (`format`, `think`,
//! `keep_alive`, `options`, `tools`) are kept as raw JSON values for the same reason.

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

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text of the message.
    #[serde(default)]
    pub content: String,
    /// The model's reasoning, when it thought (`think: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Base64-encoded images for multimodal models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Tools the model asked to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model to chat with.
    pub model: String,
    /// The conversation so far.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// Whether to stream; Ollama's default (absent) is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tools the model may call, passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    /// `"json"` or a JSON schema, passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Model options (`temperature`, `num_ctx`, ...), passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    /// How long the model stays loaded (`"5m"`, `0`, `-1`), passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Whether (or how hard) the model thinks: `true`, `false`, `"high"`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// Sets `stream`.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Sets `options`.
    pub fn options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }

    /// Sets `format`.
    pub fn format(mut self, format: Value) -> Self {
        self.format = Some(format);
        self
    }

    /// Sets `think`.
    pub fn think(mut self, think: bool) -> Self {
        self.think = Some(Value::Bool(think));
        self
    }

    /// Sets `keep_alive`.
    pub fn keep_alive(mut self, keep_alive: Value) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// Sets `tools`.
    pub fn tools(mut self, tools: Value) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Whether the answer streams: Ollama streams unless `stream` is `false`.
    pub fn is_streaming(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

/// The timing and count metrics Ollama reports on a final chunk (durations in nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Time spent generating the whole response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// Time spent loading the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Tokens in the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u64>,
    /// Time spent evaluating the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Tokens in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u64>,
    /// Time spent generating the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
}

/// One chunk of a streamed chat, or the whole answer when `stream` is `false`.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Timing and counts, on the last chunk.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /api/generate`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The model to use.
    pub model: String,
    /// The prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Text after the model's response (fill-in-the-middle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Base64-encoded images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// System prompt override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Whether to stream; Ollama's default (absent) is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `"json"` or a JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Model options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    /// How long the model stays loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Whether (or how hard) the model thinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// Sets `stream`.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Sets `options`.
    pub fn options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }

    /// Whether the answer streams: Ollama streams unless `stream` is `false`.
    pub fn is_streaming(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

/// One chunk of a streamed generation, or the whole answer when `stream` is `false`.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// True on the last chunk.
    #[serde(default)]
    pub done: bool,
    /// Why generation stopped, on the last chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Timing and counts, on the last chunk.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Fields not modelled here (`context`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `input` of an embed request: one string or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbedInput {
    /// One text.
    One(String),
    /// Several texts, one vector each.
    Many(Vec<String>),
}

impl From<&str> for EmbedInput {
    fn from(text: &str) -> Self {
        Self::One(text.to_owned())
    }
}

impl From<String> for EmbedInput {
    fn from(text: String) -> Self {
        Self::One(text)
    }
}

impl From<Vec<String>> for EmbedInput {
    fn from(texts: Vec<String>) -> Self {
        Self::Many(texts)
    }
}

/// `POST /api/embed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The embedding model.
    pub model: String,
    /// The text or texts to embed.
    pub input: EmbedInput,
    /// Fields not modelled here (`truncate`, `options`, `keep_alive`, `dimensions`...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl EmbedRequest {
    /// An embed request for `model`.
    pub fn new(model: impl Into<String>, input: impl Into<EmbedInput>) -> Self {
        Self {
            model: model.into(),
            input: input.into(),
            extra: Extra::new(),
        }
    }
}

/// The answer to `POST /api/embed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The model that embedded.
    #[serde(default)]
    pub model: String,
    /// One vector per input.
    #[serde(default)]
    pub embeddings: Vec<Vec<f32>>,
    /// Fields not modelled here (durations, counts).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /api/embeddings`, the legacy single-prompt form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// The embedding model.
    pub model: String,
    /// The text to embed.
    pub prompt: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The answer to `POST /api/embeddings`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// The vector.
    #[serde(default)]
    pub embedding: Vec<f32>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A model's family, format and size, as `/api/tags`, `/api/ps` and `/api/show` report it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelDetails {
    /// The model this one was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_model: Option<String>,
    /// `gguf`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `llama`, `qwen2`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// All families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<String>>,
    /// `3.2B`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_size: Option<String>,
    /// `Q4_K_M`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_level: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One installed model in `/api/tags`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The name clients use (`llama3.2:latest`).
    pub name: String,
    /// The model's full name.
    #[serde(default)]
    pub model: String,
    /// When it was last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    /// Size on disk in bytes.
    #[serde(default)]
    pub size: u64,
    /// Content digest.
    #[serde(default)]
    pub digest: String,
    /// Family, format and size.
    #[serde(default)]
    pub details: ModelDetails,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /api/tags`: the installed models.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TagsResponse {
    /// The installed models.
    #[serde(default)]
    pub models: Vec<ModelInfo>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One model loaded in memory, in `/api/ps`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunningModel {
    /// The model's name.
    pub name: String,
    /// The model's full name.
    #[serde(default)]
    pub model: String,
    /// Memory used in bytes.
    #[serde(default)]
    pub size: u64,
    /// Content digest.
    #[serde(default)]
    pub digest: String,
    /// Family, format and size.
    #[serde(default)]
    pub details: ModelDetails,
    /// When it will be unloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Memory used on the GPU in bytes.
    #[serde(default)]
    pub size_vram: u64,
    /// Fields not modelled here (`context_length`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /api/ps`: the models loaded in memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PsResponse {
    /// The loaded models.
    #[serde(default)]
    pub models: Vec<RunningModel>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /api/show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowRequest {
    /// The model to describe.
    pub model: String,
    /// Fields not modelled here (`verbose`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ShowRequest {
    /// A show request for `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            extra: Extra::new(),
        }
    }
}

/// The answer to `POST /api/show`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShowResponse {
    /// The model's licence text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The Modelfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modelfile: Option<String>,
    /// Default parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    /// The prompt template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Family, format and size.
    #[serde(default)]
    pub details: ModelDetails,
    /// What the model can do (`completion`, `tools`, `thinking`, `vision`, `embedding`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// Fields not modelled here (`model_info`, `modified_at`...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /api/version`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VersionResponse {
    /// The server's version.
    pub version: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}
