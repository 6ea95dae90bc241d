//! The OpenAI-compatible routes Ollama serves under `/v1`: chat completions and
//! completions run on the same simulated GPU as `/api/chat` (one at a time, counted in the
//! stats, streamed in real time, as server-sent events ending with `data: [DONE]`);
//! embeddings and the model list answer at once. Errors take OpenAI's shape, as Ollama's
//! `/v1` routes give them.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use foreman_types::model_owner;
use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::embed;
use super::generate::{self, Request};
use super::generation::{self, Event};
use super::state::{KeepAlive, Sim};
use super::{model_request, request_body, required_model, streamed, ErrorShape, Rejection, Shaped};

/// A [`Rejection`] in OpenAI's shape, typed by status as Ollama types it.
pub(super) type OpenAiRejection = Shaped<OpenAi>;

/// OpenAI's error shape.
#[derive(Debug)]
pub(super) struct OpenAi;

impl ErrorShape for OpenAi {
    fn body(status: StatusCode, message: &str) -> Value {
        let kind = match status {
            StatusCode::BAD_REQUEST => "invalid_request_error",
            StatusCode::NOT_FOUND => "not_found_error",
            _ => "api_error",
        };
        json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
    }
}

type Answer = Result<Response, OpenAiRejection>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat_completions(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    run(sim, Kind::Chat, body, chat_prompt).await
}

/// The prompt of a chat (the last user message) and how many tokens its messages count.
fn chat_prompt(request: &Value) -> Result<(String, u64), Rejection> {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return Err(Rejection::bad_request("messages is required"));
    };
    let text = |message: &Value| {
        message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let prompt = messages
        .iter()
        .rev()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        .or(messages.last())
        .map(text)
        .unwrap_or_default();
    let words: usize = messages
        .iter()
        .map(|m| generate::word_count(&text(m)))
        .sum();
    Ok((prompt, (words + 4 * messages.len()).max(1) as u64))
}

/// `POST /v1/completions`.
pub(super) async fn completions(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    run(sim, Kind::Completion, body, completion_prompt).await
}

/// The prompt of a completion and how many tokens it counts.
fn completion_prompt(request: &Value) -> Result<(String, u64), Rejection> {
    match request.get("prompt") {
        Some(Value::String(prompt)) => {
            Ok((prompt.clone(), (generate::word_count(prompt) + 4) as u64))
        }
        _ => Err(Rejection::bad_request("prompt must be a string")),
    }
}

