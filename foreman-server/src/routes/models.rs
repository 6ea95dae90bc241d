//! Model management, passed through to the targets for admins only: `POST /api/pull`,
//! `/api/push`, `/api/create`, `/api/copy`, `DELETE /api/delete`, and
//! `HEAD|POST /api/blobs/{digest}`.
//!
//! Each goes to every target, unless the request names one ([`choice`]: `?target=NAME`
//! or `X-Foreman-Target`); a push goes to one target that has the model. None of these is
//! queued: they use the targets' disks and networks, not the generation slots, and Ollama
//! runs them beside generations. Pull, push and create stream their progress line by line
//! as the targets write it ([`relay`] for one target, [`fanout`] for several). A pull,
//! create, copy or delete that succeeds refreshes the target's inventory before its answer
//! ends, so a `list` right after shows the change whatever the poll interval; a model being
//! pulled or created onto a target holds its jobs in the queue until then, unless another
//! target has it (ADR 15).

mod choice;
mod fanout;
mod relay;

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, MatchedPath, Path, Request, State};
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
use crate::targets::client::{Answer, METADATA_TIMEOUT};
use choice::Chosen;

/// How long a copy or a delete may take (removing a large model's layers is disk work).
const MANAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// The model management routes.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/api/pull", post(install))
        .route("/api/push", post(push))
        .route("/api/create", post(install))
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
struct NameFields {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
}

/// A management request's body, within the size limit, and the model it names
/// (normalised); 400 when it names none.
struct Named {
    body: Bytes,
    model: String,
}

impl FromRequest<App> for Named {
    type Rejection = AppError;

    async fn from_request(request: Request, app: &App) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(request, app).await;
        let body = body::bytes(bytes, app.config.max_body_bytes)?;
        let model = model_key(&named_model(&body)?);
        Ok(Named { body, model })
    }
}

/// The model a management request names; 400 when it names none.
fn named_model(bytes: &[u8]) -> Result<String, AppError> {
    let NameFields { model, name } = body::json(bytes)?;
    let model = if model.trim().is_empty() { name } else { model };
    body::require_model(&model)?;
    Ok(model)
}

/// `POST /api/pull` and `POST /api/create`: progress streamed from the route's own path on
/// the targets; the model's jobs wait until it ends, unless a target has it already (for a
/// create, until the new model exists).
async fn install(
    _: Admin,
    State(app): State<App>,
    path: MatchedPath,
    to: Chosen,
    Named { body, model }: Named,
) -> Result<Response, AppError> {
    fanout::progress(&app, to.targets, path.as_str(), body, Some(model)).await
}

/// `POST /api/push`: progress streamed, from the named target or else one that has the
/// model; nothing changes on the targets.
async fn push(
    _: Admin,
    State(app): State<App>,
    to: Chosen,
    Named { body, model }: Named,
) -> Result<Response, AppError> {
    let mut from = if to.named {
        to.targets
    } else {
        app.targets.for_model(&model)
    };
    from.truncate(1);
    fanout::progress(&app, from, "/api/push", body, None).await
}

/// `POST /api/copy`: the targets' answer (200 with no body), their inventories refreshed.
async fn copy(
    _: Admin,
    State(app): State<App>,
    to: Chosen,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    body::json::<serde_json::Map<String, serde_json::Value>>(&body)?;
    changing(&to, Method::POST, "/api/copy", body).await
}

/// `DELETE /api/delete`: the targets' answer, their inventories refreshed.
async fn remove(_: Admin, to: Chosen, Named { body, .. }: Named) -> Result<Response, AppError> {
    changing(&to, Method::DELETE, "/api/delete", body).await
}

/// A call whose success changes the installed models, on every chosen target at once:
/// answered once each target that changed has been polled again. One target's answer
/// passes through as it is; several are combined (success where some target had the
/// model and the others lack it).
async fn changing(
    to: &Chosen,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Response, AppError> {
    if let [target] = to.targets.as_slice() {
        let response =
            meta::forward_with(&to.targets, method, path, Some(body), MANAGE_TIMEOUT).await?;
        if response.status().is_success() {
            relay::refresh(target).await;
        }
        return Ok(response);
    }
    let answers = fanout::each(&to.targets, method, path, Some(body), MANAGE_TIMEOUT).await;
    let changed = to
        .targets
        .iter()
        .zip(&answers)
        .filter_map(|(target, answer)| {
            matches!(answer, Ok(a) if a.status.is_success()).then_some(target)
        });
    futures::future::join_all(changed.map(|target| relay::refresh(target))).await;
    fanout::combine(&to.targets, answers, false)
}

/// `HEAD /api/blobs/{digest}`: whether every chosen target has the blob (200), or some
/// lacks it (404, so the client uploads it).
async fn head_blob(
    _: Admin,
    to: Chosen,
    digest: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let path = blob_path(digest)?;
    if to.targets.len() == 1 {
        return meta::forward_with(&to.targets, Method::HEAD, &path, None, METADATA_TIMEOUT).await;
    }
    let answers = fanout::each(&to.targets, Method::HEAD, &path, None, METADATA_TIMEOUT).await;
    fanout::combine(&to.targets, answers, true)
}

/// `POST /api/blobs/{digest}`: the body streamed to every chosen target as it arrives.
async fn upload_blob(
    _: Admin,
    to: Chosen,
    digest: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, AppError> {
    let path = blob_path(digest)?;
    fanout::upload(to.targets, &path, body).await
}

/// A target's whole answer as the response.
fn meta_answer(answer: Answer) -> Response {
    meta::answer_response(answer)
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
