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

use axum::http::StatusCode;
use axum::Router;
use foreman_types::JobKind;
use serde_json::{json, Value};

use super::error_shape::ErrorShape;
use super::openai::queued_chat;
use crate::state::App;

/// The Anthropic-compatible route.
pub(super) fn router() -> Router<App> {
    Router::new().route(
        "/v1/messages",
        queued_chat::<Anthropic>(JobKind::AnthropicMessages),
    )
}

/// Whether a path belongs to the Anthropic-compatible surface (the Messages API and
/// anything under it, such as `count_tokens`), whose errors take Anthropic's shape.
pub(super) fn is_anthropic_path(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// Anthropic's error shape, `{"type": "error", "error": {"type", "message"}}`: on the
/// Anthropic paths, an error answer not already in it (from auth, body limits, unknown
/// routes, or a target that answered `{"error": "..."}`) is rewrapped by
/// [`Owners::reshape`](crate::routes::error_shape::Owners::reshape), keeping its status
/// and headers.
pub(super) struct Anthropic;

impl ErrorShape for Anthropic {
    fn owns(path: &str) -> bool {
        is_anthropic_path(path)
    }

    /// Anthropic's error object, its `type` chosen from the status as Anthropic (and Ollama's
    /// compatibility layer) choose it.
    fn body(status: StatusCode, message: &str) -> Value {
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

    fn is_shaped(body: &Value) -> bool {
        body["type"] == "error" && body["error"]["message"].is_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropics_error_types() {
        let body = Anthropic::body(StatusCode::NOT_FOUND, "model \"x\" not found");
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
            assert_eq!(
                Anthropic::body(status, "m")["error"]["type"],
                kind,
                "{status}"
            );
        }
        assert!(Anthropic::is_shaped(&body));
        assert!(!Anthropic::is_shaped(&json!({"error": "x"})));
    }

    #[test]
    fn the_messages_api_and_what_is_under_it_are_anthropic_paths() {
        assert!(is_anthropic_path("/v1/messages"));
        assert!(is_anthropic_path("/v1/messages/count_tokens"));
        assert!(!is_anthropic_path("/v1/messagesx"));
        assert!(!is_anthropic_path("/v1/chat/completions"));
    }
}
