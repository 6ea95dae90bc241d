//! 8. Several GPU boxes: three simulated targets, four models installed two or three to a
//!    box, requests for them interleaved and sent at once, each a streaming `/api/chat`.
//!    The same workload three ways: through foreman (routing by residency, drain by model
//!    per target), and straight to the boxes through two tiny routers written here:
//!    random choice among the boxes that have the model (Open WebUI's way with several
//!    Ollama URLs) and least connections (ollamaMQ, olla). For each: model loads (the
//!    simulators' count), makespan, and p95 wait (sent to first token).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use foreman_sim::{SimConfig, SimHandle};
use futures::StreamExt;

use crate::http::{client, stream_chat};
use crate::inproc::Foreman;
use crate::report::Row;
use crate::stats::percentile;
use crate::Options;

const BENCH: &str = "8 targets";
const MODELS: [&str; 4] = ["llama3.2:latest", "qwen2.5:7b", "mistral:7b", "gemma3:4b"];
/// Which models each box has: every model on two or three boxes.
const INSTALLED: [[usize; 3]; 3] = [[0, 1, 2], [1, 2, 3], [0, 2, 3]];

/// What one run of the workload did.
#[derive(Debug)]
struct Outcome {
    loads: u64,
    makespan: Duration,
    p95_wait: Duration,
}

impl Outcome {
    fn describe(&self, name: &str) -> String {
        format!(
            "{name}: {} loads, makespan {:.2} s, p95 wait {:.2} s",
            self.loads,
            self.makespan.as_secs_f64(),
            self.p95_wait.as_secs_f64()
        )
    }
}

/// How a request picks its box, for the two baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// Uniformly among the boxes that have the model.
    Random,
    /// The box with the fewest requests in flight among those that have the model.
    LeastConnections,
}

/// The simulated boxes' timing: the simulator's realistic defaults for the full suite,
/// ten times faster for `--quick` and the smoke test.
fn sim_config(box_index: usize, realistic: bool) -> SimConfig {
    let models = INSTALLED[box_index]
        .iter()
        .map(|m| MODELS[*m].to_owned())
        .collect();
    let defaults = SimConfig::default();
    let (load_time, tokens_per_second, first_token_latency) = if realistic {
        (
            defaults.load_time,
            defaults.tokens_per_second,
            defaults.first_token_latency,
        )
    } else {
        (
            defaults.load_time / 10,
            defaults.tokens_per_second * 10.0,
            defaults.first_token_latency / 10,
        )
    };
    SimConfig {
        models,
        load_time,
        tokens_per_second,
        first_token_latency,
        ..defaults
    }
}

async fn boxes(realistic: bool) -> Result<Vec<SimHandle>> {
    let mut sims = Vec::new();
    for index in 0..INSTALLED.len() {
        sims.push(foreman_sim::spawn(sim_config(index, realistic)).await?);
    }
    Ok(sims)
}

fn loads(sims: &[SimHandle]) -> u64 {
    sims.iter().map(|s| s.stats().loads).sum()
}

/// The interleaved workload: model indexes, in the order the requests are sent.
fn workload(per_model: usize) -> Vec<usize> {
    (0..per_model * MODELS.len())
        .map(|i| i % MODELS.len())
        .collect()
}

/// When one request was sent, got its first chunk, and ended.
#[derive(Debug, Clone, Copy)]
struct Timing {
    sent: Instant,
    first: Instant,
    ended: Instant,
}

/// A streaming chat to `base`: its timing, once read to the end.
async fn chat(http: reqwest::Client, base: String, model: &'static str) -> Result<Timing> {
    let sent = Instant::now();
    let response = stream_chat(&http, &base, model).await?;
    let mut chunks = response.bytes_stream();
    let mut first = None;
    while let Some(chunk) = chunks.next().await {
        chunk?;
        first.get_or_insert_with(Instant::now);
    }
    let ended = Instant::now();
    Ok(Timing {
        sent,
        first: first.unwrap_or(ended),
        ended,
    })
}

fn outcome(started: Instant, timings: &[Timing], loads: u64) -> Outcome {
    let makespan = timings
        .iter()
        .map(|t| t.ended - started)
        .max()
        .unwrap_or_default();
    let waits: Vec<f64> = timings
        .iter()
        .map(|t| (t.first - t.sent).as_secs_f64())
        .collect();
    Outcome {
        loads,
        makespan,
        p95_wait: Duration::from_secs_f64(percentile(&waits, 95.0)),
    }
}

