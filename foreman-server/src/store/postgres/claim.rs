//! Claiming the next job over the shared queue: the target slots every replica shares
//! bound what each target may start, the scheduler chooses among the heads of the queue's
//! groups (without other replicas' sync jobs), and one transaction takes a free slot of
//! the chosen target (`FOR UPDATE SKIP LOCKED`) and compare-and-sets the job.

use std::collections::HashMap;

use super::{
    events, execute_cached, fair_share, int, query_cached, query_opt_cached, PgStore, Result, Tx,
};
use crate::scheduler::{Head, Tenant};
use crate::store::common::{self, Chosen, Heads};
use crate::store::model::*;
use crate::store::now_ms;

/// How often a claim starts over after another replica took its slot or its job first.
const CLAIM_TRIES: usize = 5;

/// A slot is free when nobody holds it or its holder's lease has lapsed.
const SLOT_IS_FREE: &str = "(s.holder IS NULL OR NOT EXISTS (
    SELECT 1 FROM replicas r WHERE r.id = s.holder AND r.expires_at >= foreman_now_ms()))";

/// What one try at a claim did.
enum Try {
    Claimed(ClaimedJob),
    /// Nothing can run now.
    Nothing,
    /// Another replica took the slot or the job first: look again.
    Lost,
}

impl PgStore {
    /// Picks the next job and a target with a free slot for it, and moves the job to
    /// `loading` or `working` there, counting an attempt, with the slot held for it;
    /// `None` when no target with a free slot can run any queued job, or this replica's
    /// lease has lapsed (another replica may be taking over its work).
    pub(crate) async fn claim_next(&self, request: ClaimRequest) -> Result<Option<ClaimedJob>> {
        self.ensure_slots(&request).await?;
        for _ in 0..CLAIM_TRIES {
            match self.try_claim(&request).await? {
                Try::Claimed(job) => return Ok(Some(job)),
                Try::Nothing => return Ok(None),
                Try::Lost => continue,
            }
        }
        Ok(None)
    }

