//! Error answers in a compatible API's own JSON shape: OpenAI's under `/v1`, Anthropic's
//! under `/v1/messages`. Each API says what its error object looks like ([`ErrorShape`]);
//! answering an [`AppError`] in that shape, and rewrapping an error answer made by code
//! that knows nothing of it (auth, body limits, unknown routes, a target that answered
//! `{"error": "..."}`), are written once here.

use axum::body::Body;
use std::marker::PhantomData;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::anthropic::Anthropic;
use super::openai::OpenAi;
use crate::error::AppError;
use crate::targets::client::error_message;

/// The largest error body read to reshape it.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// A compatible API whose errors have their own JSON shape.
pub(super) trait ErrorShape {
    /// Whether the API serves this path, so that its errors take the shape.
    fn owns(path: &str) -> bool;

    /// The API's error object for an answer with this status and message.
    fn body(status: StatusCode, message: &str) -> Value;

    /// The API's error object for `err`; by default from its status and message alone.
    fn body_of(err: &AppError) -> Value {
        Self::body(err.status(), &err.to_string())
    }

    /// Whether a body is already the API's error object.
    fn is_shaped(body: &Value) -> bool;
}

/// An [`AppError`] answered in `S`'s shape, with the same status and message, and the
/// headers it calls for (`Retry-After`, `WWW-Authenticate`).
pub(crate) struct Shaped<S>(pub(crate) AppError, PhantomData<S>);

impl<S> Shaped<S> {
    pub(crate) fn new(err: AppError) -> Self {
        Self(err, PhantomData)
    }
}

impl<S> std::fmt::Debug for Shaped<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Shaped").field(&self.0).finish()
    }
}

impl<S> From<AppError> for Shaped<S> {
    fn from(err: AppError) -> Self {
        Self::new(err)
    }
}

impl<S: ErrorShape> IntoResponse for Shaped<S> {
    fn into_response(self) -> Response {
        let mut response = (self.0.status(), Json(S::body_of(&self.0))).into_response();
        self.0.decorate(&mut response);
        response
    }
}

/// Which compatible APIs own a request's path, read before the request moves on: their
/// shapes are given to its error answer on the way out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Owners {
    openai: bool,
    anthropic: bool,
}

impl Owners {
    pub(super) fn of(path: &str) -> Self {
        Self {
            openai: OpenAi::owns(path),
            anthropic: Anthropic::owns(path),
        }
    }

    /// [`reshape`]s an error answer for each API that owns the path, OpenAI's first.
    pub(super) async fn reshape(self, response: Response) -> Response {
        let response = if self.openai {
            reshape::<OpenAi>(response).await
        } else {
            response
        };
        if self.anthropic {
            reshape::<Anthropic>(response).await
        } else {
            response
        }
    }
}

/// Passes a success, or an error answer already in `S`'s shape, through untouched; gives
/// any other error answer `S`'s shape around its message, keeping its status and headers.
pub(super) async fn reshape<S: ErrorShape>(response: Response) -> Response {
    let status = response.status();
    if status.is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let err = AppError::BadGateway(format!("the target's error could not be read: {err}"));
            return Shaped::<S>::new(err).into_response();
        }
    };
    let shaped = serde_json::from_slice::<Value>(&bytes).is_ok_and(|body| S::is_shaped(&body));
    if shaped {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let wrapped = S::body(status, &error_message(&bytes)).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(wrapped))
}
