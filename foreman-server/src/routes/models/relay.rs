//! Relaying model management to one target: progress streams forwarded line by line (each
//! line as soon as it is complete, so foreman can see the `success` one first), blob
//! uploads streamed through, and the target's inventory brought up to date when they
//! succeed. Several targets at once are [`super::fanout`]'s.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header::CONTENT_TYPE, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use foreman_types::LineSplitter;
use futures::StreamExt;

use crate::error::AppError;
use crate::routes::body::timed_out;
use crate::state::App;
use crate::targets::client::TargetError;
use crate::targets::Target;

/// While it lives, the model counts as being pulled onto the target: a chat for it is
/// accepted and, unless another target has the model, waits in the queue (ADR 15).
/// Dropped with the response, so a caller that hangs up, which cancels the pull on the
/// target, releases it too.
#[derive(Debug)]
pub(super) struct PullHold {
    app: App,
    target: Arc<Target>,
    model: String,
}

impl PullHold {
    pub(super) fn begin(app: &App, target: &Arc<Target>, model: String) -> Self {
        target.inventory.begin_pull(&model);
        tracing::info!(model = %model, target_name = %target.name, "model pull started");
        Self {
            app: app.clone(),
            target: Arc::clone(target),
            model,
        }
    }
}

impl Drop for PullHold {
    fn drop(&mut self) {
        self.target.inventory.end_pull(&self.model);
        // Its held jobs may run now (or fail at the target, if the pull did).
        self.app.work.notify_one();
    }
}

/// Polls the target's models now, so the next `list` shows what just changed.
pub(super) async fn refresh(target: &Target) {
    if let Err(err) = target.inventory.refresh().await {
        tracing::warn!(target_name = %target.name, error = %err, "cannot refresh the models after a change");
    }
}

/// The inventory sees the new model before its hold ends, so the jobs it held are
/// claimed with the model installed.
pub(super) async fn settle(target: &Target, hold: Option<PullHold>) {
    if let Some(hold) = hold {
        refresh(target).await;
        drop(hold);
    }
}

