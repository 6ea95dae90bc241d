//! Waiting on conditions with a deadline, and fresh temporary databases.
//!
//! Tests never sleep to synchronise: they state the condition they need and poll it
//! at short intervals until it holds or the deadline passes.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use foreman_types::Backoff;
use tokio::time::Instant;

/// The first pause between polls; it doubles up to [`MAX_POLL_INTERVAL`].
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// The longest pause between polls.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `condition` until it returns true (then `true`) or `deadline` has passed
/// (then `false`). The condition is always checked at least once, and once more at the
/// deadline.
///
/// ```no_run
/// # async fn demo(app_url: String) {
/// use std::time::Duration;
/// let up = foreman_testkit::wait_until(Duration::from_secs(5), || {
///     let url = format!("{app_url}/healthz");
///     async move { reqwest::get(url).await.is_ok() }
/// })
/// .await;
/// assert!(up);
/// # }
/// ```
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    let mut polling = Backoff::new(FIRST_POLL_INTERVAL, MAX_POLL_INTERVAL);
    loop {
        if condition().await {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        tokio::time::sleep_until((now + polling.next_delay()).min(until)).await;
    }
}

/// Like [`wait_until`], but panics with `what` (a description of the condition) when the
/// deadline passes.
///
/// ```no_run
/// # async fn demo(ollama: foreman_testkit::FakeOllama) {
/// use std::time::Duration;
/// foreman_testkit::eventually(Duration::from_secs(5), "the model to be resident", || {
///     let resident = ollama.resident();
///     async move { resident.as_deref() == Some("llama3.2:latest") }
/// })
/// .await;
/// # }
/// ```
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        wait_until(deadline, condition).await,
        "timed out after {deadline:?} waiting for {what}"
    );
}

/// A fresh temporary directory and the path of a not-yet-existing SQLite file in it.
/// Keep the directory alive for as long as the database is used; dropping it deletes both.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("foreman-test-")
        .tempdir()
        .expect("create a temporary directory");
    let path = dir.path().join("foreman.db");
    (dir, path)
}

/// Serves `app` on `127.0.0.1`, port 0, until the returned token is cancelled (or its
/// drop guard dropped). Returns the address and the token.
pub async fn serve_on_loopback(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    (addr, shutdown)
}
