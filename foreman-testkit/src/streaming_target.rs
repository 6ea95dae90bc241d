//! [`StreamingTarget`]: an Ollama stand-in whose chat/generate streams the test drives
//! chunk by chunk, for checking that a proxy flushes each chunk as it comes and that it
//! hangs up upstream when its own client does.
//!
//! wiremock sends a response body all at once, so this is a small axum server instead.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use bytes::Bytes;
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::DropGuard;

use crate::fake_ollama::models::{timestamp, Model};

/// What the test sends down the open stream.
#[derive(Debug)]
enum Event {
    Chunk(Bytes),
    Finish,
    /// Break the connection mid-stream, as a crashing target would.
    Abort,
}

#[derive(Debug, Default)]
struct Streams {
    /// The stream of the latest generation request, until finished.
    current: Option<mpsc::UnboundedSender<Event>>,
    /// Events pushed while no stream was open, for the next request.
    backlog: Vec<Event>,
}

#[derive(Debug)]
struct Shared {
    model: Model,
    streams: Mutex<Streams>,
    requests: mpsc::UnboundedSender<Value>,
    /// How many streams the client dropped before they finished.
    dropped: watch::Sender<usize>,
}

impl Shared {
    fn streams(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, event: Event) {
        let mut streams = self.streams();
        let finish = matches!(event, Event::Finish | Event::Abort);
        match &streams.current {
            // A send error means the client is gone; the chunk has nowhere to go.
            Some(sender) => {
                let _ = sender.send(event);
            }
            None => streams.backlog.push(event),
        }
        if finish {
            streams.current = None;
        }
    }
}

/// An axum server answering `/api/tags`, `/api/ps` (one model, resident), `/api/show`,
/// `/api/version`, `/`, and `/api/chat` / `/api/generate` (and `/api/pull`, whose
/// progress lines stream the same way) with an NDJSON stream whose chunks the test
/// releases one at a time with [`push_chunk`](Self::push_chunk) and ends with
/// [`finish`](Self::finish). `/v1/chat/completions`, `/v1/completions`, `/v1/responses`
/// and `/v1/messages` open a `text/event-stream` the same way, fed with
/// [`push_event`](Self::push_event) or [`push_named_event`](Self::push_named_event).
///
/// Each generation request gets a fresh stream: pushes go to the stream currently open,
/// or, when none is, wait for the next request. The stream is the same whatever the
/// request's `stream` field says. Shuts down when dropped.
#[derive(Debug)]
pub struct StreamingTarget {
    addr: SocketAddr,
    shared: Arc<Shared>,
    requests: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    _shutdown: DropGuard,
}

impl StreamingTarget {
    /// Starts a target with the model `llama3.2:latest` installed and resident.
    pub async fn start() -> Self {
        Self::with_model("llama3.2:latest").await
    }

