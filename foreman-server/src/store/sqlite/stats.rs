//! Cheap counts for `/metrics`: how many jobs are in each state, how many wait per model.

use foreman_types::JobState;

use super::{Result, SqliteStore, StoreError};

impl SqliteStore {
    /// Jobs per state, every state present (zero when none), in [`JobState::ALL`] order.
    ///
    /// One `GROUP BY` over the `(state, id)` index: it counts index entries, never rows.
    pub(crate) async fn counts_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        self.read(|conn| {
            let mut counts: Vec<(JobState, u64)> =
                JobState::ALL.iter().map(|state| (*state, 0)).collect();
            let mut select =
                conn.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
            let rows =
                select.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                let state: JobState = state
                    .parse()
                    .map_err(|err| StoreError::Corrupt(format!("{err}")))?;
                if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
                    slot.1 = n.max(0) as u64;
                }
            }
            Ok(counts)
        })
        .await
    }

    /// Queued jobs per model, most first; read from the queue's partial index.
    pub(crate) async fn queued_by_model(&self) -> Result<Vec<(String, u64)>> {
        self.read(|conn| {
            let mut select = conn.prepare_cached(
                "SELECT model, count(*) AS n FROM jobs WHERE state = 'queued'
                 GROUP BY model ORDER BY n DESC, model",
            )?;
            let rows = select.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