/// Runs a pull, push or create on the target and answers with its progress: NDJSON lines
/// forwarded as each arrives, or one JSON object with `stream: false`. With a `hold`, the
/// inventory is refreshed before the `success` line is forwarded (or, for one object,
/// before it is answered).
pub(super) async fn progress(
    target: &Arc<Target>,
    path: &str,
    body: Bytes,
    hold: Option<PullHold>,
) -> Result<Response, AppError> {
    let upstream = target
        .client
        .open(Method::POST, path, body.into(), "application/json")
        .await
        .map_err(|err| unreachable(target, err))?;
    let status = upstream.status();
    let content_type = upstream.headers().get(CONTENT_TYPE).cloned();
    let streamed = content_type
        .as_ref()
        .and_then(|ct| ct.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-ndjson"));
    if !status.is_success() || !streamed {
        let bytes = upstream
            .bytes()
            .await
            .map_err(|err| unreachable(target, TargetError::from_reqwest(err)))?;
        if status.is_success() {
            settle(target, hold).await;
        }
        return Ok(whole(status, content_type, bytes));
    }
    let target = Arc::clone(target);
    let lines = async_stream::stream! {
        let mut hold = hold;
        let mut chunks = upstream.bytes_stream();
        let mut lines = LineSplitter::new();
        let mut failed = false;
        loop {
            let (complete, ended) = match chunks.next().await {
                Some(Ok(bytes)) => match lines.push(&bytes) {
                    Ok(complete) => (complete, false),
                    Err(too_long) => {
                        yield Ok(error_line(&format!("the target's progress: {too_long}")));
                        return;
                    }
                },
                Some(Err(err)) => {
                    let err = TargetError::from_reqwest(err);
                    target.inventory.mark_unreachable(&err);
                    // Never a stream that looks whole: end with an error line, as Ollama
                    // ends a failed pull.
                    yield Ok::<Bytes, Infallible>(error_line(&format!(
                        "the target's stream broke off: {err}"
                    )));
                    return;
                }
                None => (lines.finish().into_iter().collect(), true),
            };
            for line in complete {
                match outcome(&line) {
                    Outcome::Failed => failed = true,
                    Outcome::Succeeded if !failed => settle(&target, hold.take()).await,
                    Outcome::Succeeded | Outcome::Progress => {}
                }
                yield Ok(with_newline(&line));
            }
            if ended {
                break;
            }
        }
        if !failed {
            settle(&target, hold.take()).await;
        }
    };
    Ok(streaming(status, content_type, Body::from_stream(lines)))
}

/// Streams a blob upload to the target as it arrives and answers with the target's
/// status (201 created, 200 already there, 400 digest mismatch).
pub(super) async fn upload(target: &Target, path: &str, body: Body) -> Result<Response, AppError> {
    // Whether the caller's body failed (and if so, by stalling): then the failed upload
    // says nothing about the target.
    let caller_failed = Arc::new(OnceLock::<bool>::new());
    let seen = Arc::clone(&caller_failed);
    let data = body.into_data_stream().inspect(move |chunk| {
        if let Err(err) = chunk {
            let _ = seen.set(timed_out(err));
        }
    });
    let sent = target
        .client
        .open(
            Method::POST,
            path,
            reqwest::Body::wrap_stream(data),
            "application/octet-stream",
        )
        .await;
    let upstream = match (sent, caller_failed.get()) {
        (Ok(upstream), _) => upstream,
        (Err(_), Some(true)) => return Err(AppError::RequestTimeout),
        (Err(_), Some(false)) => {
            return Err(AppError::BadRequest(
                "the upload broke off before its end".into(),
            ))
        }
        (Err(err), None) => return Err(unreachable(target, err)),
    };
    let status = upstream.status();
    let content_type = upstream.headers().get(CONTENT_TYPE).cloned();
    let bytes = upstream
        .bytes()
        .await
        .map_err(|err| unreachable(target, TargetError::from_reqwest(err)))?;
    Ok(whole(status, content_type, bytes))
}

/// A target that could not be reached: noted for `degraded`, answered 502.
pub(super) fn unreachable(target: &Target, err: TargetError) -> AppError {
    target.inventory.mark_unreachable(&err);
    AppError::BadGateway(err.to_string())
}

pub(super) fn whole(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    bytes: Bytes,
) -> Response {
    let mut response = (status, bytes).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    response
}

fn streaming(status: StatusCode, content_type: Option<HeaderValue>, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    response
}

/// `{"error": message}` and a newline.
pub(super) fn error_line(message: &str) -> Bytes {
    let mut line = serde_json::json!({ "error": message }).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// What a progress line says about how the operation is going.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Progress,
    /// `{"status": "success"}`: the last line of a successful pull, push or create.
    Succeeded,
    /// `{"error": ...}`.
    Failed,
}

pub(super) fn outcome(line: &[u8]) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Line {
        status: Option<String>,
        error: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Line>(line) {
        Ok(Line { error: Some(e), .. }) if !e.is_null() => Outcome::Failed,
        Ok(Line {
            status: Some(status),
            ..
        }) if status == "success" => Outcome::Succeeded,
        _ => Outcome::Progress,
    }
}

/// A line and its newline, as NDJSON is written.
pub(super) fn with_newline(line: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(line.len() + 1);
    out.extend_from_slice(line);
    out.extend_from_slice(b"\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_error_lines_are_told_apart() {
        assert_eq!(outcome(b"{\"status\":\"success\"}\n"), Outcome::Succeeded);
        assert_eq!(
            outcome(b"{\"error\":\"file does not exist\"}\n"),
            Outcome::Failed
        );
        assert_eq!(
            outcome(b"{\"status\":\"pulling abc\",\"total\":10,\"completed\":5}\n"),
            Outcome::Progress
        );
        assert_eq!(outcome(b"not json"), Outcome::Progress);
    }
}