    /// Starts a target with this model installed and resident.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use std::time::Duration;
    /// let target = foreman_testkit::StreamingTarget::with_model("qwen2.5:0.5b").await;
    /// // ... point a proxy at target.url() and start a streaming chat through it ...
    /// let body = target.next_request(Duration::from_secs(5)).await.expect("a request");
    /// target.push_chunk(target.chat_chunk("Hel"));
    /// target.push_chunk(target.done_chunk());
    /// target.finish();
    /// # }
    /// ```
    pub async fn with_model(model: &str) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            model: Model::new(model),
            streams: Mutex::new(Streams::default()),
            requests,
            dropped: watch::Sender::new(0),
        });
        let app = axum::Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route(
                "/api/version",
                get(|| async { Json(json!({"version": "0.9.0"})) }),
            )
            .route("/api/tags", get(tags))
            .route("/api/ps", get(ps))
            .route("/api/show", post(show))
            .route("/api/chat", post(generate))
            .route("/api/generate", post(generate))
            .route("/api/pull", post(generate))
            .route("/v1/chat/completions", post(generate_sse))
            .route("/v1/completions", post(generate_sse))
            .route("/v1/responses", post(generate_sse))
            .route("/v1/messages", post(generate_sse))
            .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
            .with_state(Arc::clone(&shared));
        let (addr, shutdown) = crate::wait::serve_on_loopback(app).await;
        Self {
            addr,
            shared,
            requests: tokio::sync::Mutex::new(receiver),
            _shutdown: shutdown.drop_guard(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The model's full name.
    pub fn model(&self) -> &str {
        &self.shared.model.name
    }

    /// The body of the next generation request not yet taken, waiting up to `deadline`.
    /// When it returns, that request's stream is open and takes pushed chunks.
    pub async fn next_request(&self, deadline: std::time::Duration) -> Option<Value> {
        let mut requests = self.requests.lock().await;
        tokio::time::timeout(deadline, requests.recv())
            .await
            .ok()
            .flatten()
    }

    /// Sends one NDJSON line (`chunk` and a newline) down the open stream.
    pub fn push_chunk(&self, chunk: Value) {
        let mut line = chunk.to_string();
        line.push('\n');
        self.shared.send(Event::Chunk(Bytes::from(line)));
    }

    /// Sends one server-sent event (`data: ` `chunk` and a blank line) down the open
    /// stream, for the OpenAI-compatible routes.
    pub fn push_event(&self, chunk: Value) {
        self.shared
            .send(Event::Chunk(Bytes::from(format!("data: {chunk}\n\n"))));
    }

    /// Sends one named server-sent event (`event: ` `name`, `data: ` `data`, a blank
    /// line), as the Responses and Anthropic Messages APIs stream.
    pub fn push_named_event(&self, name: &str, data: Value) {
        self.shared.send(Event::Chunk(Bytes::from(format!(
            "event: {name}\ndata: {data}\n\n"
        ))));
    }

    /// A chat completion chunk carrying `content` (OpenAI's `chat.completion.chunk`), for
    /// [`push_event`](Self::push_event).
    pub fn chat_completion_chunk(&self, content: &str) -> Value {
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": self.model(),
            "system_fingerprint": "fp_ollama",
            "choices": [{
                "index": 0,
                "delta": {"role": "assistant", "content": content},
                "finish_reason": null,
            }],
        })
    }

    /// Ends the open stream (the response completes).
    pub fn finish(&self) {
        self.shared.send(Event::Finish);
    }

    /// Breaks the open stream off mid-way: the connection is cut without the response's
    /// proper end, as when the target crashes. With no stream open, the next request's
    /// stream is cut before its first chunk (one request per call).
    pub fn abort(&self) {
        self.shared.send(Event::Abort);
    }

    /// A chat chunk carrying `content`, for [`push_chunk`](Self::push_chunk).
    pub fn chat_chunk(&self, content: &str) -> Value {
        json!({
            "model": self.model(),
            "created_at": timestamp(SystemTime::now()),
            "message": {"role": "assistant", "content": content},
            "done": false,
        })
    }

    /// A final chat chunk (`done: true`, `done_reason: "stop"`, metrics).
    pub fn done_chunk(&self) -> Value {
        json!({
            "model": self.model(),
            "created_at": timestamp(SystemTime::now()),
            "message": {"role": "assistant", "content": ""},
            "done": true,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 1_000,
            "prompt_eval_count": 1,
            "prompt_eval_duration": 1_000,
            "eval_count": 1,
            "eval_duration": 1_000,
        })
    }

    /// How many streams the client hung up on before they were finished.
    pub fn dropped_connections(&self) -> usize {
        *self.shared.dropped.borrow()
    }

    /// Resolves once a client has hung up on a stream before it was finished (the
    /// server sees the connection close even while the stream waits for a chunk).
    /// Never resolves otherwise: wrap it in a timeout.
    pub async fn connection_dropped(&self) {
        let mut dropped = self.shared.dropped.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = dropped.wait_for(|n| *n > 0).await;
    }
}

impl Drop for StreamingTarget {
    fn drop(&mut self) {
        // End any open stream, so the graceful shutdown is not held up by it.
        self.shared.streams().current = None;
    }
}

async fn tags(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "models": [shared.model.tag_entry()] }))
}

async fn ps(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "models": [shared.model.ps_entry()] }))
}

async fn show(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.model.show())
}

async fn generate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    open_stream(shared, body, "application/x-ndjson")
}

/// The OpenAI-compatible routes stream server-sent events.
async fn generate_sse(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    open_stream(shared, body, "text/event-stream")
}

fn open_stream(shared: Arc<Shared>, body: Bytes, content_type: &'static str) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        let error = Json(json!({"error": "invalid request body"}));
        return (StatusCode::BAD_REQUEST, error).into_response();
    };
    let (sender, receiver) = mpsc::unbounded_channel();
    {
        let mut streams = shared.streams();
        let mut finished = false;
        let mut rest = std::mem::take(&mut streams.backlog).into_iter();
        for event in rest.by_ref() {
            finished = matches!(event, Event::Finish | Event::Abort);
            let _ = sender.send(event);
            if finished {
                break;
            }
        }
        streams.backlog = rest.collect();
        streams.current = (!finished).then_some(sender);
    }
    // Only now, with the stream installed, may the test start pushing.
    let _ = shared.requests.send(request);
    let stream = ChunkStream {
        receiver,
        finished: false,
        shared,
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

/// The response body of one generation; notes being dropped before the end.
struct ChunkStream {
    receiver: mpsc::UnboundedReceiver<Event>,
    finished: bool,
    shared: Arc<Shared>,
}

impl Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.receiver.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Event::Chunk(bytes))) => Poll::Ready(Some(Ok(bytes))),
            Poll::Ready(Some(Event::Abort)) => {
                self.finished = true;
                Poll::Ready(Some(Err(std::io::Error::other("the target broke off"))))
            }
            // Finished, or replaced by a newer request's stream: a normal end either way.
            Poll::Ready(Some(Event::Finish) | None) => {
                self.finished = true;
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.dropped.send_modify(|n| *n += 1);
        }
    }
}
