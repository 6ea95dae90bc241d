//! A zero-latency Ollama: lists one model and answers chats at once, streams on a timer,
//! or never answers. Chunks carry the time they were sent, so a reader in this process can
//! tell how long each took to arrive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header::CONTENT_TYPE, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::http::MODEL;

/// How `/api/chat` answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChatMode {
    /// One final chunk (or JSON object for `stream: false`), at once.
    Instant,
    /// Never, until the target stops: keeps foreman's worker busy so jobs stay queued.
    Hold,
    /// `chunks` NDJSON lines, `gap` apart, each stamped with `sent_ns`.
    Stream { chunks: usize, gap: Duration },
}

/// A running zero target; stops when dropped.
#[derive(Debug)]
pub(crate) struct Zero {
    pub url: String,
    stop: CancellationToken,
    target: Arc<Target>,
}

impl Zero {
    /// When the last `/api/chat` request reached the target ([`now_ns`]).
    pub(crate) fn last_arrival_ns(&self) -> u64 {
        self.target.arrived_ns.load(Ordering::Relaxed)
    }
}

impl Drop for Zero {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Debug)]
struct Target {
    mode: ChatMode,
    stop: CancellationToken,
    arrived_ns: AtomicU64,
}

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since this process's benchmark epoch: comparable between the target and
/// the reader, which share the process.
pub(crate) fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Starts a zero target on a port of its own.
pub(crate) async fn spawn(mode: ChatMode) -> Result<Zero> {
    now_ns();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let target = Arc::new(Target {
        mode,
        stop: stop.clone(),
        arrived_ns: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route(
            "/api/version",
            get(|| async { Json(json!({"version": "0.0.0-zero"})) }),
        )
        .route("/api/chat", post(chat))
        .with_state(Arc::clone(&target));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let shutdown = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(Zero { url, stop, target })
}

async fn tags() -> Json<Value> {
    Json(json!({ "models": [{ "name": MODEL, "model": MODEL, "size": 1 }] }))
}

async fn ps() -> Json<Value> {
    Json(json!({ "models": [{ "name": MODEL, "model": MODEL, "size": 1 }] }))
}

/// One chunk of an answer; `sent_ns` is stamped as it is made.
pub(crate) fn line(done: bool) -> String {
    let mut line = json!({
        "model": MODEL,
        "created_at": "2026-01-01T00:00:00Z",
        "message": { "role": "assistant", "content": if done { "" } else { "blue" } },
        "done": done,
        "sent_ns": now_ns(),
    });
    if done {
        line["done_reason"] = json!("stop");
        line["eval_count"] = json!(1);
    }
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// The `sent_ns` stamp of a chunk.
pub(crate) fn sent_ns(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let start = text.find("\"sent_ns\":")? + "\"sent_ns\":".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn chat(State(target): State<Arc<Target>>, body: Bytes) -> Response {
    target.arrived_ns.store(now_ns(), Ordering::Relaxed);
    let stream = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("stream").and_then(Value::as_bool))
        .unwrap_or(true);
    match target.mode {
        ChatMode::Instant if stream => ndjson(Body::from(line(true))),
        ChatMode::Instant => (
            [(CONTENT_TYPE, "application/json; charset=utf-8")],
            line(true).trim_end().to_owned(),
        )
            .into_response(),
        ChatMode::Hold => {
            target.stop.cancelled().await;
            (StatusCode::SERVICE_UNAVAILABLE, "stopping").into_response()
        }
        ChatMode::Stream { chunks, gap } => {
            let body = async_stream::stream! {
                for i in 0..chunks {
                    if i > 0 {
                        tokio::time::sleep(gap).await;
                    }
                    yield Ok::<_, std::convert::Infallible>(Bytes::from(line(i + 1 == chunks)));
                }
            };
            ndjson(Body::from_stream(body))
        }
    }
}

fn ndjson(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/x-ndjson".parse().expect("a valid header"),
    );
    response
}