async fn gather(tasks: Vec<tokio::task::JoinHandle<Result<Timing>>>) -> Result<Vec<Timing>> {
    let mut timings = Vec::with_capacity(tasks.len());
    for task in tasks {
        timings.push(task.await.context("a request task failed")??);
    }
    Ok(timings)
}

/// The workload through foreman in front of the three boxes.
async fn through_foreman(options: &Options, realistic: bool) -> Result<Outcome> {
    let sims = boxes(realistic).await?;
    let foreman = Foreman::start_over(options.placement(), &sims, "gpu").await?;
    let http = client();
    let before = loads(&sims);
    let started = Instant::now();
    let tasks = workload(options.sizes.targets_jobs_per_model)
        .into_iter()
        .map(|m| tokio::spawn(chat(http.clone(), foreman.url.clone(), MODELS[m])))
        .collect();
    let timings = gather(tasks).await?;
    let result = outcome(started, &timings, loads(&sims) - before);
    foreman.stop().await?;
    for sim in sims {
        sim.stop().await?;
    }
    Ok(result)
}

/// A tiny xorshift generator: the random router's choices are the same on every run.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The workload straight to the boxes, each request routed by `baseline` when it is sent.
async fn through_router(options: &Options, realistic: bool, baseline: Baseline) -> Result<Outcome> {
    let sims = boxes(realistic).await?;
    let in_flight: Arc<Vec<AtomicUsize>> =
        Arc::new(sims.iter().map(|_| AtomicUsize::new(0)).collect());
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let http = client();
    let before = loads(&sims);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for m in workload(options.sizes.targets_jobs_per_model) {
        let candidates: Vec<usize> = (0..sims.len())
            .filter(|b| INSTALLED[*b].contains(&m))
            .collect();
        let chosen = match baseline {
            Baseline::Random => candidates[random.below(candidates.len())],
            Baseline::LeastConnections => *candidates
                .iter()
                .min_by_key(|b| in_flight[**b].load(Ordering::SeqCst))
                .context("every model is on some box")?,
        };
        in_flight[chosen].fetch_add(1, Ordering::SeqCst);
        let (http, base, in_flight) = (
            http.clone(),
            sims[chosen].url().to_owned(),
            Arc::clone(&in_flight),
        );
        tasks.push(tokio::spawn(async move {
            let timing = chat(http, base, MODELS[m]).await;
            in_flight[chosen].fetch_sub(1, Ordering::SeqCst);
            timing
        }));
    }
    let timings = gather(tasks).await?;
    let result = outcome(started, &timings, loads(&sims) - before);
    for sim in sims {
        sim.stop().await?;
    }
    Ok(result)
}

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let realistic = options.sizes.targets_realistic;
    let jobs = options.sizes.targets_jobs_per_model * MODELS.len();
    let foreman = through_foreman(options, realistic).await?;
    let random = through_router(options, realistic, Baseline::Random).await?;
    let least = through_router(options, realistic, Baseline::LeastConnections).await?;
    let timing = if realistic {
        "the simulator's timing: 2 s loads, 40 tokens/s"
    } else {
        "the simulator's timing ÷ 10"
    };
    let best_load = random.loads.min(least.loads);
    let best_makespan = random.makespan.min(least.makespan);
    let ok = foreman.loads < best_load && foreman.makespan < best_makespan;
    let mut rows = vec![Row::check(
        BENCH,
        format!(
            "{} ({jobs} chats, 4 models interleaved, 3 boxes, {timing})",
            foreman.describe("foreman")
        ),
        "fewer loads and a shorter makespan than both routers below",
        ok,
    )];
    rows.push(Row::info(
        BENCH,
        random.describe("random among boxes with the model (Open WebUI)"),
        Some(random.loads as f64),
    ));
    rows.push(Row::info(
        BENCH,
        least.describe("least connections (ollamaMQ, olla)"),
        Some(least.loads as f64),
    ));
    rows.push(Row::info(
        BENCH,
        format!(
            "foreman vs the better router: {:.1}× fewer loads, makespan {:.2}× shorter",
            best_load as f64 / foreman.loads.max(1) as f64,
            best_makespan.as_secs_f64() / foreman.makespan.as_secs_f64().max(1e-9)
        ),
        None,
    ));
    Ok(rows)
}
