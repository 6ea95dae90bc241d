//! The OpenAI-compatible routes, as Ollama serves them under `/v1`, so OpenAI SDKs and the
//! tools built on them work through foreman too.
//!
//! `/v1/chat/completions`, `/v1/completions` and `/v1/responses` are queued like their
//! native twins (`/api/chat`, `/api/generate`): the body goes to the target's own `/v1`
//! route byte for byte when the job's turn comes, and its answer (server-sent events, or
//! one JSON object) comes back as the target sends it.
//! `/v1/embeddings` goes straight through, never queued; `/v1/models` is answered from
//! the poller's cache. Every error is in OpenAI's shape ([`error`]).

mod error;
mod models;
mod responses;

pub(super) use error::OpenAi;
use error::OpenAiError;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use bytes::Bytes;
use foreman_types::JobKind;

use super::embed::EMBED_TIMEOUT;
use super::error_shape::{ErrorShape, Shaped};
use super::generate::{ensure_model, queued, queued_body};
use super::limits::Submitter;
use super::{body, meta};
use crate::state::App;

/// The `/v1` routes.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route(
            "/v1/chat/completions",
            queued_chat::<OpenAi>(JobKind::OpenAiChat),
        )
        .route("/v1/completions", post(completions))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
}

/// Whether a path belongs to the OpenAI-compatible surface, whose errors take OpenAI's
/// shape (unknown routes and auth failures included). The Anthropic-compatible
/// `/v1/messages` has its own.
pub(super) fn is_openai_path(path: &str) -> bool {
    (path == "/v1" || path.starts_with("/v1/")) && !super::anthropic::is_anthropic_path(path)
}

/// A queued chat in OpenAI's shape (`/v1/chat/completions`) or Anthropic's
/// (`/v1/messages`) as a job of `kind`, its errors in shape `S`: the body must hold
/// `messages`, and its `model` names the job's model.
pub(super) fn queued_chat<S: ErrorShape + Send + 'static>(kind: JobKind) -> MethodRouter<App> {
    post(
        move |Submitter(caller): Submitter,
              State(app): State<App>,
              body: Result<Bytes, BytesRejection>| async move {
            let body = body::bytes(body, app.config.max_body_bytes)?;
            let model = body::chat_model(&body)?;
            Ok::<_, Shaped<S>>(queued(app, caller, kind, model, body).await?)
        },
    )
}

/// `POST /v1/completions`.
async fn completions(
    Submitter(caller): Submitter,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    Ok(queued_body(app, caller, JobKind::OpenAiCompletion, body).await?)
}

/// `POST /v1/embeddings`: straight to a target with the model, concurrently, like `/api/embed`. The
/// model is checked first, so an unknown one gets the same 404 as on the queued routes.
async fn embeddings(
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let model = body::model(&body)?;
    let key = ensure_model(&app, &model).await?;
    let to = app.targets.for_model(&key);
    Ok(meta::forward_with(
        &to,
        Method::POST,
        "/v1/embeddings",
        Some(body),
        EMBED_TIMEOUT,
    )
    .await?)
}
