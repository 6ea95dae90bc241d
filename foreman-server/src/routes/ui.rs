//! `/ui`: the status page, its assets, login and logout, the live snapshot stream and the
//! page's cancel button. The page and its assets answer anyone (they hold no data); the
//! stream and cancel need a caller, from the session cookie (or nobody, on an open
//! foreman). Whatever changes state is refused unless the browser says it came from this
//! origin: `SameSite=Strict` keeps the cookie off cross-site requests, and the
//! `Sec-Fetch-Site` / `Origin` check refuses them even where a browser sent it anyway.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures::Stream;
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};

use super::auth::{Caller, OwnJob};
use crate::error::AppError;
use crate::state::App;
use crate::ui::sessions::{self, COOKIE, LIFETIME};
use crate::ui::{self as assets, snapshot};

/// The shortest time between two snapshots on one stream: a burst of changes (a batch of
/// submissions, a queue draining fast) is pushed at most ten times a second.
const PUSH_GAP: Duration = Duration::from_millis(100);

/// The page's policy: its own scripts, styles and stream only; never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/ui` routes.
pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/style.css", get(style))
        .route("/ui/app.js", get(script))
        .route("/ui/favicon.svg", get(icon))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/events", get(events))
        .route("/ui/jobs/{id}/cancel", post(cancel))
}

/// Whether `path` is one of the page's, whose caller the session cookie names.
pub(super) fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The caller of a `/ui` request: its live session's, or anyone's on an open foreman.
pub(super) fn session_caller(app: &App, headers: &HeaderMap) -> Option<Caller> {
    if let Some(caller) = sessions::cookie_of(headers).and_then(|id| app.ui_sessions.find(id)) {
        return Some(caller);
    }
    // No credentials: `Some` only when foreman has no token and no keys.
    Caller::identify(&app.config, &app.keys, &HeaderMap::new())
        .ok()
        .flatten()
}

/// Whether the browser says the request came from a page of this origin.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

fn cross_site() -> AppError {
    AppError::Forbidden("cross-site requests are refused".into())
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

fn login_page(status: StatusCode, problem: &str) -> Response {
    let problem = if problem.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="problem" role="alert">{problem}</p>"#)
    };
    html(
        status,
        assets::LOGIN_HTML.replace("<!--problem-->", &problem),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui`: the dashboard for a caller the page knows, else the login form.
async fn page(caller: Option<Extension<Caller>>) -> Response {
    match caller {
        Some(_) => html(StatusCode::OK, assets::DASHBOARD_HTML.to_owned()),
        None => login_page(StatusCode::OK, ""),
    }
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", assets::STYLE_CSS)
}

async fn icon() -> Response {
    asset("image/svg+xml", assets::FAVICON_SVG)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", assets::APP_JS)
}

/// The login form's body.
#[derive(Debug, Deserialize)]
struct LoginForm {
    key: String,
}

/// `POST /ui/login`: a key good for the API opens a session; the cookie carries its id.
async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return cross_site().into_response();
    }
    let Ok(Form(form)) = form else {
        return login_page(StatusCode::BAD_REQUEST, "Enter an API key.");
    };
    let mut presented = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", form.key.trim()));
    if let Ok(bearer) = bearer {
        presented.insert(header::AUTHORIZATION, bearer);
    }
    let caller = match Caller::identify(&app.config, &app.keys, &presented) {
        Ok(Some(caller)) => caller,
        _ => return login_page(StatusCode::UNAUTHORIZED, "That key is not valid."),
    };
    let Some(id) = app.ui_sessions.open(caller.clone()) else {
        return AppError::Internal("no randomness for a session id".into()).into_response();
    };
    tracing::info!(key = %caller.key, "status page login");
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}",
        LIFETIME.as_secs()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui".into()),
        ],
    )
        .into_response()
}

/// `POST /ui/logout`: ends the session and clears the cookie.
async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return cross_site().into_response();
    }
    if let Some(id) = sessions::cookie_of(&headers) {
        app.ui_sessions.close(id);
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0");
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui".into()),
        ],
    )
        .into_response()
}

/// `GET /ui/events`: `snapshot` events for as long as the session lives and foreman runs.
/// One at once, one soon after each change (a job enqueued, claimed, started, ended or
/// cancelled, a target down or back; at most one per [`PUSH_GAP`]), and one every
/// `FOREMAN_UI_REFRESH` (1 s) when nothing changed, so elapsed times and tokens per second
/// move on. A snapshot that cannot be read is a `problem` event.
async fn events(
    caller: Caller,
    State(app): State<App>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the first snapshot is read: no change after it can be missed.
    let mut changes = app.ui_changes.subscribe();
    let stream = async_stream::stream! {
        let mut ticks = tokio::time::interval(app.config.ui_refresh);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pushed: Option<Instant> = None;
        loop {
            tokio::select! {
                // Shutting down: end the response, or graceful shutdown would wait on it.
                _ = app.stopping.cancelled() => break,
                _ = ticks.tick() => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
            if let Some(pushed) = pushed {
                tokio::select! {
                    _ = app.stopping.cancelled() => break,
                    _ = tokio::time::sleep_until(pushed + PUSH_GAP) => {}
                }
            }
            // Every change until now is in the snapshot read next; a later one pushes again.
            changes.borrow_and_update();
            // A logout or a revoked key ends the stream at the next push.
            if session_caller(&app, &headers).as_ref() != Some(&caller) {
                yield Ok(Event::default().event("ended").data("the session ended"));
                break;
            }
            match snapshot::build(&app, &caller).await {
                Ok(snapshot) => match Event::default().event("snapshot").json_data(&snapshot) {
                    Ok(event) => yield Ok(event),
                    Err(err) => tracing::warn!(error = %err, "cannot encode a snapshot"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read a status page snapshot");
                    yield Ok(Event::default().event("problem").data("cannot read the queue"));
                }
            }
            pushed = Some(Instant::now());
            // A full period of quiet after any push before the next tick.
            ticks.reset();
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /ui/jobs/{id}/cancel`: `DELETE /jobs/{id}` for the page, same-origin only.
async fn cancel(
    headers: HeaderMap,
    State(app): State<App>,
    job: Result<OwnJob, AppError>,
) -> Result<Response, AppError> {
    if !same_origin(&headers) {
        return Err(cross_site());
    }
    let job = super::jobs::cancel(job?, State(app)).await?;
    Ok(job.into_response())
}
