//! The fake's `POST /v1/responses`, OpenAI's Responses API as Ollama's
//! `openai/responses.go` answers it.
//!
//! It shares the generations' state. `stream` defaults to false: one `response` object
//! with `status: "completed"`, the reply in `output[0].content[0].text` (`output_text`)
//! and `usage`. A stream is named server-sent events, each `data` carrying its `type` and
//! a `sequence_number`: `response.created`, `response.in_progress`,
//! `response.output_item.added`, `response.content_part.added`, one
//! `response.output_text.delta` per piece, `response.output_text.done`,
//! `response.content_part.done`, `response.output_item.done`, `response.completed`.
//! Errors take OpenAI's shape.

use std::time::SystemTime;

use serde_json::{json, Map, Value};
use wiremock::{Request, ResponseTemplate};

use super::models::hash;
use super::openai::{error, unix, words};
use super::respond::split;
use super::state::State;

/// `input` as text, for a plausible `usage.input_tokens`.
fn input_tokens(body: &Map<String, Value>) -> u64 {
    match body.get("input") {
        Some(Value::String(text)) => words(text),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item.get("content") {
                Some(Value::String(text)) => words(text) + 4,
                _ => 5,
            })
            .sum(),
        _ => 1,
    }
}

/// The `response` object, in `status`, with this `output` and `usage`.
fn response(id: &str, model: &str, status: &str, output: Value, usage: Value) -> Value {
    let now = unix(SystemTime::now());
    json!({
        "id": id, "object": "response", "created_at": now,
        "completed_at": if status == "completed" { json!(now) } else { Value::Null },
        "status": status, "incomplete_details": null, "model": model,
        "previous_response_id": null, "instructions": null, "output": output, "error": null,
        "tools": [], "tool_choice": "auto", "truncation": "disabled",
        "parallel_tool_calls": true, "text": { "format": { "type": "text" } },
        "top_p": 1.0, "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0,
        "temperature": 1.0, "reasoning": null, "usage": usage, "max_output_tokens": null,
        "max_tool_calls": null, "store": false, "background": false,
        "service_tier": "default", "metadata": {}, "safety_identifier": null,
        "prompt_cache_key": null,
    })
}

fn message_item(item_id: &str, status: &str, text: Option<&str>) -> Value {
    let content = match text {
        Some(text) => json!([output_text(text)]),
        None => json!([]),
    };
    json!({ "id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content })
}

fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

/// `POST /v1/responses`.
pub(crate) fn respond(state: &mut State, request: &Request) -> ResponseTemplate {
    let (body, model, delay) = match state.start_from_request(request, error) {
        Ok(started) => started,
        Err(refused) => return *refused,
    };
    if let Err(refused) = state.start_or_refuse(&model, error) {
        return *refused;
    }

    let number = hash(&model, unix(SystemTime::now())) % 1_000_000;
    let (id, item_id) = (format!("resp_{number}"), format!("msg_{number}"));
    let pieces = split(&state.reply, state.chunks);
    let (input, output) = (input_tokens(&body), pieces.len() as u64);
    let usage = json!({
        "input_tokens": input, "output_tokens": output, "total_tokens": input + output,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens_details": { "reasoning_tokens": 0 },
    });
    let done_item = message_item(&item_id, "completed", Some(&state.reply));
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let answer = response(&id, &model, "completed", json!([done_item]), usage);
        return ResponseTemplate::new(200)
            .set_body_json(answer)
            .set_delay(delay);
    }
    let mut events = String::new();
    let mut sequence = 0;
    let mut event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        events.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    let in_progress = response(&id, &model, "in_progress", json!([]), Value::Null);
    event("response.created", json!({ "response": in_progress }));
    event("response.in_progress", json!({ "response": in_progress }));
    event(
        "response.output_item.added",
        json!({ "output_index": 0, "item": message_item(&item_id, "in_progress", None) }),
    );
    let part = |text: &str| json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": output_text(text) });
    event("response.content_part.added", part(""));
    for piece in &pieces {
        event(
            "response.output_text.delta",
            json!({ "item_id": item_id, "output_index": 0, "content_index": 0,
                    "delta": piece, "logprobs": [] }),
        );
    }
    event(
        "response.output_text.done",
        json!({ "item_id": item_id, "output_index": 0, "content_index": 0,
                "text": state.reply, "logprobs": [] }),
    );
    event("response.content_part.done", part(&state.reply));
    event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": done_item }),
    );
    let completed = response(&id, &model, "completed", json!([done_item]), usage);
    event("response.completed", json!({ "response": completed }));
    ResponseTemplate::new(200)
        .set_body_raw(events, "text/event-stream")
        .set_delay(delay)
}
