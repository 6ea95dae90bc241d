//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for the
//! `/v1` routes: OpenAI's SDKs read that shape (and raise `NotFoundError` and the like from
//! the status), where Ollama's clients read `{"error": "..."}`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::targets::client::error_message;

/// The largest error body read from the target to reshape it.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// An [`AppError`] answered in OpenAI's shape, with the same status and message.
#[derive(Debug)]
pub(crate) struct OpenAiError(pub(crate) AppError);

impl From<AppError> for OpenAiError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let code = match &self.0 {
            AppError::ModelNotFound(_) => Some("model_not_found"),
            _ => None,
        };
        let mut response = (status, Json(body(status, &self.0.to_string(), code))).into_response();
        self.0.decorate(&mut response);
        response
    }
}

/// OpenAI's error object: `invalid_request_error` for the caller's mistakes (4xx),
/// `api_error` for the server's (5xx); a 429 has OpenAI's `rate_limit_exceeded` code,
/// whoever refused the request.
pub(crate) fn body(status: StatusCode, message: &str, code: Option<&str>) -> Value {
    let code = code.or((status == StatusCode::TOO_MANY_REQUESTS).then_some("rate_limit_exceeded"));
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "api_error"
    };
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

/// Passes a success through untouched; gives an error answer (the target's own, or one
/// made from an [`AppError`] by code that knows nothing of OpenAI: auth, body limits,
/// unknown routes) OpenAI's shape, keeping its status and headers. Ollama's `/v1` routes
/// already answer in that shape; a target that answers `{"error": "..."}` or plain text
/// gets its message wrapped.
pub(crate) async fn reshape(response: Response) -> Response {
    let status = response.status();
    if status.is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let message = format!("the target's error could not be read: {err}");
            return OpenAiError(AppError::BadGateway(message)).into_response();
        }
    };
    if is_openai_error(&bytes) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let wrapped = self::body(status, &error_message(&bytes), None).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(wrapped))
}

/// Middleware for every route: on the `/v1` paths, error answers take OpenAI's shape.
pub(crate) async fn errors(request: Request, next: Next) -> Response {
    let openai = super::is_openai_path(request.uri().path());
    let response = next.run(request).await;
    if openai {
        reshape(response).await
    } else {
        response
    }
}

/// Whether a body is already `{"error": {"message": ...}}`.
fn is_openai_error(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|value| value.get("error")?.get("message").map(Value::is_string))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn json_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn an_unknown_model_is_a_404_with_the_model_not_found_code() {
        let response = OpenAiError(AppError::ModelNotFound("nope".into())).into_response();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": {
                "message": "model \"nope\" not found, try pulling it first",
                "type": "invalid_request_error", "param": null, "code": "model_not_found"
            }})
        );
    }

    #[tokio::test]
    async fn an_ollama_shaped_error_is_wrapped_and_keeps_its_status() {
        let ollama = (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid options"})),
        )
            .into_response();
        let (status, body) = json_of(reshape(ollama).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "invalid options");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[tokio::test]
    async fn an_openai_shaped_error_passes_unchanged() {
        let original =
            json!({"error": {"message": "boom", "type": "api_error", "param": null, "code": null}});
        let answer = (StatusCode::INTERNAL_SERVER_ERROR, Json(original.clone())).into_response();
        let (status, body) = json_of(reshape(answer).await).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, original);
    }
}
