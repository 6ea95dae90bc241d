//! The progress lines of `/api/pull`, `/api/push` and `/api/create`, as Ollama's
//! `streamResponse` and `waitForStream` answer them: NDJSON as they come, or with
//! `stream: false` the last line alone (a failure then is a 500 with its error).

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::catalog::Layer;
use super::state::Sim;
use super::{streamed, Rejection};

/// How often Ollama reports a transfer's progress (its download ticker).
const TICK: Duration = Duration::from_millis(60);

/// What a pull of a name the registry lacks answers, as Ollama does.
pub(super) const NOT_IN_REGISTRY: &str = "pull model manifest: file does not exist";

/// A progress line, `Err` breaking the connection off.
pub(super) type Line = std::io::Result<Value>;

/// `{"status": status}`.
pub(super) fn status(status: &str) -> Value {
    json!({ "status": status })
}

/// `{"error": message}`: the last line of a failed operation.
pub(super) fn error(message: &str) -> Value {
    json!({ "error": message })
}

/// A layer's line: `pulling dde5aa3fc5ff` (or `pushing ...`) with its digest and total, and
/// `completed` unless it is zero (Ollama omits empty fields).
pub(super) fn layer(verb: &str, layer: &Layer, completed: u64) -> Value {
    let mut line = json!({
        "status": format!("{verb} {}", layer.short()),
        "digest": layer.digest,
        "total": layer.size,
    });
    if completed > 0 {
        line["completed"] = completed.into();
    }
    line
}

/// A streamed operation's request (`/api/pull`, `/api/create`): its body, the model it
/// names, and whether it streams.
pub(super) fn request(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(Value, String, bool), Rejection> {
    let request = super::request_body(body)?;
    let name = model_name(&request)?;
    let stream = streams(&request);
    Ok((request, name, stream))
}

/// The model a request names: `model`, or the deprecated `name`.
pub(super) fn model_name(request: &Value) -> Result<String, Rejection> {
    ["model", "name"]
        .iter()
        .find_map(|field| request.get(*field).and_then(Value::as_str))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Rejection::bad_request("invalid model name"))
}

/// The lines of moving `layer` to or from the registry at the simulator's rate: announced,
/// then every tick the bytes done so far, ending with all of them. A layer that is
/// already there (`cached`) is one line, done at once. Ends early if the server shuts down.
pub(super) fn transfer(
    sim: Arc<Sim>,
    verb: &'static str,
    layer: Layer,
    cached: bool,
) -> impl Stream<Item = Value> + Send + 'static {
    async_stream::stream! {
        if cached {
            yield self::layer(verb, &layer, layer.size);
            return;
        }
        yield self::layer(verb, &layer, 0);
        let takes = sim.config.transfer_time(layer.size);
        let started = Instant::now();
        let mut next = started;
        loop {
            let elapsed = started.elapsed();
            if elapsed >= takes {
                yield self::layer(verb, &layer, layer.size);
                return;
            }
            next += TICK;
            if !sim.sleep_until(next.min(started + takes)).await {
                return;
            }
            let share = started.elapsed().as_secs_f64() / takes.as_secs_f64();
            let completed = ((layer.size as f64) * share.min(1.0)) as u64;
            if completed < layer.size {
                yield self::layer(verb, &layer, completed);
            }
        }
    }
}

/// The answer to a streamed operation: NDJSON lines as they come, or with `stream: false`
/// the last line alone once the operation is over (a 500 if that is an error).
pub(super) async fn answer(
    lines: impl Stream<Item = Line> + Send + 'static,
    stream: bool,
) -> Response {
    if stream {
        let body = lines.map(|line| line.map(ndjson));
        return streamed(body, "application/x-ndjson");
    }
    let mut lines = pin!(lines);
    let mut last = None;
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => last = Some(line),
            Err(err) => {
                let body = futures::stream::once(async move { Err::<Bytes, _>(err) });
                return Response::new(Body::from_stream(body));
            }
        }
    }
    match last {
        Some(line) if line.get("error").is_some() => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(line)).into_response()
        }
        Some(line) => Json(line).into_response(),
        // Only a shutdown ends the lines before their end.
        None => Rejection::shutting_down().into_response(),
    }
}

/// Whether the request streams: Ollama streams unless `stream` is `false`.
pub(super) fn streams(request: &Value) -> bool {
    request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

fn ndjson(line: Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The error that breaks a connection off, as a crashed Ollama would.
pub(super) fn broken_off() -> std::io::Error {
    std::io::Error::other("the simulated Ollama broke the transfer off")
}
