//! The status page's samples (`ui_samples`): one row, the last hour's as JSON, replaced
//! whole. The store does not read the body; `ui::history` encodes and decodes it.

use rusqlite::OptionalExtension;

use super::{now_ms, Durable, Result, SqliteStore};

impl SqliteStore {
    /// Replaces the saved samples with `body`.
    pub(crate) async fn save_ui_samples(&self, body: String) -> Result<()> {
        let saved_at = now_ms();
        let op = move |tx: &rusqlite::Transaction<'_>| -> Result<()> {
            tx.execute(
                "INSERT INTO ui_samples (id, body, saved_at) VALUES (1, ?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, saved_at = excluded.saved_at",
                rusqlite::params![body, saved_at],
            )?;
            Ok(())
        };
        // The plots can lose their last minute with the machine.
        self.write_deciding(move |tx| Ok((op(tx)?, Durable::Process)))
            .await
    }

    /// The saved samples, if any were saved.
    pub(crate) async fn load_ui_samples(&self) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT body FROM ui_samples WHERE id = 1", [], |r| r.get(0))
                .optional()?)
        })
        .await
    }
}
