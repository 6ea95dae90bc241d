//! Cheap counts for `/metrics`: how many jobs are in each state, how many wait per model,
//! over the shared queue.

use foreman_types::JobState;

use super::{jobs_read, PgStore, Result};
use crate::store::common;

impl PgStore {
    /// Jobs per state, every state present (zero when none), in [`JobState::ALL`] order.
    pub(crate) async fn counts_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT state, count(*) FROM jobs GROUP BY state", &[])
            .await?;
        common::counts_by_state(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Queued jobs per model, most first.
    pub(crate) async fn queued_by_model(&self) -> Result<Vec<(String, u64)>> {
        let client = self.client().await?;
        jobs_read::queued_by_model(&client).await
    }
}
