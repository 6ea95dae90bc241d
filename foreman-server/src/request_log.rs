//! One log line per request, at `info`, once it is answered: method, path, status,
//! latency, bytes sent, the name of the API key that made it, and the job and model when
//! the request had them. Never the query string, a header or a body: tokens and prompts
//! travel in those.
//!
//! The line is written when the response body is done, sent whole or dropped because the
//! client left, so a streamed chat is logged with its full length and duration rather than
//! when its headers went out; `complete=false` marks one cut short. A request whose client
//! leaves before any answer (say, while its job is queued) is logged too, without a status.
//!
//! Routes call [`note_job`] and [`note_model`] where they learn them (and auth
//! [`note_key`]), error paths
//! included. The notes live in a task-local scope around the request, so that no
//! handler's signature or return type changes to carry them out to this layer.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use foreman_types::JobId;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tracing::field;

tokio::task_local! {
    static NOTES: Arc<Mutex<Notes>>;
}

/// What the routes learned about a request.
#[derive(Debug, Default)]
struct Notes {
    job_id: Option<JobId>,
    model: Option<String>,
    key: Option<String>,
}

/// Records the job the current request created or names, for its log line.
pub(crate) fn note_job(id: JobId) {
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.lock() {
            notes.job_id = Some(id);
        }
    });
}

/// Records the name (never the secret) of the key that made the current request.
pub(crate) fn note_key(name: &str) {
    if name.is_empty() {
        return;
    }
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.lock() {
            notes.key = Some(name.to_owned());
        }
    });
}

/// Records the model the current request asked for, for its log line.
pub(crate) fn note_model(model: &str) {
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.lock() {
            notes.model = Some(model.to_owned());
        }
    });
}

/// The middleware: runs the request with a scope for notes, then hands the line to the
/// response body, which writes it when it is done.
pub(crate) async fn log_requests<F>(request: Request, run: impl FnOnce(Request) -> F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    let mut line = Line {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        started: Instant::now(),
        notes: Arc::default(),
        status: None,
        bytes: 0,
        // A HEAD answer has no body to cut short (hyper never polls it).
        complete: request.method() == Method::HEAD,
    };
    // If the client leaves first, this future is dropped here, and `line` with it.
    let response = NOTES.scope(line.notes.clone(), run(request)).await;
    line.status = Some(response.status());
    response.map(|body| Body::new(Logged { body, line }))
}

/// A request's log line, written when it is dropped.
struct Line {
    method: Method,
    path: String,
    started: Instant,
    notes: Arc<Mutex<Notes>>,
    status: Option<StatusCode>,
    bytes: u64,
    complete: bool,
}

impl Drop for Line {
    fn drop(&mut self) {
        let notes = self.notes.lock().map(|mut n| std::mem::take(&mut *n));
        let notes = notes.unwrap_or_default();
        let latency_ms = self.started.elapsed().as_millis() as u64;
        let job_id = notes.job_id.map(field::display);
        let model = notes.model.as_deref().map(field::display);
        let key = notes.key.as_deref().map(field::display);
        match self.status {
            Some(status) => tracing::info!(
                method = %self.method,
                path = %self.path,
                status = status.as_u16(),
                latency_ms,
                bytes = self.bytes,
                key,
                job_id,
                model,
                complete = self.complete,
                "answered"
            ),
            None => tracing::info!(
                method = %self.method,
                path = %self.path,
                latency_ms,
                key,
                job_id,
                model,
                complete = false,
                "client left before the answer"
            ),
        }
    }
}

/// The response body, counting what is sent; its line is written when it is dropped.
struct Logged {
    body: Body,
    line: Line,
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let sent = frame.data_ref().map_or(0, Bytes::len);
                self.line.bytes += sent as u64;
            }
            Poll::Ready(None) => self.line.complete = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // hyper stops polling a body that says it has ended, so a whole body's last poll
        // is not always the `None` above.
        if self.body.is_end_stream() {
            self.line.complete = true;
        }
    }
}
