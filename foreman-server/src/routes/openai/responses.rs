//! `POST /v1/responses`: OpenAI's Responses API as Ollama serves it, queued like
//! `/v1/chat/completions`. Streams are named server-sent events (`event:
//! response.created` ... `event: response.completed`), passed through as they come.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use foreman_types::JobKind;

use super::super::generate::queued_body;
use super::super::limits::Submitter;
use super::OpenAiError;
use crate::state::App;

/// `POST /v1/responses`.
pub(super) async fn responses(
    Submitter(caller): Submitter,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    Ok(queued_body(app, caller, JobKind::OpenAiResponses, body).await?)
}
