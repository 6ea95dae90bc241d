//! The status page's samples (`ui_samples`): one row, the last hour's as JSON, replaced
//! whole. The store does not read the body; `ui::history` encodes and decodes it.

use super::PgStore;
use crate::store::{now_ms, Result};

impl PgStore {
    /// Replaces the saved samples with `body`.
    pub(crate) async fn save_ui_samples(&self, body: String) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO ui_samples (id, body, saved_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, saved_at = excluded.saved_at",
                &[&body, &now_ms()],
            )
            .await?;
        Ok(())
    }

    /// The saved samples, if any were saved.
    pub(crate) async fn load_ui_samples(&self) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT body FROM ui_samples WHERE id = 1", &[])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}
