//! Model management, passed through to the target for admins only: `POST /api/pull`,
//! `/api/push`, `/api/create`, `/api/copy`, `DELETE /api/delete`, and
//! `HEAD|POST /api/blobs/{digest}`.
//!
//! None of these is queued: they use the target's disk and network, not the generation
//! slot, and Ollama runs them beside generations. Pull, push and create stream their
//! progress line by line as the target writes it ([`relay`]). A pull, create, copy or
//! delete that succeeds refreshes the inventory before its answer ends, so a `list` right
//! after shows the change whatever the poll interval; a model being pulled or created holds
//! its jobs in the queue until then (ADR 15).

mod relay;

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, post};
use axum::Router;
use bytes::Bytes;
use foreman_types::model_key;
use serde::Deserialize;

use super::auth::Admin;
use super::{body, meta};
use crate::error::AppError;
use crate::state::App;
use crate::target::METADATA_TIMEOUT;
use relay::PullHold;

/// How long a copy or a delete may take (removing a large model's layers is disk work).
const MANAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// The model management routes.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/api/pull", post(pull))
        .route("/api/push", post(push))
        .route("/api/create", post(create))
        .route("/api/copy", post(copy))
        .route("/api/delete", delete(remove))
        .route("/api/blobs/{digest}", post(upload_blob).head(head_blob))
}

/// Whether `path` takes a blob upload, which may be far larger than
/// `FOREMAN_MAX_BODY_SIZE`: it is streamed to the target, never held in memory.
pub(super) fn is_blob_upload(path: &str) -> bool {
    path.starts_with("/api/blobs/")
}

/// `model` or, from older clients, `name`: Ollama reads either.
#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
}

/// The model a management request names; 400 when it names none.
fn named_model(bytes: &[u8]) -> Result<String, AppError> {
    let Named { model, name } = body::json(bytes)?;
    let model = if model.trim().is_empty() { name } else { model };
    body::require_model(&model)?;
    Ok(model)
}

/// `POST /api/pull`: progress streamed; the model's jobs wait until it ends.
async fn pull(
    _: Admin,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let hold = PullHold::begin(&app, model_key(&named_model(&body)?));
    relay::progress(&app, "/api/pull", body, Some(hold)).await
}

/// `POST /api/push`: progress streamed; nothing changes on the target.
async fn push(
    _: Admin,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    named_model(&body)?;
    relay::progress(&app, "/api/push", body, None).await
}

/// `POST /api/create`: like a pull, the new model's jobs wait until it exists.
async fn create(
    _: Admin,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let hold = PullHold::begin(&app, model_key(&named_model(&body)?));
    relay::progress(&app, "/api/create", body, Some(hold)).await
}

/// `POST /api/copy`: the target's answer (200 with no body), the inventory refreshed.
async fn copy(
    _: Admin,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    body::json::<serde_json::Map<String, serde_json::Value>>(&body)?;
    changing(&app, Method::POST, "/api/copy", body).await
}

/// `DELETE /api/delete`: the target's answer, the inventory refreshed.
async fn remove(
    _: Admin,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    named_model(&body)?;
    changing(&app, Method::DELETE, "/api/delete", body).await
}

/// A call whose success changes the installed models: answered once the inventory has
/// seen the change.
async fn changing(
    app: &App,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Response, AppError> {
    let response = meta::forward_with(app, method, path, Some(body), MANAGE_TIMEOUT).await?;
    if response.status().is_success() {
        relay::refresh(app).await;
    }
    Ok(response)
}

/// `HEAD /api/blobs/{digest}`: whether the target has the blob (200 or 404).
async fn head_blob(
    _: Admin,
    State(app): State<App>,
    digest: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let path = blob_path(digest)?;
    meta::forward_with(&app, Method::HEAD, &path, None, METADATA_TIMEOUT).await
}

/// `POST /api/blobs/{digest}`: the body streamed to the target as it arrives.
async fn upload_blob(
    _: Admin,
    State(app): State<App>,
    digest: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, AppError> {
    let path = blob_path(digest)?;
    relay::upload(&app, &path, body).await
}

/// The target path of a blob; 400 unless the digest is `sha256:` (or `sha256-`) and 64
/// hex digits, as Ollama requires, so nothing else can be smuggled into the URL.
fn blob_path(digest: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let Path(digest) = digest.map_err(|err| AppError::BadRequest(err.body_text()))?;
    let hex = digest
        .strip_prefix("sha256:")
        .or_else(|| digest.strip_prefix("sha256-"));
    match hex {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(format!("/api/blobs/{digest}"))
        }
        _ => Err(AppError::BadRequest("invalid digest format".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(digest: &str) -> Result<String, AppError> {
        blob_path(Ok(Path(digest.to_owned())))
    }

    #[test]
    fn blob_digests_are_checked_before_they_reach_a_url() {
        let hex = "a".repeat(64);
        assert_eq!(
            path_of(&format!("sha256:{hex}")).unwrap(),
            format!("/api/blobs/sha256:{hex}")
        );
        assert!(path_of(&format!("sha256-{hex}")).is_ok());
        for bad in [
            "sha256:abc".to_owned(),
            format!("md5:{hex}"),
            format!("sha256:{}/../../api/delete", &hex[..50]),
            format!("sha256:{}?x=1", &hex[..60]),
        ] {
            assert!(path_of(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_model_is_read_from_model_or_name() {
        assert_eq!(named_model(br#"{"model":"a"}"#).unwrap(), "a");
        assert_eq!(named_model(br#"{"name":"b"}"#).unwrap(), "b");
        assert_eq!(named_model(br#"{"model":"","name":"c"}"#).unwrap(), "c");
        assert!(named_model(br#"{"stream":false}"#).is_err());
        assert!(named_model(b"[1]").is_err());
    }
}
