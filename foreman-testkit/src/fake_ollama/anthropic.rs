//! The fake's Anthropic-compatible `POST /v1/messages`, as Ollama's
//! `middleware/anthropic.go` answers it.
//!
//! It shares the generations' state (reply, chunking, delay, failures, residency,
//! observations). `stream` defaults to false: one `message` object. A stream is named
//! server-sent events: `message_start`, `content_block_start`, one `content_block_delta`
//! (`text_delta`) per piece, `content_block_stop`, `message_delta` (with `stop_reason`
//! and usage), `message_stop`. Errors are `{"type": "error", "error": {"type", "message"}}`.

use std::time::SystemTime;

use serde_json::{json, Value};
use wiremock::{Request, ResponseTemplate};

use super::models::hash;
use super::openai::{prompt_tokens, unix};
use super::respond::split;
use super::state::State;

/// An error in Anthropic's shape, typed by status as Ollama's compatibility layer types it.
pub(crate) fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(foreman_types::ollama_anthropic_error(status, message))
}

/// One named server-sent event.
fn event(out: &mut String, name: &str, data: &Value) {
    out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
}

/// `POST /v1/messages`.
pub(crate) fn respond(state: &mut State, request: &Request) -> ResponseTemplate {
    let (body, model, delay) = match state.start_from_request(request, error) {
        Ok(started) => started,
        Err(refused) => return *refused,
    };
    if body
        .get("max_tokens")
        .and_then(Value::as_i64)
        .is_none_or(|n| n <= 0)
    {
        return error(400, "max_tokens is required and must be positive");
    }
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return error(400, "messages is required");
    }
    if let Err(refused) = state.start_or_refuse(&model, error) {
        return *refused;
    }

    let id = format!("msg_{:024x}", hash(&model, unix(SystemTime::now())));
    let pieces = split(&state.reply, state.chunks);
    let input_tokens = prompt_tokens(&body);
    let output_tokens = pieces.len() as u64;
    let message = |content: Value, stop: Value, output: u64| {
        json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": { "input_tokens": input_tokens, "output_tokens": output },
        })
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let content = json!([{ "type": "text", "text": state.reply }]);
        return ResponseTemplate::new(200)
            .set_body_json(message(content, json!("end_turn"), output_tokens))
            .set_delay(delay);
    }
    let mut events = String::new();
    event(
        &mut events,
        "message_start",
        &json!({ "type": "message_start", "message": message(json!([]), Value::Null, 0) }),
    );
    event(
        &mut events,
        "content_block_start",
        &json!({ "type": "content_block_start", "index": 0,
                 "content_block": { "type": "text", "text": "" } }),
    );
    for piece in &pieces {
        event(
            &mut events,
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": 0,
                     "delta": { "type": "text_delta", "text": piece } }),
        );
    }
    event(
        &mut events,
        "content_block_stop",
        &json!({ "type": "content_block_stop", "index": 0 }),
    );
    event(
        &mut events,
        "message_delta",
        &json!({ "type": "message_delta",
                 "delta": { "stop_reason": "end_turn", "stop_sequence": null },
                 "usage": { "input_tokens": input_tokens, "output_tokens": output_tokens } }),
    );
    event(
        &mut events,
        "message_stop",
        &json!({ "type": "message_stop" }),
    );
    ResponseTemplate::new(200)
        .set_body_raw(events, "text/event-stream")
        .set_delay(delay)
}
