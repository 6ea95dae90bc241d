//! Claiming the next job: the store reads the heads of the queue's groups and the
//! tenants' service, [`crate::scheduler::pick`] chooses, and the claim is a
//! compare-and-set on the chosen job.

use std::time::Duration;

use bytes::Bytes;
use foreman_types::{JobId, JobKind, JobState};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{events, fair_share, now_ms, Origin, Result, Store, StoreError};
use crate::scheduler::{self, Head, Policy, QueueView, TargetView, Tenant};

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
    /// What a running job is expected to take (the recent mean), counted against its
    /// tenant until the run ends and its real GPU time is known (ADR 14).
    pub running_estimate_ms: f64,
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
    /// Who the job is accounted to.
    pub tenant: Tenant,
}

impl Store {
    /// Picks the next job and moves it to `loading` or `working`, counting an attempt.
    ///
    /// The order is the scheduler's (priority, fair share, drain by model within the
    /// affinity window); jobs of held models are passed over as if they were not queued.
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
                    "UPDATE jobs SET state = ?2, attempts = attempts + 1, updated_at = ?3,
                                     started_at = ?3
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
                tenant: chosen.tenant,
            }))
        })
        .await
    }
}

/// Reads the snapshot the scheduler decides on and asks it for the next job.
fn choose(tx: &Transaction<'_>, request: &ClaimRequest, now: i64) -> Result<Option<Chosen>> {
    let heads: Vec<Head> = tx
        .prepare_cached(
            "SELECT j.id, j.priority, j.tenant_key, j.tenant_user, j.model, j.created_at
             FROM queue_groups g
             JOIN jobs j ON j.id = (
                 SELECT id FROM jobs
                 WHERE state = 'queued' AND priority = g.priority AND model = g.model
                   AND tenant_key = g.tenant_key AND tenant_user = g.tenant_user
                 ORDER BY id LIMIT 1)",
        )?
        .query_map([], |r| {
            Ok(Head {
                job: r.get(0)?,
                priority: r.get(1)?,
                tenant: Tenant::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                model: r.get(4)?,
                queued_at_ms: r.get(5)?,
            })
        })?
        .filter(|head| {
            head.as_ref()
                .map_or(true, |head| !request.held.contains(&head.model))
        })
        .collect::<rusqlite::Result<_>>()?;
    if heads.is_empty() {
        return Ok(None);
    }
    let queue = QueueView {
        heads,
        service: fair_share::active_service(tx, request.running_estimate_ms)?,
    };
    let target = TargetView {
        name: request.target.clone(),
        up: true,
        free_slots: 1,
        load: 0,
        resident: request.resident.iter().cloned().collect(),
        installed: Vec::new(),
    };
    let policy = Policy {
        affinity_window: request.affinity_window,
    };
    let Some(assignment) = scheduler::pick(&queue, &[target], &policy, now) else {
        return Ok(None);
    };
    let head = queue
        .heads
        .into_iter()
        .find(|head| head.job == assignment.job)
        .ok_or_else(|| StoreError::Corrupt("the scheduler chose a job it was not shown".into()))?;
    Ok(Some(Chosen {
        id: head.job,
        model: head.model,
        tenant: head.tenant,
        created_at: head.queued_at_ms,
    }))
}

/// The job the scheduler chose.
struct Chosen {
    id: String,
    model: String,
    tenant: Tenant,
    created_at: i64,
}
