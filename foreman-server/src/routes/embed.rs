//! Embeddings: straight to a target that has the model (one that holds it in memory
//! first), concurrently, never queued. They are short and the embedding model usually
//! stays loaded beside the chat model (ADR 0003).

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use bytes::Bytes;
use foreman_types::model_key;

use super::{body, meta};
use crate::error::AppError;
use crate::state::App;

/// A large batch of embeddings can take a while; still, it must end.
pub(super) const EMBED_TIMEOUT: Duration = Duration::from_secs(300);

/// `POST /api/embed`.
pub(super) async fn embed(
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    forward(app, "/api/embed", body).await
}

/// `POST /api/embeddings`, the legacy form.
pub(super) async fn embeddings(
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    forward(app, "/api/embeddings", body).await
}

/// Sends the request straight to a target with its model, never through the queue.
async fn forward(
    app: App,
    path: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let to = app.targets.for_model(&model_key(&body::model(&body)?));
    meta::forward_with(&to, Method::POST, path, Some(body), EMBED_TIMEOUT).await
}
