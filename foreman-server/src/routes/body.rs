//! Reading JSON bodies with Ollama-style errors.

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The body's bytes, or the right error: 413 past the size limit, 408 when the client
/// stalled past `FOREMAN_BODY_TIMEOUT`, 400 otherwise.
pub(super) fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, AppError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge(limit)
        } else if timed_out(&rejection) {
            AppError::RequestTimeout
        } else {
            AppError::BadRequest(rejection.body_text())
        }
    })
}

/// Whether reading the caller's body failed because `FOREMAN_BODY_TIMEOUT` fired: the
/// timeout's error anywhere in the chain of sources.
pub(super) fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Parses JSON, answering 400 with what is wrong ("model is required" when it is absent).
pub(super) fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest("missing request body".into()));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        let message = err.to_string();
        if message.starts_with("missing field `model`") {
            AppError::BadRequest("model is required".into())
        } else {
            AppError::BadRequest(format!("invalid request body: {message}"))
        }
    })
}

/// A model name must be present; it goes into the request's log line.
pub(super) fn require_model(model: &str) -> Result<(), AppError> {
    if model.trim().is_empty() {
        return Err(AppError::BadRequest("model is required".into()));
    }
    crate::request_log::note_model(model);
    Ok(())
}

/// Just the `model` of a request whose other fields go to the target untouched.
#[derive(serde::Deserialize)]
struct ModelField {
    #[serde(default)]
    model: String,
}

/// Checks the body is a JSON object with a model and returns the model.
pub(super) fn model(bytes: &[u8]) -> Result<String, AppError> {
    let ModelField { model } = json(bytes)?;
    require_model(&model)?;
    Ok(model)
}

/// What foreman reads of a chat request in OpenAI's or Anthropic's shape (a chat
/// completion, a message); everything else reaches the target untouched in the raw body.
#[derive(serde::Deserialize)]
struct ChatFields {
    #[serde(default)]
    model: String,
    /// Required, so a request without it gets 400 before it is queued.
    #[serde(rename = "messages")]
    _messages: Vec<serde::de::IgnoredAny>,
}

/// Checks the body is a JSON object with a `messages` list and returns its model (which
/// queueing checks).
pub(super) fn chat_model(bytes: &[u8]) -> Result<String, AppError> {
    let ChatFields { model, .. } = json(bytes)?;
    Ok(model)
}
