//! The worker: one generation on the target at a time.
//!
//! It claims the next job from the store (drain by model, see `store::claim`), runs it
//! against the target, and records how it ended. Sync jobs stream into their caller's
//! channel ([`crate::live`]); async jobs are read to the end and stored with their
//! artifacts. Nothing here panics the process: every failure ends up on the job.

mod async_job;
mod named_events;
mod residency;
mod sync_job;
mod usage;

pub(crate) use sync_job::error_line;

use std::time::{Duration, Instant};

use foreman_types::Backoff;
use tokio_util::sync::CancellationToken;

use crate::state::App;
use crate::store::{ClaimRequest, ClaimedJob, Finish, Origin, Reported};
use crate::target::TargetError;

/// The longest pause after the target was unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a run ended, as far as the loop cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ran {
    /// Finished one way or another; take the next job.
    Completed,
    /// The target could not be reached; pause before the next job.
    Unreachable,
}

/// Runs jobs until `shutdown`, then answers the callers still waiting in the queue.
pub(crate) async fn run(app: App, shutdown: CancellationToken) {
    work(&app, &shutdown).await;
    release_waiting_callers(&app).await;
}

/// Sync callers still queued at shutdown get a 503 now (their jobs are cancelled: a sync
/// job is never re-run after a restart), so graceful shutdown does not wait on them.
async fn release_waiting_callers(app: &App) {
    for id in app.live.close("foreman is shutting down") {
        let reason = "foreman shut down before the job's turn".to_owned();
        if let Err(err) = app.store.cancel_if_queued(id, reason).await {
            tracing::error!(job_id = %id, error = %err, "cannot cancel a waiting job");
        }
    }
}

async fn work(app: &App, shutdown: &CancellationToken) {
    let mut backoff = Backoff::new(app.config.retry_backoff, MAX_BACKOFF);
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        // While the target is unreachable, jobs wait in the queue without spending
        // attempts; the poller notices it coming back (ADR 7).
        if app.inventory.degraded() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = app.inventory.reachable() => {}
            }
        }
        let loaded = app.inventory.loaded();
        let claim = ClaimRequest {
            target: app.target.name.clone(),
            resident: loaded.first().cloned(),
            loaded,
            affinity_window: app.config.affinity_window,
            held: app.inventory.held(),
            running_estimate_ms: app.run_times.mean_ms(),
        };
        match app.store.claim_next(claim).await {
            Ok(Some(job)) => match execute_guarded(app, job, shutdown).await {
                Ran::Completed => backoff.reset(),
                Ran::Unreachable => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            },
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = app.work.notified() => {}
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot claim the next job");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn execute(app: &App, job: ClaimedJob, shutdown: &CancellationToken) -> Ran {
    let cancel = CancellationToken::new();
    if let Ok(mut running) = app.running.lock() {
        running.insert(job.id, cancel.clone());
    }
    tracing::debug!(
        job_id = %job.id,
        model = %job.model,
        key = %job.tenant.key,
        attempt = job.attempts,
        "job started"
    );
    count_swap(app, &job.model);
    let started = Instant::now();
    if job.attempts == 1 {
        let waited = crate::store::now_ms()
            .saturating_sub(job.created_at_ms)
            .max(0);
        app.metrics
            .job_waited(&job.model, Duration::from_millis(waited as u64));
    }
    app.run_times.started(started);
    let stop = Stop {
        shutdown: shutdown.clone(),
        cancel,
    };
    let ran = match job.origin {
        Origin::Sync => sync_job::run(app, &job, &stop).await,
        Origin::Async => async_job::run(app, &job, &stop).await,
    };
    if let Ok(mut running) = app.running.lock() {
        running.remove(&job.id);
    }
    // A run cut short by an unreachable target says nothing about how long jobs take.
    let took = started.elapsed();
    let reached_target = ran == Ran::Completed;
    app.run_times.ended(took, reached_target);
    if reached_target {
        app.metrics.job_ran(&job.model, took);
    }
    // A state change may have written a webhook event.
    app.webhooks.notify_one();
    ran
}

