//! Capturing what foreman logs, for tests that assert on it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::subscriber::DefaultGuard;

/// Everything logged while the guard from [`capture`] lives, at every level.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// All of it so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The first line that `matches`, waiting for it up to `deadline`.
    pub(crate) async fn line(&self, matches: impl Fn(&str) -> bool, deadline: Duration) -> String {
        let mut found = None;
        foreman_testkit::wait_until(deadline, || {
            found = self.text().lines().find(|l| matches(l)).map(str::to_owned);
            std::future::ready(found.is_some())
        })
        .await;
        found.unwrap_or_else(|| panic!("no such line in the logs:\n{}", self.text()))
    }
}

/// Captures the logs of this thread as text. Use a current-thread runtime: every task
/// foreman spawns then runs on this thread, under this subscriber.
pub(crate) fn capture() -> (Logs, DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
