//! The one responder mounted on the wiremock server: it routes by method and path and
//! answers from the shared state, as Ollama would.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};
use wiremock::http::Method;
use wiremock::{Request, Respond, ResponseTemplate};

use super::models::{hash, timestamp};
use super::state::{Shared, State};

/// Routes every request; mounted once, with a catch-all matcher.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) shared: Arc<Shared>,
}

impl Respond for Router {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.shared.lock();
        state.requests.push(request.clone());
        state.settle_arrivals();
        if let Some(token) = &state.token {
            let expected = format!("Bearer {token}");
            let given = request.headers.get("authorization").map(|v| v.as_bytes());
            if given != Some(expected.as_bytes()) {
                return error(401, "unauthorized");
            }
        }
        let path = request.url.path();
        let method = &request.method;
        match path {
            "/" if method == Method::GET || method == Method::HEAD => {
                ResponseTemplate::new(200).set_body_raw("Ollama is running", "text/plain")
            }
            "/api/version" if method == Method::GET => {
                ResponseTemplate::new(200).set_body_json(json!({ "version": "0.9.0" }))
            }
            "/api/tags" if method == Method::GET => {
                let models: Vec<Value> = state.models.iter().map(|m| m.tag_entry()).collect();
                ResponseTemplate::new(200).set_body_json(json!({ "models": models }))
            }
            "/api/ps" if method == Method::GET => {
                let models: Vec<Value> = state
                    .resident
                    .as_deref()
                    .and_then(|name| state.find(name))
                    .map(|m| m.ps_entry())
                    .into_iter()
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({ "models": models }))
            }
            "/api/show" if method == Method::POST => show(&state, request),
            "/api/embed" if method == Method::POST => embed(&state, request),
            "/api/embeddings" if method == Method::POST => embeddings(&state, request),
            "/api/chat" | "/api/generate" if method == Method::POST => {
                let chat = path == "/api/chat";
                let Ok(body) = request.body_json::<Value>() else {
                    return error(400, "invalid request body");
                };
                state.generations.push(body.clone());
                let answer = generate(&mut state, chat, &body);
                drop(state);
                self.shared.generation_seen.notify_waiters();
                answer
            }
            "/v1/messages" if method == Method::POST => {
                let answer = super::anthropic::respond(&mut state, request);
                drop(state);
                self.shared.generation_seen.notify_waiters();
                answer
            }
            "/v1/responses" if method == Method::POST => {
                let answer = super::responses::respond(&mut state, request);
                drop(state);
                self.shared.generation_seen.notify_waiters();
                answer
            }
            _ if path.starts_with("/v1/") => {
                let Some(answer) = super::openai::respond(&mut state, request) else {
                    return ResponseTemplate::new(404)
                        .set_body_raw("404 page not found", "text/plain");
                };
                drop(state);
                self.shared.generation_seen.notify_waiters();
                answer
            }
            _ => match super::manage::respond(&mut state, request) {
                Some(answer) => answer,
                None => ResponseTemplate::new(404).set_body_raw("404 page not found", "text/plain"),
            },
        }
    }
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": message }))
}

fn not_found(model: &str) -> ResponseTemplate {
    error(
        404,
        &format!("model \"{model}\" not found, try pulling it first"),
    )
}

/// A malformed request, answered with 400 and this message.
pub(crate) struct BadRequest(pub(crate) &'static str);

impl BadRequest {
    pub(crate) fn answer(self) -> ResponseTemplate {
        error(400, self.0)
    }
}

pub(crate) fn body_object(request: &Request) -> Result<Map<String, Value>, BadRequest> {
    match request.body_json::<Value>() {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(BadRequest("invalid request body")),
    }
}

fn model_name(body: &Map<String, Value>) -> Result<String, BadRequest> {
    match body.get("model").or_else(|| body.get("name")) {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        _ => Err(BadRequest("model is required")),
    }
}

/// The body and model name of a model-addressed request.
pub(crate) fn model_request(request: &Request) -> Result<(Map<String, Value>, String), BadRequest> {
    let body = body_object(request)?;
    let name = model_name(&body)?;
    Ok((body, name))
}

fn show(state: &State, request: &Request) -> ResponseTemplate {
    match model_request(request) {
        Err(bad) => bad.answer(),
        Ok((_, name)) => match state.find(&name) {
            Some(model) => ResponseTemplate::new(200).set_body_json(model.show()),
            None => error(404, &format!("model '{name}' not found")),
        },
    }
}

/// A deterministic, L2-normalised 8-dimensional vector for `text`.
pub(crate) fn vector(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..8)
        .map(|i| (hash(text, i) % 2001) as f64 / 1000.0 - 1.0)
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::EPSILON);
    raw.iter().map(|x| x / norm).collect()
}

