//! The store's half of fair share (ADR 14): tenants' service counters, lifted when a
//! tenant becomes active and charged when a run ends. The rules themselves are the
//! scheduler's ([`crate::scheduler::activation_service`], [`crate::scheduler::weighted`]).

use std::collections::HashMap;

use foreman_types::JobId;
use rusqlite::{params, OptionalExtension, Transaction};

use super::Result;
use crate::scheduler::{self, Tenant};

/// Makes sure `tenant` has a row with its current weight; a tenant with nothing queued or
/// running is lifted to the least service among the active ones first.
pub(super) fn activate(tx: &Transaction<'_>, tenant: &Tenant, weight: u32) -> Result<()> {
    let weight = weight.max(1);
    let row: Option<(f64, i64, i64, u32)> = tx
        .prepare_cached(
            "SELECT service, queued, running, weight FROM tenants
             WHERE key_name = ?1 AND end_user = ?2",
        )?
        .query_row(params![tenant.key, tenant.user], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    if let Some((_, queued, running, stored)) = row {
        if queued > 0 || running > 0 {
            if stored != weight {
                tx.prepare_cached(
                    "UPDATE tenants SET weight = ?3 WHERE key_name = ?1 AND end_user = ?2",
                )?
                .execute(params![tenant.key, tenant.user, weight])?;
            }
            return Ok(());
        }
    }
    let own = row.map_or(0.0, |(service, ..)| service);
    let active: Vec<f64> = tx
        .prepare_cached("SELECT service FROM tenants WHERE queued > 0 OR running > 0")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let most: Option<f64> = if active.is_empty() {
        tx.prepare_cached("SELECT max(service) FROM tenants")?
            .query_row([], |r| r.get(0))?
    } else {
        None
    };
    let known: Vec<f64> = most.into_iter().collect();
    let service = scheduler::activation_service(own, &active, &known);
    tx.prepare_cached(
        "INSERT INTO tenants (key_name, end_user, weight, service) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key_name, end_user) DO UPDATE SET weight = ?3, service = ?4",
    )?
    .execute(params![tenant.key, tenant.user, weight, service])?;
    Ok(())
}

/// Charges the run of `id` that ends now: its GPU time goes on the job and, divided by
/// its tenant's weight, on the tenant's settled service. Call it in the transaction that
/// moves the job out of `loading` or `working`.
pub(super) fn settle_run(tx: &Transaction<'_>, id: JobId, now: i64) -> Result<()> {
    let run: Option<(i64, String, String, u32)> = tx
        .prepare_cached(
            "SELECT j.started_at, j.tenant_key, j.tenant_user, t.weight
             FROM jobs j JOIN tenants t
               ON t.key_name = j.tenant_key AND t.end_user = j.tenant_user
             WHERE j.id = ?1 AND j.started_at IS NOT NULL",
        )?
        .query_row([id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((started_at, key, user, weight)) = run else {
        return Ok(());
    };
    let gpu_ms = now.saturating_sub(started_at).max(0);
    tx.prepare_cached("UPDATE jobs SET gpu_ms = gpu_ms + ?2, started_at = NULL WHERE id = ?1")?
        .execute(params![id.to_string(), gpu_ms])?;
    tx.prepare_cached(
        "UPDATE tenants SET service = service + ?3 WHERE key_name = ?1 AND end_user = ?2",
    )?
    .execute(params![
        key,
        user,
        scheduler::weighted(gpu_ms as f64, weight)
    ])?;
    Ok(())
}

/// Each active tenant's service as the scheduler weighs it: settled service plus, for
/// each of its jobs running now, `running_estimate_ms` of GPU time.
pub(super) fn active_service(
    tx: &Transaction<'_>,
    running_estimate_ms: f64,
) -> Result<HashMap<Tenant, f64>> {
    let mut statement = tx.prepare_cached(
        "SELECT key_name, end_user, service + running * ?1 / max(weight, 1) FROM tenants
         WHERE queued > 0 OR running > 0",
    )?;
    let rows = statement.query_map([running_estimate_ms], |r| {
        Ok((
            Tenant::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            r.get(2)?,
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
