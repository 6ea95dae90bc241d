//! `POST /v1/responses`, OpenAI's Responses API as Ollama's `openai/responses.go` answers
//! it, on the same simulated GPU as `/api/chat`.
//!
//! `stream` defaults to false: one `response` object, `status: "completed"`, the answer in
//! a `message` item's `output_text`, and `usage`. A stream is named server-sent events,
//! each `data` carrying its `type` and a `sequence_number`: with the first token
//! `response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`; one `response.output_text.delta` per token; at the end
//! `response.output_text.done`, `response.content_part.done`, `response.output_item.done`
//! and `response.completed`. `max_output_tokens` limits the answer. Errors take OpenAI's
//! shape.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use serde_json::{json, Value};

use super::generate::{self, word_count, Request};
use super::generation::{self, Done, Event};
use super::openai::OpenAiRejection;
use super::state::Sim;
use super::{model_request, named_event, streamed};

/// `POST /v1/responses`.
pub(super) async fn responses(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiRejection> {
    let (started, request, name) = model_request(body)?;
    let model = generate::usable_model(&sim, &name, "chat")?;
    let items: Vec<(Option<&str>, String)> = match request.get("input") {
        Some(Value::String(text)) => vec![(Some("user"), text.clone())],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let role = item.get("role").and_then(Value::as_str);
                (role, text(item.get("content")))
            })
            .collect(),
        _ => Vec::new(),
    };
    let prompt = items
        .iter()
        .rev()
        .find(|(role, _)| *role == Some("user"))
        .or(items.last())
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    let instructions = request
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, word_count);
    let words: usize = items.iter().map(|(_, text)| word_count(text) + 4).sum();
    let max_output_tokens = request
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
    let echo = Echo::of(&request);
    let generation = Request {
        prompt,
        prompt_eval_count: (words + instructions).max(1) as u64,
        num_predict: max_output_tokens,
        ..Request::compatible(request, &name, model, started)
    };
    let stream = generation.stream;
    let events = generation::start(Arc::clone(&sim), generation).await?;
    let number = sim.answer_id("resp");
    let item_id = number.replacen("resp", "msg", 1);
    let mut shape = Shape {
        id: number,
        item_id,
        model: name,
        echo,
        sequence: 0,
        started: false,
        text: None,
    };
    if stream {
        let chunks = events.map(move |event| event.map(|event| shape.event(&event)));
        return Ok(streamed(chunks, "text/event-stream"));
    }
    match generation::whole(events).await {
        Ok(whole) => {
            let item = shape.item("completed", Some(&whole.content));
            let answer = shape.response("completed", json!([item]), Some(&whole.done));
            Ok(Json(answer).into_response())
        }
        Err(unfinished) => {
            Ok(unfinished.answer(|rejection| OpenAiRejection::from(rejection).into_response()))
        }
    }
}

/// The text of an input item's `content`: a string, or the text parts of a list.
fn text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The request's settings a response echoes back.
#[derive(Debug)]
struct Echo {
    instructions: Value,
    max_output_tokens: Value,
    temperature: Value,
    top_p: Value,
}

impl Echo {
    fn of(request: &Value) -> Self {
        let or = |field: &str, default: Value| {
            request
                .get(field)
                .filter(|value| !value.is_null())
                .cloned()
                .unwrap_or(default)
        };
        Self {
            instructions: or("instructions", Value::Null),
            max_output_tokens: or("max_output_tokens", Value::Null),
            temperature: or("temperature", json!(1.0)),
            top_p: or("top_p", json!(1.0)),
        }
    }
}

/// One answer's events, as Ollama's `ResponsesStreamConverter` makes them.
#[derive(Debug)]
struct Shape {
    id: String,
    item_id: String,
    model: String,
    echo: Echo,
    sequence: u64,
    started: bool,
    /// The answer so far, once its first token opened the message item.
    text: Option<String>,
}

