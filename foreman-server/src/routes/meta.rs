//! Metadata routes: never queued. Tags and ps come from the poller's cache.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header::CONTENT_TYPE, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use super::body;
use crate::error::AppError;
use crate::state::App;
use crate::target::{Answer, METADATA_TIMEOUT};

/// `GET|HEAD /`: what Ollama answers, so health checks written for Ollama pass.
pub(super) async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /healthz`.
pub(super) async fn healthz(State(app): State<App>) -> Json<Value> {
    Json(json!({ "status": "ok", "degraded": app.inventory.degraded() }))
}

/// `GET /api/tags`.
pub(super) async fn tags(State(app): State<App>) -> Result<Json<Value>, AppError> {
    cached(&app, |app| app.inventory.tags()).await
}

/// `GET /api/ps`.
pub(super) async fn ps(State(app): State<App>) -> Result<Json<Value>, AppError> {
    if let Some(ps) = app.inventory.fresh_ps().await {
        return Ok(Json(ps));
    }
    cached(&app, |app| app.inventory.ps()).await
}

/// The cached answer; before the first successful poll, one poll now.
async fn cached(app: &App, get: impl Fn(&App) -> Option<Value>) -> Result<Json<Value>, AppError> {
    if let Some(value) = get(app) {
        return Ok(Json(value));
    }
    let _ = app.inventory.refresh().await;
    get(app).map(Json).ok_or_else(|| {
        AppError::BadGateway("the target has not answered yet, so its models are unknown".into())
    })
}

/// `GET /api/version`: the target's.
pub(super) async fn version(State(app): State<App>) -> Result<Response, AppError> {
    forward(&app, Method::GET, "/api/version", None).await
}

/// `GET /api/status`: the target's (Ollama's cloud status); read-only, so any caller.
pub(super) async fn status(State(app): State<App>) -> Result<Response, AppError> {
    forward(&app, Method::GET, "/api/status", None).await
}

/// `POST /api/show`: the target's.
pub(super) async fn show(
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    body::model(&body)?;
    forward(&app, Method::POST, "/api/show", Some(body)).await
}

/// Passes the target's answer through: status, content type and body.
pub(super) async fn forward(
    app: &App,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<Response, AppError> {
    forward_with(app, method, path, body, METADATA_TIMEOUT).await
}

pub(super) async fn forward_with(
    app: &App,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    timeout: std::time::Duration,
) -> Result<Response, AppError> {
    let answer = app
        .target
        .forward(method, path, body, timeout)
        .await
        .map_err(|err| {
            app.inventory.mark_unreachable(&err);
            AppError::BadGateway(err.to_string())
        })?;
    Ok(answer_response(answer))
}

fn answer_response(answer: Answer) -> Response {
    let mut response = (answer.status, answer.body).into_response();
    let content_type = answer
        .content_type
        .unwrap_or_else(|| HeaderValue::from_static("application/json; charset=utf-8"));
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}
