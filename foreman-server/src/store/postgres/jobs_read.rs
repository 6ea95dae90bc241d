//! Reading jobs: one with everything, a filtered page, the queue at a glance. Queue
//! positions count the shared queue, every replica's jobs.

use chrono::DateTime;
use deadpool_postgres::GenericClient;
use foreman_types::{Job, JobId, JobState, WebhookAttempt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{artifacts, count, query_cached, query_one_cached, query_opt_cached, PgStore, Result};
use crate::scheduler::Tenant;
use crate::store::common::{self, corrupt, parse_id, JobRow};
use crate::store::model::*;

const JOB_COLUMNS: &str = "id, model, state, attempts, created_at, updated_at, error, result, \
                           kind, priority, webhook_url, target, tenant_key, tenant_user, \
                           prompt_tokens, output_tokens";

/// A row of `JOB_COLUMNS`, without artifacts and webhook attempts.
fn job_from_row(r: &Row) -> Result<Job> {
    JobRow {
        id: r.get(0),
        model: r.get(1),
        state: r.get(2),
        attempts: count(r.get(3)),
        created_at: r.get(4),
        updated_at: r.get(5),
        error: r.get(6),
        result: r.get(7),
        kind: r.get(8),
        priority: r.get(9),
        webhook_url: r.get(10),
        target: r.get(11),
        tenant_key: r.get(12),
        tenant_user: r.get(13),
        prompt_tokens: r.get(14),
        output_tokens: r.get(15),
    }
    .into_job()
}

/// Job `id` with its artifacts, webhook attempts and queue position.
async fn load_job(client: &impl GenericClient, public_url: &str, id: JobId) -> Result<Option<Job>> {
    let Some(row) = query_opt_cached(
        client,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
        &[&id.to_string()],
    )
    .await?
    else {
        return Ok(None);
    };
    let mut job = job_from_row(&row)?;
    job.artifacts = artifacts::views(client, public_url, id).await?;
    job.webhook_attempts = webhook_attempts(client, id).await?;
    if job.state == JobState::Queued {
        let tenant = Tenant::new(
            job.key.clone().unwrap_or_default(),
            job.user.clone().unwrap_or_default(),
        );
        job.queue_position = Some(queue_position(client, id, job.priority, &tenant).await?);
    }
    Ok(Some(job))
}

/// How many jobs will start before `id`, as fair share orders them; see
/// [`common::fair_position`]. Counting stops at [`QUEUE_POSITION_CAP`].
async fn queue_position(
    client: &impl GenericClient,
    id: JobId,
    priority: i32,
    tenant: &Tenant,
) -> Result<u64> {
    let key = id.to_string();
    let cap = QUEUE_POSITION_CAP;
    let (tenant_key, tenant_user) = (&tenant.key, &tenant.user);
    let higher: i64 = query_one_cached(
        client,
        "SELECT count(*) FROM (
             SELECT 1 FROM jobs WHERE state = 'queued' AND priority > $1 LIMIT $2) ahead",
        &[&priority, &cap],
    )
    .await?
    .get(0);
    let own: i64 = query_one_cached(
        client,
        "SELECT count(*) FROM (
             SELECT 1 FROM jobs
             WHERE state = 'queued' AND priority = $2 AND id < $1
               AND tenant_key = $3 AND tenant_user = $4
             LIMIT $5) ahead",
        &[&key, &priority, &tenant_key, &tenant_user, &cap],
    )
    .await?
    .get(0);
    // The other tenants at this priority: how many jobs each has queued, and its weight.
    let others: Vec<(i64, f64)> = query_cached(
        client,
        "SELECT sum(g.queued)::BIGINT, coalesce(max(t.weight), 1) FROM queue_groups g
         LEFT JOIN tenants t ON t.key_name = g.tenant_key AND t.end_user = g.tenant_user
         WHERE g.priority = $1 AND NOT (g.tenant_key = $2 AND g.tenant_user = $3)
         GROUP BY g.tenant_key, g.tenant_user",
        &[&priority, &tenant_key, &tenant_user],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), f64::from(r.get::<_, i32>(1))))
    .collect();
    let weight = query_opt_cached(
        client,
        "SELECT weight FROM tenants WHERE key_name = $1 AND end_user = $2",
        &[&tenant_key, &tenant_user],
    )
    .await?
    .map_or(1.0, |r| f64::from(r.get::<_, i32>(0).max(1)));
    Ok(common::fair_position(higher, own, &others, weight))
}

