//! The fake's OpenAI-compatible routes, as Ollama serves them under `/v1`:
//! `POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/embeddings`,
//! `GET /v1/models` and `GET /v1/models/{id}`.
//!
//! Generations share the native routes' state: the reply and its chunking, the delay,
//! injected failures, residency, and the observations (`generation_requests`,
//! `max_concurrent_generations`). `stream` defaults to false, as in OpenAI's API; a stream
//! is server-sent events (`text/event-stream`), one `data: {chunk}` per piece, a last
//! chunk with `finish_reason: "stop"`, then `data: [DONE]`. Errors take OpenAI's shape,
//! `{"error": {"message", "type", "param", "code"}}`, as Ollama's `/v1` routes answer.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foreman_types::{model_owner, ErrorBody};
use serde_json::{json, Map, Value};
use wiremock::http::Method;
use wiremock::{Request, ResponseTemplate};

use super::models::hash;
use super::respond::{split, vector};
use super::state::State;

/// Answers a request to a `/v1` path; `None` when the path is not one of the fake's.
pub(crate) fn respond(state: &mut State, request: &Request) -> Option<ResponseTemplate> {
    let path = request.url.path();
    let method = &request.method;
    let answer = match path {
        "/v1/chat/completions" if method == Method::POST => generate(state, request, Kind::Chat),
        "/v1/completions" if method == Method::POST => generate(state, request, Kind::Completion),
        "/v1/embeddings" if method == Method::POST => embeddings(state, request),
        "/v1/models" if method == Method::GET => {
            let data: Vec<Value> = state.models.iter().map(|m| model(&m.name)).collect();
            ResponseTemplate::new(200).set_body_json(json!({ "object": "list", "data": data }))
        }
        _ if method == Method::GET && path.starts_with("/v1/models/") => {
            let id = &path["/v1/models/".len()..];
            match state.find(id) {
                Some(found) => ResponseTemplate::new(200).set_body_json(model(&found.name)),
                None => not_found(id),
            }
        }
        _ => return None,
    };
    Some(answer)
}

/// An error in OpenAI's shape, typed by status as Ollama types it.
pub(crate) fn error(status: u16, message: &str) -> ResponseTemplate {
    let kind = match status {
        400 => "invalid_request_error",
        404 => "not_found_error",
        _ => "api_error",
    };
    ResponseTemplate::new(status).set_body_json(json!({
        "error": { "message": message, "type": kind, "param": null, "code": null }
    }))
}

fn not_found(model: &str) -> ResponseTemplate {
    error(
        404,
        &format!("model \"{model}\" not found, try pulling it first"),
    )
}

/// A model object of `/v1/models`.
fn model(name: &str) -> Value {
    json!({
        "id": name,
        "object": "model",
        "created": unix(SystemTime::now() - Duration::from_secs(86_400)),
        "owned_by": model_owner(name),
    })
}

pub(crate) fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// The body as a JSON object, or why it is a bad request.
fn body_object(request: &Request) -> Result<Map<String, Value>, &'static str> {
    match request.body_json::<Value>() {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err("invalid request body"),
    }
}

/// The requested model, or why it is a bad request.
fn model_name(body: &Map<String, Value>) -> Result<String, &'static str> {
    match body.get("model") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        _ => Err("model is required"),
    }
}

/// A rough token count: words, at least one.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count().max(1) as u64
}

/// The words of the prompt or of the messages, for `usage.prompt_tokens`.
pub(crate) fn prompt_tokens(body: &Map<String, Value>) -> u64 {
    let mut count = 0;
    if let Some(prompt) = body.get("prompt").and_then(Value::as_str) {
        count += words(prompt);
    }
    for message in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        count += words(message.get("content").and_then(Value::as_str).unwrap_or("")) + 4;
    }
    count.max(1)
}

