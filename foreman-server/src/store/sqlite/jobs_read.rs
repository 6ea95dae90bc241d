//! Reading jobs: one with everything, a filtered page, the queue at a glance.

use chrono::DateTime;
use foreman_types::{Job, JobId, JobState, WebhookAttempt};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{artifacts, Result, SqliteStore};
use crate::scheduler::Tenant;
use crate::store::common::{self, corrupt, parse_id, JobRow};
use crate::store::model::*;

const JOB_COLUMNS: &str = "id, model, state, attempts, created_at, updated_at, error, result, \
                           kind, priority, webhook_url, target, tenant_key, tenant_user, \
                           prompt_tokens, output_tokens";

/// A row of `JOB_COLUMNS`, without artifacts and webhook attempts.
fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Job>> {
    let row = JobRow {
        id: r.get(0)?,
        model: r.get(1)?,
        state: r.get(2)?,
        attempts: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        error: r.get(6)?,
        result: r.get(7)?,
        kind: r.get(8)?,
        priority: r.get(9)?,
        webhook_url: r.get(10)?,
        target: r.get(11)?,
        tenant_key: r.get(12)?,
        tenant_user: r.get(13)?,
        prompt_tokens: r.get(14)?,
        output_tokens: r.get(15)?,
    };
    Ok(row.into_job())
}

/// Job `id` with its artifacts, webhook attempts and queue position.
pub(super) fn load_job(conn: &Connection, public_url: &str, id: JobId) -> Result<Option<Job>> {
    let job = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id.to_string()], job_from_row)
        .optional()?;
    let Some(job) = job else {
        return Ok(None);
    };
    let mut job = job?;
    job.artifacts = artifacts::views(conn, public_url, id)?;
    job.webhook_attempts = webhook_attempts(conn, id)?;
    if job.state == JobState::Queued {
        let tenant = Tenant::new(
            job.key.clone().unwrap_or_default(),
            job.user.clone().unwrap_or_default(),
        );
        job.queue_position = Some(queue_position(conn, id, job.priority, &tenant)?);
    }
    Ok(Some(job))
}

/// How many jobs will start before `id`, as fair share (ADR 14) orders them: every job of
/// a higher priority, the older jobs of its own tenant at its priority, and from each other
/// tenant at that priority about as many jobs as fair share gives it meanwhile (by weight,
/// while it has them). An estimate: the service counters are left out, and a running job
/// is not counted.
fn queue_position(conn: &Connection, id: JobId, priority: i32, tenant: &Tenant) -> Result<u64> {
    // Counting is linear in the jobs counted; past QUEUE_POSITION_CAP the exact figure
    // matters to nobody and would make GET /jobs/{id} slow on a deep queue.
    let key = id.to_string();
    let (tenant_key, tenant_user) = (&tenant.key, &tenant.user);
    let higher: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (
                 SELECT 1 FROM jobs WHERE state = 'queued' AND priority > ?1 LIMIT ?2)",
        )?
        .query_row(params![priority, QUEUE_POSITION_CAP], |r| r.get(0))?;
    let own: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (
                 SELECT 1 FROM jobs
                 WHERE state = 'queued' AND priority = ?2 AND id < ?1
                   AND tenant_key = ?3 AND tenant_user = ?4
                 LIMIT ?5)",
        )?
        .query_row(
            params![key, priority, tenant_key, tenant_user, QUEUE_POSITION_CAP],
            |r| r.get(0),
        )?;
    // The other tenants at this priority: how many jobs each has queued, and its weight.
    let others: Vec<(i64, f64)> = conn
        .prepare_cached(
            "SELECT sum(g.queued), coalesce(max(t.weight), 1) FROM queue_groups g
             LEFT JOIN tenants t ON t.key_name = g.tenant_key AND t.end_user = g.tenant_user
             WHERE g.priority = ?1 AND NOT (g.tenant_key = ?2 AND g.tenant_user = ?3)
             GROUP BY g.tenant_key, g.tenant_user",
        )?
        .query_map(params![priority, tenant_key, tenant_user], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as f64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let weight: f64 = conn
        .prepare_cached("SELECT weight FROM tenants WHERE key_name = ?1 AND end_user = ?2")?
        .query_row(params![tenant_key, tenant_user], |r| r.get::<_, i64>(0))
        .optional()?
        .map_or(1.0, |w| w.max(1) as f64);
    Ok(common::fair_position(higher, own, &others, weight))
}

fn webhook_attempts(conn: &Connection, id: JobId) -> Result<Vec<WebhookAttempt>> {
    let mut select = conn.prepare_cached(
        "SELECT o.webhook_id, o.state, a.attempt, a.status, a.latency_ms, a.error, a.at
         FROM webhook_attempts a JOIN webhook_outbox o ON o.id = a.outbox_id
         WHERE o.job_id = ?1 ORDER BY o.id, a.attempt",
    )?;
    let rows = select.query_map([id.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
            r.get::<_, Option<u16>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (webhook_id, state, attempt, status, latency_ms, error, at) = row?;
        out.push(WebhookAttempt {
            webhook_id,
            state: state.parse().map_err(corrupt)?,
            attempt,
            status,
            latency_ms: latency_ms.max(0) as u64,
            error,
            at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
        });
    }
    Ok(out)
}

impl SqliteStore {
    /// Job `id`, with artifacts, webhook attempts and queue position.
    pub(crate) async fn job(&self, id: JobId) -> Result<Option<Job>> {
        let options = self.options.clone();
        self.read(move |conn| load_job(conn, &options.public_url, id))
            .await
    }

    /// The key that submitted job `id` (empty for the open tenant), if the job exists.
    pub(crate) async fn job_owner(&self, id: JobId) -> Result<Option<String>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT tenant_key FROM jobs WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// A page of jobs, newest first.
    pub(crate) async fn list(&self, filter: JobFilter) -> Result<Vec<Job>> {
        self.read(move |conn| {
            let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if let Some(state) = filter.state {
                args.push(state.as_str().to_owned());
                sql.push_str(&format!(" AND state = ?{}", args.len()));
            }
            if let Some(model) = &filter.model {
                args.push(model.clone());
                sql.push_str(&format!(" AND model = ?{}", args.len()));
            }
            if let Some(key) = &filter.key {
                args.push(key.clone());
                sql.push_str(&format!(" AND tenant_key = ?{}", args.len()));
            }
            if let Some(before) = filter.before {
                args.push(before.to_string());
                sql.push_str(&format!(" AND id < ?{}", args.len()));
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit.max(1)));
            let mut select = conn.prepare_cached(&sql)?;
            let rows = select.query_map(rusqlite::params_from_iter(args.iter()), job_from_row)?;
            let mut jobs = Vec::new();
            for row in rows {
                jobs.push(row??);
            }
            Ok(jobs)
        })
        .await
    }

    /// Queued jobs per model and the running jobs.
    pub(crate) async fn queue_snapshot(&self) -> Result<QueueSnapshot> {
        let options = self.options.clone();
        self.read(move |conn| {
            let depth_by_model = super::stats::queued_by_model(conn)?;
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM jobs WHERE state IN ('loading', 'working') ORDER BY id",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut running = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(job) = load_job(conn, &options.public_url, parse_id(&id)?)? {
                    running.push(job);
                }
            }
            Ok(QueueSnapshot {
                depth_by_model,
                running,
            })
        })
        .await
    }
}
