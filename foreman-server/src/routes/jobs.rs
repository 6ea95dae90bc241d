//! The jobs API: submit, inspect, list, cancel, fetch artifacts.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use foreman_types::{Accepted, Job, JobId, JobKind, JobList, JobState, SubmitRequest};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::{Caller, OwnJob};
use super::body;
use super::generate::ensure_model;
use super::limits::{self, Submitter};
use super::priority;
use crate::error::AppError;
use crate::state::App;
use crate::store::{Enqueued, JobFilter, NewJob, Origin};
use crate::webhook_url;

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Default and largest page of `GET /jobs`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

fn parse_id(raw: &str) -> Result<JobId, AppError> {
    let id = raw
        .parse()
        .map_err(|err: foreman_types::ParseIdError| AppError::BadRequest(err.to_string()))?;
    crate::request_log::note_job(id);
    Ok(id)
}

/// `POST /jobs`: commit the job, then answer `202` with its id and `Location`. The job
/// belongs to the caller's key.
pub(super) async fn submit(
    Submitter(caller): Submitter,
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let request: SubmitRequest = body::json(&body)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
                    ))
                })?;
            Some(key.to_owned())
        }
    };
    let webhook_url = match &request.state_webhook_url {
        Some(url) => Some(
            webhook_url::check(url, app.config.webhook_allow_private)
                .await
                .map_err(AppError::BadRequest)?
                .to_string(),
        ),
        None => None,
    };
    let priority = priority::for_async(request.priority)?;
    let model = ensure_model(&app, &request.chat.model).await?;
    // What the target receives: the chat request without foreman's own fields.
    let payload = serde_json::to_vec(&request.chat)
        .map_err(|err| AppError::Internal(format!("cannot encode a chat request: {err}")))?;
    let request_hash = idempotency_key
        .as_ref()
        .map(|_| hex::encode(Sha256::digest(&body)));
    // Each key has its own idempotency keys: the same header from another key is another
    // request, and must neither return that key's job nor tell that it exists. The unit
    // separator cannot occur in a header value.
    let tenant = caller.tenant();
    let idempotency_key = idempotency_key.map(|key| format!("{}\u{1f}{key}", tenant.key));
    let has_webhook = webhook_url.is_some();
    let enqueued = crate::worker::enqueue(
        &app,
        NewJob {
            id: JobId::new(),
            kind: JobKind::Chat,
            origin: Origin::Async,
            model,
            priority,
            payload: Bytes::from(payload),
            webhook_url,
            tenant,
            weight: caller.weight,
            max_queued: caller.max_queued,
            idempotency_key,
            request_hash,
        },
    )
    .await
    .map_err(|err| limits::refused(&app, err))?;
    // The worker knows already; the webhook dispatcher has a `queued` event to send. A
    // job without a webhook wrote none, and waking the dispatcher would cost it two
    // outbox reads for nothing.
    if has_webhook {
        app.webhooks.notify_one();
    }
    app.ui_changes.bump();
    let id = enqueued.id();
    crate::request_log::note_job(id);
    let status = match enqueued {
        Enqueued::Created(_) => StatusCode::ACCEPTED,
        Enqueued::Existing(_) => StatusCode::OK,
    };
    let mut response = (status, Json(Accepted { job_id: id })).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/jobs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /jobs/{id}`.
pub(super) async fn show(
    OwnJob(id): OwnJob,
    State(app): State<App>,
) -> Result<Json<Job>, AppError> {
    let mut job = app
        .store
        .job(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("job {id} not found")))?;
    job.estimated_wait_ms = job
        .queue_position
        .and_then(|ahead| app.run_times.wait_ms(ahead));
    Ok(Json(job))
}

/// `DELETE /jobs/{id}`: a queued job leaves the queue; a running one is stopped (the
/// upstream request is dropped, so the target stops generating).
pub(super) async fn cancel(
    OwnJob(id): OwnJob,
    State(app): State<App>,
) -> Result<Json<Job>, AppError> {
    match app.store.cancel(id, "cancelled by request".into()).await? {
        Some(before) => {
            // The store ended it here, so the worker (if it runs it) will not count it.
            if let Ok(Some(job)) = app.store.job(id).await {
                app.metrics.job_finished(&job.model, JobState::Cancelled);
            }
            if before.is_running() {
                app.stop_running(id);
            } else {
                // A sync caller waiting in the queue hears now rather than never.
                app.live.release(
                    id,
                    StatusCode::CONFLICT,
                    format!("the request was cancelled (DELETE /jobs/{id})"),
                );
            }
            app.wake();
        }
        None => {
            let job = app.store.job(id).await?;
            return match job {
                None => Err(AppError::NotFound(format!("job {id} not found"))),
                Some(job) => Err(AppError::Conflict(format!(
                    "job {id} already ended ({})",
                    job.state
                ))),
            };
        }
    }
    app.store
        .job(id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("job {id} not found")))
}

/// Query of `GET /jobs`.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    model: Option<String>,
    limit: Option<u32>,
    before: Option<String>,
}

/// `GET /jobs`: newest first, filtered by state and model, a page at a time; only the
/// caller's own jobs unless it is an admin.
pub(super) async fn list(
    caller: Caller,
    State(app): State<App>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobList>, AppError> {
    let Query(query) = query.map_err(|err| AppError::BadRequest(err.body_text()))?;
    let state = match query.state.as_deref() {
        Some(raw) => Some(
            raw.parse::<JobState>()
                .map_err(|err| AppError::BadRequest(err.to_string()))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let before = query.before.as_deref().map(parse_id).transpose()?;
    let jobs = app
        .store
        .list(JobFilter {
            state,
            model: query.model.as_deref().map(foreman_types::model_key),
            before,
            key: caller.scope().map(str::to_owned),
            limit: limit + 1,
        })
        .await?;
    let mut jobs = jobs;
    let next_cursor = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(|job| job.id.to_string())
    } else {
        None
    };
    Ok(Json(JobList { jobs, next_cursor }))
}

/// `GET /jobs/{id}/artifacts/{name}`: the raw bytes with their content type.
pub(super) async fn artifact(
    OwnJob(id): OwnJob,
    State(app): State<App>,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let Some((content_type, data)) = app.store.artifact(id, name.clone()).await? else {
        return Err(AppError::NotFound(format!(
            "job {id} has no artifact {name:?}"
        )));
    };
    let content_type = HeaderValue::from_str(&content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        data,
    )
        .into_response())
}
