//! The store's half of fair share (ADR 14) on PostgreSQL: tenants' service counters,
//! lifted when a tenant becomes active and charged when a run ends. The rules are the
//! scheduler's ([`crate::scheduler::activation_service`], [`crate::scheduler::weighted`]).

use std::collections::HashMap;

use foreman_types::JobId;

use super::{execute_cached, int, query_cached, query_one_cached, query_opt_cached, Result, Tx};
use crate::scheduler::{self, Tenant};

/// Makes sure `tenant` has a row with its current weight; a tenant with nothing queued or
/// running is lifted to the least service among the active ones first.
pub(super) async fn activate(tx: &Tx<'_>, tenant: &Tenant, weight: u32) -> Result<()> {
    let weight = int(weight.max(1));
    let row = query_opt_cached(
        tx,
        "SELECT service, queued, running, weight FROM tenants
             WHERE key_name = $1 AND end_user = $2",
        &[&tenant.key, &tenant.user],
    )
    .await?;
    let row: Option<(f64, i32, i32, i32)> = row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
    if let Some((_, queued, running, stored)) = row {
        if queued > 0 || running > 0 {
            if stored != weight {
                execute_cached(
                    tx,
                    "UPDATE tenants SET weight = $3 WHERE key_name = $1 AND end_user = $2",
                    &[&tenant.key, &tenant.user, &weight],
                )
                .await?;
            }
            return Ok(());
        }
    }
    let own = row.map_or(0.0, |(service, ..)| service);
    let active: Vec<f64> = query_cached(
        tx,
        "SELECT service FROM tenants WHERE queued > 0 OR running > 0",
        &[],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let known: Vec<f64> = if active.is_empty() {
        let most: Option<f64> = query_one_cached(tx, "SELECT max(service) FROM tenants", &[])
            .await?
            .get(0);
        most.into_iter().collect()
    } else {
        Vec::new()
    };
    let service = scheduler::activation_service(own, &active, &known);
    execute_cached(
        tx,
        "INSERT INTO tenants (key_name, end_user, weight, service) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key_name, end_user) DO UPDATE SET weight = $3, service = $4",
        &[&tenant.key, &tenant.user, &weight, &service],
    )
    .await?;
    Ok(())
}

/// Charges the run of `id` that ends now: its GPU time goes on the job and, divided by
/// its tenant's weight, on the tenant's settled service. Call it in the transaction that
/// moves the job out of `loading` or `working`.
pub(super) async fn settle_run(tx: &Tx<'_>, id: JobId, now: i64) -> Result<()> {
    let key = id.to_string();
    let Some(run) = query_opt_cached(
        tx,
        "SELECT j.started_at, j.tenant_key, j.tenant_user, t.weight
             FROM jobs j JOIN tenants t
               ON t.key_name = j.tenant_key AND t.end_user = j.tenant_user
             WHERE j.id = $1 AND j.started_at IS NOT NULL",
        &[&key],
    )
    .await?
    else {
        return Ok(());
    };
    let (started_at, tenant_key, tenant_user, weight): (i64, String, String, i32) =
        (run.get(0), run.get(1), run.get(2), run.get(3));
    let gpu_ms = now.saturating_sub(started_at).max(0);
    execute_cached(
        tx,
        "UPDATE jobs SET gpu_ms = gpu_ms + $2, started_at = NULL WHERE id = $1",
        &[&key, &gpu_ms],
    )
    .await?;
    let weighted = scheduler::weighted(gpu_ms as f64, u32::try_from(weight).unwrap_or(1));
    execute_cached(
        tx,
        "UPDATE tenants SET service = service + $3 WHERE key_name = $1 AND end_user = $2",
        &[&tenant_key, &tenant_user, &weighted],
    )
    .await?;
    Ok(())
}

/// Each active tenant's service as the scheduler weighs it: settled service plus, for
/// each of its jobs running now (on any replica), `running_estimate_ms` of GPU time.
pub(super) async fn active_service(
    tx: &Tx<'_>,
    running_estimate_ms: f64,
) -> Result<HashMap<Tenant, f64>> {
    let rows = query_cached(
        tx,
        "SELECT key_name, end_user, service + running * $1::DOUBLE PRECISION / greatest(weight, 1)
             FROM tenants WHERE queued > 0 OR running > 0",
        &[&running_estimate_ms],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let tenant = Tenant::new(r.get::<_, String>(0), r.get::<_, String>(1));
            (tenant, r.get(2))
        })
        .collect())
}