impl Shape {
    /// The `response` object in `status`, with this `output`; usage once `done`.
    fn response(&self, status: &str, output: Value, done: Option<&Done>) -> Value {
        let now = Utc::now().timestamp();
        let usage = done.map_or(Value::Null, |done| {
            let (input, output) = (done.metrics.prompt_eval_count, done.metrics.eval_count);
            json!({
                "input_tokens": input, "output_tokens": output, "total_tokens": input + output,
                "input_tokens_details": { "cached_tokens": 0 },
                "output_tokens_details": { "reasoning_tokens": 0 },
            })
        });
        json!({
            "id": self.id, "object": "response", "created_at": now,
            "completed_at": if done.is_some() { json!(now) } else { Value::Null },
            "status": status, "incomplete_details": null, "model": self.model,
            "previous_response_id": null, "instructions": self.echo.instructions,
            "output": output, "error": null, "tools": [], "tool_choice": "auto",
            "truncation": "disabled", "parallel_tool_calls": true,
            "text": { "format": { "type": "text" } }, "top_p": self.echo.top_p,
            "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0,
            "temperature": self.echo.temperature, "reasoning": null, "usage": usage,
            "max_output_tokens": self.echo.max_output_tokens, "max_tool_calls": null,
            "store": false, "background": false, "service_tier": "default", "metadata": {},
            "safety_identifier": null, "prompt_cache_key": null,
        })
    }

    /// The assistant's `message` item, with its text once there is some.
    fn item(&self, status: &str, text: Option<&str>) -> Value {
        let content = match text {
            Some(text) => json!([output_text(text)]),
            None => json!([]),
        };
        json!({
            "id": self.item_id, "type": "message", "status": status, "role": "assistant",
            "content": content,
        })
    }

    fn part(&self, text: &str) -> Value {
        json!({
            "item_id": self.item_id, "output_index": 0, "content_index": 0,
            "part": output_text(text),
        })
    }

    /// Adds `type` and the next `sequence_number` to `data`, as one named event.
    fn push(&mut self, out: &mut String, name: &str, mut data: Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        named_event(out, name, &data);
    }

    /// The named events for one event of the generation.
    fn event(&mut self, event: &Event) -> Bytes {
        let mut out = String::new();
        if !self.started && !matches!(event, Event::Failed(_)) {
            self.started = true;
            let response = self.response("in_progress", json!([]), None);
            self.push(
                &mut out,
                "response.created",
                json!({ "response": response }),
            );
            self.push(
                &mut out,
                "response.in_progress",
                json!({ "response": response }),
            );
        }
        match event {
            // Ollama's Responses route reasons only when asked; the simulator never is.
            Event::Thinking(_) => {}
            Event::Content(token) => {
                if self.text.is_none() {
                    self.text = Some(String::new());
                    let item = self.item("in_progress", None);
                    let added = json!({ "output_index": 0, "item": item });
                    self.push(&mut out, "response.output_item.added", added);
                    let part = self.part("");
                    self.push(&mut out, "response.content_part.added", part);
                }
                if let Some(text) = &mut self.text {
                    text.push_str(token);
                }
                let delta = json!({
                    "item_id": self.item_id, "output_index": 0, "content_index": 0,
                    "delta": token, "logprobs": [],
                });
                self.push(&mut out, "response.output_text.delta", delta);
            }
            Event::Failed(message) => {
                let error = json!({ "code": "api_error", "message": message, "param": null });
                self.push(&mut out, "error", error);
            }
            Event::Done(done) => {
                let mut output = Vec::new();
                if let Some(text) = self.text.clone() {
                    let text_done = json!({
                        "item_id": self.item_id, "output_index": 0, "content_index": 0,
                        "text": text, "logprobs": [],
                    });
                    self.push(&mut out, "response.output_text.done", text_done);
                    let part = self.part(&text);
                    self.push(&mut out, "response.content_part.done", part);
                    let item = self.item("completed", Some(&text));
                    let item_done = json!({ "output_index": 0, "item": item });
                    self.push(&mut out, "response.output_item.done", item_done);
                    output.push(item);
                }
                let response = self.response("completed", json!(output), Some(done));
                self.push(
                    &mut out,
                    "response.completed",
                    json!({ "response": response }),
                );
            }
        }
        Bytes::from(out)
    }
}

fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}
