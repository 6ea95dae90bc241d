//! Replicas' leases and the rescue of dead replicas' work (ADR 23).
//!
//! Each replica's row in `replicas` says until when it is alive; it renews it every third
//! of the lease. A row past its expiry is a dead replica's: the first live replica to lock
//! it (`FOR UPDATE SKIP LOCKED`, so exactly one does) takes over its work in one
//! transaction and deletes it.

use super::enqueue::notify_work;
use super::transition::finish_in;
use foreman_types::JobId;

use super::{execute_cached, PgStore, Result, Tx};
use crate::store::common::{self, parse_id};
use crate::store::model::*;
use crate::store::{now_ms, StoreError, StoreOptions};

/// Why a dead replica's sync job was cancelled.
const SYNC_LOST: &str = "the replica holding the caller's connection stopped";

impl PgStore {
    /// Registers this replica, or renews its lease whatever state it is in: alive until
    /// now + `FOREMAN_LEASE` by the database's clock. For start-up, when it owns nothing
    /// yet.
    pub(super) async fn heartbeat(&self) -> Result<()> {
        let client = self.client().await?;
        execute_cached(
            &client,
            "INSERT INTO replicas (id, expires_at) VALUES ($1, foreman_now_ms() + $2)
                 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            &[&self.replica.as_ref(), &self.lease_ms()],
        )
        .await?;
        Ok(())
    }

    /// Renews this replica's lease only while it has not lapsed. A lapsed lease means
    /// another replica may be taking this one's work over (or has): this replica gives up
    /// everything it held first, as that rescue would, then registers afresh and says
    /// [`StoreError::LeaseLapsed`], so its runs stop (ADR 23).
    async fn renew(&self, max_attempts: u32) -> Result<()> {
        let client = self.client().await?;
        let me: &str = &self.replica;
        if execute_cached(
            &client,
            "UPDATE replicas SET expires_at = foreman_now_ms() + $2
                 WHERE id = $1 AND expires_at >= foreman_now_ms()",
            &[&me, &self.lease_ms()],
        )
        .await?
            == 1
        {
            return Ok(());
        }
        drop(client);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Whoever is rescuing this replica right now finishes first.
        tx.execute("SELECT 1 FROM replicas WHERE id = $1 FOR UPDATE", &[&me])
            .await?;
        let lost = "this replica's lease lapsed while it ran the job".to_owned();
        rescue(&tx, &self.options, me, max_attempts, SYNC_LOST, &lost).await?;
        tx.execute(
            "INSERT INTO replicas (id, expires_at) VALUES ($1, foreman_now_ms() + $2)
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            &[&me, &self.lease_ms()],
        )
        .await?;
        tx.commit().await?;
        tracing::error!("this replica's lease had lapsed: it gave its work back and renewed");
        Err(StoreError::LeaseLapsed)
    }

