//! Webhook events, written to the outbox in the same transaction as the state change.

use foreman_types::{JobId, JobState, WebhookEvent};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{artifacts, Result, StoreError, StoreOptions};

/// The job's columns an event needs: webhook URL, model, attempts, error, result.
type EventRow = (Option<String>, String, u32, Option<String>, Option<Vec<u8>>);

/// If the job has a webhook, adds the event announcing `state` to the outbox.
pub(super) fn record(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    id: JobId,
    state: JobState,
    now_ms: i64,
) -> Result<()> {
    // Runs on every state change, webhook or not: a cached statement, no re-parse.
    let row: Option<EventRow> = tx
        .prepare_cached(
            "SELECT webhook_url, model, attempts, error, result FROM jobs WHERE id = ?1",
        )?
        .query_row([id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((Some(url), model, attempts, error, result)) = row else {
        return Ok(());
    };
    let timestamp = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let done = state == JobState::Done;
    let result = match (done, result) {
        (true, Some(bytes)) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|err| StoreError::Corrupt(format!("job {id} result: {err}")))?,
        ),
        _ => None,
    };
    let event = WebhookEvent {
        kind: WebhookEvent::kind_for(state),
        job_id: id,
        state,
        model,
        attempts,
        timestamp,
        error: if state == JobState::Failed || state == JobState::Cancelled {
            error
        } else {
            None
        },
        result,
        artifacts: if done {
            Some(artifacts::views(tx, &options.public_url, id)?)
        } else {
            None
        },
    };
    let body = serde_json::to_vec(&event)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode event: {err}")))?;
    tx.prepare_cached(
        "INSERT INTO webhook_outbox (webhook_id, job_id, state, url, body, timestamp,
                                     next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        format!("msg_{}", ulid::Ulid::new()),
        id.to_string(),
        state.as_str(),
        url,
        body,
        now_ms / 1000,
        now_ms,
    ])?;
    Ok(())
}
