//! Usage accounting (ADR 18): what the target reported for each run, added up per hour,
//! key, end user and model in the transaction that ends the run, and since the start per
//! key for the Prometheus counters.

use foreman_types::{JobId, JobState, UsageRow};

use super::{execute_cached, query_opt_cached, PgStore, Result, Tx};
use crate::store::common::{corrupt, hour_of, Charge};
use crate::store::model::*;

/// Adds the run of `id` that ends now to its tenant's usage, and its tokens to the job.
/// Call it in the transaction that ends the run, before the run is settled for fair share
/// (which clears its start).
pub(super) async fn record(tx: &Tx<'_>, id: JobId, reported: &Reported, now: i64) -> Result<()> {
    let key = id.to_string();
    let Some(job) = query_opt_cached(
        tx,
        "SELECT tenant_key, tenant_user, model, state, started_at FROM jobs WHERE id = $1",
        &[&key],
    )
    .await?
    else {
        return Ok(());
    };
    let (tenant_key, tenant_user, model, state, started_at): (
        String,
        String,
        String,
        String,
        Option<i64>,
    ) = (job.get(0), job.get(1), job.get(2), job.get(3), job.get(4));
    let state: JobState = state
        .parse()
        .map_err(|err| corrupt(format_args!("job {id}: {err}")))?;
    let charge = Charge::of(state, started_at, reported, now);
    if reported.prompt_tokens.is_some() || reported.output_tokens.is_some() {
        execute_cached(
            tx,
            "UPDATE jobs SET prompt_tokens = coalesce(prompt_tokens, 0) + $2,
                                 output_tokens = coalesce(output_tokens, 0) + $3
                 WHERE id = $1",
            &[&key, &charge.prompt_tokens, &charge.output_tokens],
        )
        .await?;
    }
    if charge.is_empty() {
        return Ok(());
    }
    execute_cached(
        tx,
        "INSERT INTO usage AS u (hour, key_name, end_user, model, requests, prompt_tokens,
                                     output_tokens, gpu_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (hour, key_name, end_user, model) DO UPDATE SET
                 requests = u.requests + $5, prompt_tokens = u.prompt_tokens + $6,
                 output_tokens = u.output_tokens + $7, gpu_ms = u.gpu_ms + $8",
        &[
            &hour_of(now),
            &tenant_key,
            &tenant_user,
            &model,
            &charge.requests,
            &charge.prompt_tokens,
            &charge.output_tokens,
            &charge.gpu_ms,
        ],
    )
    .await?;
    execute_cached(
        tx,
        "INSERT INTO usage_totals AS u (key_name, requests, prompt_tokens, output_tokens,
                                            gpu_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_name) DO UPDATE SET
                 requests = u.requests + $2, prompt_tokens = u.prompt_tokens + $3,
                 output_tokens = u.output_tokens + $4, gpu_ms = u.gpu_ms + $5",
        &[
            &tenant_key,
            &charge.requests,
            &charge.prompt_tokens,
            &charge.output_tokens,
            &charge.gpu_ms,
        ],
    )
    .await?;
    Ok(())
}

fn amount(n: i64) -> u64 {
    n.max(0) as u64
}

impl PgStore {
    /// Usage per key, end user and model, summed over the hours `filter` selects.
    pub(crate) async fn usage(&self, filter: UsageFilter) -> Result<Vec<UsageRow>> {
        let client = self.client().await?;
        let since = filter.since_ms.map(hour_of);
        let rows = client
            .query(
                "SELECT key_name, end_user, model, sum(requests)::BIGINT,
                        sum(prompt_tokens)::BIGINT, sum(output_tokens)::BIGINT,
                        sum(gpu_ms)::BIGINT
                 FROM usage
                 WHERE ($1::TEXT IS NULL OR key_name = $1)
                   AND ($2::BIGINT IS NULL OR hour >= $2)
                   AND ($3::BIGINT IS NULL OR hour < $3)
                 GROUP BY key_name, end_user, model
                 ORDER BY key_name, end_user, model",
                &[&filter.key, &since, &filter.until_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| UsageRow {
                key: r.get(0),
                user: r.get(1),
                model: r.get(2),
                requests: amount(r.get(3)),
                prompt_tokens: amount(r.get(4)),
                output_tokens: amount(r.get(5)),
                gpu_ms: amount(r.get(6)),
            })
            .collect())
    }

    /// Every key's usage since the start.
    pub(crate) async fn usage_totals(&self) -> Result<Vec<KeyTotals>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key_name, requests, prompt_tokens, output_tokens, gpu_ms
                 FROM usage_totals ORDER BY key_name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| KeyTotals {
                key: r.get(0),
                requests: amount(r.get(1)),
                prompt_tokens: amount(r.get(2)),
                output_tokens: amount(r.get(3)),
                gpu_ms: amount(r.get(4)),
            })
            .collect())
    }
}
