//! Choosing and claiming the next job: drain by model, within priority, with a bound.

use std::time::Duration;

use bytes::Bytes;
use foreman_types::{JobId, JobKind, JobState};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{events, now_ms, Origin, Result, Store, StoreError};

/// What the worker knows when it asks for work.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRequest {
    pub target: String,
    /// The model loaded on the target now, if any: its jobs go first.
    pub resident: Option<String>,
    /// Models the target has in memory, so their jobs start `working`, not `loading`.
    pub loaded: Vec<String>,
    /// How long the oldest job may be passed over in favour of the resident model's.
    pub affinity_window: Duration,
    /// Models whose jobs wait whatever their turn: they are being pulled (ADR 15).
    pub held: Vec<String>,
}

/// A job the worker now owns.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedJob {
    pub id: JobId,
    pub kind: JobKind,
    pub origin: Origin,
    pub model: String,
    pub payload: Bytes,
    /// Including this run.
    pub attempts: u32,
    pub state: JobState,
    /// When the job was submitted (Unix ms), for the queued → started wait.
    pub created_at_ms: i64,
}

struct Candidate {
    id: String,
    model: String,
    priority: i64,
    created_at: i64,
}

impl Store {
    /// Picks the next job and moves it to `loading` or `working`, counting an attempt.
    ///
    /// The order: highest priority first; within it, the oldest job of the resident model,
    /// unless the oldest job overall has waited longer than the affinity window, in which
    /// case it goes next even though that swaps the model. Jobs of held models are passed
    /// over as if they were not queued.
    pub(crate) async fn claim_next(&self, request: ClaimRequest) -> Result<Option<ClaimedJob>> {
        let options = self.options.clone();
        self.write(move |tx| {
            let now = now_ms();
            let Some(chosen) = choose(tx, &request, now)? else {
                return Ok(None);
            };
            let state = if request.loaded.contains(&chosen.model) {
                JobState::Working
            } else {
                JobState::Loading
            };
            let row = tx
                .query_row(
                    "UPDATE jobs SET state = ?2, attempts = attempts + 1, updated_at = ?3
                     WHERE id = ?1 AND state = 'queued'
                     RETURNING kind, origin, payload, attempts",
                    params![chosen.id, state.as_str(), now],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                            r.get::<_, u32>(3)?,
                        ))
                    },
                )
                .optional()?;
            let Some((kind, origin, payload, attempts)) = row else {
                return Ok(None);
            };
            let id: JobId = chosen
                .id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("bad job id {:?}", chosen.id)))?;
            events::record(tx, &options, id, state, now)?;
            Ok(Some(ClaimedJob {
                id,
                kind: kind
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("bad kind {kind:?}")))?,
                origin: if origin == "sync" {
                    Origin::Sync
                } else {
                    Origin::Async
                },
                model: chosen.model,
                payload: Bytes::from(payload),
                attempts,
                state,
                created_at_ms: chosen.created_at,
            }))
        })
        .await
    }
}

fn choose(tx: &Transaction<'_>, request: &ClaimRequest, now: i64) -> Result<Option<Candidate>> {
    let read = |r: &rusqlite::Row<'_>| {
        Ok(Candidate {
            id: r.get(0)?,
            model: r.get(1)?,
            priority: r.get(2)?,
            created_at: r.get(3)?,
        })
    };
    // A JSON array, so one cached statement serves any number of held models.
    let held =
        serde_json::to_string(&request.held).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let oldest = tx
        .prepare_cached(
            "SELECT id, model, priority, created_at FROM jobs
             WHERE target = ?1 AND state = 'queued'
               AND model NOT IN (SELECT value FROM json_each(?2))
             ORDER BY priority DESC, id LIMIT 1",
        )?
        .query_row(params![request.target, held], read)
        .optional()?;
    let Some(oldest) = oldest else {
        return Ok(None);
    };
    let Some(resident) = &request.resident else {
        return Ok(Some(oldest));
    };
    let waited = Duration::from_millis(now.saturating_sub(oldest.created_at).max(0) as u64);
    if oldest.model == *resident || waited >= request.affinity_window {
        return Ok(Some(oldest));
    }
    let same_model = tx
        .prepare_cached(
            "SELECT id, model, priority, created_at FROM jobs
             WHERE target = ?1 AND model = ?2 AND priority = ?3 AND state = 'queued'
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![request.target, resident, oldest.priority], read)
        .optional()?;
    Ok(Some(same_model.unwrap_or(oldest)))
}
