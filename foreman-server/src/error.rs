//! Errors as HTTP answers: always JSON `{"error": "..."}` with a fitting status.
//!
//! Internal failures are logged in full and answered with a short message; the details of
//! a database or I/O error never reach the response body.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use foreman_types::ErrorBody;

use crate::store::StoreError;

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or wrong bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: a valid credential that may not do this (model management needs an admin).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route, job or artifact.
    #[error("{0}")]
    NotFound(String),
    /// 404: the target has no such model (Ollama's own message).
    #[error("model \"{0}\" not found, try pulling it first")]
    ModelNotFound(String),
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408: the client paused sending its body for longer than `FOREMAN_BODY_TIMEOUT`.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// 409: the request conflicts with the job's state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than `FOREMAN_MAX_BODY_SIZE`.
    #[error("request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    /// 422: an idempotency key reused for a different request.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: a key's limit (`rpm`, `max_queued`); `Retry-After` says when to try again.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    /// 503: the queue is full (Ollama's own message); `Retry-After` is how long until the
    /// next job leaves the queue, when foreman can tell.
    #[error("server busy, please try again.  maximum pending requests exceeded")]
    QueueFull(Option<Duration>),
    /// The target answered with an error: its status and message, passed on.
    #[error("{message}")]
    Upstream { status: StatusCode, message: String },
    /// 502: the target could not be reached or answered nonsense.
    #[error("{0}")]
    BadGateway(String),
    /// 503: foreman is shutting down.
    #[error("foreman is shutting down")]
    ShuttingDown,
    /// 503: the database cannot be reached now (PostgreSQL is down or unreachable); the
    /// detail is logged. Work accepted before is not lost, and foreman recovers by itself.
    #[error("the database is unavailable, please try again")]
    Unavailable(String),
    /// 500: a bug or a broken database; the detail is logged, not answered.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) | AppError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::QueueFull(_) | AppError::ShuttingDown | AppError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Upstream { status, .. } => *status,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::QueueFull => AppError::QueueFull(None),
            StoreError::KeyExists(name) => {
                AppError::Conflict(format!("a key named {name:?} exists already"))
            }
            StoreError::NoAdminLeft => AppError::Conflict(
                "no admin key would be left (and FOREMAN_AUTH_TOKEN is not set): \
                 create an admin key first"
                    .into(),
            ),
            StoreError::TenantQueueFull(limit) => AppError::TooManyRequests {
                message: format!("too many queued jobs: this key's limit is {limit}"),
                retry_after: Duration::from_secs(1),
            },
            StoreError::WriterGone => AppError::ShuttingDown,
            StoreError::Unavailable(detail) => AppError::Unavailable(detail),
            StoreError::LeaseLapsed => AppError::Unavailable(
                "this replica's lease on the database lapsed; it is renewing it".into(),
            ),
            StoreError::IdempotencyConflict => AppError::Unprocessable(
                "Idempotency-Key was already used with a different request".into(),
            ),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl AppError {
    /// When the client may try again, for the answers that say (429, a full queue, the
    /// database away).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            AppError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            AppError::Unavailable(_) => Some(Duration::from_secs(1)),
            AppError::QueueFull(retry_after) => *retry_after,
            _ => None,
        }
    }

    /// Logs an internal error and adds the headers the status calls for
    /// (`WWW-Authenticate` on 401, `Retry-After` in whole seconds, at least 1), whatever
    /// the shape of the body: every API's error answer goes through here.
    pub(crate) fn decorate(&self, response: &mut Response) {
        match self {
            AppError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            AppError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "the database is unavailable");
            }
            _ => {}
        }
        let headers = response.headers_mut();
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_secs(after)));
        }
    }
}

/// A wait as `Retry-After` seconds: rounded up, never 0 (which would invite a retry storm).
pub(crate) fn retry_secs(after: Duration) -> u64 {
    after.as_millis().div_ceil(1000).max(1) as u64
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(ErrorBody::new(self.to_string()))).into_response();
        self.decorate(&mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_secs(Duration::from_secs(30)), 30);
        let refused = AppError::TooManyRequests {
            message: "slow down".into(),
            retry_after: Duration::from_millis(2500),
        };
        let response = refused.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_503_with_a_json_error_and_no_detail() {
        let outage = StoreError::Unavailable("connection refused by 10.0.0.7:5432".into());
        let response = AppError::from(outage).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let message = body["error"].as_str().expect("a JSON error");
        assert!(message.contains("database is unavailable"), "{message}");
        assert!(!message.contains("10.0.0.7"), "the detail stays in the log");
    }
}
