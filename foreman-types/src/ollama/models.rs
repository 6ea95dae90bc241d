//! What the target has: `/api/tags`, `/api/ps`, `/api/show`, `/api/version`.

use serde::{Deserialize, Serialize};

use super::Extra;

/// A model's family, format and size, as `/api/tags`, `/api/ps` and `/api/show` report it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelDetails {
    /// The model this one was made from.
    pub parent_model: Option<String>,
    /// `gguf`, ...
    pub format: Option<String>,
    /// `llama`, `qwen2`, ...
    pub family: Option<String>,
    /// All families.
    pub families: Option<Vec<String>>,
    /// `3.2B`, ...
    pub parameter_size: Option<String>,
    /// `Q4_K_M`, ...
    pub quantization_level: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One installed model in `/api/tags`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The name clients use (`llama3.2:latest`).
    pub name: String,
    /// The model's full name.
    #[serde(default)]
    pub model: String,
    /// When it was last changed.
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
#[serde_with::skip_serializing_none]
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
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShowResponse {
    /// The model's licence text.
    pub license: Option<String>,
    /// The Modelfile.
    pub modelfile: Option<String>,
    /// Default parameters.
    pub parameters: Option<String>,
    /// The prompt template.
    pub template: Option<String>,
    /// Family, format and size.
    #[serde(default)]
    pub details: ModelDetails,
    /// What the model can do (`completion`, `tools`, `thinking`, `vision`, `embedding`...).
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
