//! Cheap counts for `/metrics`: how many jobs are in each state, how many wait per model.

use foreman_types::JobState;
use rusqlite::Connection;

use super::{Result, SqliteStore};
use crate::store::common;

impl SqliteStore {
    /// Jobs per state, every state present (zero when none), in [`JobState::ALL`] order.
    ///
    /// One `GROUP BY` over the `(state, id)` index: it counts index entries, never rows.
    pub(crate) async fn counts_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        self.read(|conn| {
            let mut select =
                conn.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
            let rows = select
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            common::counts_by_state(rows)
        })
        .await
    }

    /// Queued jobs per model, most first.
    pub(crate) async fn queued_by_model(&self) -> Result<Vec<(String, u64)>> {
        self.read(queued_by_model).await
    }
}

/// Queued jobs per model, most first: summed over the trigger-kept `queue_groups` (one row
/// per priority, tenant and model that has a queued job), so the cost follows how many
/// groups there are, not how many jobs wait. Counting the queue's index instead cost a
/// `GET /queue` a walk over every queued job.
pub(super) fn queued_by_model(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut select = conn.prepare_cached(
        "SELECT model, sum(queued) AS n FROM queue_groups
         GROUP BY model ORDER BY n DESC, model",
    )?;
    let rows = select.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