/// `POST /v1/chat/completions` and `POST /v1/completions`.
fn generate(state: &mut State, request: &Request, kind: Kind) -> ResponseTemplate {
    let body = match body_object(request) {
        Ok(body) => body,
        Err(bad) => return error(400, bad),
    };
    state.generations.push(Value::Object(body.clone()));
    let requested = match model_name(&body) {
        Ok(name) => name,
        Err(bad) => return error(400, bad),
    };
    let delay = state.delay;
    if let Some((status, failure)) = state.take_failure() {
        let start = Instant::now();
        state.intervals.push((start, start + delay));
        // Ollama's `/v1` routes wrap its `{"error": "..."}` in OpenAI's shape.
        let message = ErrorBody::message_of(&failure).unwrap_or_else(|| failure.to_string());
        return error(status, &message).set_delay(delay);
    }
    if kind == Kind::Chat && !body.get("messages").is_some_and(Value::is_array) {
        return error(400, "invalid message content type: <nil>");
    }
    let Some(found) = state.find(&requested).cloned() else {
        return not_found(&requested);
    };
    state.resident = Some(found.name.clone());
    let start = Instant::now();
    state.intervals.push((start, start + delay));

    let id = match kind {
        Kind::Chat => format!(
            "chatcmpl-{}",
            hash(&requested, unix(SystemTime::now())) % 1000
        ),
        Kind::Completion => format!("cmpl-{}", hash(&requested, unix(SystemTime::now())) % 1000),
    };
    let created = unix(SystemTime::now());
    let pieces = split(&state.reply, state.chunks);
    let prompt = prompt_tokens(&body);
    let completion = pieces.len() as u64;
    let usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    });
    let envelope = |object: &str| {
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("object".into(), json!(object));
        out.insert("created".into(), json!(created));
        out.insert("model".into(), json!(requested));
        out.insert("system_fingerprint".into(), json!("fp_ollama"));
        out
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let (object, choice) = match kind {
            Kind::Chat => (
                "chat.completion",
                json!({
                    "index": 0,
                    "message": { "role": "assistant", "content": state.reply },
                    "finish_reason": "stop",
                }),
            ),
            Kind::Completion => (
                "text_completion",
                json!({ "text": state.reply, "index": 0, "finish_reason": "stop" }),
            ),
        };
        let mut out = envelope(object);
        out.insert("choices".into(), json!([choice]));
        out.insert("usage".into(), usage);
        return ResponseTemplate::new(200)
            .set_body_json(Value::Object(out))
            .set_delay(delay);
    }

    let chunk_object = match kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Completion => "text_completion",
    };
    let choice = |text: &str, finish: Option<&str>| match kind {
        Kind::Chat => json!({
            "index": 0,
            "delta": { "role": "assistant", "content": text },
            "finish_reason": finish,
        }),
        Kind::Completion => json!({ "text": text, "index": 0, "finish_reason": finish }),
    };
    let mut events = String::new();
    let mut push = |value: Map<String, Value>| {
        events.push_str("data: ");
        events.push_str(&Value::Object(value).to_string());
        events.push_str("\n\n");
    };
    for piece in &pieces {
        let mut out = envelope(chunk_object);
        out.insert("choices".into(), json!([choice(piece, None)]));
        push(out);
    }
    let mut last = envelope(chunk_object);
    last.insert("choices".into(), json!([choice("", Some("stop"))]));
    push(last);
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if include_usage {
        let mut out = envelope(chunk_object);
        out.insert("choices".into(), json!([]));
        out.insert("usage".into(), usage);
        push(out);
    }
    events.push_str("data: [DONE]\n\n");
    ResponseTemplate::new(200)
        .set_body_raw(events, "text/event-stream")
        .set_delay(delay)
}

/// `POST /v1/embeddings`: `input` is one text or several.
fn embeddings(state: &State, request: &Request) -> ResponseTemplate {
    let body = match body_object(request) {
        Ok(body) => body,
        Err(bad) => return error(400, bad),
    };
    let name = match model_name(&body) {
        Ok(name) => name,
        Err(bad) => return error(400, bad),
    };
    if state.find(&name).is_none() {
        return not_found(&name);
    }
    let inputs: Vec<&str> = match body.get("input") {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => match items.iter().map(Value::as_str).collect() {
            Some(texts) => texts,
            None => return error(400, "invalid input type"),
        },
        _ => return error(400, "invalid input"),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({ "object": "embedding", "embedding": vector(text), "index": index }))
        .collect();
    let tokens: u64 = inputs.iter().map(|text| words(text)).sum();
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list",
        "data": data,
        "model": name,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
}
