//! `/api/chat` and `/api/generate`: queued, then streamed through as the target answers.
//!
//! The request is committed as a sync job, the caller waits on a channel the worker
//! writes to, and the response starts only when the target answers, so its status is the
//! target's. A caller that hangs up while queued takes its job out of the queue (the
//! [`QueuedGuard`]); one that hangs up mid-stream drops the channel, and the worker drops
//! the upstream request.

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header::CONTENT_TYPE, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use foreman_types::{model_key, JobId, JobKind};

use super::auth::Caller;
use super::body;
use super::limits::{self, Submitter};
use super::priority;
use crate::error::AppError;
use crate::live::LiveEvent;
use crate::state::App;
use crate::store::{NewJob, Origin};
use crate::targets::Known;
use crate::worker::error_line;

/// Response header naming the job a sync request became, for tracing a request in logs.
pub(crate) const JOB_ID_HEADER: &str = "x-foreman-job-id";

/// `POST /api/chat`.
pub(super) async fn chat(
    Submitter(caller): Submitter,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    queued_body(app, caller, JobKind::Chat, body).await
}

/// `POST /api/generate`.
pub(super) async fn generate(
    Submitter(caller): Submitter,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    queued_body(app, caller, JobKind::Generate, body).await
}

/// [`queued`] for a route that reads nothing of the body but its `model`.
pub(super) async fn queued_body(
    app: App,
    caller: Caller,
    kind: JobKind,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let model = body::model(&body)?;
    queued(app, caller, kind, model, body).await
}

/// Answers 404 in Ollama's words when no target has `model`. When a target that might
/// have it cannot be asked, the job is accepted: it waits in the queue for that target.
/// A model being pulled through foreman is accepted too: its jobs wait in the queue until
/// the pull ends (ADR 15).
pub(super) async fn ensure_model(app: &App, model: &str) -> Result<String, AppError> {
    body::require_model(model)?;
    let key = model_key(model);
    match app.targets.check(&key).await {
        Known::Installed | Known::Unknown | Known::Pulling => Ok(key),
        Known::Missing => Err(AppError::ModelNotFound(model.to_owned())),
    }
}

/// Queues a generation as a sync job of `caller`'s tenant and answers with the target's
/// response once the job's turn comes. Shared with the OpenAI- and Anthropic-compatible
/// routes.
pub(super) async fn queued(
    app: App,
    caller: Caller,
    kind: JobKind,
    model: String,
    payload: Bytes,
) -> Result<Response, AppError> {
    let key = ensure_model(&app, &model).await?;
    let id = JobId::new();
    crate::request_log::note_job(id);
    // Registered before the job exists, so the worker always finds its caller.
    let Some(mut events) = app.live.register(id) else {
        return Err(AppError::ShuttingDown);
    };
    let guard = QueuedGuard {
        app: app.clone(),
        id,
        model: key.clone(),
        armed: true,
    };
    crate::worker::enqueue(
        &app,
        NewJob {
            id,
            kind,
            origin: Origin::Sync,
            model: key.clone(),
            priority: priority::SYNC,
            payload,
            webhook_url: None,
            tenant: caller.tenant(),
            weight: caller.weight,
            max_queued: caller.max_queued,
            idempotency_key: None,
            request_hash: None,
        },
    )
    .await
    .map_err(|err| limits::refused(&app, err))?;
    app.ui_changes.bump();

    // Dropped here if the caller hangs up while queued: the guard cancels the job.
    let first = events.recv().await;
    let mut guard = guard;
    guard.armed = false;
    let (status, content_type) = match first {
        Some(LiveEvent::Head {
            status,
            content_type,
        }) => (status, content_type),
        Some(LiveEvent::Whole {
            status,
            content_type,
            body,
        }) => return Ok(answer(id, status, content_type, Body::from(body))),
        Some(LiveEvent::Fail { status, message }) => {
            return Err(AppError::Upstream { status, message })
        }
        Some(LiveEvent::Chunk(_) | LiveEvent::End) | None => {
            return Err(AppError::Internal(format!(
                "job {id} ended without an answer for its caller"
            )))
        }
    };
    let stream = async_stream::stream! {
        while let Some(event) = events.recv().await {
            match event {
                LiveEvent::Chunk(bytes) => yield Ok::<Bytes, std::convert::Infallible>(bytes),
                LiveEvent::Fail { message, .. } => {
                    yield Ok(error_line(kind, &message));
                    break;
                }
                LiveEvent::End => break,
                LiveEvent::Head { .. } | LiveEvent::Whole { .. } => {}
            }
        }
    };
    Ok(answer(id, status, content_type, Body::from_stream(stream)))
}

/// The caller's response: the target's status and content type, the job's id, `body`.
fn answer(
    id: JobId,
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        content_type.unwrap_or_else(|| HeaderValue::from_static("application/json; charset=utf-8")),
    );
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        headers.insert(JOB_ID_HEADER, value);
    }
    response
}

/// Cancels a sync job whose caller left before its turn came.
struct QueuedGuard {
    app: App,
    id: JobId,
    model: String,
    armed: bool,
}

impl Drop for QueuedGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let app = self.app.clone();
        let id = self.id;
        let model = std::mem::take(&mut self.model);
        app.live.remove(id);
        tokio::spawn(async move {
            match app
                .store
                .cancel_if_queued(id, "the caller disconnected while queued".into())
                .await
            {
                Ok(true) => {
                    app.ui_changes.bump();
                    tracing::info!(job_id = %id, "caller left; job removed from the queue");
                    app.metrics
                        .job_finished(&model, foreman_types::JobState::Cancelled);
                }
                Ok(false) => {}
                Err(err) => tracing::error!(job_id = %id, error = %err, "cannot cancel a job"),
            }
        });
    }
}
