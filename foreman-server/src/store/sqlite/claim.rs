//! Claiming the next job: the store reads the heads of the queue's groups and the
//! tenants' service, [`crate::scheduler::pick`] chooses a job and a target among the
//! targets the worker describes, and the claim is a compare-and-set on the chosen job that
//! also records where it runs.

use std::collections::HashMap;

use bytes::Bytes;
use foreman_types::{JobId, JobState};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{events, fair_share, now_ms, Result, SqliteStore, StoreError};
use crate::scheduler::{self, Head, Policy, QueueView, TargetView, Tenant};
use crate::store::model::*;

impl SqliteStore {
    /// Picks the next job and a target for it and moves it to `loading` or `working` on
    /// that target, counting an attempt; `None` when no target with a free slot can run
    /// any queued job.
    ///
    /// The choice is the scheduler's (routing, priority, fair share, drain by model within
    /// the affinity window); jobs of held models are passed over as if they were not queued.
    pub(crate) async fn claim_next(&self, request: ClaimRequest) -> Result<Option<ClaimedJob>> {
        let options = self.options.clone();
        self.write(move |tx| {
            let now = now_ms();
            let Some(chosen) = choose(tx, &request, now)? else {
                return Ok(None);
            };
            let state = if chosen.resident {
                JobState::Working
            } else {
                JobState::Loading
            };
            let row = tx
                .query_row(
                    "UPDATE jobs SET state = ?2, attempts = attempts + 1, updated_at = ?3,
                                     started_at = ?3, target = ?4
                     WHERE id = ?1 AND state = 'queued'
                     RETURNING kind, origin, payload, attempts",
                    params![chosen.id, state.as_str(), now, chosen.target],
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
                target: chosen.target,
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
    let mut queued_by_model: HashMap<String, u32> = HashMap::new();
    let heads: Vec<Head> = tx
        .prepare_cached(
            "SELECT j.id, j.priority, j.tenant_key, j.tenant_user, j.model, j.created_at,
                    g.queued
             FROM queue_groups g
             JOIN jobs j ON j.id = (
                 SELECT id FROM jobs
                 WHERE state = 'queued' AND priority = g.priority AND model = g.model
                   AND tenant_key = g.tenant_key AND tenant_user = g.tenant_user
                 ORDER BY id LIMIT 1)",
        )?
        .query_map([], |r| {
            let head = Head {
                job: r.get(0)?,
                priority: r.get(1)?,
                tenant: Tenant::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                model: r.get(4)?,
                queued_at_ms: r.get(5)?,
            };
            Ok((head, r.get::<_, i64>(6)?))
        })?
        .filter_map(|row| match row {
            Ok((head, _)) if request.held.contains(&head.model) => None,
            Ok((head, queued)) => {
                let count = u32::try_from(queued.max(0)).unwrap_or(u32::MAX);
                let total = queued_by_model.entry(head.model.clone()).or_default();
                *total = total.saturating_add(count);
                Some(Ok(head))
            }
            Err(err) => Some(Err(err)),
        })
        .collect::<rusqlite::Result<_>>()?;
    if heads.is_empty() {
        return Ok(None);
    }
    let queue = QueueView {
        heads,
        service: fair_share::active_service(tx, request.running_estimate_ms)?,
    };
    // A target's load: what runs on it, plus the queued jobs drain by model will give it.
    let targets: Vec<TargetView> = request
        .targets
        .iter()
        .map(|target| {
            let bound: u32 = target
                .resident
                .iter()
                .filter_map(|model| queued_by_model.get(model))
                .fold(0, |sum, n| sum.saturating_add(*n));
            TargetView {
                load: target.load.saturating_add(bound),
                ..target.clone()
            }
        })
        .collect();
    let policy = Policy {
        affinity_window: request.affinity_window,
    };
    let Some(assignment) = scheduler::pick(&queue, &targets, &policy, now) else {
        return Ok(None);
    };
    let head = queue
        .heads
        .into_iter()
        .find(|head| head.job == assignment.job)
        .ok_or_else(|| StoreError::Corrupt("the scheduler chose a job it was not shown".into()))?;
    let resident = targets
        .iter()
        .find(|t| t.name == assignment.target)
        .is_some_and(|t| t.resident.contains(&head.model));
    Ok(Some(Chosen {
        id: head.job,
        model: head.model,
        tenant: head.tenant,
        created_at: head.queued_at_ms,
        target: assignment.target,
        resident,
    }))
}

/// The job the scheduler chose, and where.
struct Chosen {
    id: String,
    model: String,
    tenant: Tenant,
    created_at: i64,
    target: String,
    /// Whether its model is in the target's memory already.
    resident: bool,
}
