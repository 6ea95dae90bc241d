//! A sync job alone in the queue starts before its row is committed (ADR 30): the worker
//! decides the claim itself and commits it while the target already has the request.

use super::start;
use crate::state::App;
use crate::store::{Chosen, ClaimRequest, ClaimedJob, Enqueued, NewJob, Origin};

/// Where a sync job runs when the queue holds nothing else, as the scheduler would choose
/// for a queue of one: then the run may start before the job's row is committed (ADR 30).
/// `None` with a shared queue, which another replica may have added to, or when the
/// queue may hold a job (the last commit left one there).
pub(super) fn alone(app: &App, job: &NewJob, request: &ClaimRequest) -> Option<Chosen> {
    let alone = job.origin == Origin::Sync
        && job.idempotency_key.is_none()
        && !app.store.is_shared()
        && !app.store.may_have_queued();
    alone
        .then(|| crate::store::decide_alone(job, request, crate::store::now_ms()))
        .flatten()
}

/// Starts `job`'s run on `chosen`'s target at once, and commits the job, queued and
/// claimed there, meanwhile (ADR 30): the target hears of the request while the commit
/// is under way, and the caller does not wait for it. The run's writes wait for it
/// ([`super::Unrecorded`]); if it failed, they find no job and fail, and the caller is answered
/// all the same.
pub(super) fn start_before_recorded(
    app: &App,
    job: NewJob,
    chosen: Chosen,
    claiming: tokio::sync::OwnedMutexGuard<()>,
) -> Enqueued {
    let id = job.id;
    let claimed = ClaimedJob {
        id,
        state: chosen.state(),
        target: chosen.target.clone(),
        kind: job.kind,
        origin: job.origin,
        model: job.model.clone(),
        payload: job.payload.clone(),
        attempts: 1,
        created_at_ms: chosen.created_at,
        tenant: job.tenant.clone(),
        has_webhook: false,
    };
    let settling = app.unrecorded.begin(id);
    start(app, claimed);
    let app = app.clone();
    // In a task of its own, which a caller hanging up cannot drop before the commit.
    tokio::spawn(async move {
        // The run first, so that its request is on its way before this thread commits
        // (an idle writer's caller commits on its own thread, ADR 29): one turn for the
        // run to hand its request to the target connection's task, one for that task to
        // write it. With one turn, a commit after some seconds of quiet (caches cold, a
        // few hundred microseconds) held up the write: 0.6 ms to reach the target
        // instead of 0.16.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let error = match app.store.enqueue_claimed(job, chosen).await {
            Ok(Enqueued::Created(_)) => None,
            Ok(Enqueued::Existing(earlier)) => Some(format!("recorded as job {earlier}")),
            Err(err) => Some(err.to_string()),
        };
        if let Some(error) = error {
            tracing::error!(job_id = %id, error = %error, "cannot record a sync job that has started");
        }
        drop(settling);
        drop(claiming);
    });
    Enqueued::Created(id)
}
