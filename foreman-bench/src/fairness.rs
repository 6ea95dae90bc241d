//! 7. Fair share between API keys (ADR 14): three keys with weights 1, 1 and 2 flood the
//!    queue with equal jobs at once; while all three are backlogged, each key's share of
//!    the GPU is printed against its fair share (25 %, 25 %, 50 %). Then a fourth key
//!    arrives late with one job: its wait, against the length of one job.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use foreman_server::Secret;
use foreman_sim::SimConfig;
use serde_json::{json, Value};

use crate::http::{client, submit_as, MODEL};
use crate::inproc::Foreman;
use crate::report::Row;
use crate::Options;

const BENCH: &str = "7 fairness";
const ADMIN: &str = "bench-admin-token";
/// Each job is one timer sleep on the simulated GPU, so every job costs the same.
const GENERATION: Duration = Duration::from_millis(10);
/// The flooding keys and their weights.
const KEYS: [(&str, u32); 3] = [("one", 1), ("two", 1), ("heavy", 2)];

/// When each job was seen to start and end, by its key.
#[derive(Debug, Default)]
struct Seen {
    key: HashMap<String, String>,
    began: HashMap<String, Instant>,
    ended: HashMap<String, Instant>,
}

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let per_key = options.sizes.schedule_jobs_per_model * 5;
    let sim = foreman_sim::spawn(SimConfig {
        models: vec![MODEL.to_owned()],
        resident: Some(MODEL.to_owned()),
        load_time: Duration::ZERO,
        tokens_per_second: f64::INFINITY,
        reply_tokens: 5,
        first_token_latency: GENERATION,
        ..SimConfig::default()
    })
    .await?;
    let foreman = Foreman::start(options.placement(), sim.url(), |c| {
        c.auth_token = Some(Secret::new(ADMIN));
    })
    .await?;
    let client = client();
    let mut secrets = HashMap::new();
    for (name, weight) in KEYS.iter().copied().chain([("late", 1)]) {
        secrets.insert(name, create_key(&client, &foreman.url, name, weight).await?);
    }

    let mut seen = Seen::default();
    for _ in 0..per_key {
        for (name, _) in KEYS {
            let id = submit_as(&client, &foreman.url, MODEL, Some(&secrets[name])).await?;
            seen.key.insert(id, name.to_owned());
        }
    }
    // The late key arrives once a quarter of the flood has run.
    let total = seen.key.len();
    watch(&client, &foreman.url, &mut seen, |s| {
        s.ended.len() >= total / 4
    })
    .await?;
    let late_submitted = Instant::now();
    let late = submit_as(&client, &foreman.url, MODEL, Some(&secrets["late"])).await?;
    seen.key.insert(late.clone(), "late".to_owned());
    watch(&client, &foreman.url, &mut seen, |s| {
        s.ended.len() == s.key.len()
    })
    .await?;
    foreman.stop().await?;
    sim.stop().await?;

    let late_wait = seen.began[&late].saturating_duration_since(late_submitted);
    // Shares while every key was backlogged: up to the first key's last start.
    let contended_until = KEYS
        .iter()
        .filter_map(|(name, _)| {
            seen.key
                .iter()
                .filter(|(_, k)| k == name)
                .filter_map(|(id, _)| seen.began.get(id))
                .max()
        })
        .min()
        .copied()
        .context("no job started")?;
    let started_by = |name: &str| {
        seen.key
            .iter()
            .filter(|(id, k)| {
                *k == name && seen.began.get(*id).is_some_and(|b| *b <= contended_until)
            })
            .count()
    };
    let contended: usize = KEYS.iter().map(|(name, _)| started_by(name)).sum();
    let weights: u32 = KEYS.iter().map(|(_, w)| w).sum();
    let mut rows = Vec::new();
    let mut worst = 0.0_f64;
    let mut shares = Vec::new();
    for (name, weight) in KEYS {
        let share = started_by(name) as f64 / contended.max(1) as f64;
        let fair = f64::from(weight) / f64::from(weights);
        worst = worst.max((share - fair).abs());
        shares.push(format!(
            "{name} (weight {weight}) {:.1} % (fair {:.1} %)",
            share * 100.0,
            fair * 100.0
        ));
    }
    rows.push(Row::at_most(
        BENCH,
        format!(
            "GPU share while all three keys were backlogged ({contended} equal jobs): {}",
            shares.join(", ")
        ),
        worst * 100.0,
        5.0,
        "points off fair",
    ));
    let runs = late_wait.as_secs_f64() / GENERATION.as_secs_f64();
    rows.push(Row::at_most(
        BENCH,
        format!(
            "a key arriving late behind {} queued jobs waited {:.1} ms for its first job ({runs:.1} job lengths)",
            total - total / 4,
            late_wait.as_secs_f64() * 1000.0
        ),
        runs,
        3.0,
        "job lengths",
    ));
    Ok(rows)
}

/// `POST /admin/keys` as the admin; the new key's secret.
async fn create_key(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    weight: u32,
) -> Result<String> {
    let response = client
        .post(format!("{base}/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": name, "weight": weight }))
        .send()
        .await?;
    crate::http::created(
        response,
        reqwest::StatusCode::CREATED,
        "POST /admin/keys",
        "key",
    )
    .await
}

/// Polls `GET /jobs` (as the admin, who sees every key's jobs) until `done` holds,
/// noting when each job is first seen running and ended.
async fn watch(
    client: &reqwest::Client,
    base: &str,
    seen: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done(seen) {
        let response = client
            .get(format!("{base}/jobs?limit=500"))
            .bearer_auth(ADMIN)
            .send()
            .await?;
        let list: Value = response.json().await?;
        let now = Instant::now();
        for job in list["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let (Some(id), Some(state)) = (job["id"].as_str(), job["state"].as_str()) else {
                continue;
            };
            if !seen.key.contains_key(id) {
                continue;
            }
            if state != "queued" {
                seen.began.entry(id.to_owned()).or_insert(now);
            }
            if matches!(state, "done" | "failed" | "cancelled") {
                if state != "done" {
                    bail!("job {id} ended {state}: {}", job["error"]);
                }
                seen.ended.entry(id.to_owned()).or_insert(now);
            }
        }
        if Instant::now() > deadline {
            bail!("the jobs did not finish in time");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}