/// Counts a model swap when this job's model differs from the previous job's.
fn count_swap(app: &App, model: &str) {
    if let Ok(mut last) = app.last_model.lock() {
        if last.as_deref().is_some_and(|m| m != model) {
            app.model_swaps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        *last = Some(model.to_owned());
    }
}

/// Runs a job; a panic in that code fails the job instead of ending the worker, which
/// would leave the queue with nobody to run it.
async fn execute_guarded(app: &App, job: ClaimedJob, shutdown: &CancellationToken) -> Ran {
    use futures::FutureExt;
    let id = job.id;
    match std::panic::AssertUnwindSafe(execute(app, job, shutdown))
        .catch_unwind()
        .await
    {
        Ok(ran) => ran,
        Err(_) => {
            tracing::error!(job_id = %id, "a bug panicked the worker while running a job; the job is failed");
            if let Ok(mut running) = app.running.lock() {
                running.remove(&id);
            }
            app.live.remove(id);
            let failed = Finish::Failed {
                error: "internal error while running the job".into(),
            };
            if let Err(err) = app.store.finish(id, failed).await {
                tracing::error!(job_id = %id, error = %err, "cannot record a failed job");
            }
            app.webhooks.notify_one();
            Ran::Completed
        }
    }
}

/// What can stop a running job: foreman shutting down, or a cancel of this job.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    shutdown: CancellationToken,
    cancel: CancellationToken,
}

impl Stop {
    /// Resolves when the job must stop; says how it ends.
    async fn stopped(&self) -> Finish {
        tokio::select! {
            _ = self.shutdown.cancelled() => Finish::Interrupted,
            _ = self.cancel.cancelled() => Finish::Cancelled { reason: "cancelled".into() },
        }
    }
}

/// Records how a run ended; logs (never panics) when the store fails.
async fn finish(app: &App, job: &ClaimedJob, finish: Finish) -> Option<foreman_types::JobState> {
    finish_reporting(app, job, finish, Reported::default()).await
}

/// Records how a run ended, with what the target reported about it for usage.
async fn finish_reporting(
    app: &App,
    job: &ClaimedJob,
    finish: Finish,
    reported: Reported,
) -> Option<foreman_types::JobState> {
    match app.store.finish_reporting(job.id, finish, reported).await {
        Ok(state) => {
            if let Some(state) = state {
                tracing::info!(job_id = %job.id, model = %job.model, state = %state, "job ended");
                app.metrics.job_finished(&job.model, state);
            }
            state
        }
        Err(err) => {
            tracing::error!(job_id = %job.id, error = %err, "cannot record how a job ended");
            None
        }
    }
}

/// Moves a `loading` job to `working` the first time the target answers.
async fn started_answering(app: &App, job: &ClaimedJob, marked: &mut bool) {
    if *marked {
        return;
    }
    *marked = true;
    note_residency(app, job);
    if job.state == foreman_types::JobState::Loading {
        if let Err(err) = app.store.mark_working(job.id).await {
            tracing::error!(job_id = %job.id, error = %err, "cannot mark a job working");
        }
        app.webhooks.notify_one();
    }
}

/// The target is answering, so the model is loaded now; or, for a request that unloads it
/// (`keep_alive: 0`), gone once answered. Noted before the caller has the whole answer, so
/// a `ps` or `/queue` right after sees it.
fn note_residency(app: &App, job: &ClaimedJob) {
    if residency::unloads(job.kind, &job.payload) {
        app.inventory.note_unloaded(&job.model);
    } else {
        app.inventory.note_ran(&job.model);
    }
}

/// A connection failure: retry the job (or give up on it) and pause the worker.
fn retry(app: &App, err: &TargetError) -> Finish {
    app.inventory.mark_unreachable(err);
    Finish::Retry {
        error: err.to_string(),
        max_attempts: app.config.max_attempts,
    }
}
