//! 5. Scheduling quality on the simulator with a model-load cost: three models
//!    interleaved, all jobs submitted at once. Model loads and makespan for foreman's
//!    drain by model (default affinity window), for plain FIFO (a zero window), and the
//!    lower bound (one load per model); and the longest wait from submission to start.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use foreman_sim::SimConfig;

use crate::http::{client, get_json, submit};
use crate::inproc::Foreman;
use crate::report::Row;
use crate::Options;

const BENCH: &str = "5 scheduling";
const MODELS: [&str; 3] = ["llama3.2:latest", "qwen2.5:0.5b", "mistral:7b"];
/// Each generation takes one timer sleep (the simulator's prompt time) and then streams
/// its tokens without delay: many sub-millisecond sleeps would round up to the timer's
/// 1 ms tick and make the generation time uncertain.
const GENERATION: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct Outcome {
    loads: u64,
    makespan: Duration,
    longest_wait: Duration,
}

async fn schedule(options: &Options, window: Duration) -> Result<Outcome> {
    let sizes = &options.sizes;
    let config = SimConfig {
        models: MODELS.iter().map(|m| (*m).to_owned()).collect(),
        load_time: sizes.schedule_load_time,
        tokens_per_second: f64::INFINITY,
        reply_tokens: 20,
        first_token_latency: GENERATION,
        ..SimConfig::default()
    };
    let sim = foreman_sim::spawn(config).await?;
    let url = sim.url();
    let foreman = Foreman::start(options.placement(), url, |c| c.affinity_window = window).await?;
    let client = client();
    let loads_before = sim.stats().loads;

    let started = Instant::now();
    let mut submitted: HashMap<String, Instant> = HashMap::new();
    for i in 0..sizes.schedule_jobs_per_model * MODELS.len() {
        let id = submit(&client, &foreman.url, MODELS[i % MODELS.len()]).await?;
        submitted.insert(id, Instant::now());
    }
    // Watch the jobs leave the queue; a start is seen within one poll (about 5 ms).
    let mut began: HashMap<String, Instant> = HashMap::new();
    let mut ended: HashMap<String, Instant> = HashMap::new();
    let deadline = Duration::from_secs(300);
    while ended.len() < submitted.len() {
        let list = get_json(&client, &format!("{}/jobs?limit=500", foreman.url)).await?;
        let now = Instant::now();
        for job in list["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(id) = job["id"].as_str() else {
                continue;
            };
            if !submitted.contains_key(id) {
                continue;
            }
            let state = job["state"].as_str().unwrap_or_default();
            if state != "queued" {
                began.entry(id.to_owned()).or_insert(now);
            }
            if matches!(state, "done" | "failed" | "cancelled") {
                if state != "done" {
                    bail!("job {id} ended {state}: {}", job["error"]);
                }
                ended.entry(id.to_owned()).or_insert(now);
            }
        }
        if started.elapsed() > deadline {
            bail!("the jobs did not finish within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let makespan = ended
        .values()
        .max()
        .map(|t| *t - started)
        .unwrap_or_default();
    let longest_wait = submitted
        .iter()
        .map(|(id, at)| began.get(id).map(|b| *b - *at).unwrap_or_default())
        .max()
        .unwrap_or_default();
    let loads = sim.stats().loads - loads_before;
    foreman.stop().await?;
    sim.stop().await?;
    Ok(Outcome {
        loads,
        makespan,
        longest_wait,
    })
}

fn describe(name: &str, o: &Outcome) -> String {
    format!(
        "{name}: {} loads, makespan {:.2} s, longest wait {:.2} s",
        o.loads,
        o.makespan.as_secs_f64(),
        o.longest_wait.as_secs_f64()
    )
}

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let jobs = sizes.schedule_jobs_per_model * MODELS.len();
    let default_window =
        foreman_server::Config::new("http://127.0.0.1:1".parse()?, "x").affinity_window;
    let one_run = sizes.schedule_load_time + GENERATION;
    let lower_bound = MODELS.len() as u64;
    let ideal = sizes.schedule_load_time * MODELS.len() as u32 + GENERATION * jobs as u32;

    let foreman = schedule(options, default_window).await?;
    let fifo = schedule(options, Duration::ZERO).await?;
    let mut rows = Vec::new();
    let bound = default_window + one_run;
    let ok = foreman.loads <= lower_bound + 1 && foreman.longest_wait <= bound;
    rows.push(Row::check(
        BENCH,
        format!(
            "{} (load {} ms, {jobs} jobs, 3 models interleaved)",
            describe(
                &format!("foreman, window {}s", default_window.as_secs()),
                &foreman
            ),
            sizes.schedule_load_time.as_millis()
        ),
        format!(
            "loads ≤ {} and every wait ≤ bound {:.2} s (window + one load and generation)",
            lower_bound + 1,
            bound.as_secs_f64()
        ),
        ok,
    ));
    if sizes.schedule_short_window {
        let window = Duration::from_secs(1);
        let short = schedule(options, window).await?;
        rows.push(Row::info(
            BENCH,
            describe("foreman, window 1s", &short),
            Some(short.loads as f64),
        ));
    }
    rows.push(Row::info(
        BENCH,
        describe("plain FIFO (window 0)", &fifo),
        Some(fifo.loads as f64),
    ));
    rows.push(Row::info(
        BENCH,
        format!(
            "lower bound: {lower_bound} loads, makespan {:.2} s (loads + generation time, no overhead)",
            ideal.as_secs_f64()
        ),
        Some(lower_bound as f64),
    ));
    rows.push(Row::info(
        BENCH,
        format!(
            "foreman vs FIFO: {:.1}× fewer loads, makespan {:.2}× shorter",
            fifo.loads as f64 / foreman.loads.max(1) as f64,
            fifo.makespan.as_secs_f64() / foreman.makespan.as_secs_f64().max(1e-9)
        ),
        None,
    ));
    Ok(rows)
}
