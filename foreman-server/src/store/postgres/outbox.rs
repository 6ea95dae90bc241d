//! The webhook outbox, drained by every replica: each due delivery is claimed by the
//! replica that takes it (`claimed_by`, until `claim_expires_at`), so two replicas never
//! deliver one event at once, and a claim lapses after the lease and one attempt's timeout,
//! should its replica die.

use std::time::Duration;

use super::{count, execute_cached, int, query_cached, query_one_cached, PgStore, Result};
use crate::store::common::{self, parse_id};
use crate::store::model::*;
use crate::store::now_ms;

impl PgStore {
    /// Deliveries due now, at most one per job (the oldest it has pending, so each job's
    /// events go out in state order), claimed for this replica.
    pub(crate) async fn due_deliveries(&self, limit: u32) -> Result<Vec<Delivery>> {
        let client = self.client().await?;
        let now = now_ms();
        // A job's next event is not due while an older one is pending, claimed or not.
        let rows = query_cached(
            &client,
            "UPDATE webhook_outbox SET claimed_by = $3, claim_expires_at = $1::BIGINT + $4::BIGINT
                 WHERE id IN (
                     SELECT o.id FROM webhook_outbox o
                     WHERE o.status = 'pending' AND o.next_attempt_at <= $1
                       AND (o.claimed_by IS NULL OR o.claim_expires_at < $1)
                       AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                                       WHERE p.job_id = o.job_id AND p.status = 'pending'
                                         AND p.id < o.id)
                     ORDER BY o.next_attempt_at, o.id LIMIT $2
                     FOR UPDATE OF o SKIP LOCKED)
                 RETURNING id, webhook_id, job_id, url, body, attempts, next_attempt_at",
            &[
                &now,
                &i64::from(limit),
                &self.replica.as_ref(),
                &self.delivery_claim_ms(),
            ],
        )
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for r in rows {
            let job_id: String = r.get(2);
            let next_attempt_at: i64 = r.get(6);
            let delivery = Delivery {
                outbox_id: r.get(0),
                webhook_id: r.get(1),
                job_id: parse_id(&job_id)?,
                url: r.get(3),
                body: r.get(4),
                attempts: count(r.get(5)),
            };
            due.push((next_attempt_at, delivery));
        }
        due.sort_by_key(|(at, d)| (*at, d.outbox_id));
        Ok(due.into_iter().map(|(_, d)| d).collect())
    }

    /// When the next pending delivery falls due (Unix ms), if any is pending; one another
    /// replica has claimed falls due for this one when the claim lapses.
    pub(crate) async fn next_delivery_at(&self) -> Result<Option<i64>> {
        let client = self.client().await?;
        Ok(query_one_cached(
            &client,
            "SELECT min(CASE WHEN o.claimed_by IS NOT NULL AND o.claim_expires_at >= $1
                                 THEN greatest(o.next_attempt_at, o.claim_expires_at)
                                 ELSE o.next_attempt_at END)
                 FROM webhook_outbox o
                 WHERE o.status = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                                   WHERE p.job_id = o.job_id AND p.status = 'pending'
                                     AND p.id < o.id)",
            &[&now_ms()],
        )
        .await?
        .get(0))
    }

    /// Records an attempt and gives up the claim; schedules the next attempt (waits
    /// doubling from `first_wait`) or gives up after `max_attempts`.
    pub(crate) async fn record_delivery(
        &self,
        delivery: &Delivery,
        outcome: DeliveryOutcome,
        max_attempts: u32,
        first_wait: Duration,
    ) -> Result<()> {
        let attempt = delivery.attempts + 1;
        let now = now_ms();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let latency_ms = i64::try_from(outcome.latency.as_millis()).unwrap_or(i64::MAX);
        execute_cached(
            &tx,
            "INSERT INTO webhook_attempts (outbox_id, attempt, status, latency_ms, error, at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (outbox_id, attempt) DO UPDATE
                 SET status = excluded.status, latency_ms = excluded.latency_ms,
                     error = excluded.error, at = excluded.at",
            &[
                &delivery.outbox_id,
                &int(attempt),
                &outcome.status.map(i32::from),
                &latency_ms,
                &outcome.error,
                &now,
            ],
        )
        .await?;
        let (status, next) =
            common::after_attempt(&outcome, attempt, max_attempts, first_wait, now);
        execute_cached(
            &tx,
            "UPDATE webhook_outbox
                 SET status = $2, attempts = $3, next_attempt_at = $4,
                     claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = $1",
            &[&delivery.outbox_id, &status, &int(attempt), &next],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
