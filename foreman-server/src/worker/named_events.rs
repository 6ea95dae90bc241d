//! The error event that ends a broken stream of the APIs whose server-sent events are
//! named (`event: ...` before `data: ...`): OpenAI's Responses and Anthropic's Messages.
//! Their SDKs raise on an event named `error`; a bare `data:` line in another shape would
//! be skipped or misread.

use bytes::Bytes;
use foreman_types::JobKind;
use serde_json::json;

/// The `event: error` that ends a stream of `kind`, or `None` when the kind's streams
/// are not made of named events.
pub(super) fn error_event(kind: JobKind, message: &str) -> Option<Bytes> {
    let data = match kind {
        // Anthropic's error event carries the same object as its error bodies.
        JobKind::AnthropicMessages => json!({
            "type": "error",
            "error": { "type": "api_error", "message": message },
        }),
        // The Responses API's `ResponseErrorEvent`.
        JobKind::OpenAiResponses => json!({
            "type": "error",
            "code": "api_error",
            "message": message,
            "param": null,
        }),
        _ => return None,
    };
    Some(Bytes::from(format!("event: error\ndata: {data}\n\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_event_kinds_end_with_an_error_event_in_their_shape() {
        let event = error_event(JobKind::AnthropicMessages, "boom").unwrap();
        let text = std::str::from_utf8(&event).unwrap();
        let data = text.strip_prefix("event: error\ndata: ").unwrap();
        let data: serde_json::Value = serde_json::from_str(data.trim_end()).unwrap();
        assert_eq!(data["error"]["type"], "api_error");
        assert_eq!(data["error"]["message"], "boom");
        assert!(text.ends_with("\n\n"));

        let event = error_event(JobKind::OpenAiResponses, "boom").unwrap();
        assert!(event.starts_with(b"event: error\ndata: {"));
        assert!(error_event(JobKind::OpenAiChat, "boom").is_none());
        assert!(error_event(JobKind::Chat, "boom").is_none());
    }
}
