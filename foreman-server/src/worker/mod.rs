//! The worker: up to N generations at once on each target (its lane).
//!
//! Jobs are claimed from the store (the scheduler's choice, see `store::claim`) and each
//! claimed job starts as a task in its target's lane. The dispatcher claims, for every
//! free slot at once, whenever it is woken and some target that answers has room; a
//! request claims beside its own enqueue, and an async job's end beside itself, when a
//! slot is free and nobody else is claiming (ADR 26); a sync request that finds the queue
//! empty starts its run before its row is committed, and the run writes nothing until it
//! is (ADR 30). Whoever claims holds `claiming` until the runs have their slots. A run
//! that ends gives its slot back and wakes the dispatcher. Each run goes to its target
//! and records how it ended. Sync jobs stream
//! into their caller's channel ([`crate::live`]); async jobs are read to the end and
//! stored with their artifacts. Nothing here panics the process: every failure ends up on
//! the job.

mod async_job;
mod early_start;
mod named_events;
mod residency;
mod slot;
mod sync_job;
mod unrecorded;
mod usage;

pub(crate) use sync_job::error_line;
pub(crate) use unrecorded::Unrecorded;

use self::early_start::{alone, start_before_recorded};
use self::slot::Slot;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::state::App;
use crate::store::{
    ClaimRequest, ClaimedJob, Enqueued, Finish, NewJob, Origin, Reported, StoreError,
};
use crate::targets::client::TargetError;
use crate::targets::Target;

/// How often a replica looks at a shared queue when no notification came.
const SHARED_QUEUE_POLL: Duration = Duration::from_secs(1);

/// How a run ended, as far as the loop cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ran {
    /// Finished one way or another; take the next job.
    Completed,
    /// The target could not be reached; pause before the next job.
    Unreachable,
}

/// Runs jobs until `shutdown`, waits for the runs in flight to stop, then answers the
/// callers still waiting in the queue.
pub(crate) async fn run(app: App, shutdown: CancellationToken) {
    dispatch(&app, &shutdown).await;
    // Once this lock is ours no request can start a run: each checks for the shutdown
    // while holding it.
    let _no_more_runs = app.claiming.lock().await;
    app.runs.close();
    app.runs.wait().await;
    release_waiting_callers(&app).await;
}

/// Queues `job`, and when this replica has a free slot and no claim is under way, claims
/// the next job in the same transaction and starts it (most often `job` itself, when
/// its target is idle): one commit and no hand-off to the dispatcher before the target
/// hears of it. Otherwise, or if the claim took another job, the dispatcher is woken.
pub(crate) async fn enqueue(app: &App, job: NewJob) -> Result<Enqueued, StoreError> {
    let claiming = try_claiming(app);
    let request = claiming.as_ref().and_then(|_| claim_request(app, None));
    let (Some(claiming), Some(request)) = (claiming, request) else {
        let enqueued = app.store.enqueue(job).await?;
        app.work.notify_one();
        return Ok(enqueued);
    };
    if let Some(chosen) = alone(app, &job, &request) {
        return Ok(start_before_recorded(app, job, chosen, claiming));
    }
    // In a task of its own, which a caller hanging up cannot drop between the claim and
    // the start of the run it claimed.
    let app = app.clone();
    let id = job.id;
    tokio::spawn(async move {
        let (enqueued, claimed) = app.store.enqueue_and_claim(job, request).await?;
        let started_this_job = claimed.as_ref().is_some_and(|claimed| claimed.id == id);
        if let Some(claimed) = claimed {
            start(&app, claimed);
        }
        drop(claiming);
        if !started_this_job {
            app.work.notify_one();
        }
        Ok(enqueued)
    })
    .await?
}

/// The claiming lock, unless another claim holds it or foreman is shutting down: for the
/// claims made beside another write, which never wait for the lock.
fn try_claiming(app: &App) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    let guard = Arc::clone(&app.claiming).try_lock_owned().ok()?;
    (!app.stopping.is_cancelled()).then_some(guard)
}

/// What a claim may choose from now, or `None` when no target that answers has a free
/// slot. A target that does not answer takes nothing: jobs it alone can run wait in the
/// queue without spending attempts until its poller sees it back (ADR 7). `freeing` is a
/// target whose run is ending: its slot counts as free.
fn claim_request(app: &App, freeing: Option<&str>) -> Option<ClaimRequest> {
    if freeing.is_none() && !app.targets.have_room() {
        return None;
    }
    let mut targets = app.targets.views();
    for view in targets
        .iter_mut()
        .filter(|view| Some(view.name.as_str()) == freeing)
    {
        view.free_slots += 1;
    }
    let room = targets.iter().any(|t| t.up && t.free_slots > 0);
    room.then(|| ClaimRequest {
        targets,
        affinity_window: app.config.affinity_window,
        held: app.targets.held(),
        running_estimate_ms: app.run_times.mean_ms(),
    })
}

