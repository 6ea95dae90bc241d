//! 4. End-to-end throughput: async jobs per second from the first submission to the last
//!    `done`, against an instant target; the same with eight instant targets behind one
//!    foreman (one lane each, one SQLite file), as a multiple of one target's; and the
//!    one-target figure again with wrk submitting, as a cross-check of the load generator.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use foreman_sim::SimHandle;

use crate::cpu::{self, Cpu, PerUnit};
use crate::enqueue::flood;
use crate::http::{client, get_json, next_look, wait_drained};
use crate::inproc::Foreman;
use crate::report::Row;
use crate::target;
use crate::wrk;
use crate::Options;

const BENCH: &str = "4 throughput";
/// Async jobs per second to one zero-latency target (issue 16).
const GOAL: f64 = 2500.0;
/// Zero-latency targets behind one foreman in the scale figure.
const TARGETS: usize = 8;
/// The scale figure's goal: eight targets' throughput as a multiple of one's.
const SCALE_GOAL: f64 = 5.0;

/// One end-to-end run.
#[derive(Debug)]
struct Run {
    jobs: usize,
    elapsed: Duration,
    submit_phase: Duration,
    /// The CPU this process spent meanwhile.
    cpu: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }

    fn spent(&self) -> PerUnit {
        PerUnit {
            cpu: self.cpu,
            units: self.jobs,
            wall: self.elapsed,
        }
    }
}

/// Warms `foreman` up, then submits `jobs` from 64 clients and waits for the queue to
/// drain; checks that none failed and the last is `done`.
async fn submit_and_drain(foreman: &Foreman, jobs: usize) -> Result<Run> {
    let client = client();
    flood(&foreman.url, 8, Some(50), None).await?;
    wait_drained(&client, &foreman.url, Duration::from_secs(60)).await?;

    let started = Instant::now();
    let cpu = Cpu::now();
    let submitted = flood(&foreman.url, 64, Some(jobs), None).await?;
    let submit_phase = started.elapsed();
    wait_drained(&client, &foreman.url, Duration::from_secs(600)).await?;
    let elapsed = started.elapsed();
    let cpu = cpu.since();
    no_failures(&client, &foreman.url).await?;
    let last = submitted.ids.last().cloned().unwrap_or_default();
    let job = get_json(&client, &format!("{}/jobs/{last}", foreman.url)).await?;
    if job["state"] != "done" {
        bail!("job {last} ended {}", job["state"]);
    }
    Ok(Run {
        jobs: submitted.accepted,
        elapsed,
        submit_phase,
        cpu,
    })
}

async fn no_failures(client: &reqwest::Client, base: &str) -> Result<()> {
    let failed = get_json(client, &format!("{base}/jobs?state=failed&limit=5")).await?;
    if failed["jobs"]
        .as_array()
        .is_some_and(|jobs| !jobs.is_empty())
    {
        bail!("some jobs failed: {failed}");
    }
    Ok(())
}

/// `foreman_jobs{state="done"}` from `GET /metrics`.
async fn done_jobs(client: &reqwest::Client, base: &str) -> Result<u64> {
    let samples = crate::http::metrics(client, base).await?;
    // No done job yet: the gauge has no series for the state.
    let done = samples
        .get("foreman_jobs{state=\"done\"}")
        .copied()
        .unwrap_or(0.0);
    Ok(done as u64)
}

/// The one-target run with wrk submitting exactly `jobs` jobs; `None` without wrk. wrk
/// cannot wait for the jobs, so the end is when `/metrics` counts them all `done`.
async fn with_wrk(foreman: &Foreman, jobs: usize) -> Result<Option<Run>> {
    let client = client();
    flood(&foreman.url, 8, Some(50), None).await?;
    wait_drained(&client, &foreman.url, Duration::from_secs(60)).await?;
    let before = done_jobs(&client, &foreman.url).await?;
    let started = Instant::now();
    let cpu = Cpu::now();
    let Some(submitter) = wrk::submit_jobs(&foreman.url, 64, jobs)? else {
        return Ok(None);
    };
    let want = before + submitter.jobs as u64;
    loop {
        let done = done_jobs(&client, &foreman.url).await?;
        if done >= want {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("wrk's {} jobs were not done within 600 s", submitter.jobs);
        }
        let look = next_look(want - done, done.saturating_sub(before), started.elapsed());
        tokio::time::sleep(look).await;
    }
    let elapsed = started.elapsed();
    let cpu = cpu.since();
    drop(submitter);
    no_failures(&client, &foreman.url).await?;
    Ok(Some(Run {
        jobs: (want - before) as usize,
        elapsed,
        submit_phase: Duration::ZERO,
        cpu,
    }))
}

async fn instant_targets(n: usize) -> Result<Vec<SimHandle>> {
    let mut sims = Vec::with_capacity(n);
    for _ in 0..n {
        sims.push(target::instant().await?);
    }
    Ok(sims)
}

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let jobs = options.sizes.throughput_jobs;
    let target = target::instant().await?;
    let foreman = Foreman::start(options.placement(), target.url(), |_| {}).await?;
    let one = submit_and_drain(&foreman, jobs).await?;
    foreman.stop().await?;

    let sims = instant_targets(TARGETS).await?;
    let foreman = Foreman::start_over(options.placement(), &sims, "t").await?;
    let many = submit_and_drain(&foreman, jobs).await?;
    foreman.stop().await?;

    let foreman = Foreman::start(options.placement(), target.url(), |_| {}).await?;
    let by_wrk = with_wrk(&foreman, jobs).await;
    foreman.stop().await?;

    let scale = many.per_second() / one.per_second();
    let wrk_rows = match by_wrk? {
        Some(run) => vec![Row::at_least(
            BENCH,
            format!(
                "async jobs submit → done, submitted by wrk (64 connections): {:.0}/s ({} jobs in {:.2} s)",
                run.per_second(),
                run.jobs,
                run.elapsed.as_secs_f64()
            ),
            run.per_second(),
            GOAL,
            "/s",
        ),
        cpu::row(BENCH, run.spent(), "job submitted by wrk", "foreman and the target; not wrk's")],
        None => vec![Row::skipped(BENCH, wrk::MISSING)],
    };
    let mut rows = vec![
        Row::at_least(
            BENCH,
            format!(
                "async jobs submit → done: {:.0}/s ({} jobs in {:.2} s; submitting took {:.2} s)",
                one.per_second(),
                one.jobs,
                one.elapsed.as_secs_f64(),
                one.submit_phase.as_secs_f64()
            ),
            one.per_second(),
            GOAL,
            "/s",
        ),
        cpu::row(
            BENCH,
            one.spent(),
            "job",
            "the 64 clients, foreman and the target",
        ),
    ];
    rows.extend(wrk_rows);
    rows.extend([
        Row::at_least(
            BENCH,
            format!(
                "{TARGETS} instant targets behind one foreman: {:.0} jobs/s, {scale:.2}× one target's ({} jobs in {:.2} s; submitting took {:.2} s)",
                many.per_second(),
                many.jobs,
                many.elapsed.as_secs_f64(),
                many.submit_phase.as_secs_f64()
            ),
            scale,
            SCALE_GOAL,
            "× one target",
        ),
        cpu::row(BENCH, many.spent(), "job with 8 targets", "the 64 clients, foreman and the targets"),
    ]);
    Ok(rows)
}
