//! The webhook outbox: deliveries due, and what each attempt did.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::{now_ms, Result, SqliteStore};
use crate::store::common::{self, parse_id};
use crate::store::model::*;

impl SqliteStore {
    /// Deliveries due now, at most one per job (the oldest it has pending), so each job's
    /// events go out in state order. Returned once what they announce is on the disk: an
    /// async job's end is answered before its sync (ADR 25), and must not be announced
    /// before it cannot come undone.
    pub(crate) async fn due_deliveries(&self, limit: u32) -> Result<Vec<Delivery>> {
        let due = self.read_due(limit).await?;
        if !due.is_empty() {
            self.writer.on_disk().await;
        }
        Ok(due)
    }

    /// The deliveries due now, whether or not they are on the disk yet.
    pub(super) async fn read_due(&self, limit: u32) -> Result<Vec<Delivery>> {
        self.read(move |conn| {
            let mut select = conn.prepare_cached(&due_sql(limit))?;
            let rows = select.query_map([now_ms()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (outbox_id, webhook_id, job_id, url, body, attempts) = row?;
                out.push(Delivery {
                    outbox_id,
                    webhook_id,
                    job_id: parse_id(&job_id)?,
                    url,
                    body,
                    attempts,
                });
            }
            Ok(out)
        })
        .await
    }

    /// When the next pending delivery falls due (Unix ms), if any is pending.
    pub(crate) async fn next_delivery_at(&self) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    // Only each job's oldest pending event can be due: a later one
                    // waits behind it, however early its own time.
                    "SELECT min(o.next_attempt_at) FROM webhook_outbox o
                     WHERE o.status = 'pending'
                       AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                                       WHERE p.job_id = o.job_id AND p.status = 'pending'
                                         AND p.id < o.id)",
                )?
                .query_row([], |r| r.get::<_, Option<i64>>(0))
                .optional()?
                .flatten())
        })
        .await
    }

    /// Records an attempt; schedules the next one (waits doubling from `first_wait`) or
    /// gives up after `max_attempts`.
    pub(crate) async fn record_delivery(
        &self,
        delivery: &Delivery,
        outcome: DeliveryOutcome,
        max_attempts: u32,
        first_wait: Duration,
    ) -> Result<()> {
        let outbox_id = delivery.outbox_id;
        let attempt = delivery.attempts + 1;
        self.write(move |tx| {
            let now = now_ms();
            tx.execute(
                "INSERT OR REPLACE INTO webhook_attempts
                     (outbox_id, attempt, status, latency_ms, error, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    outbox_id,
                    attempt,
                    outcome.status,
                    outcome.latency.as_millis() as i64,
                    outcome.error,
                    now
                ],
            )?;
            let (status, next) =
                common::after_attempt(&outcome, attempt, max_attempts, first_wait, now);
            tx.execute(
                "UPDATE webhook_outbox SET status = ?2, attempts = ?3, next_attempt_at = ?4
                 WHERE id = ?1",
                params![outbox_id, status, attempt, next],
            )?;
            Ok(())
        })
        .await
    }
}

/// The deliveries due at `?1`, at most `limit`. The limit is written into the SQL, not
/// bound: with `LIMIT ?2` beside the range on `?1`, SQLite recompiled the statement at
/// every new `?1` (its plan may depend on a bound value), so each wake of the webhook
/// dispatcher parsed and planned it again. `limit` is a number, so writing it in is safe.
fn due_sql(limit: u32) -> String {
    format!(
        "SELECT o.id, o.webhook_id, o.job_id, o.url, o.body, o.attempts
         FROM webhook_outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                           WHERE p.job_id = o.job_id AND p.status = 'pending'
                             AND p.id < o.id)
         ORDER BY o.next_attempt_at, o.id LIMIT {limit}"
    )
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    #[test]
    fn the_due_deliveries_are_read_without_recompiling_at_each_new_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foreman.db");
        drop(SqliteStore::open(&path, crate::store::harness::options(10)).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut select = conn.prepare(&due_sql(10)).unwrap();
        for now in [1_000_i64, 2_000, 3_000] {
            let rows = select.query_map([now], |r| r.get::<_, i64>(0)).unwrap();
            assert_eq!(rows.count(), 0);
        }
        assert_eq!(select.get_status(StatementStatus::RePrepare), 0);
    }
}
