//! A stand-in target whose streamed answers the test writes piece by piece, for the
//! streams the simulator does not serve yet: pull progress, and the named events of
//! `/v1/messages` and `/v1/responses`. It lists one model, `llama3.2:latest`, so
//! foreman's model check passes.
//!
//! Temporary, against ADR 12's one simulated Ollama: once `foreman-sim` learns these routes,
//! the tests using it move to `SimConfig::manual()` and this file goes.

use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

type Piece = Result<Bytes, std::io::Error>;

#[derive(Default)]
struct Shared {
    /// The open stream, until finished.
    open: Mutex<Option<mpsc::UnboundedSender<Piece>>>,
}

/// A target whose one open stream the test feeds; dropped, it stops serving.
pub(crate) struct HeldTarget {
    url: String,
    shared: std::sync::Arc<Shared>,
    requests: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    _stop: DropGuard,
}

impl HeldTarget {
    pub(crate) async fn start() -> Self {
        let shared = std::sync::Arc::new(Shared::default());
        let (seen, requests) = mpsc::unbounded_channel();
        let app = Router::new()
            .route("/api/tags", get(tags))
            .route("/api/ps", get(|| async { Json(json!({"models": []})) }))
            .fallback(
                move |State(shared): State<std::sync::Arc<Shared>>, uri: Uri, body: Bytes| {
                    let seen = seen.clone();
                    async move { open(&shared, &seen, uri.path(), &body) }
                },
            )
            .with_state(std::sync::Arc::clone(&shared));
        let (addr, stop) = foreman_testkit::wait::serve_on_loopback(app).await;
        Self {
            url: format!("http://{addr}"),
            shared,
            requests: tokio::sync::Mutex::new(requests),
            _stop: stop.drop_guard(),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The path and body of the next request; its stream is open once this returns.
    pub(crate) async fn next_request(&self, deadline: Duration) -> Option<(String, Value)> {
        let mut requests = self.requests.lock().await;
        tokio::time::timeout(deadline, requests.recv())
            .await
            .ok()
            .flatten()
    }

    fn send(&self, piece: Piece) {
        if let Some(open) = self.shared.open.lock().unwrap().as_ref() {
            let _ = open.send(piece);
        }
    }

    /// One NDJSON line.
    pub(crate) fn line(&self, value: Value) {
        self.send(Ok(Bytes::from(format!("{value}\n"))));
    }

    /// One named server-sent event.
    pub(crate) fn event(&self, name: &str, data: Value) {
        self.send(Ok(Bytes::from(format!("event: {name}\ndata: {data}\n\n"))));
    }

    /// Ends the stream properly.
    pub(crate) fn finish(&self) {
        self.shared.open.lock().unwrap().take();
    }

    /// Breaks the stream off, as a crashing target would.
    pub(crate) fn abort(&self) {
        self.send(Err(std::io::Error::other("the target broke off")));
        self.finish();
    }
}

async fn tags() -> Json<Value> {
    Json(json!({"models": [{
        "name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189,
        "digest": "a80c4f17acd5", "details": {"family": "llama"}
    }]}))
}

/// Opens a stream for the request: NDJSON under `/api`, server-sent events under `/v1`.
fn open(
    shared: &Shared,
    seen: &mpsc::UnboundedSender<(String, Value)>,
    path: &str,
    body: &[u8],
) -> Response {
    let (pieces, stream) = mpsc::unbounded_channel::<Piece>();
    *shared.open.lock().unwrap() = Some(pieces);
    let _ = seen.send((
        path.to_owned(),
        serde_json::from_slice(body).unwrap_or(Value::Null),
    ));
    let content_type = if path.starts_with("/v1/") {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(
            tokio_stream::wrappers::UnboundedReceiverStream::new(stream),
        ))
        .expect("a valid response")
}