fn embed(state: &State, request: &Request) -> ResponseTemplate {
    let (body, name) = match model_request(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.answer(),
    };
    if state.find(&name).is_none() {
        return not_found(&name);
    }
    let inputs: Vec<&str> = match body.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => match items.iter().map(Value::as_str).collect() {
            Some(texts) => texts,
            None => return error(400, "invalid input type"),
        },
        Some(_) => return error(400, "invalid input type"),
    };
    let embeddings: Vec<Vec<f64>> = inputs.iter().map(|text| vector(text)).collect();
    let tokens: usize = inputs
        .iter()
        .map(|t| t.split_whitespace().count().max(1))
        .sum();
    ResponseTemplate::new(200).set_body_json(json!({
        "model": name,
        "embeddings": embeddings,
        "total_duration": 14_143_917,
        "load_duration": 1_019_500,
        "prompt_eval_count": tokens,
    }))
}

fn embeddings(state: &State, request: &Request) -> ResponseTemplate {
    let (body, name) = match model_request(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.answer(),
    };
    if state.find(&name).is_none() {
        return not_found(&name);
    }
    let embedding = match body.get("prompt").and_then(Value::as_str) {
        Some(prompt) if !prompt.is_empty() => vector(prompt),
        _ => Vec::new(),
    };
    ResponseTemplate::new(200).set_body_json(json!({ "embedding": embedding }))
}

/// Whether `think` asks for thinking: `true`, or a level such as `"high"`.
pub(crate) fn wants_thinking(body: &Value) -> bool {
    match body.get("think") {
        Some(Value::Bool(on)) => *on,
        Some(Value::String(level)) => !level.is_empty(),
        _ => false,
    }
}

/// Whether `keep_alive` asks to unload right away (`0`, `"0"`, `"0s"`).
fn unload_after(body: &Value) -> bool {
    match body.get("keep_alive") {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m"),
        _ => false,
    }
}

/// `text` cut into at most `n` pieces on character boundaries that concatenate to it.
pub(crate) fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let n = n.clamp(1, chars.len());
    let (base, extra) = (chars.len() / n, chars.len() % n);
    let mut pieces = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        pieces.push(chars[at..at + len].iter().collect());
        at += len;
    }
    pieces
}

/// The text of the request, for a plausible `prompt_eval_count`.
fn prompt_tokens(body: &Value) -> usize {
    let mut words = 0;
    if let Some(prompt) = body.get("prompt").and_then(Value::as_str) {
        words += prompt.split_whitespace().count();
    }
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for message in messages {
            let content = message.get("content").and_then(Value::as_str).unwrap_or("");
            words += content.split_whitespace().count() + 4;
        }
    }
    words.max(1)
}

fn is_load_request(chat: bool, body: &Value) -> bool {
    if chat {
        body.get("messages")
            .and_then(Value::as_array)
            .is_none_or(|m| m.is_empty())
    } else {
        body.get("prompt")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    }
}

