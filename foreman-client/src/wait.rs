//! Following a job until it ends: [`Client::wait`] and [`Client::watch`].

use std::pin::Pin;
use std::time::Duration;

use foreman_types::{Backoff, Job, JobId};
use futures::Stream;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};

/// The first pause between polls in [`Client::wait`] and [`Client::watch`]; it doubles up to
/// [`MAX_POLL_INTERVAL`].
pub const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest pause between polls in [`Client::wait`] and [`Client::watch`].
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Successive snapshots of a job, from [`Client::watch`].
pub type JobWatch = Pin<Box<dyn Stream<Item = Result<Job>> + Send>>;

/// Pauses between polls: doubling from [`FIRST_POLL_INTERVAL`] to [`MAX_POLL_INTERVAL`].
const POLLING: Backoff = Backoff::new(FIRST_POLL_INTERVAL, MAX_POLL_INTERVAL);

impl Client {
    /// Polls the job until it is `done`, `failed` or `cancelled` and returns it; check its
    /// `state`, since a failed job is returned too. Polls start [`FIRST_POLL_INTERVAL`] apart
    /// and slow to [`MAX_POLL_INTERVAL`].
    ///
    /// After `timeout` it gives up with [`Error::Timeout`], carrying the last state seen. The
    /// deadline is checked between polls, so a slow poll can overrun it by up to the client's
    /// request timeout. The job keeps running either way.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client, id: foreman_client::JobId)
    /// # -> foreman_client::Result<()> {
    /// use std::time::Duration;
    /// let job = client.wait(id, Duration::from_secs(600)).await?;
    /// if let Some(error) = &job.error {
    ///     eprintln!("job {} ended {}: {error}", job.id, job.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Result<Job> {
        let deadline = Instant::now() + timeout;
        let mut backoff = POLLING;
        loop {
            let job = self.job(id).await?;
            if job.state.is_terminal() {
                return Ok(job);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Timeout {
                    job: id,
                    last_state: job.state,
                });
            }
            tokio::time::sleep(backoff.next_delay().min(remaining)).await;
        }
    }

    /// Follows a job: yields its first snapshot, then a new one each time its state or its
    /// attempt count changes, and ends after the terminal state. This is how to show
    /// progress; combine it with `tokio::time::timeout` for a deadline.
    ///
    /// Polling backs off as in [`wait`](Client::wait) and starts over fast after each
    /// change. A failed poll is yielded as an `Err` and ends the stream.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client, id: foreman_client::JobId)
    /// # -> foreman_client::Result<()> {
    /// use futures::StreamExt;
    /// let mut updates = client.watch(id);
    /// while let Some(job) = updates.next().await {
    ///     let job = job?;
    ///     eprintln!("{}: {}", job.id, job.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, id: JobId) -> JobWatch {
        let client = self.clone();
        Box::pin(async_stream::try_stream! {
            let mut backoff = POLLING;
            let mut last = None;
            loop {
                let job = client.job(id).await?;
                let terminal = job.state.is_terminal();
                let seen = Some((job.state, job.attempts));
                if seen != last {
                    last = seen;
                    backoff.reset();
                    yield job;
                }
                if terminal {
                    break;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        })
    }
}
