//! 6. Memory and scale, on the `foreman` binary as a process: resident memory with a deep
//!    queue and with many waiting streaming clients; start-up time with a large table of
//!    finished jobs; `GET /jobs/{id}` and queue selection as the table grows, with the
//!    claim queries' `EXPLAIN QUERY PLAN`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection};

use crate::enqueue::flood;
use crate::http::{client, get_json, MODEL};
use crate::process::{find_binary, raise_open_files, Process};
use crate::report::Row;
use crate::stats::{mib, ms, percentile};
use crate::target;
use crate::{Options, Sizes};

const BENCH: &str = "6 scale";
/// A finished job's stored result: Ollama's final chat chunk.
const RESULT: &str = r#"{"model":"bench:latest","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":1}"#;
/// The queue selection code, read for its SQL so the plans shown are the ones it runs:
/// the heads of the queue's groups, and the active tenants' service.
const CLAIM_RS: &[&str] = &[
    include_str!("../../foreman-server/src/store/sqlite/claim.rs"),
    include_str!("../../foreman-server/src/store/sqlite/fair_share.rs"),
];

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let target = target::held().await?;
    let mut rows = Vec::new();
    let bin = find_binary(options.foreman_bin.as_deref());
    match &bin {
        Some(bin) => rows.extend(memory(bin, target.url(), sizes).await?),
        None => rows.push(Row::skipped(
            BENCH,
            "memory: no foreman binary (cargo build --release -p foreman-cli)",
        )),
    }
    rows.extend(growth(bin.as_deref(), target.url(), sizes, options.explain).await?);
    Ok(rows)
}

/// Tasks holding the waiting streaming clients' connections.
const HOLDERS: usize = 64;

