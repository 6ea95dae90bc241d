//! The Ollama benchmarks 1 to 4 and 6 run against: foreman-sim with one model, resident,
//! and no delay unless the benchmark asks for one, so that what is measured is foreman
//! rather than a GPU.
//!
//! Every chunk carries the wall-clock time the simulator made it (`created_at`, as
//! Ollama's chunks do) and the final one its `total_duration`, so a reader in this process
//! can tell when a request reached the target and how long each chunk took to arrive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use foreman_sim::{SimConfig, SimHandle};
use serde_json::Value;

use crate::http::MODEL;

/// [`MODEL`], installed and resident.
fn one_model(config: SimConfig) -> SimConfig {
    SimConfig {
        models: vec![MODEL.to_owned()],
        resident: Some(MODEL.to_owned()),
        ..config
    }
}

async fn spawn(config: SimConfig) -> Result<SimHandle> {
    foreman_sim::spawn(one_model(config))
        .await
        .context("cannot start the simulated Ollama")
}

/// Answers every chat at once: one token and the final chunk (one JSON object for
/// `stream: false`).
pub(crate) async fn instant() -> Result<SimHandle> {
    spawn(SimConfig {
        reply_tokens: 1,
        ..SimConfig::instant()
    })
    .await
}

/// Streams `chunks` NDJSON lines (the last one final) `gap` apart.
pub(crate) async fn streaming(chunks: usize, gap: Duration) -> Result<SimHandle> {
    spawn(SimConfig {
        reply_tokens: chunks.saturating_sub(1),
        tokens_per_second: 1.0 / gap.as_secs_f64(),
        ..SimConfig::instant()
    })
    .await
}

/// Never answers, until it stops: the first generation holds the GPU and nobody releases
/// it, which keeps foreman's worker busy so jobs stay queued.
pub(crate) async fn held() -> Result<SimHandle> {
    spawn(SimConfig::manual()).await
}

/// Nanoseconds of wall-clock time, the clock `created_at` is read from.
pub(crate) fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// When the simulator made this chunk (or whole answer): its `created_at`, in [`now_ns`]
/// terms.
pub(crate) fn made_ns(chunk: &[u8]) -> Option<u64> {
    let chunk: Value = serde_json::from_slice(chunk).ok()?;
    created_ns(&chunk)
}

/// When the request reached the simulator: the final chunk's `created_at` less its
/// `total_duration`, in [`now_ns`] terms.
pub(crate) fn arrived_ns(answer: &[u8]) -> Option<u64> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    let total = answer["total_duration"].as_u64()?;
    created_ns(&answer)?.checked_sub(total)
}

fn created_ns(chunk: &Value) -> Option<u64> {
    let at = chrono::DateTime::parse_from_rfc3339(chunk["created_at"].as_str()?).ok()?;
    u64::try_from(at.timestamp_nanos_opt()?).ok()
}