async fn webhook_attempts(client: &impl GenericClient, id: JobId) -> Result<Vec<WebhookAttempt>> {
    let rows = query_cached(
        client,
        "SELECT o.webhook_id, o.state, a.attempt, a.status, a.latency_ms, a.error, a.at
             FROM webhook_attempts a JOIN webhook_outbox o ON o.id = a.outbox_id
             WHERE o.job_id = $1 ORDER BY o.id, a.attempt",
        &[&id.to_string()],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let state: String = r.get(1);
        let status: Option<i32> = r.get(3);
        let latency_ms: i64 = r.get(4);
        out.push(WebhookAttempt {
            webhook_id: r.get(0),
            state: state.parse().map_err(corrupt)?,
            attempt: count(r.get(2)),
            status: status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: latency_ms.max(0) as u64,
            error: r.get(5),
            at: DateTime::from_timestamp_millis(r.get(6)).unwrap_or_default(),
        });
    }
    Ok(out)
}

impl PgStore {
    /// Job `id`, with artifacts, webhook attempts and queue position.
    pub(crate) async fn job(&self, id: JobId) -> Result<Option<Job>> {
        let client = self.client().await?;
        load_job(&client, &self.options.public_url, id).await
    }

    /// The key that submitted job `id` (empty for the open tenant), if the job exists.
    pub(crate) async fn job_owner(&self, id: JobId) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = query_opt_cached(
            &client,
            "SELECT tenant_key FROM jobs WHERE id = $1",
            &[&id.to_string()],
        )
        .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// A page of jobs, newest first.
    pub(crate) async fn list(&self, filter: JobFilter) -> Result<Vec<Job>> {
        let client = self.client().await?;
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE TRUE");
        let mut args: Vec<String> = Vec::new();
        let mut and = |column: &str, op: &str, value: String| {
            args.push(value);
            sql.push_str(&format!(" AND {column} {op} ${}", args.len()));
        };
        if let Some(state) = filter.state {
            and("state", "=", state.as_str().to_owned());
        }
        if let Some(model) = &filter.model {
            and("model", "=", model.clone());
        }
        if let Some(key) = &filter.key {
            and("tenant_key", "=", key.clone());
        }
        if let Some(before) = filter.before {
            and("id", "<", before.to_string());
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len() + 1));
        let limit = i64::from(filter.limit.max(1));
        let mut params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        params.push(&limit);
        let rows = query_cached(&client, &sql, &params).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Queued jobs per model and the running jobs, on every replica.
    pub(crate) async fn queue_snapshot(&self) -> Result<QueueSnapshot> {
        let client = self.client().await?;
        let depth_by_model = queued_by_model(&client).await?;
        let ids = client
            .query(
                "SELECT id FROM jobs WHERE state IN ('loading', 'working') ORDER BY id",
                &[],
            )
            .await?;
        let mut running = Vec::with_capacity(ids.len());
        for row in ids {
            let id: String = row.get(0);
            if let Some(job) = load_job(&client, &self.options.public_url, parse_id(&id)?).await? {
                running.push(job);
            }
        }
        Ok(QueueSnapshot {
            depth_by_model,
            running,
        })
    }
}

/// Queued jobs per model, most first: summed over `queue_groups` (one row per priority,
/// tenant and model that has a queued job), not counted over the queue.
pub(super) async fn queued_by_model(client: &impl GenericClient) -> Result<Vec<(String, u64)>> {
    let rows = query_cached(
        client,
        "SELECT model, sum(queued)::bigint AS n FROM queue_groups
         GROUP BY model ORDER BY n DESC, model",
        &[],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
        .collect())
}