    /// Gives back the jobs the database says this replica runs but it does not (`running`
    /// is what it does run), once they are a lease old: a run whose end could not be
    /// written, or a claim whose answer was lost. Their slots are freed.
    async fn sweep_orphans(&self, running: &[JobId], max_attempts: u32) -> Result<Recovered> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let running: Vec<String> = running.iter().map(ToString::to_string).collect();
        let me: &str = &self.replica;
        let stale = now_ms() - self.lease_ms();
        // Their slots, then the jobs, in the lock order of a run's end.
        tx.execute(
            "SELECT 1 FROM target_slots s JOIN jobs j ON j.id = s.job_id
             WHERE s.holder = $1 AND j.owner = $1 AND j.state IN ('loading', 'working')
               AND j.id <> ALL($2) AND j.updated_at < $3
             FOR UPDATE OF s",
            &[&me, &running, &stale],
        )
        .await?;
        let orphans = tx
            .query(
                "SELECT id, origin, state FROM jobs
                 WHERE owner = $1 AND state IN ('loading', 'working')
                   AND id <> ALL($2) AND updated_at < $3
                 ORDER BY id FOR UPDATE SKIP LOCKED",
                &[&me, &running, &stale],
            )
            .await?;
        let ids: Vec<String> = orphans.iter().map(|row| row.get(0)).collect();
        tx.execute(
            "UPDATE target_slots SET holder = NULL, job_id = NULL
             WHERE holder = $1 AND job_id = ANY($2)",
            &[&me, &ids],
        )
        .await?;
        let lost = "its run's end was never recorded";
        let out = end_lost(&tx, &self.options, &orphans, max_attempts, SYNC_LOST, lost).await?;
        if !orphans.is_empty() {
            notify_work(&tx).await?;
            tracing::warn!(
                jobs = orphans.len(),
                "gave back runs this replica no longer had"
            );
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Renews this replica's lease, then takes over the work of every replica whose lease
    /// has lapsed, one transaction each.
    pub(crate) async fn keep_alive(
        &self,
        max_attempts: u32,
        running: Vec<JobId>,
    ) -> Result<Recovered> {
        self.renew(max_attempts).await?;
        let mut out = self.sweep_orphans(&running, max_attempts).await?;
        loop {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // A rescue never waits long on a row a paused replica holds.
            tx.execute("SET LOCAL lock_timeout = '2s'", &[]).await?;
            let dead = tx
                .query_opt(
                    "SELECT id FROM replicas WHERE expires_at < foreman_now_ms() AND id <> $1
                     ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[&self.replica.as_ref()],
                )
                .await?;
            let Some(dead) = dead else {
                return Ok(out);
            };
            let dead: String = dead.get(0);
            let lost = format!("the replica running it ({dead}) stopped");
            let rescued = rescue(&tx, &self.options, &dead, max_attempts, SYNC_LOST, &lost).await?;
            tx.execute("DELETE FROM replicas WHERE id = $1", &[&dead])
                .await?;
            tx.commit().await?;
            tracing::warn!(
                replica = %dead,
                requeued = rescued.requeued,
                failed = rescued.failed,
                cancelled = rescued.cancelled,
                "took over the work of a replica whose lease lapsed"
            );
            out += rescued;
        }
    }
}

/// Ends what replica `owner` had in flight, as start-up recovery does for one process:
/// its running async jobs are queued again (the run counted as an attempt at its claim;
/// failed past `max_attempts`, with `async_error`), its sync jobs, queued or running, are
/// cancelled with `sync_reason` (their callers were connected to it). Its target slots and
/// webhook claims are freed. As with SQLite's recovery the lost run's GPU time is not
/// charged: how long it ran before the replica died is not known.
pub(super) async fn rescue(
    tx: &Tx<'_>,
    options: &StoreOptions,
    owner: &str,
    max_attempts: u32,
    sync_reason: &str,
    async_error: &str,
) -> Result<Recovered> {
    // Its slots are freed (and so locked) before its jobs are locked, in the order a
    // run's end takes them.
    let freed = tx
        .execute(
            "UPDATE target_slots SET holder = NULL, job_id = NULL WHERE holder = $1",
            &[&owner],
        )
        .await?;
    let jobs = tx
        .query(
            "SELECT id, origin, state FROM jobs
             WHERE owner = $1 AND (state IN ('loading', 'working')
                                   OR (state = 'queued' AND origin = 'sync'))
             ORDER BY id FOR UPDATE",
            &[&owner],
        )
        .await?;
    tx.execute(
        "UPDATE webhook_outbox SET claimed_by = NULL, claim_expires_at = NULL
         WHERE claimed_by = $1",
        &[&owner],
    )
    .await?;
    let out = end_lost(tx, options, &jobs, max_attempts, sync_reason, async_error).await?;
    if freed > 0 || out.requeued > 0 {
        notify_work(tx).await?;
    }
    Ok(out)
}

/// Ends each of `jobs` (rows of id, origin, state, locked) whose run was lost, as start-up
/// recovery does: async jobs back to the queue (failed past `max_attempts`, with
/// `async_error`), sync jobs cancelled with `sync_reason`.
async fn end_lost(
    tx: &Tx<'_>,
    options: &StoreOptions,
    jobs: &[tokio_postgres::Row],
    max_attempts: u32,
    sync_reason: &str,
    async_error: &str,
) -> Result<Recovered> {
    let mut out = Recovered::default();
    for row in jobs {
        let (id, origin, state): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let origin = Origin::parse(&origin);
        let finish = common::recovery(origin, max_attempts, sync_reason, async_error);
        let ended = finish_in(tx, options, parse_id(&id)?, finish, &[state.as_str()], None).await?;
        common::count_recovered(&mut out, ended);
    }
    Ok(out)
}
