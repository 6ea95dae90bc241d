//! 4. End-to-end throughput: async jobs per second from the first submission to the last
//!    `done`, against an instant target.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::enqueue::flood;
use crate::http::{client, get_json, wait_drained};
use crate::inproc::Foreman;
use crate::report::Row;
use crate::target;
use crate::Options;

const BENCH: &str = "4 throughput";

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let target = target::instant().await?;
    let foreman = Foreman::start(options.placement(), target.url(), |_| {}).await?;
    let client = client();
    // Warm up.
    flood(&foreman.url, 8, Some(50), None).await?;
    wait_drained(&client, &foreman.url, Duration::from_secs(60)).await?;

    let started = Instant::now();
    let submitted = flood(&foreman.url, 64, Some(sizes.throughput_jobs), None).await?;
    let submit_phase = started.elapsed();
    wait_drained(&client, &foreman.url, Duration::from_secs(600)).await?;
    let elapsed = started.elapsed();
    let failed = get_json(
        &client,
        &format!("{}/jobs?state=failed&limit=5", foreman.url),
    )
    .await?;
    if failed["jobs"]
        .as_array()
        .is_some_and(|jobs| !jobs.is_empty())
    {
        bail!("some jobs failed: {failed}");
    }
    let last = submitted.ids.last().cloned().unwrap_or_default();
    let job = get_json(&client, &format!("{}/jobs/{last}", foreman.url)).await?;
    if job["state"] != "done" {
        bail!("job {last} ended {}", job["state"]);
    }
    foreman.stop().await?;
    let rate = submitted.accepted as f64 / elapsed.as_secs_f64();
    Ok(vec![Row::at_least(
        BENCH,
        format!(
            "async jobs submit → done: {rate:.0}/s ({} jobs in {:.2} s; submitting took {:.2} s)",
            submitted.accepted,
            elapsed.as_secs_f64(),
            submit_phase.as_secs_f64()
        ),
        rate,
        2000.0,
        "/s",
    )])
}
