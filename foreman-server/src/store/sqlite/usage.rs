//! Usage accounting: what the target reported for each run, added up per hour, key, end
//! user and model in the transaction that ends the run (ADR 18).
//!
//! Jobs are pruned after their TTL; the `usage` rows are not, so a month's usage is still
//! there after its jobs are gone. `usage_totals` keeps the same sums per key since the
//! start, for the Prometheus counters.

use foreman_types::{JobId, JobState, UsageRow};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{Result, SqliteStore, StoreError};
use crate::store::common::{hour_of, Charge};
use crate::store::model::*;

/// Adds the run of `id` that ends now to its tenant's usage, and its tokens to the job.
///
/// Call it in the transaction that ends the run, before the run is settled for fair
/// share (which clears its start). GPU time is the target's `total_duration` when it
/// reported one, else the run's time on the target as foreman measured it. The job counts
/// as a request once, when this run ended it.
pub(super) fn record(tx: &Transaction<'_>, id: JobId, reported: &Reported, now: i64) -> Result<()> {
    let key = id.to_string();
    let job: Option<(String, String, String, String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT tenant_key, tenant_user, model, state, started_at FROM jobs WHERE id = ?1",
        )?
        .query_row([&key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((tenant_key, tenant_user, model, state, started_at)) = job else {
        return Ok(());
    };
    let state: JobState = state
        .parse()
        .map_err(|err| StoreError::Corrupt(format!("job {id}: {err}")))?;
    let charge = Charge::of(state, started_at, reported, now);
    if reported.prompt_tokens.is_some() || reported.output_tokens.is_some() {
        tx.prepare_cached(
            "UPDATE jobs SET prompt_tokens = coalesce(prompt_tokens, 0) + ?2,
                             output_tokens = coalesce(output_tokens, 0) + ?3
             WHERE id = ?1",
        )?
        .execute(params![key, charge.prompt_tokens, charge.output_tokens])?;
    }
    if charge.is_empty() {
        return Ok(());
    }
    let hour = hour_of(now);
    tx.prepare_cached(
        "INSERT INTO usage (hour, key_name, end_user, model, requests, prompt_tokens,
                            output_tokens, gpu_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (hour, key_name, end_user, model) DO UPDATE SET
             requests = requests + ?5, prompt_tokens = prompt_tokens + ?6,
             output_tokens = output_tokens + ?7, gpu_ms = gpu_ms + ?8",
    )?
    .execute(params![
        hour,
        tenant_key,
        tenant_user,
        model,
        charge.requests,
        charge.prompt_tokens,
        charge.output_tokens,
        charge.gpu_ms
    ])?;
    tx.prepare_cached(
        "INSERT INTO usage_totals (key_name, requests, prompt_tokens, output_tokens, gpu_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key_name) DO UPDATE SET
             requests = requests + ?2, prompt_tokens = prompt_tokens + ?3,
             output_tokens = output_tokens + ?4, gpu_ms = gpu_ms + ?5",
    )?
    .execute(params![
        tenant_key,
        charge.requests,
        charge.prompt_tokens,
        charge.output_tokens,
        charge.gpu_ms
    ])?;
    Ok(())
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl SqliteStore {
    /// Usage per key, end user and model, summed over the hours `filter` selects.
    pub(crate) async fn usage(&self, filter: UsageFilter) -> Result<Vec<UsageRow>> {
        self.read(move |conn| {
            let since = filter.since_ms.map(hour_of);
            let mut select = conn.prepare_cached(
                "SELECT key_name, end_user, model, sum(requests), sum(prompt_tokens),
                        sum(output_tokens), sum(gpu_ms)
                 FROM usage
                 WHERE (?1 IS NULL OR key_name = ?1)
                   AND (?2 IS NULL OR hour >= ?2)
                   AND (?3 IS NULL OR hour < ?3)
                 GROUP BY key_name, end_user, model
                 ORDER BY key_name, end_user, model",
            )?;
            let rows = select.query_map(params![filter.key, since, filter.until_ms], |r| {
                Ok(UsageRow {
                    key: r.get(0)?,
                    user: r.get(1)?,
                    model: r.get(2)?,
                    requests: count(r.get(3)?),
                    prompt_tokens: count(r.get(4)?),
                    output_tokens: count(r.get(5)?),
                    gpu_ms: count(r.get(6)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Every key's usage since the start.
    pub(crate) async fn usage_totals(&self) -> Result<Vec<KeyTotals>> {
        self.read(|conn| {
            let mut select = conn.prepare_cached(
                "SELECT key_name, requests, prompt_tokens, output_tokens, gpu_ms
                 FROM usage_totals ORDER BY key_name",
            )?;
            let rows = select.query_map([], |r| {
                Ok(KeyTotals {
                    key: r.get(0)?,
                    requests: count(r.get(1)?),
                    prompt_tokens: count(r.get(2)?),
                    output_tokens: count(r.get(3)?),
                    gpu_ms: count(r.get(4)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
