//! Replicas' leases and the rescue of dead replicas' work (ADR 23).
//!
//! Each replica's row in `replicas` says until when it is alive; it renews it every third
//! of the lease. A row past its expiry is a dead replica's: the first live replica to lock
//! it (`FOR UPDATE SKIP LOCKED`, so exactly one does) takes over its work in one
//! transaction and deletes it.

use super::enqueue::notify_work;
use super::transition::finish_in;
use super::{PgStore, Result, Tx};
use crate::store::common::{self, parse_id};
use crate::store::model::*;
use crate::store::StoreOptions;

/// Why a dead replica's sync job was cancelled.
const SYNC_LOST: &str = "the replica holding the caller's connection stopped";

impl PgStore {
    /// Renews this replica's lease: alive until now + `FOREMAN_LEASE` by the database's
    /// clock.
    pub(super) async fn heartbeat(&self) -> Result<()> {
        let client = self.client().await?;
        let upsert = client
            .prepare_cached(
                "INSERT INTO replicas (id, expires_at) VALUES ($1, foreman_now_ms() + $2)
                 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .await?;
        client
            .execute(&upsert, &[&self.replica.as_ref(), &self.lease_ms()])
            .await?;
        Ok(())
    }

    /// Renews this replica's lease, then takes over the work of every replica whose lease
    /// has lapsed, one transaction each.
    pub(crate) async fn keep_alive(&self, max_attempts: u32) -> Result<Recovered> {
        self.heartbeat().await?;
        let mut out = Recovered::default();
        loop {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
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
    // Its jobs are locked before its slots, as a run's end locks them.
    let jobs = tx
        .query(
            "SELECT id, origin, state FROM jobs
             WHERE owner = $1 AND (state IN ('loading', 'working')
                                   OR (state = 'queued' AND origin = 'sync'))
             ORDER BY id FOR UPDATE",
            &[&owner],
        )
        .await?;
    let freed = tx
        .execute(
            "UPDATE target_slots SET holder = NULL, job_id = NULL WHERE holder = $1",
            &[&owner],
        )
        .await?;
    tx.execute(
        "UPDATE webhook_outbox SET claimed_by = NULL, claim_expires_at = NULL
         WHERE claimed_by = $1",
        &[&owner],
    )
    .await?;
    let mut out = Recovered::default();
    for row in &jobs {
        let (id, origin, state): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let origin = Origin::parse(&origin);
        let finish = common::recovery(origin, max_attempts, sync_reason, async_error);
        let ended = finish_in(tx, options, parse_id(&id)?, finish, &[state.as_str()], None).await?;
        common::count_recovered(&mut out, ended);
    }
    if freed > 0 || out.requeued > 0 {
        notify_work(tx).await?;
    }
    Ok(out)
}