/// Takes a slot of the claimed job's target and starts the run there. Called with
/// [`crate::state::Inner::claiming`] held, so the slot the claim counted is still free.
fn start(app: &App, job: ClaimedJob) {
    app.ui_changes.bump();
    let Some(target) = app.targets.get(&job.target).cloned() else {
        tracing::error!(job_id = %job.id, target_name = %job.target, "the scheduler chose an unknown target");
        let app = app.clone();
        app.runs.clone().spawn(async move {
            let failed = Finish::Failed {
                error: "internal error: no such target".into(),
            };
            let _ = app.store.finish(job.id, failed).await;
        });
        return;
    };
    target.lane.take(&job.model);
    app.runs
        .spawn(run_in_lane(app.clone(), target, job, app.stopping.clone()));
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

/// Claims jobs while a target has room for one, starting each in its target's lane.
async fn dispatch(app: &App, shutdown: &CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let claimed = {
            let _claiming = app.claiming.lock().await;
            match claim_request(app, None) {
                // As many as there are free slots, in one go: with several targets, one
                // transaction instead of one a slot.
                Some(request) => app.store.claim_free_slots(request).await.map(|jobs| {
                    let claimed = !jobs.is_empty();
                    for job in jobs {
                        start(app, job);
                    }
                    claimed
                }),
                None => Ok(false),
            }
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => {
                // Replicas hear of each other's jobs and freed slots by LISTEN/NOTIFY; a
                // look every second covers a notification lost with a connection.
                let poll = if app.store.is_shared() {
                    SHARED_QUEUE_POLL
                } else {
                    Duration::MAX
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = app.work.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
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

/// Runs one job in one of `target`'s slots and gives the slot back. After a run that
/// found the target unreachable the slot is held a little longer (doubling while the
/// target keeps failing), so a flapping target is not hammered.
async fn run_in_lane(app: App, target: Arc<Target>, job: ClaimedJob, shutdown: CancellationToken) {
    let slot = Slot::taken(&app, &target);
    match execute_guarded(job, &shutdown, &slot).await {
        Ran::Completed => target.lane.reset_backoff(),
        Ran::Unreachable => {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(target.lane.next_backoff()) => {}
            }
        }
    }
    slot.give_back();
}

/// Runs `job` in `slot`, on the slot's target.
async fn execute(job: ClaimedJob, shutdown: &CancellationToken, slot: &Slot<'_>) -> Ran {
    let (app, target) = (slot.app, slot.target);
    // A cancel that came between the claim and now left a cancelled token here.
    let cancel = match app.running.lock() {
        Ok(mut running) => running.entry(job.id).or_default().clone(),
        Err(_) => CancellationToken::new(),
    };
    tracing::debug!(
        job_id = %job.id,
        model = %job.model,
        target_name = %target.name,
        key = %job.tenant.key,
        attempt = job.attempts,
        "job started"
    );
    app.metrics.job_started(&target.name, &job.model);
    let started = Instant::now();
    if job.attempts == 1 {
        let waited = crate::store::now_ms()
            .saturating_sub(job.created_at_ms)
            .max(0);
        app.metrics
            .job_waited(&job.model, Duration::from_millis(waited as u64));
    }
    app.run_times.started(started);
    let fence = match app.fence.lock() {
        Ok(fence) => fence.clone(),
        Err(_) => CancellationToken::new(),
    };
    let stop = Stop {
        shutdown: shutdown.clone(),
        cancel,
        fence,
    };
    // Counted while the run streams, for the status page; gone when the run ends.
    let counting = app.progress.begin(job.id);
    let streamed = counting.streamed();
    let run = Run {
        job: &job,
        stop: &stop,
        slot,
    };
    let ran = match job.origin {
        Origin::Sync => sync_job::run(run, streamed).await,
        Origin::Async => async_job::run(run, streamed).await,
    };
    drop(counting);
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
    // Its state changes wrote webhook events: the dispatcher has work. A job without a
    // webhook wrote none, and waking the dispatcher would cost two outbox reads a job.
    if job.has_webhook {
        app.webhooks.notify_one();
    }
    ran
}

/// Runs a job; a panic in that code fails the job instead of ending the worker, which
/// would leave the queue with nobody to run it.
async fn execute_guarded(job: ClaimedJob, shutdown: &CancellationToken, slot: &Slot<'_>) -> Ran {
    use futures::FutureExt;
    let app = slot.app;
    let id = job.id;
    match std::panic::AssertUnwindSafe(execute(job, shutdown, slot))
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
            app.unrecorded.settled(id).await;
            if let Err(err) = app.store.finish(id, failed).await {
                tracing::error!(job_id = %id, error = %err, "cannot record a failed job");
            }
            app.webhooks.notify_one();
            app.ui_changes.bump();
            Ran::Completed
        }
    }
}

/// What a run of a job works with: the job, what can stop it, and its slot (which knows
/// the app and the target).
#[derive(Clone, Copy)]
struct Run<'a> {
    job: &'a ClaimedJob,
    stop: &'a Stop,
    slot: &'a Slot<'a>,
}

/// What can stop a running job: foreman shutting down, a cancel of this job, or this
/// replica's lease lapsing (then another replica may take the job over).
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    shutdown: CancellationToken,
    cancel: CancellationToken,
    fence: CancellationToken,
}