/// One chunk (or the whole answer) of chat or generate.
fn piece(chat: bool, model: &str, content: &str, thinking: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("created_at".into(), json!(timestamp(SystemTime::now())));
    if chat {
        let mut message = json!({ "role": "assistant", "content": content });
        if let Some(thinking) = thinking {
            message["thinking"] = json!(thinking);
        }
        out.insert("message".into(), message);
    } else {
        out.insert("response".into(), json!(content));
        if let Some(thinking) = thinking {
            out.insert("thinking".into(), json!(thinking));
        }
    }
    out
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `POST /api/chat` and `POST /api/generate`.
fn generate(state: &mut State, chat: bool, body: &Value) -> ResponseTemplate {
    let Some(requested) = body.get("model").and_then(Value::as_str) else {
        return error(400, "model is required");
    };
    let requested = requested.to_owned();
    let delay = state.delay;
    if let Some((status, failure)) = state.take_failure() {
        let start = Instant::now();
        state.intervals.push((start, start + delay));
        return ResponseTemplate::new(status)
            .set_body_json(failure)
            .set_delay(delay);
    }
    let Some(model) = state.find(&requested).cloned() else {
        return not_found(&requested);
    };
    let was_resident = state.resident.as_deref() == Some(model.name.as_str());
    let unload = unload_after(body);
    state.resident = (!unload).then(|| model.name.clone());

    if is_load_request(chat, body) {
        let mut out = piece(chat, &requested, "", None);
        out.insert(
            "done_reason".into(),
            json!(if unload { "unload" } else { "load" }),
        );
        out.insert("done".into(), json!(true));
        return ResponseTemplate::new(200).set_body_json(Value::Object(out));
    }

    let start = Instant::now();
    state.intervals.push((start, start + delay));
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let thinking =
        (wants_thinking(body) && !state.thinking.is_empty()).then(|| state.thinking.clone());
    let content_pieces = split(&state.reply, state.chunks);
    let thinking_pieces = thinking
        .as_deref()
        .map(|t| split(t, state.chunks))
        .unwrap_or_default();

    let load = if was_resident { 1_204_916 } else { 250_113_042 };
    let prompt_eval = 20_517_958;
    let eval = nanos(delay).max(50_000_000);
    let mut done = Map::new();
    done.insert("done".into(), json!(true));
    done.insert("done_reason".into(), json!("stop"));
    if !chat {
        done.insert("context".into(), json!([128_006, 78_191, 128_007]));
    }
    done.insert("total_duration".into(), json!(load + prompt_eval + eval));
    done.insert("load_duration".into(), json!(load));
    done.insert("prompt_eval_count".into(), json!(prompt_tokens(body)));
    done.insert("prompt_eval_duration".into(), json!(prompt_eval));
    done.insert(
        "eval_count".into(),
        json!(content_pieces.len() + thinking_pieces.len()),
    );
    done.insert("eval_duration".into(), json!(eval));

    if !stream {
        let mut out = piece(chat, &requested, &state.reply, thinking.as_deref());
        out.extend(done);
        return ResponseTemplate::new(200)
            .set_body_json(Value::Object(out))
            .set_delay(delay);
    }
    let mut lines = String::new();
    let mut push = |value: Map<String, Value>| {
        lines.push_str(&Value::Object(value).to_string());
        lines.push('\n');
    };
    for part in &thinking_pieces {
        let mut out = piece(chat, &requested, "", Some(part));
        out.insert("done".into(), json!(false));
        push(out);
    }
    for part in &content_pieces {
        let mut out = piece(chat, &requested, part, None);
        out.insert("done".into(), json!(false));
        push(out);
    }
    let mut last = piece(chat, &requested, "", None);
    last.extend(done);
    push(last);
    ResponseTemplate::new(200)
        .set_body_raw(lines, "application/x-ndjson")
        .set_delay(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pieces_concatenate_to_the_text() {
        let text = "Hello from the fake, ünïcödé";
        for n in 1..40 {
            let pieces = split(text, n);
            assert_eq!(pieces.concat(), text);
            assert_eq!(pieces.len(), n.min(text.chars().count()));
        }
        assert_eq!(split("", 3), vec![String::new()]);
    }

    #[test]
    fn vectors_are_deterministic_and_normalised() {
        assert_eq!(vector("a"), vector("a"));
        assert_ne!(vector("a"), vector("b"));
        let norm: f64 = vector("a").iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
