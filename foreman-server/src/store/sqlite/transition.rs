//! Moving a job between states, compare-and-set, with its webhook event in the same
//! transaction.

use foreman_types::{JobId, JobState};
use rusqlite::{params, OptionalExtension, Transaction};

use super::artifacts;
use super::claim::claim_in;
use super::usage;
use super::{
    events, fair_share, now_ms, within_savepoint, Durable, Result, SqliteStore, StoreOptions,
};
use crate::store::claim_or_log;
use crate::store::common::Ending;
use crate::store::model::*;

impl SqliteStore {
    /// Moves a `loading` job to `working` (the target started answering).
    pub(crate) async fn mark_working(&self, id: JobId) -> Result<bool> {
        let options = self.options.clone();
        let op = move |tx: &rusqlite::Transaction<'_>| -> Result<bool> {
            let now = now_ms();
            let changed = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'working', updated_at = ?2
                     WHERE id = ?1 AND state = 'loading'",
                )?
                .execute(params![id.to_string(), now])?;
            if changed == 1 {
                events::record(tx, &options, id, JobState::Working, now)?;
            }
            Ok(changed == 1)
        };
        // Losing it with the machine changes nothing: the run restarts anyway (ADR 24).
        self.write_deciding(move |tx| Ok((op(tx)?, Durable::Process)))
            .await
    }

    /// Ends a run of a job that is `loading` or `working`, with what the target reported
    /// about the run for usage; `None` when the job was no longer running.
    pub(crate) async fn finish_reporting(
        &self,
        id: JobId,
        finish: Finish,
        reported: Reported,
    ) -> Result<Option<JobState>> {
        let options = self.options.clone();
        self.write_deciding(move |tx| finish_reporting_in(tx, &options, id, finish, reported))
            .await
    }

    /// [`Self::finish_reporting`], then, if the run ended, the claim of the next job
    /// ([`Self::claim_next`]) in the same transaction. A failed claim claims nothing.
    pub(crate) async fn finish_and_claim(
        &self,
        id: JobId,
        finish: Finish,
        reported: Reported,
        claim: ClaimRequest,
    ) -> Result<(Option<JobState>, Option<ClaimedJob>)> {
        let options = self.options.clone();
        self.write_deciding(move |tx| {
            let (ended, durable) = finish_reporting_in(tx, &options, id, finish, reported)?;
            let claimed = match ended {
                Some(_) => claim_or_log(within_savepoint(tx, || claim_in(tx, &options, &claim))),
                None => None,
            };
            Ok(((ended, claimed), durable))
        })
        .await
    }

    /// Cancels a job that has not ended. Returns the state it was in, or `None` when it
    /// had already ended.
    pub(crate) async fn cancel(&self, id: JobId, reason: String) -> Result<Option<JobState>> {
        let options = self.options.clone();
        self.write(move |tx| {
            let before: Option<String> = tx
                .query_row(
                    "SELECT state FROM jobs WHERE id = ?1",
                    [id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(before) = before.and_then(|s| s.parse::<JobState>().ok()) else {
                return Ok(None);
            };
            if before.is_terminal() {
                return Ok(None);
            }
            let ended = finish_in(
                tx,
                &options,
                id,
                Finish::Cancelled { reason },
                &[before.as_str()],
            )?;
            if ended.is_some() && matches!(before, JobState::Loading | JobState::Working) {
                // The worker's answer for this run will find the job ended: its GPU time
                // is counted here (the tokens of a cut-off run were never reported).
                let now = now_ms();
                usage::record(tx, id, &Reported::default(), now)?;
                fair_share::settle_run(tx, id, now)?;
            }
            Ok(ended.map(|_| before))
        })
        .await
    }

    /// Cancels the job only while it is still queued (its caller left before its turn).
    pub(crate) async fn cancel_if_queued(&self, id: JobId, reason: String) -> Result<bool> {
        let options = self.options.clone();
        let op = move |tx: &rusqlite::Transaction<'_>| -> Result<bool> {
            let ended = finish_in(tx, &options, id, Finish::Cancelled { reason }, &["queued"])?;
            Ok(ended.is_some())
        };
        // A caller that left before its job's turn: after a crash its job would be
        // cancelled anyway.
        self.write_deciding(move |tx| Ok((op(tx)?, Durable::Process)))
            .await
    }
}

/// [`SqliteStore::finish_reporting`] in `tx`; says how durable its commit must be.
fn finish_reporting_in(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    id: JobId,
    finish: Finish,
    reported: Reported,
) -> Result<(Option<JobState>, Durable)> {
    let Some(ended) = finish_in(tx, options, id, finish, &["loading", "working"])? else {
        return Ok((None, Durable::Process));
    };
    let now = now_ms();
    usage::record(tx, id, &reported, now)?;
    fair_share::settle_run(tx, id, now)?;
    // An async job's end is announced by webhook and read back later: it must not come
    // undone once announced, so it is synced at once, and the webhook dispatcher waits
    // for that sync; its run need not (ADR 25). A sync job's caller has its answer
    // already (ADR 24).
    let durable = match ended.origin {
        Origin::Sync => Durable::Process,
        Origin::Async => Durable::Soon,
    };
    Ok((Some(ended.state), durable))
}

/// A job that [`finish_in`] ended: its new state, and whose it was.
pub(super) struct Ended {
    pub(super) state: JobState,
    pub(super) origin: Origin,
}

/// Applies `finish` if the job is in one of `from`; returns the new state.
pub(super) fn finish_in(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    id: JobId,
    finish: Finish,
    from: &[&str],
) -> Result<Option<Ended>> {
    let now = now_ms();
    let key = id.to_string();
    let current: Option<(String, u32, String)> = tx
        .prepare_cached("SELECT state, attempts, origin FROM jobs WHERE id = ?1")?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((current, attempts, origin)) = current else {
        return Ok(None);
    };
    if !from.contains(&current.as_str()) {
        return Ok(None);
    }
    let ending = Ending::of(finish, attempts);
    artifacts::insert(tx, id, &ending.artifacts, now)?;
    // Compare-and-set on the state read above, so a concurrent change wins cleanly. A job
    // queued again belongs to no target until it is claimed again (maybe elsewhere).
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET state = ?2, error = ?3, result = coalesce(?4, result),
                             attempts = ?5, updated_at = ?6,
                             target = CASE WHEN ?2 = 'queued' THEN '' ELSE target END
             WHERE id = ?1 AND state = ?7",
        )?
        .execute(params![
            key,
            ending.state.as_str(),
            ending.error,
            ending.result,
            ending.attempts,
            now,
            current
        ])?;
    if changed == 0 {
        return Ok(None);
    }
    events::record(tx, options, id, ending.state, now)?;
    Ok(Some(Ended {
        state: ending.state,
        origin: Origin::parse(&origin),
    }))
}