/// Opens `n` connections to `base`, each with a streaming `/api/chat` written on it as
/// raw HTTP/1.1, and holds them (unread) until the result is dropped: a few tasks each
/// owning many sockets, far cheaper than a client per stream.
async fn hold_streams(base: &str, n: usize) -> Result<Vec<tokio::net::TcpStream>> {
    use tokio::io::AsyncWriteExt;
    let addr = base
        .strip_prefix("http://")
        .context("an http:// URL")?
        .to_owned();
    let body = crate::http::chat_body(MODEL, true);
    let mut request = format!(
        "POST /api/chat HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = std::sync::Arc::new(request);
    let tasks = HOLDERS.min(n).max(1);
    let holders: Vec<_> = (0..tasks)
        .map(|holder| {
            let share = n / tasks + usize::from(holder < n % tasks);
            let (addr, request) = (addr.clone(), std::sync::Arc::clone(&request));
            tokio::spawn(async move {
                let mut held = Vec::with_capacity(share);
                for _ in 0..share {
                    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
                    stream.write_all(&request).await?;
                    held.push(stream);
                }
                anyhow::Ok(held)
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(n);
    for holder in holders {
        streams.extend(holder.await.context("a stream holder failed")??);
    }
    Ok(streams)
}

async fn memory(bin: &Path, target: &str, sizes: &Sizes) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    // The waiting clients' sockets here and in the foreman child, which inherits the
    // limit, so it is raised before the child starts.
    raise_open_files(sizes.scale_streams as u64 + 4096)?;
    let max_queue = 200_000.max(sizes.scale_queued + sizes.scale_streams + 10);
    let (process, _) =
        Process::start(bin, target, &dir.path().join("foreman.db"), max_queue).await?;
    let (idle, _) = process.memory()?;
    let filled = flood(&process.url, 64, Some(sizes.scale_queued), None).await?;
    let (queued_rss, _) = process.memory()?;

    // A queued job's page counts the jobs ahead of it.
    let client = client();
    let newest = filled.ids.last().context("no job was submitted")?;
    let mut reads = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        get_json(&client, &format!("{}/jobs/{newest}", process.url)).await?;
        reads.push(ms(started.elapsed()));
    }

    // Streaming callers waiting their turn behind the held job.
    let streams = hold_streams(&process.url, sizes.scale_streams).await?;
    // The worker holds one job; everything else is queued.
    let want = (sizes.scale_queued + sizes.scale_streams) as u64 - 1;
    let started = Instant::now();
    loop {
        let queue = get_json(&client, &format!("{}/queue", process.url)).await?;
        if queue["depth"].as_u64().unwrap_or(0) >= want {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("only {} of {want} jobs queued", queue["depth"]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (streams_rss, peak) = process.memory()?;
    drop(process);
    drop(streams);
    Ok(vec![
        Row::info(
            BENCH,
            format!(
                "foreman process idle: {:.1} MiB RSS; filled at {:.0} POST /jobs/s",
                mib(idle),
                filled.per_second()
            ),
            Some(mib(idle)),
        ),
        Row::at_most(
            BENCH,
            format!("RSS with {} queued jobs: {:.1} MiB", sizes.scale_queued, mib(queued_rss)),
            mib(queued_rss),
            64.0,
            "MiB",
        ),
        Row::at_most(
            BENCH,
            format!(
                "RSS with {} queued jobs + {} waiting streaming clients: {:.1} MiB (peak {:.1})",
                sizes.scale_queued,
                sizes.scale_streams,
                mib(streams_rss),
                mib(peak)
            ),
            mib(streams_rss),
            256.0,
            "MiB",
        ),
        Row::info(
            BENCH,
            format!(
                "GET /jobs/{{id}} of the newest of {} queued jobs (counts the jobs ahead): p50 {:.2} ms",
                sizes.scale_queued,
                percentile(&reads, 50.0)
            ),
            Some(percentile(&reads, 50.0)),
        ),
    ])
}

/// Figures at one table size.
#[derive(Debug, Default)]
struct AtSize {
    rows: usize,
    filled: Duration,
    /// µs per claim query, p50, in the order of `claim_queries()`.
    claim_us: Vec<f64>,
    startup: Option<Duration>,
    get_ms: Vec<f64>,
}

async fn growth(
    bin: Option<&Path>,
    target: &str,
    sizes: &Sizes,
    explain: bool,
) -> Result<Vec<Row>> {
    let queries = claim_queries();
    let mut plans_ok = true;
    let mut measured = Vec::new();
    for (i, rows) in [sizes.scale_rows.0, sizes.scale_rows.1]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("foreman.db");
        let started = Instant::now();
        let ids = populate(&db, rows, 100)?;
        let mut at = AtSize {
            rows,
            filled: started.elapsed(),
            ..AtSize::default()
        };
        {
            let conn = Connection::open(&db)?;
            for sql in &queries {
                if i == 1 {
                    let plan = query_plan(&conn, sql)?;
                    plans_ok &= plan.iter().all(|line| {
                        (line.contains("USING")
                            || is_small_table_scan(line)
                            || is_subquery_heading(line))
                            && !line.contains("TEMP B-TREE")
                    });
                    if explain {
                        println!(
                            "EXPLAIN QUERY PLAN ({rows} finished + 100 queued jobs)\n  {}",
                            sql.split_whitespace().collect::<Vec<_>>().join(" ")
                        );
                        for line in plan {
                            println!("    {line}");
                        }
                    }
                }
                at.claim_us.push(time_query(&conn, sql, 2000)?);
            }
        }
        if let Some(bin) = bin {
            let (process, startup) = Process::start(bin, target, &db, 200_000).await?;
            at.startup = Some(startup);
            let client = client();
            let stride = (ids.len() / sizes.scale_reads.max(1)).max(1);
            for id in ids.iter().step_by(stride).take(sizes.scale_reads) {
                let started = Instant::now();
                let job = get_json(&client, &format!("{}/jobs/{id}", process.url)).await?;
                at.get_ms.push(ms(started.elapsed()));
                if job["state"] != "done" {
                    bail!("job {id} is {}", job["state"]);
                }
            }
        }
        measured.push(at);
    }
    let (small, large) = (&measured[0], &measured[1]);
    let mut rows = vec![Row::info(
        BENCH,
        format!(
            "filled the tables directly: {} rows in {:.2} s, {} rows in {:.2} s",
            small.rows,
            small.filled.as_secs_f64(),
            large.rows,
            large.filled.as_secs_f64()
        ),
        None,
    )];
    if let (Some(s), Some(l)) = (small.startup, large.startup) {
        rows.push(Row::at_most(
            BENCH,
            format!(
                "start-up (spawn → healthy) with {} finished jobs: {:.0} ms (with {}: {:.0} ms)",
                large.rows,
                ms(l),
                small.rows,
                ms(s)
            ),
            ms(l),
            200.0,
            "ms",
        ));
        let (s50, l50) = (
            percentile(&small.get_ms, 50.0),
            percentile(&large.get_ms, 50.0),
        );
        rows.push(Row::at_most(
            BENCH,
            format!(
                "GET /jobs/{{id}} p50: {s50:.3} ms at {} rows, {l50:.3} ms at {} rows (p99 {:.3} / {:.3}); ratio {:.2}",
                small.rows,
                large.rows,
                percentile(&small.get_ms, 99.0),
                percentile(&large.get_ms, 99.0),
                l50 / s50
            ),
            l50 / s50,
            2.0,
            "× (flat)",
        ));
    } else {
        rows.push(Row::skipped(
            BENCH,
            "start-up and GET /jobs/{id}: no foreman binary",
        ));
    }
    let worst = small
        .claim_us
        .iter()
        .zip(&large.claim_us)
        .map(|(s, l)| l / s)
        .fold(0.0_f64, f64::max);
    rows.push(Row::at_most(
        BENCH,
        format!(
            "queue selection ({} claim queries) p50: {} µs at {} rows, {} µs at {} rows; worst ratio {worst:.2}",
            queries.len(),
            join(&small.claim_us),
            small.rows,
            join(&large.claim_us),
            large.rows
        ),
        worst,
        2.0,
        "× (flat)",
    ));
    rows.push(Row::check(
        BENCH,
        "claim queries' EXPLAIN QUERY PLAN: every step uses an index, no sort",
        "indexed",
        plans_ok,
    ));
    Ok(rows)
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The `SELECT`s the claim runs, as written in `store/claim.rs` and in
/// `store/fair_share.rs`'s `active_service`.
fn claim_queries() -> Vec<String> {
    let mut out = Vec::new();
    for source in CLAIM_RS {
        let mut rest = *source;
        while let Some(start) = rest.find("\"SELECT") {
            let tail = &rest[start + 1..];
            let Some(end) = tail.find('"') else { break };
            let sql = &tail[..end];
            if sql.contains("FROM queue_groups") || sql.contains("running * ?1") {
                out.push(sql.to_owned());
            }
            rest = &tail[end + 1..];
        }
    }
    out
}

/// Whether a plan line scans a table that holds one row per group or per active tenant,
/// never one per job: the queue's groups (priority, tenant, model) and the partial index
/// of active tenants.
fn is_small_table_scan(line: &str) -> bool {
    line == "SCAN g" || line.contains("tenants_active")
}

/// Whether a plan line only heads the steps of a subquery (`CORRELATED SCALAR SUBQUERY
/// 1`), whose own lines follow and are checked.
fn is_subquery_heading(line: &str) -> bool {
    line.ends_with(|c: char| c.is_ascii_digit()) && line.contains("SUBQUERY")
}

/// The arguments a claim query takes: the running jobs' estimate for the tenants' service,
/// none for the heads.
fn bind(sql: &str) -> Vec<rusqlite::types::Value> {
    if sql.contains("?1") {
        vec![rusqlite::types::Value::Real(1000.0)]
    } else {
        Vec::new()
    }
}

fn query_plan(conn: &Connection, sql: &str) -> Result<Vec<String>> {
    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let rows = statement.query_map(rusqlite::params_from_iter(bind(sql)), |r| {
        r.get::<_, String>(3)
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Median µs of `times` runs of `sql` (first row only, as the claim reads it).
fn time_query(conn: &Connection, sql: &str, times: usize) -> Result<f64> {
    let mut statement = conn.prepare(sql)?;
    let args = bind(sql);
    let mut out = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        let mut rows = statement.query(rusqlite::params_from_iter(args.iter()))?;
        if rows.next()?.is_none() {
            bail!("the claim query found no queued job");
        }
        out.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(percentile(&out, 50.0))
}

/// Creates the schema and fills it in one transaction with `finished` done jobs (each
/// with its `completion` artifact) and then `queued` queued ones; returns the done ids.
fn populate(db: &Path, finished: usize, queued: usize) -> Result<Vec<String>> {
    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    foreman_server::migrate_sqlite(&conn)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let payload = crate::http::chat_body(MODEL, true);
    let result = RESULT;
    let models = [MODEL, "other:latest", "third:latest"];
    let mut generator = ulid::Generator::new();
    let mut ids = Vec::with_capacity(finished);
    let tx = conn.transaction()?;
    {
        let mut job = tx.prepare(
            "INSERT INTO jobs (id, kind, origin, target, model, priority, state, attempts,
                               payload, result, created_at, updated_at)
             VALUES (?1, 'chat', 'async', 'default', ?2, 0, ?3, ?4, ?5, ?6, ?7, ?7)",
        )?;
        let mut artifact = tx.prepare(
            "INSERT INTO artifacts (job_id, name, content_type, data, created_at)
             VALUES (?1, 'completion', 'text/plain; charset=utf-8', x'626c7565', ?2)",
        )?;
        for i in 0..finished + queued {
            let id = generator.generate()?.to_string();
            let done = i < finished;
            // Spread over the last minutes, inside the TTL, so the pruner leaves them.
            let at = now - (finished + queued - i) as i64 / 10;
            let model = if done {
                models[i % models.len()]
            } else {
                MODEL
            };
            job.execute(params![
                id,
                model,
                if done { "done" } else { "queued" },
                i32::from(done),
                payload,
                done.then_some(result.as_bytes()),
                at
            ])?;
            if done {
                artifact.execute(params![id, at])?;
                ids.push(id);
            }
        }
    }
    tx.commit()?;
    Ok(ids)
}
