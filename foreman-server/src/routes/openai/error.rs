//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for the
//! `/v1` routes: OpenAI's SDKs read that shape (and raise `NotFoundError` and the like from
//! the status), where Ollama's clients read `{"error": "..."}`.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::routes::error_shape::{ErrorShape, Shaped};

/// An [`AppError`] answered in OpenAI's shape, with the same status and message.
pub(crate) type OpenAiError = Shaped<OpenAi>;

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

/// OpenAI's error shape on the `/v1` paths: an error answer made by code that knows
/// nothing of OpenAI (auth, body limits, unknown routes) is rewrapped by
/// [`Owners::reshape`](crate::routes::error_shape::Owners::reshape), keeping its status
/// and headers. Ollama's `/v1` routes already answer in that shape; a target that answers
/// `{"error": "..."}` or plain text gets its message wrapped.
pub(in crate::routes) struct OpenAi;

impl ErrorShape for OpenAi {
    fn owns(path: &str) -> bool {
        super::is_openai_path(path)
    }

    fn body(status: StatusCode, message: &str) -> Value {
        body(status, message, None)
    }

    /// With OpenAI's `model_not_found` code for an unknown model.
    fn body_of(err: &AppError) -> Value {
        let code = match err {
            AppError::ModelNotFound(_) => Some("model_not_found"),
            _ => None,
        };
        body(err.status(), &err.to_string(), code)
    }

    fn is_shaped(body: &Value) -> bool {
        body["error"]["message"].is_string()
    }
}

#[cfg(test)]
mod tests {
    use axum::response::{IntoResponse, Response};
    use axum::Json;

    use super::*;
    use crate::routes::error_shape;

    async fn json_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn an_unknown_model_is_a_404_with_the_model_not_found_code() {
        let response = OpenAiError::new(AppError::ModelNotFound("nope".into())).into_response();
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
        let (status, body) = json_of(error_shape::reshape::<OpenAi>(ollama).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "invalid options");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[tokio::test]
    async fn an_openai_shaped_error_passes_unchanged() {
        let original =
            json!({"error": {"message": "boom", "type": "api_error", "param": null, "code": null}});
        let answer = (StatusCode::INTERNAL_SERVER_ERROR, Json(original.clone())).into_response();
        let (status, body) = json_of(error_shape::reshape::<OpenAi>(answer).await).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, original);
    }
}
