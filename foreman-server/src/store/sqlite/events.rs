//! Webhook events, written to the outbox in the same transaction as the state change.

use foreman_types::{JobId, JobState};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{artifacts, Result, StoreOptions};
use crate::store::common::{self, EventFacts};

/// If the job has a webhook, adds the event announcing `state` to the outbox.
pub(super) fn record(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    id: JobId,
    state: JobState,
    now_ms: i64,
) -> Result<()> {
    // Runs on every state change, webhook or not: a cached statement, no re-parse.
    let row: Option<(Option<String>, EventFacts)> = tx
        .prepare_cached(
            "SELECT webhook_url, model, attempts, error, result FROM jobs WHERE id = ?1",
        )?
        .query_row([id.to_string()], |r| {
            let facts = EventFacts {
                model: r.get(1)?,
                attempts: r.get(2)?,
                error: r.get(3)?,
                result: r.get(4)?,
            };
            Ok((r.get(0)?, facts))
        })
        .optional()?;
    let Some((Some(url), facts)) = row else {
        return Ok(());
    };
    let artifacts = if common::event_wants_artifacts(state) {
        Some(artifacts::views(tx, &options.public_url, id)?)
    } else {
        None
    };
    let body = common::event_body(id, state, facts, artifacts, now_ms)?;
    tx.prepare_cached(
        "INSERT INTO webhook_outbox (webhook_id, job_id, state, url, body, timestamp,
                                     next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        common::new_webhook_id(),
        id.to_string(),
        state.as_str(),
        url,
        body,
        now_ms / 1000,
        now_ms,
    ])?;
    Ok(())
}
