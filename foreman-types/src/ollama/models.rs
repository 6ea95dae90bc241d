//! What the target has: `/api/tags`, `/api/ps`, `/api/show`, `/api/version`.

use serde::{Deserialize, Serialize};

use super::Extra;

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
