//! `POST /v1/messages`, Ollama's Anthropic-compatible route (its `middleware/anthropic.go`
//! and `anthropic/anthropic.go`), on the same simulated GPU as `/api/chat`.
//!
//! `stream` defaults to false: one `message` object. A stream is named server-sent events:
//! with the first token `message_start`, `content_block_start` and the first
//! `content_block_delta`; then one `content_block_delta` (`text_delta`, or
//! `thinking_delta` in a thinking block before it) per token; at the end
//! `content_block_stop`, `message_delta` (`stop_reason`, usage) and `message_stop`.
//! `max_tokens` limits the answer (`stop_reason: "max_tokens"`). Errors take Anthropic's
//! shape, `{"type": "error", "error": {"type", "message"}}`.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

use super::generate::{self, word_count, Request};
use super::generation::{self, Done, Event};
use super::state::Sim;
use super::{model_request, named_event, streamed, ErrorShape, Rejection, Shaped};

/// A [`Rejection`] in Anthropic's shape, typed by status as Ollama's `anthropic.NewError`.
pub(super) type AnthropicRejection = Shaped<Anthropic>;

/// Anthropic's error shape.
#[derive(Debug)]
pub(super) struct Anthropic;

impl ErrorShape for Anthropic {
    fn body(status: StatusCode, message: &str) -> Value {
        foreman_types::ollama_anthropic_error(status.as_u16(), message)
    }
}

/// `POST /v1/messages`.
pub(super) async fn messages(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicRejection> {
    let (started, request, name) = model_request(body)?;
    let max_tokens = request
        .get("max_tokens")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
        .ok_or_else(|| Rejection::bad_request("max_tokens is required and must be positive"))?;
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .filter(|messages| !messages.is_empty())
        .ok_or_else(|| Rejection::bad_request("messages is required"))?;
    let model = generate::usable_model(&sim, &name, "chat")?;
    let prompt = messages
        .iter()
        .rev()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        .or(messages.last())
        .map(|message| text(message.get("content")))
        .unwrap_or_default();
    let words: usize = messages
        .iter()
        .map(|message| word_count(&text(message.get("content"))) + 4)
        .sum();
    let system_words = word_count(&text(request.get("system")));
    let think = request.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled");
    let generation = Request {
        prompt,
        prompt_eval_count: (words + system_words).max(1) as u64,
        think,
        num_predict: usize::try_from(max_tokens).ok(),
        ..Request::compatible(request, &name, model, started)
    };
    let stream = generation.stream;
    let input_tokens = generation.prompt_eval_count;
    let events = generation::start(Arc::clone(&sim), generation).await?;
    let mut shape = Shape::new(sim.answer_id("msg"), name, input_tokens);
    if stream {
        let chunks = events.map(move |event| event.map(|event| shape.event(&event)));
        return Ok(streamed(chunks, "text/event-stream"));
    }
    match generation::whole(events).await {
        Ok(whole) => {
            let mut content = Vec::new();
            if !whole.thinking.is_empty() {
                content.push(json!({ "type": "thinking", "thinking": whole.thinking }));
            }
            if !whole.content.is_empty() {
                content.push(json!({ "type": "text", "text": whole.content }));
            }
            let message = shape.message(json!(content), Some(&whole.done));
            Ok(Json(message).into_response())
        }
        Err(unfinished) => {
            Ok(unfinished.answer(|rejection| AnthropicRejection::from(rejection).into_response()))
        }
    }
}

/// The text of a `content` (or `system`): a string, or the text blocks of a list.
fn text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Ollama's `done_reason` as Anthropic's `stop_reason`.
fn stop_reason(done: &Done) -> &'static str {
    match done.reason {
        "length" => "max_tokens",
        _ => "end_turn",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
}

/// One answer's events, as Ollama's `StreamConverter` makes them from the chat chunks.
#[derive(Debug)]
struct Shape {
    id: String,
    model: String,
    input_tokens: u64,
    started: bool,
    /// The content block open now, and its index.
    open: Option<Block>,
    index: usize,
}

impl Shape {
    fn new(id: String, model: String, input_tokens: u64) -> Self {
        Self {
            id,
            model,
            input_tokens,
            started: false,
            open: None,
            index: 0,
        }
    }

    /// The `message` object: whole once `done`, empty in `message_start`.
    fn message(&self, content: Value, done: Option<&Done>) -> Value {
        let (stop, output_tokens) = match done {
            Some(done) => (json!(stop_reason(done)), done.metrics.eval_count),
            None => (Value::Null, 0),
        };
        let input_tokens = done.map_or(self.input_tokens, |done| done.metrics.prompt_eval_count);
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": { "input_tokens": input_tokens, "output_tokens": output_tokens },
        })
    }

    /// The named events for one event of the generation.
    fn event(&mut self, event: &Event) -> Bytes {
        let mut out = String::new();
        if !self.started && !matches!(event, Event::Failed(_)) {
            self.started = true;
            let start =
                json!({ "type": "message_start", "message": self.message(json!([]), None) });
            named_event(&mut out, "message_start", &start);
        }
        match event {
            Event::Thinking(token) => {
                self.open_block(&mut out, Block::Thinking);
                let delta = json!({ "type": "thinking_delta", "thinking": token });
                self.delta(&mut out, delta);
            }
            Event::Content(token) => {
                self.open_block(&mut out, Block::Text);
                self.delta(&mut out, json!({ "type": "text_delta", "text": token }));
            }
            Event::Failed(message) => {
                // In Anthropic's (and Ollama's) field order, `type` first: a reader must
                // not rely on `error` leading, as serde_json's sorted keys would make it.
                let message = Value::from(message.as_str());
                let data = format!(
                    "{{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":{message}}}}}"
                );
                out.push_str("event: error\ndata: ");
                out.push_str(&data);
                out.push_str("\n\n");
            }
            Event::Done(done) => {
                self.close_block(&mut out);
                let delta = json!({
                    "type": "message_delta",
                    "delta": { "stop_reason": stop_reason(done), "stop_sequence": null },
                    "usage": {
                        "input_tokens": done.metrics.prompt_eval_count,
                        "output_tokens": done.metrics.eval_count,
                    },
                });
                named_event(&mut out, "message_delta", &delta);
                named_event(&mut out, "message_stop", &json!({ "type": "message_stop" }));
            }
        }
        Bytes::from(out)
    }

    fn open_block(&mut self, out: &mut String, block: Block) {
        if self.open == Some(block) {
            return;
        }
        self.close_block(out);
        let content_block = match block {
            Block::Thinking => json!({ "type": "thinking", "thinking": "" }),
            Block::Text => json!({ "type": "text", "text": "" }),
        };
        let start = json!({
            "type": "content_block_start", "index": self.index, "content_block": content_block,
        });
        named_event(out, "content_block_start", &start);
        self.open = Some(block);
    }

    fn close_block(&mut self, out: &mut String) {
        if self.open.take().is_some() {
            let stop = json!({ "type": "content_block_stop", "index": self.index });
            named_event(out, "content_block_stop", &stop);
            self.index += 1;
        }
    }

    fn delta(&self, out: &mut String, delta: Value) {
        let event = json!({ "type": "content_block_delta", "index": self.index, "delta": delta });
        named_event(out, "content_block_delta", &event);
    }
}
