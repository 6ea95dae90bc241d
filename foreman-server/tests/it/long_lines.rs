//! A target that streams one line and never ends it: foreman caps the line, fails the job
//! with a clear error and drops the upstream connection, instead of buffering without
//! bound.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::header;
use axum::routing::{get, post};
use bytes::Bytes;
use foreman_testkit::wait::wait_until;
use foreman_testkit::{FakeOllama, TestApp};
use foreman_types::MAX_LINE;
use serde_json::Value;

use crate::faults::{submit, terminal};
use crate::{chat_body, DEADLINE};

/// What the endless target sent, and whether its reader hung up.
#[derive(Debug, Default)]
struct Sent {
    bytes: AtomicUsize,
    dropped: AtomicBool,
}

/// Lives inside the response body: dropped when the reader closes the connection.
struct HangUp(Arc<Sent>);

impl Drop for HangUp {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

/// A target whose tags and ps are a fake Ollama's, but whose chat answers 200 with one
/// NDJSON line that never ends.
async fn endless_line_target() -> (String, FakeOllama, Arc<Sent>) {
    let fake = FakeOllama::builder().resident("llama3.2").start().await;
    let get_json = |path: &str| {
        let url = format!("{}{path}", fake.url());
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let (tags, ps) = (get_json("/api/tags").await, get_json("/api/ps").await);
    let sent = Arc::new(Sent::default());
    let chat = {
        let sent = Arc::clone(&sent);
        move || {
            let hang_up = HangUp(Arc::clone(&sent));
            let piece = Bytes::from(vec![b'a'; 64 * 1024]);
            let body = futures::stream::repeat_with(move || {
                hang_up.0.bytes.fetch_add(piece.len(), Ordering::SeqCst);
                Ok::<_, Infallible>(piece.clone())
            });
            async move {
                (
                    [(header::CONTENT_TYPE, "application/x-ndjson")],
                    Body::from_stream(body),
                )
            }
        }
    };
    let app = axum::Router::new()
        .route("/api/tags", get(move || async move { axum::Json(tags) }))
        .route("/api/ps", get(move || async move { axum::Json(ps) }))
        .route("/api/chat", post(chat));
    // Dropping the token does not stop the server; the test's runtime does.
    let (addr, _) = foreman_testkit::wait::serve_on_loopback(app).await;
    (format!("http://{addr}"), fake, sent)
}

#[tokio::test]
async fn an_endless_line_fails_the_job_and_drops_the_connection() {
    let (url, _fake, sent) = endless_line_target().await;
    let app = TestApp::builder().target_url(&url).spawn().await;

    let id = submit(&app, &chat_body("llama3.2", false)).await;
    let job = terminal(&app, &id).await;

    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 1, "a broken answer is not retried: {job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("longer than 16 MiB"), "{error}");
    let hung_up = wait_until(DEADLINE, || async { sent.dropped.load(Ordering::SeqCst) }).await;
    assert!(hung_up, "the upstream connection is dropped");
    // What was read is bounded by the cap, plus what sat in socket buffers.
    let read = sent.bytes.load(Ordering::SeqCst);
    assert!(read < 2 * MAX_LINE, "{read} bytes sent");
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
}