/// Runs a chat or a completion whose prompt and token count `prompt_of` reads from the
/// request.
async fn run(
    sim: Arc<Sim>,
    kind: Kind,
    body: Result<Bytes, BytesRejection>,
    prompt_of: fn(&Value) -> Result<(String, u64), Rejection>,
) -> Answer {
    let (started, request, name) = model_request(body)?;
    let (prompt, prompt_eval_count) = prompt_of(&request)?;
    let endpoint = match kind {
        Kind::Chat => "chat",
        Kind::Completion => "generate",
    };
    let model = generate::usable_model(&sim, &name, endpoint)?;
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_tokens = request
        .get("max_completion_tokens")
        .or_else(|| request.get("max_tokens"))
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
    let generation = Request {
        prompt,
        prompt_eval_count,
        num_predict: max_tokens,
        ..Request::compatible(request, &name, model, started)
    };
    let stream = generation.stream;
    let events = generation::start(sim, generation).await?;
    let shape = Shape::new(kind, name);
    if stream {
        let chunks = events.map(move |event| event.map(|event| shape.event(&event, include_usage)));
        return Ok(streamed(chunks, "text/event-stream"));
    }
    match generation::whole(events).await {
        Ok(whole) => {
            let metrics = &whole.done.metrics;
            let usage = usage(metrics.prompt_eval_count, metrics.eval_count);
            let answer = shape.whole(&whole.content, whole.done.reason, usage);
            Ok(Json(answer).into_response())
        }
        Err(unfinished) => {
            Ok(unfinished.answer(|rejection| OpenAiRejection::from(rejection).into_response()))
        }
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// How the answers of one request look: OpenAI's objects around the simulated tokens.
#[derive(Debug)]
struct Shape {
    kind: Kind,
    id: String,
    created: i64,
    model: String,
}

impl Shape {
    fn new(kind: Kind, model: String) -> Self {
        let now = Utc::now();
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        Self {
            kind,
            id: format!("{prefix}-{}", now.timestamp_subsec_micros() % 1000),
            created: now.timestamp(),
            model,
        }
    }

    fn object(&self, object: &str, choices: Value) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), self.id.clone().into());
        out.insert("object".into(), object.into());
        out.insert("created".into(), self.created.into());
        out.insert("model".into(), self.model.clone().into());
        out.insert("system_fingerprint".into(), "fp_ollama".into());
        out.insert("choices".into(), choices);
        out
    }

    /// One object with one choice: a chunk of a stream (the chat's text in `delta`), or
    /// the whole answer (in `message`). A completion's text is its choice's `text` either way.
    fn answer(&self, text: &str, finish_reason: Option<&str>, whole: bool) -> Map<String, Value> {
        match self.kind {
            Kind::Chat => {
                let (object, key) = if whole {
                    ("chat.completion", "message")
                } else {
                    ("chat.completion.chunk", "delta")
                };
                let mut choice = json!({ "index": 0, "finish_reason": finish_reason });
                choice[key] = json!({ "role": "assistant", "content": text });
                self.object(object, json!([choice]))
            }
            Kind::Completion => self.object(
                "text_completion",
                json!([{ "text": text, "index": 0, "finish_reason": finish_reason }]),
            ),
        }
    }

    fn chunk(&self, text: &str, finish_reason: Option<&str>) -> Map<String, Value> {
        self.answer(text, finish_reason, false)
    }

    /// The server-sent events for one event of the generation; the end also carries the
    /// usage chunk (when asked for) and `data: [DONE]`.
    fn event(&self, event: &Event, include_usage: bool) -> Bytes {
        let mut out = String::new();
        let mut push = |object: Map<String, Value>| {
            out.push_str("data: ");
            out.push_str(&Value::Object(object).to_string());
            out.push_str("\n\n");
        };
        match event {
            // Ollama's `/v1` routes drop thinking unless asked for it; the simulator never is.
            Event::Thinking(_) => return Bytes::new(),
            Event::Content(token) => push(self.chunk(token, None)),
            Event::Failed(message) => {
                let error =
                    json!({ "message": message, "type": "api_error", "param": null, "code": null });
                let mut object = Map::new();
                object.insert("error".into(), error);
                push(object);
            }
            Event::Done(done) => {
                push(self.chunk("", Some(done.reason)));
                if include_usage {
                    let mut last = self.chunk("", None);
                    last.insert("choices".into(), json!([]));
                    last.insert(
                        "usage".into(),
                        usage(done.metrics.prompt_eval_count, done.metrics.eval_count),
                    );
                    push(last);
                }
                out.push_str("data: [DONE]\n\n");
            }
        }
        Bytes::from(out)
    }

    /// The answer to a request with `stream: false`.
    fn whole(&self, content: &str, finish_reason: &str, usage: Value) -> Value {
        let mut out = self.answer(content, Some(finish_reason), true);
        out.insert("usage".into(), usage);
        Value::Object(out)
    }
}

/// `POST /v1/embeddings`: concurrent, never behind the GPU, like `/api/embed`.
pub(super) async fn embeddings(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OpenAiRejection> {
    let request = request_body(body)?;
    let name = required_model(&request)?;
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| Rejection::bad_request("invalid input type"))?,
        _ => return Err(Rejection::bad_request("invalid input").into()),
    };
    let keep_alive = KeepAlive::from_request(None);
    let (model, _) = embed::prepare(&sim, &name, &keep_alive).await?;
    embed::release(&sim, &model, &keep_alive);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({ "object": "embedding", "embedding": embed::vector(text), "index": index })
        })
        .collect();
    let tokens: usize = inputs.iter().map(|text| generate::word_count(text)).sum();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": name,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    })))
}

/// `GET /v1/models`.
pub(super) async fn models(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let data: Vec<Value> = sim
        .installed()
        .iter()
        .map(|model| model_object(&model.key, &model.modified_at))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// `GET /v1/models/{id}`.
pub(super) async fn model(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenAiRejection> {
    let model = sim
        .find(&id)
        .ok_or_else(|| Rejection::model_not_found(&id))?;
    Ok(Json(model_object(&model.key, &model.modified_at)))
}

fn model_object(name: &str, modified_at: &str) -> Value {
    let created = DateTime::parse_from_rfc3339(modified_at).map_or(0, |at| at.timestamp());
    json!({ "id": name, "object": "model", "created": created, "owned_by": model_owner(name) })
}
