//! Webhook events, written to the outbox in the same transaction as the state change.
//!
//! The statements that change a job return [`EVENT_COLUMNS`], so writing the event costs
//! no read of the job, and nothing at all for a job without a webhook.

use foreman_types::{JobId, JobState};
use tokio_postgres::Row;

use super::{artifacts, count, execute_cached, Result, Tx};
use crate::store::common::{self, EventFacts};
use crate::store::StoreOptions;

/// The job's columns an event needs, for a `RETURNING` clause; read back by [`facts`].
pub(super) const EVENT_COLUMNS: &str = "webhook_url, model, attempts, error, result";

/// The job's webhook URL and what its event says, from [`EVENT_COLUMNS`] starting at
/// column `at` of `row`.
pub(super) fn facts(row: &Row, at: usize) -> (Option<String>, EventFacts) {
    let facts = EventFacts {
        model: row.get(at + 1),
        attempts: count(row.get(at + 2)),
        error: row.get(at + 3),
        result: row.get(at + 4),
    };
    (row.get(at), facts)
}

/// If the job has a webhook (`url`), adds the event announcing `state` to the outbox.
pub(super) async fn record(
    tx: &Tx<'_>,
    options: &StoreOptions,
    id: JobId,
    state: JobState,
    (url, facts): (Option<String>, EventFacts),
    now_ms: i64,
) -> Result<()> {
    let Some(url) = url else {
        return Ok(());
    };
    let artifacts = if common::event_wants_artifacts(state) {
        Some(artifacts::views(tx, &options.public_url, id).await?)
    } else {
        None
    };
    let body = common::event_body(id, state, facts, artifacts, now_ms)?;
    execute_cached(
        tx,
        "INSERT INTO webhook_outbox (webhook_id, job_id, state, url, body, timestamp,
                                         next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &common::new_webhook_id(),
            &id.to_string(),
            &state.as_str(),
            &url,
            &body,
            &(now_ms / 1000),
            &now_ms,
        ],
    )
    .await?;
    Ok(())
}
