//! Start-up recovery and the TTL pruner.

use super::replicas::rescue;
use super::{execute_cached, PgStore, Result};
use crate::store::common;
use crate::store::model::*;

/// Most rows one prune transaction deletes, so no transaction holds locks for long.
const PRUNE_BATCH: i64 = 1000;

impl PgStore {
    /// Start-up recovery: what this replica had in flight is put back (a fresh replica id
    /// owns nothing, but a store recovered where it claimed does), and the work of
    /// replicas that died before is taken over, as [`keep_alive`](Self::keep_alive) does.
    pub(crate) async fn recover(&self, max_attempts: u32) -> Result<Recovered> {
        self.heartbeat().await?;
        let mut out = {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let own = rescue(
                &tx,
                &self.options,
                &self.replica,
                max_attempts,
                common::RESTART_CANCELLED,
                common::RESTART_REQUEUED,
            )
            .await?;
            tx.commit().await?;
            own
        };
        out += self.keep_alive(max_attempts, Vec::new()).await?;
        Ok(out)
    }

    /// Deletes jobs that ended before `cutoff_ms`, with their artifacts and webhook
    /// records, and the rate log's entries older than its window. Returns how many jobs
    /// went.
    pub(crate) async fn prune(&self, cutoff_ms: i64) -> Result<usize> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM rate_log WHERE at_ms <= foreman_now_ms() - 60000",
                &[],
            )
            .await?;
        let mut total = 0;
        loop {
            let deleted = execute_cached(
                &client,
                "DELETE FROM jobs WHERE id IN (
                     SELECT id FROM jobs
                     WHERE state IN ('done', 'failed', 'cancelled') AND updated_at < $1
                     LIMIT $2)",
                &[&cutoff_ms, &PRUNE_BATCH],
            )
            .await?;
            total += usize::try_from(deleted).unwrap_or(usize::MAX);
            if deleted < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
