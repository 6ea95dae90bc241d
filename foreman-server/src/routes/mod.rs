//! The HTTP surface: one file per route group, the router and auth here.

mod anthropic;
mod auth;
mod body;
mod embed;
mod error_shape;
mod generate;
mod jobs;
mod keys;
mod limits;
mod meta;
mod metrics;
mod models;
mod openai;
mod origin;
mod priority;
mod queue;
mod ui;
mod usage;

pub(crate) use auth::Caller;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::error::AppError;
use crate::request_log;
use crate::state::App;

/// Every route, with auth, body limits and JSON errors for unknown routes and methods.
pub(crate) fn router(app: App) -> Router {
    let limit = app.config.max_body_bytes;
    Router::new()
        .route("/", get(meta::root).head(meta::root))
        .route("/healthz", get(meta::healthz))
        .route("/api/version", get(meta::version))
        .route("/api/status", get(meta::status))
        .route("/api/tags", get(meta::tags))
        .route("/api/ps", get(meta::ps))
        .route("/api/show", post(meta::show))
        .route("/api/embed", post(embed::embed))
        .route("/api/embeddings", post(embed::embeddings))
        .route("/api/chat", post(generate::chat))
        .route("/api/generate", post(generate::generate))
        .route("/queue", get(queue::queue))
        .route("/metrics", get(metrics::metrics))
        .route("/jobs", post(jobs::submit).get(jobs::list))
        .route("/jobs/{id}", get(jobs::show).delete(jobs::cancel))
        .route("/jobs/{id}/artifacts/{name}", get(jobs::artifact))
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route("/admin/keys/{name}", delete(keys::revoke))
        .route("/usage", get(usage::usage))
        .merge(ui::router())
        .merge(openai::router())
        .merge(anthropic::router())
        .merge(models::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One `layer` call, so one boxed service and future per request for both.
        .layer(
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(app.clone(), around))
                .layer(axum::extract::DefaultBodyLimit::max(limit)),
        )
        .with_state(app)
}

/// What every request passes through before its route, outermost first: its log line
/// (which shows the status the client got), the error shape of the compatible API that
/// owns its path (so a refusal below takes that shape too), the declared body size, and
/// authentication.
///
/// One middleware, not a layer for each: axum boxes each layer's future and the service
/// behind it, about 1.3 KiB a layer for as long as the request is open, and the 10,000
/// streaming callers of benchmark 6, each waiting its turn, held 8 KiB apiece for the
/// six layers there were (issue 16).
async fn around(State(app): State<App>, request: Request, next: Next) -> Response {
    request_log::log_requests(request, |request| async move {
        let owners = error_shape::Owners::of(request.uri().path());
        let admitted = refuse_oversized(&app, &request).and_then(|()| authenticate(&app, request));
        let response = match admitted {
            Ok(request) => next.run(request).await,
            Err(refused) => refused.into_response(),
        };
        owners.reshape(response).await
    })
    .await
}

async fn not_found() -> AppError {
    AppError::NotFound("not found".into())
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// 413 from the declared `Content-Length` alone, before a byte of the body is read: a
/// client announcing gigabytes is refused at once instead of being waited on. Blob
/// uploads are the exception: model files are gigabytes, and they stream to the target.
fn refuse_oversized(app: &App, request: &Request) -> Result<(), AppError> {
    if models::is_blob_upload(request.uri().path()) {
        return Ok(());
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > app.config.max_body_bytes as u64 => {
            Err(AppError::PayloadTooLarge(app.config.max_body_bytes))
        }
        _ => Ok(()),
    }
}

/// Auth on everything but the liveness routes: a request let through carries its
/// [`auth::Caller`] from here on, for the extractors that decide what it may do.
///
/// Under `/ui` the status page's session cookie names the caller too; its routes are let
/// through without one, and those that show or change data refuse it there (the page
/// itself answers a login form).
fn authenticate(app: &App, mut request: Request) -> Result<Request, AppError> {
    if ui::is_ui_path(request.uri().path()) {
        if let Some(caller) = ui::session_caller(app, request.headers()) {
            request_log::note_key(&caller.key);
            request.extensions_mut().insert(caller);
        }
        return Ok(request);
    }
    let open = matches!(request.uri().path(), "/healthz" | "/");
    if !origin::allowed(request.headers(), app.config.allowed_origins.as_deref()) {
        let message = "requests from this web page's origin are not allowed \
                       (FOREMAN_ALLOWED_ORIGINS lists more)";
        return Err(AppError::Forbidden(message.into()));
    }
    match auth::Caller::identify(&app.config, &app.keys, request.headers()) {
        Ok(Some(caller)) => {
            request_log::note_key(&caller.key);
            request.extensions_mut().insert(caller);
            Ok(request)
        }
        _ if open => Ok(request),
        Ok(None) => Err(AppError::Unauthorized),
        Err(err) => Err(err),
    }
}
