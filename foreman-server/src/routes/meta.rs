//! Metadata routes: never queued. Tags and ps are the union over the targets, from the
//! pollers' caches; version, status and show are one target's answer.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header::CONTENT_TYPE, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use foreman_types::model_key;
use serde_json::{json, Value};

use super::body;
use crate::error::AppError;
use crate::state::App;
use crate::targets::client::{Answer, METADATA_TIMEOUT};
use crate::targets::{merged, Target};

/// `GET|HEAD /`: what Ollama answers, so health checks written for Ollama pass.
pub(super) async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /healthz`: `degraded` while any target is unreachable, and each target.
pub(super) async fn healthz(State(app): State<App>) -> Json<Value> {
    let targets: Vec<Value> = app
        .targets
        .all()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "url": t.url,
                "up": t.up(),
                "resident": t.inventory.loaded(),
            })
        })
        .collect();
    Json(json!({
        "status": "ok",
        "degraded": app.targets.degraded(),
        "targets": targets,
    }))
}

/// `GET /api/tags`: every target's models, each once.
pub(super) async fn tags(State(app): State<App>) -> Result<Json<Value>, AppError> {
    cached(&app, |app| merged::tags(&app.targets)).await
}

/// `GET /api/ps`: every target's loaded models, each once, with the targets holding it.
pub(super) async fn ps(State(app): State<App>) -> Result<Json<Value>, AppError> {
    let fresh = futures::future::join_all(
        app.targets
            .all()
            .iter()
            .map(|t| async move { t.inventory.fresh_ps().await.map(|ps| (t.name.clone(), ps)) }),
    )
    .await;
    if let Some(ps) = merged::ps(fresh.into_iter().flatten().collect()) {
        return Ok(Json(ps));
    }
    cached(&app, cached_ps).await
}

fn cached_ps(app: &App) -> Option<Value> {
    let answers = app
        .targets
        .all()
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.inventory.ps()?)))
        .collect();
    merged::ps(answers)
}

/// The cached answer; before the first successful poll, one poll of every target now.
async fn cached(app: &App, get: impl Fn(&App) -> Option<Value>) -> Result<Json<Value>, AppError> {
    if let Some(value) = get(app) {
        return Ok(Json(value));
    }
    app.targets.refresh_all().await;
    get(app).map(Json).ok_or_else(|| {
        AppError::BadGateway("no target has answered yet, so the models are unknown".into())
    })
}

/// `GET /api/version`: a target's (one that answers).
pub(super) async fn version(State(app): State<App>) -> Result<Response, AppError> {
    let to = app.targets.up_first();
    forward(&to, Method::GET, "/api/version", None).await
}

/// `GET /api/status`: a target's (Ollama's cloud status); read-only, so any caller.
pub(super) async fn status(State(app): State<App>) -> Result<Response, AppError> {
    let to = app.targets.up_first();
    forward(&to, Method::GET, "/api/status", None).await
}

/// `POST /api/show`: the answer of a target that has the model.
pub(super) async fn show(
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let model = body::model(&body)?;
    let to = app.targets.for_model(&model_key(&model));
    forward(&to, Method::POST, "/api/show", Some(body)).await
}

/// Passes a target's answer through: status, content type and body.
pub(super) async fn forward(
    to: &[Arc<Target>],
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<Response, AppError> {
    forward_with(to, method, path, body, METADATA_TIMEOUT).await
}

/// Passes the answer of the first of `to` that can be reached through, whatever its
/// status; a target that cannot be reached is marked so and the next one is tried.
pub(super) async fn forward_with(
    to: &[Arc<Target>],
    method: Method,
    path: &str,
    body: Option<Bytes>,
    timeout: std::time::Duration,
) -> Result<Response, AppError> {
    let mut failure = None;
    for target in to {
        let answer = target
            .client
            .forward(method.clone(), path, body.clone(), timeout)
            .await;
        match answer {
            Ok(answer) => return Ok(answer_response(answer)),
            Err(err) => {
                target.inventory.mark_unreachable(&err);
                failure = Some(err);
            }
        }
    }
    Err(AppError::BadGateway(match failure {
        Some(err) => err.to_string(),
        None => "no target to send the request to".into(),
    }))
}

pub(super) fn answer_response(answer: Answer) -> Response {
    let mut response = (answer.status, answer.body).into_response();
    let content_type = answer
        .content_type
        .unwrap_or_else(|| HeaderValue::from_static("application/json; charset=utf-8"));
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}
