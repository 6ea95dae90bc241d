//! Model management: `/api/pull`, `/api/push`, `/api/create`, `/api/copy`,
//! `/api/delete`, and the progress lines the streamed ones answer with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Extra;

/// `POST /api/pull` (download a model from a registry) and `POST /api/push` (upload one
/// to a registry): both take the same fields.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegistryRequest {
    /// The model to pull (`llama3.2`, `hf.co/org/repo:Q4_K_M`) or push
    /// (`namespace/model:tag`). The deprecated `name` that older clients send stays in
    /// `extra`.
    pub model: String,
    /// Whether to stream progress; Ollama's default (absent) is `true`.
    pub stream: Option<bool>,
    /// Allow a registry without TLS.
    pub insecure: Option<bool>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /api/pull`: download a model from a registry.
pub type PullRequest = RegistryRequest;

/// `POST /api/push`: upload a model to a registry.
pub type PushRequest = RegistryRequest;

impl RegistryRequest {
    /// A pull or push of `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }

    setters! {
        stream: bool,
        insecure: bool,
    }
}

/// `POST /api/create`: make a model from another one or from uploaded blobs.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateRequest {
    /// The name of the new model.
    pub model: String,
    /// The model it is made from.
    pub from: Option<String>,
    /// File names and the digests of their blobs (`POST /api/blobs/{digest}` first).
    pub files: Option<BTreeMap<String, String>>,
    /// LoRA adapters: file names and blob digests.
    pub adapters: Option<BTreeMap<String, String>>,
    /// The prompt template.
    pub template: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// Default parameters (`temperature`, `num_ctx`, `stop`...).
    pub parameters: Option<Value>,
    /// Quantize to this level (`q4_K_M`, `q8_0`).
    pub quantize: Option<String>,
    /// Whether to stream progress; Ollama's default (absent) is `true`.
    pub stream: Option<bool>,
    /// Fields not modelled here (`license`, `messages`, `adapters`, anything new).
    #[serde(flatten)]
    pub extra: Extra,
}

impl CreateRequest {
    /// A create request for a model named `model`; say what it is made of with
    /// [`from`](Self::from) or [`files`](Self::files).
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }

    /// Sets `from`: the model the new one is based on.
    pub fn from(mut self, model: impl Into<String>) -> Self {
        self.from = Some(model.into());
        self
    }

    /// Sets `files`: file names and the digests of their uploaded blobs.
    pub fn files(mut self, files: BTreeMap<String, String>) -> Self {
        self.files = Some(files);
        self
    }

    setters! {
        system: into String,
        template: into String,
        quantize: into String,
        stream: bool,
    }
}

/// `POST /api/copy`: the same model under a second name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CopyRequest {
    /// The model to copy.
    pub source: String,
    /// The new name.
    pub destination: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CopyRequest {
    /// A copy of `source` named `destination`.
    pub fn new(source: impl Into<String>, destination: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            destination: destination.into(),
            extra: Extra::new(),
        }
    }
}

/// `DELETE /api/delete`: remove a model and the blobs nothing else uses.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// The model to delete.
    pub model: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DeleteRequest {
    /// A delete of `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            extra: Extra::new(),
        }
    }
}

/// One line of a pull, push or create: what is happening, and for a layer being
/// transferred, its digest and how many of its bytes are done. The last line of a
/// successful operation has `status: "success"`; a failure is an `{"error": ...}` line
/// instead.
///
/// ```
/// let line: foreman_types::ProgressResponse = serde_json::from_str(
///     r#"{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5","total":2019377376,"completed":241970}"#,
/// ).unwrap();
/// assert_eq!(line.total, Some(2_019_377_376));
/// assert!(!line.is_success());
/// ```
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProgressResponse {
    /// `pulling manifest`, `pulling dde5aa3fc5ff`, `verifying sha256 digest`, `success`...
    #[serde(default)]
    pub status: String,
    /// The layer being transferred, `sha256:...`.
    pub digest: Option<String>,
    /// The layer's size in bytes.
    pub total: Option<u64>,
    /// How many of its bytes are done.
    pub completed: Option<u64>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ProgressResponse {
    /// A line with this status.
    pub fn new(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            ..Self::default()
        }
    }

    /// Whether this is the last line of a successful operation (`status: "success"`).
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }
}
