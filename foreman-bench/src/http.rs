//! The benchmark's HTTP client side and request bodies.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The model the benchmarks' simulated target lists (see `target`).
pub(crate) const MODEL: &str = "bench:latest";

/// A keep-alive client with Nagle off, as Ollama clients use.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("a default reqwest client builds")
}

/// An `/api/chat` body for `model`.
/// The samples of `GET {base}/metrics`, by series as written (`name{labels}`); lines
/// that are not `series number` are skipped.
pub(crate) async fn metrics(
    client: &reqwest::Client,
    base: &str,
) -> Result<std::collections::HashMap<String, f64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect())
}

pub(crate) fn chat_body(model: &str, stream: bool) -> Vec<u8> {
    json!({
        "model": model,
        "messages": [{ "role": "user", "content": "Why is the sky blue?" }],
        "stream": stream,
    })
    .to_string()
    .into_bytes()
}

/// Starts a streamed `POST {base}/api/chat` for `model`; the response, once it answered
/// with a success status.
pub(crate) async fn stream_chat(
    client: &reqwest::Client,
    base: &str,
    model: &str,
) -> Result<reqwest::Response> {
    let response = client
        .post(format!("{base}/api/chat"))
        .header("content-type", "application/json")
        .body(chat_body(model, true))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("{base}/api/chat answered {} for {model}", response.status());
    }
    Ok(response)
}

/// `POST /jobs` for `model`; the job id.
pub(crate) async fn submit(client: &reqwest::Client, base: &str, model: &str) -> Result<String> {
    submit_as(client, base, model, None).await
}

/// `POST /jobs` for `model` with the API key `key`, if any; the job id.
pub(crate) async fn submit_as(
    client: &reqwest::Client,
    base: &str,
    model: &str,
    key: Option<&str>,
) -> Result<String> {
    let mut request = client
        .post(format!("{base}/jobs"))
        .header("content-type", "application/json")
        .body(chat_body(model, false));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await?;
    created(
        response,
        reqwest::StatusCode::ACCEPTED,
        "POST /jobs",
        "job_id",
    )
    .await
}

/// The string `field` of the JSON answer to `what`, which must have answered `expected`.
pub(crate) async fn created(
    response: reqwest::Response,
    expected: reqwest::StatusCode,
    what: &str,
    field: &str,
) -> Result<String> {
    let status = response.status();
    let body: Value = response.json().await?;
    if status != expected {
        bail!("{what} answered {status}: {body}");
    }
    body[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {field} in the answer"))
}

/// GET `url` as JSON.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let response = client.get(url).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    Ok(response.json().await?)
}

/// Waits until `GET {base}/healthz` answers 200; the time it took.
pub(crate) async fn wait_healthy(base: &str, deadline: Duration) -> Result<Duration> {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > deadline {
            bail!("{base} did not become healthy within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls `GET /queue` until nothing is queued or running, looking again after
/// [`next_look`] of what is left.
pub(crate) async fn wait_drained(
    client: &reqwest::Client,
    base: &str,
    deadline: Duration,
) -> Result<()> {
    let started = Instant::now();
    let mut first_depth = None;
    loop {
        let queue = get_json(client, &format!("{base}/queue")).await?;
        let depth = queue["depth"].as_u64().unwrap_or(0);
        if depth == 0 && queue["running"].is_null() {
            return Ok(());
        }
        if started.elapsed() > deadline {
            bail!("the queue did not drain within {deadline:?}: {queue}");
        }
        let first = *first_depth.get_or_insert(depth);
        let drained = first.saturating_sub(depth);
        tokio::time::sleep(next_look(depth, drained, started.elapsed())).await;
    }
}

/// How long to wait before looking again at a run with `left` jobs to go, `done` done in
/// `elapsed`: a quarter of the time the rest should take at the rate so far, from 2 to
/// 50 ms. Each look is a request foreman serves on the cores it is measured on: looking
/// every 2 ms throughout took a fifth to a quarter of the async throughput benchmark 4
/// measured (issue 16, phase F in docs/benchmarks.md). Near the end the looks are 2 ms apart again, so the
/// end is seen as promptly as before.
pub(crate) fn next_look(left: u64, done: u64, elapsed: Duration) -> Duration {
    const SOONEST: Duration = Duration::from_millis(2);
    const LATEST: Duration = Duration::from_millis(50);
    if done == 0 || elapsed.is_zero() {
        return SOONEST;
    }
    let per_job = elapsed.as_secs_f64() / done as f64;
    Duration::from_secs_f64(per_job * left as f64 / 4.0).clamp(SOONEST, LATEST)
}

/// A listener on a free loopback port whose accepted sockets have TCP_NODELAY (Linux
/// copies the option from the listener to the sockets it accepts).
pub(crate) fn nodelay_listener() -> Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_nodelay(true)?;
    socket.bind("127.0.0.1:0".parse()?)?;
    Ok(socket.listen(1024)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_look_is_a_quarter_of_the_time_left_between_2_and_50_ms() {
        let second = Duration::from_secs(1);
        // 1,000 done in a second, 100 left: 100 ms to go, so a look in 25 ms.
        assert_eq!(next_look(100, 1_000, second), Duration::from_millis(25));
        assert_eq!(next_look(100_000, 1_000, second), Duration::from_millis(50));
        assert_eq!(next_look(1, 1_000, second), Duration::from_millis(2));
        // Nothing done yet says nothing of the rate: look again soon.
        assert_eq!(next_look(5_000, 0, second), Duration::from_millis(2));
    }
}