    /// Makes sure every target of the request has its slot rows, once per process.
    async fn ensure_slots(&self, request: &ClaimRequest) -> Result<()> {
        let missing: Vec<(String, u32)> = {
            let slotted = crate::lock::lock(&self.slotted);
            request
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.parallel))
                .filter(|key| !slotted.contains(key))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        for (target, parallel) in missing {
            client
                .execute(
                    "INSERT INTO target_slots (target, slot)
                     SELECT $1, generate_series(0, $2 - 1)
                     ON CONFLICT (target, slot) DO NOTHING",
                    &[&target, &int(parallel)],
                )
                .await?;
            crate::lock::lock(&self.slotted).insert((target, parallel));
        }
        Ok(())
    }

    async fn try_claim(&self, request: &ClaimRequest) -> Result<Try> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if !self.hold_lease(&tx).await? {
            return Ok(Try::Nothing);
        }
        let now = now_ms();
        let Some(chosen) = self.choose(&tx, request, now).await? else {
            return Ok(Try::Nothing);
        };
        let parallel = request
            .targets
            .iter()
            .find(|t| t.name == chosen.target)
            .map_or(0, |t| t.parallel);
        let Some(slot) = query_opt_cached(
            &tx,
            &format!(
                "SELECT s.slot FROM target_slots s
                 WHERE s.target = $1 AND s.slot < $2 AND {SLOT_IS_FREE}
                 ORDER BY s.slot LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            &[&chosen.target, &int(parallel)],
        )
        .await?
        else {
            return Ok(Try::Lost);
        };
        let slot: i32 = slot.get(0);
        let state = chosen.state();
        let row = query_opt_cached(
            &tx,
            &format!(
                "UPDATE jobs SET state = $2, attempts = attempts + 1, updated_at = $3,
                                 started_at = $3, target = $4, owner = $5
                 WHERE id = $1 AND state = 'queued'
                 RETURNING kind, origin, payload, {}",
                events::EVENT_COLUMNS
            ),
            &[
                &chosen.id,
                &state.as_str(),
                &now,
                &chosen.target,
                &self.replica.as_ref(),
            ],
        )
        .await?;
        let Some(row) = row else {
            return Ok(Try::Lost);
        };
        execute_cached(
            &tx,
            "UPDATE target_slots SET holder = $3, job_id = $4 WHERE target = $1 AND slot = $2",
            &[&chosen.target, &slot, &self.replica.as_ref(), &chosen.id],
        )
        .await?;
        let event = events::facts(&row, 3);
        let attempts = event.1.attempts;
        let (kind, origin): (String, String) = (row.get(0), row.get(1));
        let has_webhook = event.0.is_some();
        let claimed = chosen.claimed(&kind, &origin, row.get(2), attempts, has_webhook)?;
        events::record(&tx, &self.options, claimed.id, state, event, now).await?;
        tx.commit().await?;
        Ok(Try::Claimed(claimed))
    }

    /// Reads the shared snapshot the scheduler decides on and asks it for the next job.
    async fn choose(
        &self,
        tx: &Tx<'_>,
        request: &ClaimRequest,
        now: i64,
    ) -> Result<Option<Chosen>> {
        let slots = self.free_slots(tx, request).await?;
        if slots.values().all(|(free, _)| *free == 0) {
            return Ok(None);
        }
        let mut heads = Heads::default();
        for r in query_cached(
            tx,
            "SELECT j.id, j.priority, j.tenant_key, j.tenant_user, j.model, j.created_at,
                        g.queued
                 FROM queue_groups g
                 CROSS JOIN LATERAL (
                     SELECT id, priority, tenant_key, tenant_user, model, created_at FROM jobs
                     WHERE state = 'queued' AND priority = g.priority AND model = g.model
                       AND tenant_key = g.tenant_key AND tenant_user = g.tenant_user
                       AND (origin = 'async' OR owner = $1)
                     ORDER BY id LIMIT 1) j",
            &[&self.replica.as_ref()],
        )
        .await?
        {
            let head = Head {
                job: r.get(0),
                priority: r.get(1),
                tenant: Tenant::new(r.get::<_, String>(2), r.get::<_, String>(3)),
                model: r.get(4),
                queued_at_ms: r.get(5),
            };
            heads.add(head, i64::from(r.get::<_, i32>(6)), &request.held);
        }
        if heads.heads.is_empty() {
            return Ok(None);
        }
        let service = fair_share::active_service(tx, request.running_estimate_ms).await?;
        // What the worker saw of its own lanes, bounded by the slots free over all
        // replicas; the load counts every replica's runs on the target.
        let mut shared = request.clone();
        for target in &mut shared.targets {
            let (free, held) = slots.get(&target.name).copied().unwrap_or((0, 0));
            target.free_slots = target.free_slots.min(free);
            target.load = target.load.max(held);
        }
        common::decide(heads, service, &shared, now)
    }

    /// Each target's free and held slots, as `(free, held)`; nothing is free while this
    /// replica's own lease has lapsed.
    async fn free_slots(
        &self,
        tx: &Tx<'_>,
        request: &ClaimRequest,
    ) -> Result<HashMap<String, (u32, u32)>> {
        let names: Vec<&str> = request.targets.iter().map(|t| t.name.as_str()).collect();
        let parallel: Vec<i32> = request.targets.iter().map(|t| int(t.parallel)).collect();
        let rows = query_cached(
            tx,
            &format!(
                "SELECT s.target, count(*) FILTER (WHERE {SLOT_IS_FREE}),
                        count(*) FILTER (WHERE NOT {SLOT_IS_FREE})
                 FROM unnest($1::TEXT[], $2::INTEGER[]) AS t (name, parallel)
                 JOIN target_slots s ON s.target = t.name AND s.slot < t.parallel
                 WHERE EXISTS (SELECT 1 FROM replicas
                               WHERE id = $3 AND expires_at >= foreman_now_ms())
                 GROUP BY s.target"
            ),
            &[&names, &parallel, &self.replica.as_ref()],
        )
        .await?;
        let counted = |n: i64| u32::try_from(n).unwrap_or(0);
        Ok(rows
            .iter()
            .map(|r| (r.get(0), (counted(r.get(1)), counted(r.get(2)))))
            .collect())
    }
}
