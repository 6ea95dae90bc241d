//! The model management routes that answer at once, as Ollama's `server/routes.go` does:
//! `POST /api/copy`, `DELETE /api/delete`, `HEAD` and `POST /api/blobs/{digest}`, and
//! `GET /api/status`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::state::Sim;
use super::{request_body, Rejection};

/// `POST /api/copy`: the same model under a second name (replacing one of that name); 200
/// with an empty body.
pub(super) async fn copy(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, Rejection> {
    let request = request_body(body)?;
    let text = |field: &str| {
        request
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let (source, destination) = (text("source"), text("destination"));
    if source.is_empty() {
        return Err(Rejection::bad_request(format!(
            "source {source:?} is invalid"
        )));
    }
    if destination.is_empty() {
        return Err(Rejection::bad_request(format!(
            "destination {destination:?} is invalid"
        )));
    }
    let model = sim.find(&source).ok_or_else(|| {
        Rejection::new(StatusCode::NOT_FOUND, format!("model {source:?} not found"))
    })?;
    sim.install(model.renamed(&destination));
    Ok(StatusCode::OK)
}

/// `DELETE /api/delete`: 200 with an empty body, 404 `model 'x' not found`. A resident
/// model stays loaded until it expires, as in Ollama.
pub(super) async fn delete(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, Rejection> {
    let request = request_body(body)?;
    let name = ["model", "name"]
        .iter()
        .find_map(|field| request.get(*field).and_then(Value::as_str))
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() {
        return Err(Rejection::bad_request(format!("name {name:?} is invalid")));
    }
    if !sim.uninstall(&name) {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model '{name}' not found"),
        ));
    }
    Ok(StatusCode::OK)
}

/// `HEAD /api/blobs/{digest}`: 200 if the blob is there (uploaded, or a layer of an
/// installed model), else 404.
pub(super) async fn has_blob(
    State(sim): State<Arc<Sim>>,
    Path(digest): Path<String>,
) -> StatusCode {
    if !valid_digest(&digest) {
        return StatusCode::BAD_REQUEST;
    }
    match sim.blob(&digest.replace('-', ":")) {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    }
}

/// `POST /api/blobs/{digest}`: 201 once the body, read as it streams in, hashes to the
/// digest; 200 if the blob was already there; 400 for a digest that does not match.
pub(super) async fn upload_blob(
    State(sim): State<Arc<Sim>>,
    Path(digest): Path<String>,
    body: Body,
) -> Result<StatusCode, Rejection> {
    if !valid_digest(&digest) {
        return Err(Rejection::bad_request("invalid digest format"));
    }
    let digest = digest.replace('-', ":");
    if sim.blob(&digest).is_some() {
        return Ok(StatusCode::OK);
    }
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| Rejection::bad_request(err.to_string()))?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != digest {
        return Err(Rejection::bad_request(format!(
            "digest mismatch, expected {digest:?}, got {actual:?}"
        )));
    }
    sim.store_blob(actual, size);
    Ok(StatusCode::CREATED)
}

/// `GET /api/status`: a local server, its cloud features on.
pub(super) async fn status() -> Json<Value> {
    Json(json!({ "cloud": { "disabled": false, "source": "none" } }))
}

/// A blob digest as Ollama accepts one: `sha256:` (or `sha256-`) and 64 hex digits.
pub(super) fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .or_else(|| digest.strip_prefix("sha256-"))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
