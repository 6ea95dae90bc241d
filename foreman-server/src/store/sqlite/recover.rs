//! Start-up recovery and the TTL pruner.

use rusqlite::params;

use super::transition::finish_in;
use super::{Result, SqliteStore};
use crate::store::common::{self, parse_id};
use crate::store::model::*;

/// Most rows one prune transaction deletes, so the writer is never held for long.
const PRUNE_BATCH: i64 = 1000;

impl SqliteStore {
    /// Puts back what a crash interrupted: async jobs left `loading` or `working` go back
    /// to `queued` (the interrupted run counts as an attempt, so a job that crashes
    /// foreman every time ends `failed`); sync jobs are cancelled, since nobody is waiting.
    pub(crate) async fn recover(&self, max_attempts: u32) -> Result<Recovered> {
        let options = self.options.clone();
        self.write(move |tx| {
            let mut out = Recovered::default();
            let rows: Vec<(String, String, String)> = tx
                .prepare(
                    "SELECT id, origin, state FROM jobs
                     WHERE state IN ('loading', 'working')
                        OR (state = 'queued' AND origin = 'sync')",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, origin, state) in rows {
                let finish = common::recovery(
                    Origin::parse(&origin),
                    max_attempts,
                    common::RESTART_CANCELLED,
                    common::RESTART_REQUEUED,
                );
                let ended = finish_in(tx, &options, parse_id(&id)?, finish, &[state.as_str()])?;
                common::count_recovered(&mut out, ended.map(|ended| ended.state));
            }
            Ok(out)
        })
        .await
    }

    /// Deletes jobs that ended before `cutoff_ms`, with their artifacts and webhook
    /// records. Returns how many went.
    pub(crate) async fn prune(&self, cutoff_ms: i64) -> Result<usize> {
        let mut total = 0;
        loop {
            let deleted = self
                .write(move |tx| {
                    Ok(tx.execute(
                        "DELETE FROM jobs WHERE id IN (
                             SELECT id FROM jobs
                             WHERE state IN ('done', 'failed', 'cancelled') AND updated_at < ?1
                             LIMIT ?2)",
                        params![cutoff_ms, PRUNE_BATCH],
                    )?)
                })
                .await?;
            total += deleted;
            if (deleted as i64) < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }
}
