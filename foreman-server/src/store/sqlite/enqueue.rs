//! Adding a job to the queue.

use foreman_types::JobState;
use rusqlite::{params, OptionalExtension, Transaction};

use super::claim::{claim_chosen_in, claim_in};
use super::{
    events, fair_share, now_ms, within_savepoint, Durable, Result, SqliteStore, StoreError,
};
use crate::store::model::*;
use crate::store::{claim_or_log, Chosen, StoreOptions};

impl SqliteStore {
    /// Commits a new queued job, unless the queue is full. It belongs to no target until
    /// the worker claims it for one.
    pub(crate) async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let options = self.options.clone();
        self.write_deciding(move |tx| enqueue_in(tx, &options, job))
            .await
    }

    /// [`Self::enqueue`], then, if the job is new, the claim of the next job
    /// ([`Self::claim_next`]) in the same transaction: one commit instead of two when a
    /// target is free. A failed claim leaves the job queued.
    pub(crate) async fn enqueue_and_claim(
        &self,
        job: NewJob,
        claim: ClaimRequest,
    ) -> Result<(Enqueued, Option<ClaimedJob>)> {
        let options = self.options.clone();
        self.write_deciding(move |tx| {
            let (enqueued, durable) = enqueue_in(tx, &options, job)?;
            let claimed = match &enqueued {
                Enqueued::Created(_) => {
                    claim_or_log(within_savepoint(tx, || claim_in(tx, &options, &claim)))
                }
                Enqueued::Existing(_) => None,
            };
            Ok(((enqueued, claimed), durable))
        })
        .await
    }

    /// Adds `job` and claims it on `chosen`'s target in one transaction (ADR 30): the
    /// worker decided the claim, the queue being empty, and started the run meanwhile.
    pub(crate) async fn enqueue_claimed(&self, job: NewJob, chosen: Chosen) -> Result<Enqueued> {
        let options = self.options.clone();
        self.write_deciding(move |tx| {
            let (enqueued, durable) = enqueue_in(tx, &options, job)?;
            if let Enqueued::Created(_) = enqueued {
                if claim_chosen_in(tx, &options, chosen, now_ms())?.is_none() {
                    return Err(StoreError::Corrupt(
                        "a job just queued could not be claimed".into(),
                    ));
                }
            }
            Ok((enqueued, durable))
        })
        .await
    }
}

/// Adds `job` in `tx`; says how durable the commit must be before its caller hears.
fn enqueue_in(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    job: NewJob,
) -> Result<(Enqueued, Durable)> {
    // A sync job needs no more than this process's crash not to lose it: after any
    // crash its caller is gone and it is cancelled, never run (ADR 5, ADR 24).
    let durable = match job.origin {
        Origin::Sync => Durable::Process,
        Origin::Async => Durable::Disk,
    };
    {
        if let Some(key) = &job.idempotency_key {
            let earlier: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT id, request_hash FROM jobs WHERE idempotency_key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((id, hash)) = earlier {
                if hash != job.request_hash {
                    return Err(StoreError::IdempotencyConflict);
                }
                let id = id
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("bad job id {id:?}")))?;
                return Ok((Enqueued::Existing(id), Durable::Process));
            }
        }
        let queued: i64 = tx
            .prepare_cached("SELECT queued FROM queue_depth WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        if queued >= options.max_queue as i64 {
            return Err(StoreError::QueueFull);
        }
        super::tenant_limit::check(tx, &job.tenant, job.max_queued)?;
        let now = now_ms();
        fair_share::activate(tx, &job.tenant, job.weight)?;
        tx.prepare_cached(
            "INSERT INTO jobs (id, kind, origin, target, model, priority, state, attempts,
                                   payload, webhook_url, idempotency_key, request_hash,
                                   tenant_key, tenant_user, created_at, updated_at)
                 VALUES (?1, ?2, ?3, '', ?4, ?5, 'queued', 0, ?6, ?7, ?8, ?9, ?10, ?11,
                         ?12, ?12)",
        )?
        .execute(params![
            job.id.to_string(),
            job.kind.as_str(),
            job.origin.as_str(),
            job.model,
            job.priority,
            job.payload.as_ref(),
            job.webhook_url,
            job.idempotency_key,
            job.request_hash,
            job.tenant.key,
            job.tenant.user,
            now,
        ])?;
        events::record(tx, options, job.id, JobState::Queued, now)?;
        Ok((Enqueued::Created(job.id), durable))
    }
}
