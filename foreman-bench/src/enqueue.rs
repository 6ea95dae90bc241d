//! 3. Durable enqueue: `POST /jobs` per second from many concurrent keep-alive clients,
//!    each answered `202` only after its job is committed. The target holds the first job
//!    forever, so the worker drains nothing and only enqueueing is measured. Cross-checked
//!    with wrk (64 connections, the same body) against a fresh foreman in front of the
//!    same held target.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cpu::{self, Cpu, PerUnit};
use crate::http::{client, submit, MODEL};
use crate::inproc::Foreman;
use crate::report::Row;
use crate::stats::{ms, percentile};
use crate::target;
use crate::wrk;
use crate::Options;

const BENCH: &str = "3 enqueue";
/// Durable `POST /jobs` per second from 64 clients (issue 16).
const GOAL: f64 = 40_000.0;

/// What a flood of submissions did.
#[derive(Debug, Default)]
pub(crate) struct Flood {
    pub accepted: usize,
    pub elapsed: Duration,
    /// Per request, ms.
    pub latency: Vec<f64>,
    /// Ids in the order they were accepted (per client, concatenated).
    pub ids: Vec<String>,
}

impl Flood {
    pub(crate) fn per_second(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }
}

/// Submits from `clients` concurrent clients (one keep-alive connection each) until
/// `total` jobs are accepted or `duration` has passed, whichever is first.
pub(crate) async fn flood(
    base: &str,
    clients: usize,
    total: Option<usize>,
    duration: Option<Duration>,
) -> Result<Flood> {
    let claimed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let base = base.to_owned();
        let claimed = Arc::clone(&claimed);
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut latency = Vec::new();
            let mut ids = Vec::new();
            loop {
                if total.is_some_and(|total| claimed.fetch_add(1, Ordering::Relaxed) >= total) {
                    break;
                }
                if duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
                let sent = Instant::now();
                let id = submit(&client, &base, MODEL).await?;
                latency.push(ms(sent.elapsed()));
                ids.push(id);
            }
            anyhow::Ok((latency, ids))
        }));
    }
    let mut flood = Flood::default();
    for task in tasks {
        let (latency, ids) = task.await??;
        flood.accepted += ids.len();
        flood.latency.extend(latency);
        flood.ids.extend(ids);
    }
    flood.elapsed = started.elapsed();
    Ok(flood)
}

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let target = target::held().await?;
    let foreman = Foreman::start(options.placement(), target.url(), |_| {}).await?;
    // Warm up: connections, caches, the writer thread.
    flood(
        &foreman.url,
        sizes.enqueue_clients,
        Some(sizes.enqueue_clients * 4),
        None,
    )
    .await?;
    let cpu = Cpu::now();
    let flood = flood(
        &foreman.url,
        sizes.enqueue_clients,
        None,
        Some(sizes.enqueue_duration),
    )
    .await?;
    let spent = PerUnit {
        cpu: cpu.since(),
        units: flood.accepted,
        wall: flood.elapsed,
    };
    foreman.stop().await?;
    let wrk_rows = cross_check(options, target.url()).await?;
    drop(target);
    let mut rows = vec![
        Row::at_least(
            BENCH,
            format!(
                "POST /jobs: {:.0}/s ({} accepted in {:.2} s by {} clients)",
                flood.per_second(),
                flood.accepted,
                flood.elapsed.as_secs_f64(),
                sizes.enqueue_clients
            ),
            flood.per_second(),
            GOAL,
            "/s",
        ),
        cpu::row(BENCH, spent, "POST /jobs", "the 64 clients and foreman"),
    ];
    rows.extend(wrk_rows);
    rows.push(Row::info(
        BENCH,
        format!(
            "POST /jobs latency under that load: p50 {:.2} ms, p99 {:.2} ms",
            percentile(&flood.latency, 50.0),
            percentile(&flood.latency, 99.0)
        ),
        Some(percentile(&flood.latency, 50.0)),
    ));
    Ok(rows)
}

/// The same flood from wrk, against a fresh foreman (an empty table, as the bench's own
/// flood had) in front of `target`; with the CPU foreman alone spent per job meanwhile
/// (wrk is another process, the held target does nothing).
async fn cross_check(options: &Options, target: &str) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let foreman = Foreman::start(options.placement(), target, |_| {}).await?;
    let cpu = Cpu::now();
    let summary = wrk::post_jobs(&foreman.url, sizes.enqueue_clients, sizes.enqueue_duration).await;
    let cpu = cpu.since();
    foreman.stop().await?;
    let Some(summary) = summary? else {
        return Ok(vec![Row::skipped(BENCH, wrk::MISSING)]);
    };
    let spent = PerUnit {
        cpu,
        units: summary.requests.saturating_sub(summary.non_2xx) as usize,
        wall: Duration::from_secs_f64(summary.seconds),
    };
    Ok(vec![
        Row::at_least(
            BENCH,
            format!(
                "POST /jobs by wrk: {:.0}/s ({} answered in {:.2} s by {} connections, {} not 2xx{})",
                summary.per_second(),
                summary.requests,
                summary.seconds,
                sizes.enqueue_clients,
                summary.non_2xx,
                summary
                    .socket_errors
                    .as_ref()
                    .map(|errors| format!("; {errors}"))
                    .unwrap_or_default()
            ),
            summary.per_second(),
            GOAL,
            "/s",
        ),
        cpu::row(BENCH, spent, "POST /jobs by wrk", "foreman alone"),
    ])
}
