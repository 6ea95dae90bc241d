//! Claiming the next job: the store reads the heads of the queue's groups and the
//! tenants' service, [`crate::scheduler::pick`] chooses a job and a target among the
//! targets the worker describes, and the claim is a compare-and-set on the chosen job that
//! also records where it runs.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{events, fair_share, now_ms, Durable, Result, SqliteStore};
use crate::scheduler::{Head, Tenant};
use crate::store::common::{self, Chosen, Heads};
use crate::store::model::*;
use crate::store::StoreOptions;

impl SqliteStore {
    /// Picks the next job and a target for it and moves it to `loading` or `working` on
    /// that target, counting an attempt; `None` when no target with a free slot can run
    /// any queued job.
    ///
    /// The choice is the scheduler's (routing, priority, fair share, drain by model within
    /// the affinity window); jobs of held models are passed over as if they were not queued.
    pub(crate) async fn claim_next(&self, request: ClaimRequest) -> Result<Option<ClaimedJob>> {
        let options = self.options.clone();
        // A claim lost with the machine leaves its job queued, to be claimed again (ADR 24).
        self.write_deciding(move |tx| Ok((claim_in(tx, &options, &request)?, Durable::Process)))
            .await
    }
}

impl SqliteStore {
    /// Claims until nothing more can be claimed or `request`'s free slots are taken, in
    /// one transaction.
    pub(crate) async fn claim_free_slots(
        &self,
        mut request: ClaimRequest,
    ) -> Result<Vec<ClaimedJob>> {
        let options = self.options.clone();
        self.write_deciding(move |tx| {
            let mut claimed = Vec::new();
            while request.free_slots() > 0 {
                let Some(job) = claim_in(tx, &options, &request)? else {
                    break;
                };
                request.took(&job.target);
                claimed.push(job);
            }
            Ok((claimed, Durable::Process))
        })
        .await
    }
}

/// [`SqliteStore::claim_next`] in `tx`.
pub(super) fn claim_in(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    request: &ClaimRequest,
) -> Result<Option<ClaimedJob>> {
    let now = now_ms();
    let Some(chosen) = choose(tx, request, now)? else {
        return Ok(None);
    };
    claim_chosen_in(tx, options, chosen, now)
}

/// Claims the job `chosen` names on its target, if it is still queued.
pub(super) fn claim_chosen_in(
    tx: &Transaction<'_>,
    options: &StoreOptions,
    chosen: Chosen,
    now: i64,
) -> Result<Option<ClaimedJob>> {
    let state = chosen.state();
    let row = tx
        .prepare_cached(
            "UPDATE jobs SET state = ?2, attempts = attempts + 1, updated_at = ?3,
                             started_at = ?3, target = ?4
             WHERE id = ?1 AND state = 'queued'
             RETURNING kind, origin, payload, attempts, webhook_url IS NOT NULL",
        )?
        .query_row(
            params![chosen.id, state.as_str(), now, chosen.target],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, origin, payload, attempts, has_webhook)) = row else {
        return Ok(None);
    };
    let claimed = chosen.claimed(&kind, &origin, payload, attempts, has_webhook)?;
    events::record(tx, options, claimed.id, state, now)?;
    Ok(Some(claimed))
}

/// Reads the snapshot the scheduler decides on and asks it for the next job.
fn choose(tx: &Transaction<'_>, request: &ClaimRequest, now: i64) -> Result<Option<Chosen>> {
    let mut heads = Heads::default();
    let mut select = tx.prepare_cached(
        "SELECT j.id, j.priority, j.tenant_key, j.tenant_user, j.model, j.created_at,
                g.queued
         FROM queue_groups g
         JOIN jobs j ON j.id = (
             SELECT id FROM jobs
             WHERE state = 'queued' AND priority = g.priority AND model = g.model
               AND tenant_key = g.tenant_key AND tenant_user = g.tenant_user
             ORDER BY id LIMIT 1)",
    )?;
    let rows = select.query_map([], |r| {
        let head = Head {
            job: r.get(0)?,
            priority: r.get(1)?,
            tenant: Tenant::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?),
            model: r.get(4)?,
            queued_at_ms: r.get(5)?,
        };
        Ok((head, r.get::<_, i64>(6)?))
    })?;
    for row in rows {
        let (head, queued) = row?;
        heads.add(head, queued, &request.held);
    }
    if heads.heads.is_empty() {
        return Ok(None);
    }
    let service = fair_share::active_service(tx, request.running_estimate_ms)?;
    common::decide(heads, service, request, now)
}