impl Stop {
    /// Resolves when the job must stop; says how it ends.
    async fn stopped(&self) -> Finish {
        tokio::select! {
            _ = self.shutdown.cancelled() => Finish::Interrupted,
            _ = self.fence.cancelled() => Finish::Interrupted,
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
    let finished = end_and_claim(app, job, finish, reported).await;
    app.ui_changes.bump();
    match finished {
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

/// Records a run's end. When an async job ends for good while no claim is under way, the
/// same transaction claims the next job for the slot this run leaves, and it starts at
/// once: under a backlog, one commit per job instead of two, and no hand-off to the
/// dispatcher. A sync job's end does not: its caller has been answered, and the next
/// request, often the same caller's, claims beside its own enqueue instead.
async fn end_and_claim(
    app: &App,
    job: &ClaimedJob,
    finish: Finish,
    reported: Reported,
) -> Result<Option<foreman_types::JobState>, StoreError> {
    // A run started before its job's row was committed (ADR 30) records nothing before.
    app.unrecorded.settled(job.id).await;
    let for_good = matches!(
        finish,
        Finish::Done { .. } | Finish::Failed { .. } | Finish::Cancelled { .. }
    );
    let claiming = match job.origin {
        Origin::Async if for_good => try_claiming(app),
        _ => None,
    };
    let request = claiming
        .as_ref()
        .and_then(|_| claim_request(app, Some(&job.target)));
    let Some(request) = request else {
        return app.store.finish_reporting(job.id, finish, reported).await;
    };
    let (ended, claimed) = app
        .store
        .finish_and_claim(job.id, finish, reported, request)
        .await?;
    if let Some(claimed) = claimed {
        start(app, claimed);
    }
    drop(claiming);
    Ok(ended)
}

/// Moves a `loading` job to `working` the first time the target answers.
async fn started_answering(app: &App, target: &Target, job: &ClaimedJob, marked: &mut bool) {
    if *marked {
        return;
    }
    *marked = true;
    note_residency(target, job);
    if job.state == foreman_types::JobState::Loading {
        // The caller's task, woken by the chunk just sent, writes it before this commit
        // (see `Slot::caller_answered`).
        tokio::task::yield_now().await;
        app.unrecorded.settled(job.id).await;
        if let Err(err) = app.store.mark_working(job.id).await {
            tracing::error!(job_id = %job.id, error = %err, "cannot mark a job working");
        }
        if job.has_webhook {
            app.webhooks.notify_one();
        }
        app.ui_changes.bump();
    }
}

/// The target is answering, so the model is loaded now; or, for a request that unloads it
/// (`keep_alive: 0`), gone once answered. Noted before the caller has the whole answer, so
/// a `ps` or `/queue` right after sees it.
fn note_residency(target: &Target, job: &ClaimedJob) {
    if residency::unloads(job.kind, &job.payload) {
        target.inventory.note_unloaded(&job.model);
    } else {
        target.inventory.note_ran(&job.model);
    }
}

/// A connection failure: the job is queued again, for any target that has its model (or
/// failed once it has used its attempts), and then the target counts as down: it takes no
/// job until it answers again. In that order, so whoever sees the target down sees the
/// job back in the queue; meanwhile this run still holds its slot, so the target cannot
/// be given the job again.
async fn retry(
    app: &App,
    target: &Target,
    job: &ClaimedJob,
    err: &TargetError,
) -> Option<foreman_types::JobState> {
    let again = Finish::Retry {
        error: format!("{err} (target {})", target.name),
        max_attempts: app.config.max_attempts,
    };
    let state = finish(app, job, again).await;
    target.inventory.mark_unreachable(err);
    state
}
