//! Adding a job to the queue, and a key's `max_queued`.

use foreman_types::JobState;

use super::{
    events, execute_cached, fair_share, int, query_one_cached, query_opt_cached, PgStore, Result,
    Tx,
};
use crate::scheduler::Tenant;
use crate::store::common::{parse_id, EventFacts};
use crate::store::model::*;
use crate::store::{now_ms, StoreError};

impl PgStore {
    /// Commits a new queued job, unless the queue is full, and wakes every replica's
    /// dispatcher. A sync job is owned by this replica (its caller is connected here).
    pub(crate) async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        if let Some(key) = &job.idempotency_key {
            if let Some(earlier) = self.earlier(key, &job.request_hash).await? {
                return Ok(earlier);
            }
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A sync job belongs to this replica: not while its lease has lapsed, nor slipping
        // past a rescue of it that would never see the job.
        if job.origin == Origin::Sync && !self.hold_lease(&tx).await? {
            return Err(StoreError::LeaseLapsed);
        }
        // Locking the depth row makes concurrent admissions, on every replica, take turns:
        // FOREMAN_MAX_QUEUE and max_queued cannot be overshot.
        let queued: i64 = query_one_cached(
            &tx,
            "SELECT queued FROM queue_depth WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?
        .get(0);
        if queued >= i64::try_from(self.options.max_queue).unwrap_or(i64::MAX) {
            return Err(StoreError::QueueFull);
        }
        check_tenant_limit(&tx, &job.tenant, job.max_queued).await?;
        fair_share::activate(&tx, &job.tenant, job.weight).await?;
        let now = now_ms();
        let owner = (job.origin == Origin::Sync).then(|| self.replica.to_string());
        let inserted = execute_cached(
            &tx,
            "INSERT INTO jobs (id, kind, origin, target, model, priority, state, attempts,
                                   payload, webhook_url, idempotency_key, request_hash,
                                   tenant_key, tenant_user, created_at, updated_at, owner)
                 VALUES ($1, $2, $3, '', $4, $5, 'queued', 0, $6, $7, $8, $9, $10, $11,
                         $12, $12, $13)
                 ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
            &[
                &job.id.to_string(),
                &job.kind.as_str(),
                &job.origin.as_str(),
                &job.model,
                &job.priority,
                &job.payload.as_ref(),
                &job.webhook_url,
                &job.idempotency_key,
                &job.request_hash,
                &job.tenant.key,
                &job.tenant.user,
                &now,
                &owner,
            ],
        )
        .await?;
        if inserted == 0 {
            // Another replica committed the same idempotency key since we looked: its job
            // is the one (this transaction, with its tenant change, is rolled back).
            drop(tx);
            let key = job.idempotency_key.as_deref().unwrap_or_default();
            return self
                .earlier(key, &job.request_hash)
                .await?
                .ok_or_else(|| StoreError::Corrupt("an idempotency key vanished".into()));
        }
        let facts = EventFacts {
            model: job.model,
            attempts: 0,
            error: None,
            result: None,
        };
        let event = (job.webhook_url, facts);
        events::record(&tx, &self.options, job.id, JobState::Queued, event, now).await?;
        notify_work(&tx).await?;
        tx.commit().await?;
        Ok(Enqueued::Created(job.id))
    }

    /// The job an idempotency key already names: the same request's, or a conflict.
    async fn earlier(&self, key: &str, hash: &Option<String>) -> Result<Option<Enqueued>> {
        let client = self.client().await?;
        let Some(row) = query_opt_cached(
            &client,
            "SELECT id, request_hash FROM jobs WHERE idempotency_key = $1",
            &[&key],
        )
        .await?
        else {
            return Ok(None);
        };
        let (id, stored): (String, Option<String>) = (row.get(0), row.get(1));
        if &stored != hash {
            return Err(StoreError::IdempotencyConflict);
        }
        Ok(Some(Enqueued::Existing(parse_id(&id)?)))
    }
}

/// Refuses when `tenant` already has `limit` jobs queued (the `tenants` row the jobs
/// trigger keeps; no row means none queued).
async fn check_tenant_limit(tx: &Tx<'_>, tenant: &Tenant, limit: Option<u32>) -> Result<()> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let queued: Option<i32> = query_opt_cached(
        tx,
        "SELECT queued FROM tenants WHERE key_name = $1 AND end_user = $2",
        &[&tenant.key, &tenant.user],
    )
    .await?
    .map(|r| r.get(0));
    if queued.unwrap_or(0) >= int(limit) {
        return Err(StoreError::TenantQueueFull(limit));
    }
    Ok(())
}

/// Tells every replica's dispatcher there may be work: a job queued or a slot freed.
/// Sent when the transaction commits (and not at all if it rolls back).
pub(super) async fn notify_work(tx: &Tx<'_>) -> Result<()> {
    execute_cached(tx, "SELECT pg_notify('foreman_work', '')", &[]).await?;
    Ok(())
}
