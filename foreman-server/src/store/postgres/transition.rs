//! Moving a job between states, compare-and-set, with its webhook event in the same
//! transaction; a run's end frees its target slot and wakes the replicas.

use foreman_types::{JobId, JobState};

use super::enqueue::notify_work;
use super::{
    artifacts, events, execute_cached, fair_share, int, query_opt_cached, usage, PgStore, Result,
    Tx,
};
use crate::store::common::Ending;
use crate::store::model::*;
use crate::store::{now_ms, StoreOptions};

/// The states of a running job.
const RUNNING: &[&str] = &["loading", "working"];

impl PgStore {
    /// Moves a `loading` job to `working` (the target started answering).
    pub(crate) async fn mark_working(&self, id: JobId) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        let replica: &str = &self.replica;
        let Some(row) = query_opt_cached(
            &tx,
            &format!(
                "UPDATE jobs SET state = 'working', updated_at = $2
                 WHERE id = $1 AND state = 'loading' AND owner = $3 RETURNING {}",
                events::EVENT_COLUMNS
            ),
            &[&id.to_string(), &now, &replica],
        )
        .await?
        else {
            return Ok(false);
        };
        let event = events::facts(&row, 0);
        events::record(&tx, &self.options, id, JobState::Working, event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a run of a job that is `loading` or `working`, with what the target reported
    /// about the run for usage; `None` when the job was no longer running.
    pub(crate) async fn finish_reporting(
        &self,
        id: JobId,
        finish: Finish,
        reported: Reported,
    ) -> Result<Option<JobState>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The slot first, then the job, as a claim takes them: two transactions never
        // wait on each other's rows. The run has stopped, so its slot is free now,
        // whatever happened to the job meanwhile (a cancel elsewhere leaves the slot to
        // this moment).
        let replica: &str = &self.replica;
        let freed = execute_cached(
            &tx,
            "UPDATE target_slots SET holder = NULL, job_id = NULL
                 WHERE job_id = $1 AND holder = $2",
            &[&id.to_string(), &replica],
        )
        .await?;
        // Only this replica's run: after a lapsed lease the job may have been taken over.
        let ended = finish_in(&tx, &self.options, id, finish, RUNNING, Some(&self.replica)).await?;
        if ended.is_some() {
            end_run(&tx, id, &reported).await?;
        } else if freed > 0 {
            notify_work(&tx).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Cancels a job that has not ended. Returns the state it was in, or `None` when it
    /// had already ended. A run on another replica is stopped there (`foreman_cancel`).
    pub(crate) async fn cancel(&self, id: JobId, reason: String) -> Result<Option<JobState>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = query_opt_cached(
            &tx,
            "SELECT state, owner FROM jobs WHERE id = $1 FOR UPDATE",
            &[&id.to_string()],
        )
        .await?
        else {
            return Ok(None);
        };
        let (before, owner): (String, Option<String>) = (row.get(0), row.get(1));
        let Ok(before) = before.parse::<JobState>() else {
            return Ok(None);
        };
        if before.is_terminal() {
            return Ok(None);
        }
        let finish = Finish::Cancelled { reason };
        let ended = finish_in(&tx, &self.options, id, finish, &[before.as_str()], None).await?;
        let running = matches!(before, JobState::Loading | JobState::Working);
        if ended.is_some() && running {
            // The worker's answer for this run will find the job ended: its GPU time is
            // counted here (the tokens of a cut-off run were never reported). Its slot
            // stays taken until that run has stopped and its replica says so.
            let now = now_ms();
            usage::record(&tx, id, &Reported::default(), now).await?;
            fair_share::settle_run(&tx, id, now).await?;
        }
        // The run, or the waiting sync caller, is on the replica that owns the job: tell it.
        if ended.is_some() {
            if let Some(owner) = owner.filter(|owner| owner.as_str() != &*self.replica) {
                execute_cached(
                    &tx,
                    "SELECT pg_notify('foreman_cancel', $1)",
                    &[&format!("{owner} {id}")],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(ended.map(|_| before))
    }

    /// Cancels the job only while it is still queued (its caller left before its turn).
    pub(crate) async fn cancel_if_queued(&self, id: JobId, reason: String) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let finish = Finish::Cancelled { reason };
        let ended = finish_in(&tx, &self.options, id, finish, &["queued"], None).await?;
        tx.commit().await?;
        Ok(ended.is_some())
    }
}

/// What ending a run adds besides the state: its usage and its fair-share charge, and a
/// wake-up for the slot it freed.
async fn end_run(tx: &Tx<'_>, id: JobId, reported: &Reported) -> Result<()> {
    let now = now_ms();
    usage::record(tx, id, reported, now).await?;
    fair_share::settle_run(tx, id, now).await?;
    notify_work(tx).await
}

/// Applies `finish` if the job is in one of `from` (and, with `owner`, claimed by that
/// replica); returns the new state. Target slots are the caller's business: a slot is
/// freed when the run in it has stopped, by its replica or by the rescue of a dead one.
pub(super) async fn finish_in(
    tx: &Tx<'_>,
    options: &StoreOptions,
    id: JobId,
    finish: Finish,
    from: &[&str],
    owner: Option<&str>,
) -> Result<Option<JobState>> {
    let now = now_ms();
    let key = id.to_string();
    let Some(row) = query_opt_cached(
        tx,
        "SELECT state, attempts, owner FROM jobs WHERE id = $1 FOR UPDATE",
        &[&key],
    )
    .await?
    else {
        return Ok(None);
    };
    let (current, attempts, claimed_by): (String, i32, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    if !from.contains(&current.as_str()) {
        return Ok(None);
    }
    if owner.is_some_and(|owner| claimed_by.as_deref() != Some(owner)) {
        return Ok(None);
    }
    let ending = Ending::of(finish, super::count(attempts));
    artifacts::insert(tx, id, &ending.artifacts, now).await?;
    // A job queued again belongs to no target and no replica until it is claimed again
    // (maybe elsewhere); a sync job stays with the replica its caller is connected to.
    let row = query_opt_cached(
        tx,
        &format!(
            "UPDATE jobs SET state = $2, error = $3, result = coalesce($4, result),
                             attempts = $5, updated_at = $6,
                             target = CASE WHEN $2 = 'queued' THEN '' ELSE target END,
                             owner = CASE WHEN $2 = 'queued' AND origin = 'async'
                                          THEN NULL ELSE owner END
             WHERE id = $1 AND state = $7
             RETURNING {}",
            events::EVENT_COLUMNS
        ),
        &[
            &key,
            &ending.state.as_str(),
            &ending.error,
            &ending.result,
            &int(ending.attempts),
            &now,
            &current,
        ],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let event = events::facts(&row, 0);
    events::record(tx, options, id, ending.state, event, now).await?;
    Ok(Some(ending.state))
}
