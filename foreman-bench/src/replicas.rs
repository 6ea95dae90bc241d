//! 9. Replicas: the queue on PostgreSQL against SQLite, with one, two and three `foreman
//!    serve` processes sharing one database, in one run (ADR 23).
//!
//! For each set-up: a durable enqueue rate (`POST /jobs` from 64 clients spread over the
//! replicas, against a target that holds the first job so nothing drains), end-to-end
//! async jobs per second against an instant target, and the claim latency (the mean of
//! `foreman_job_wait_seconds`, enqueue commit to claim, for jobs submitted one at a time
//! to an idle target; with replicas the claim may be another replica's, after a NOTIFY).
//!
//! PostgreSQL comes from `FOREMAN_BENCH_PG_URL` (or `FOREMAN_TEST_PG_URL`, as
//! `scripts/with-postgres.sh` sets), a role that may create databases; without one the
//! PostgreSQL set-ups are skipped. The processes are release builds of `foreman`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::enqueue::flood;
use crate::http::{client, get_json, submit, wait_drained, MODEL};
use crate::process::{find_binary, Process};
use crate::report::Row;
use crate::target;
use crate::Options;

const BENCH: &str = "9 replicas";

/// Enqueue clients, spread over the replicas.
const CLIENTS: usize = 64;

/// Jobs submitted one at a time for the claim latency.
const SEQUENTIAL: usize = 50;

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let Some(bin) = find_binary(options.foreman_bin.as_deref()) else {
        return Ok(vec![Row::skipped(
            BENCH,
            "no foreman binary (cargo build --release -p foreman-cli)",
        )]);
    };
    let pg = std::env::var("FOREMAN_BENCH_PG_URL")
        .or_else(|_| std::env::var("FOREMAN_TEST_PG_URL"))
        .ok();
    let mut setups: Vec<(String, Option<usize>)> = vec![("SQLite, 1 process".into(), None)];
    if pg.is_some() {
        for n in 1..=3 {
            setups.push((
                format!("PostgreSQL, {n} replica{}", if n == 1 { "" } else { "s" }),
                Some(n),
            ));
        }
    }
    let sizes = &options.sizes;
    let mut rows = Vec::new();
    for (name, replicas) in setups {
        eprintln!("   {name}");
        let figures = measure(
            &bin,
            pg.as_deref(),
            replicas,
            sizes.enqueue_duration,
            sizes.throughput_jobs,
        )
        .await
        .with_context(|| name.clone())?;
        rows.push(Row::info(
            BENCH,
            format!(
                "{name}: POST /jobs {:.0}/s, submit → done {:.0} jobs/s, claim latency {:.2} ms",
                figures.enqueue_per_s, figures.jobs_per_s, figures.claim_ms
            ),
            Some(figures.jobs_per_s),
        ));
    }
    if pg.is_none() {
        rows.push(Row::skipped(
            BENCH,
            "PostgreSQL set-ups: set FOREMAN_BENCH_PG_URL, or run under scripts/with-postgres.sh",
        ));
    }
    Ok(rows)
}

struct Figures {
    enqueue_per_s: f64,
    jobs_per_s: f64,
    claim_ms: f64,
}

/// Starts the set-up (a SQLite process when `replicas` is `None`), measures, stops it.
async fn measure(
    bin: &std::path::Path,
    pg: Option<&str>,
    replicas: Option<usize>,
    enqueue_for: Duration,
    jobs: usize,
) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    // Enqueue: a held target, so the flood measures only committing jobs.
    let held = target::held().await?;
    let procs = start(bin, pg, replicas, held.url(), dir.path().join("enqueue.db")).await?;
    let urls: Vec<String> = procs.iter().map(|p| p.url.clone()).collect();
    let flooded = spread(&urls, CLIENTS, None, Some(enqueue_for)).await?;
    drop(procs);
    drop(held);

    // Throughput and claim latency: an instant target.
    let instant = target::instant().await?;
    let procs = start(bin, pg, replicas, instant.url(), dir.path().join("e2e.db")).await?;
    let urls: Vec<String> = procs.iter().map(|p| p.url.clone()).collect();
    let http = client();
    let started = Instant::now();
    let submitted = spread(&urls, CLIENTS, Some(jobs), None).await?;
    for url in &urls {
        wait_drained(&http, url, Duration::from_secs(600)).await?;
    }
    let jobs_per_s = submitted as f64 / started.elapsed().as_secs_f64();
    let before = wait_sum_count(&http, &urls).await?;
    for i in 0..SEQUENTIAL {
        let url = &urls[i % urls.len()];
        let id = submit(&http, url, MODEL).await?;
        loop {
            let job = get_json(&http, &format!("{url}/jobs/{id}")).await?;
            match job["state"].as_str() {
                Some("done") => break,
                Some("failed" | "cancelled") => bail!("job {id} ended {}", job["state"]),
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    let after = wait_sum_count(&http, &urls).await?;
    let claim_ms = (after.0 - before.0) / (after.1 - before.1).max(1.0) * 1000.0;
    drop(procs);
    Ok(Figures {
        enqueue_per_s: flooded as f64 / enqueue_for.as_secs_f64(),
        jobs_per_s,
        claim_ms,
    })
}

async fn start(
    bin: &std::path::Path,
    pg: Option<&str>,
    replicas: Option<usize>,
    target: &str,
    sqlite: std::path::PathBuf,
) -> Result<Vec<Process>> {
    let max_queue = 1_000_000;
    match (pg, replicas) {
        (Some(pg), Some(n)) => {
            let db = fresh_database(pg).await?;
            let mut procs = Vec::new();
            for _ in 0..n {
                procs.push(Process::start_replica(bin, target, &db, max_queue).await?);
            }
            Ok(procs)
        }
        _ => Ok(vec![
            Process::start(bin, target, &sqlite, max_queue).await?.0,
        ]),
    }
}

/// Submissions from `clients` clients spread evenly over `urls`; returns how many were
/// accepted.
async fn spread(
    urls: &[String],
    clients: usize,
    total: Option<usize>,
    duration: Option<Duration>,
) -> Result<usize> {
    let per = clients / urls.len();
    let floods = urls.iter().map(|url| {
        let share = total.map(|t| t / urls.len());
        flood(url, per, share, duration)
    });
    let mut accepted = 0;
    for flooded in futures::future::join_all(floods).await {
        accepted += flooded?.accepted;
    }
    Ok(accepted)
}

/// The sum and count of `foreman_job_wait_seconds` over every replica.
async fn wait_sum_count(http: &reqwest::Client, urls: &[String]) -> Result<(f64, f64)> {
    let mut sum = 0.0;
    let mut count = 0.0;
    for url in urls {
        let samples = crate::http::metrics(http, url).await?;
        let sample = |series: &str| samples.get(series).copied().unwrap_or(0.0);
        sum += sample("foreman_job_wait_seconds_sum");
        count += sample("foreman_job_wait_seconds_count");
    }
    Ok((sum, count))
}

/// An empty database on the PostgreSQL server at `admin`; its URL.
async fn fresh_database(admin: &str) -> Result<String> {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let name = format!("foreman_bench_{}", ulid::Ulid::new()).to_lowercase();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    drop(client);
    let _ = connection.await;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}
