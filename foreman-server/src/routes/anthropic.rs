//! `POST /v1/messages`: Ollama's Anthropic-compatible Messages API, so apps on the
//! Anthropic SDKs (and tools such as Claude Code pointed at a local base URL) work through
//! foreman too.
//!
//! Queued like `/v1/chat/completions` (ADR 10): the body goes to the target's own
//! `/v1/messages` byte for byte when the job's turn comes, and the answer (named
//! server-sent events, `event: message_start` ... `event: message_stop`, or one JSON
//! message) comes back as the target sends it. Every error under `/v1/messages` takes
//! Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, which the SDKs
//! turn into typed exceptions.

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use foreman_types::JobKind;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body;
use super::generate::queued;
use super::limits::Submitter;
use crate::error::AppError;
use crate::state::App;
use crate::targets::client::error_message;

/// The largest error body read to reshape it.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// The Anthropic-compatible route.
pub(super) fn router() -> Router<App> {
    Router::new().route("/v1/messages", post(messages))
}

/// Whether a path belongs to the Anthropic-compatible surface (the Messages API and
/// anything under it, such as `count_tokens`), whose errors take Anthropic's shape.
pub(super) fn is_anthropic_path(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// What foreman reads of a Messages request; the rest reaches the target untouched.
#[derive(Deserialize)]
struct MessagesRequest {
    #[serde(default)]
    model: String,
    /// Required, so a request without it gets 400 before it is queued.
    #[serde(rename = "messages")]
    _messages: Vec<IgnoredAny>,
}

/// `POST /v1/messages`.
async fn messages(
    Submitter(caller): Submitter,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let request: MessagesRequest = body::json(&body)?;
    Ok(queued(app, caller, JobKind::AnthropicMessages, request.model, body).await?)
}

/// An [`AppError`] answered in Anthropic's shape, with the same status and message.
#[derive(Debug)]
pub(crate) struct AnthropicError(pub(crate) AppError);

impl From<AppError> for AnthropicError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let mut response = (status, Json(error_body(status, &self.0.to_string()))).into_response();
        self.0.decorate(&mut response);
        response
    }
}

/// Anthropic's error object, its `type` chosen from the status as Anthropic (and Ollama's
/// compatibility layer) choose it.
fn error_body(status: StatusCode, message: &str) -> Value {
    let kind = match status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}

/// Middleware for every route: on the Anthropic paths, an error answer that is not
/// already Anthropic-shaped (from auth, body limits, unknown routes, or a target that
/// answered `{"error": "..."}`) is rewrapped, keeping its status and headers.
pub(crate) async fn errors(request: Request, next: Next) -> Response {
    let anthropic = is_anthropic_path(request.uri().path());
    let response = next.run(request).await;
    if !anthropic || response.status().is_success() {
        return response;
    }
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let message = format!("the target's error could not be read: {err}");
            return AnthropicError(AppError::BadGateway(message)).into_response();
        }
    };
    if is_anthropic_error(&bytes) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let wrapped = error_body(status, &error_message(&bytes)).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(wrapped))
}

/// Whether a body is already `{"type": "error", "error": {"message": ...}}`.
fn is_anthropic_error(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .is_some_and(|v| v["type"] == "error" && v["error"]["message"].is_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropics_error_types() {
        let body = error_body(StatusCode::NOT_FOUND, "model \"x\" not found");
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "model \"x\" not found"}})
        );
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (503, "overloaded_error"),
            (500, "api_error"),
            (502, "api_error"),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(error_body(status, "m")["error"]["type"], kind, "{status}");
        }
        assert!(is_anthropic_error(body.to_string().as_bytes()));
        assert!(!is_anthropic_error(br#"{"error":"x"}"#));
    }

    #[test]
    fn the_messages_api_and_what_is_under_it_are_anthropic_paths() {
        assert!(is_anthropic_path("/v1/messages"));
        assert!(is_anthropic_path("/v1/messages/count_tokens"));
        assert!(!is_anthropic_path("/v1/messagesx"));
        assert!(!is_anthropic_path("/v1/chat/completions"));
    }
}
