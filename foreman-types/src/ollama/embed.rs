//! `POST /api/embed` and the legacy `POST /api/embeddings`.

use serde::{Deserialize, Serialize};

use super::Extra;

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
