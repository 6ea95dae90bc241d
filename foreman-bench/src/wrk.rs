//! wrk, a load generator written in C, as a cross-check of the bench's own (reqwest tasks
//! on this process's tokio runtime): `POST /jobs` with the same body from 64 keep-alive
//! connections, set up by a small Lua script.
//!
//! Without wrk installed, the functions return `Ok(None)` and the benchmarks print a
//! `skipped` row; `scripts/bench.sh` installs it (Debian's `wrk`).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::http::{chat_body, MODEL};
use crate::process::find_program;

/// The row printed when wrk is missing.
pub(crate) const MISSING: &str =
    "wrk cross-check: wrk not installed (scripts/bench.sh installs it)";

/// wrk's threads: one per core of this machine, at most.
fn threads(connections: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(2, usize::from)
        .min(connections)
        .max(1)
}

/// What wrk printed for a timed run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// Responses read.
    pub requests: u64,
    /// Of them, not 2xx or 3xx.
    pub non_2xx: u64,
    /// How long it ran.
    pub seconds: f64,
    /// Its socket-error line, if it printed one.
    pub socket_errors: Option<String>,
}

impl Summary {
    /// Successful responses per second.
    pub(crate) fn per_second(&self) -> f64 {
        self.requests.saturating_sub(self.non_2xx) as f64 / self.seconds
    }

    /// Reads wrk's report: `N requests in 5.00s, …`, `Non-2xx or 3xx responses: N`,
    /// `Socket errors: …`.
    pub(crate) fn parse(report: &str) -> Result<Self> {
        let line = report
            .lines()
            .find(|line| line.contains(" requests in "))
            .with_context(|| format!("no `requests in` line in wrk's report: {report}"))?;
        let mut words = line.split_whitespace();
        let requests = words.next().unwrap_or_default().parse()?;
        let seconds = line
            .split(" requests in ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .context("no duration in wrk's report")?;
        let seconds = parse_wrk_duration(seconds.trim())
            .with_context(|| format!("wrk's duration {seconds:?}"))?;
        let non_2xx = match report
            .lines()
            .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
        {
            Some(n) => n.trim().parse()?,
            None => 0,
        };
        let socket_errors = report
            .lines()
            .find(|line| line.trim().starts_with("Socket errors:"))
            .map(|line| line.trim().to_owned());
        Ok(Self {
            requests,
            non_2xx,
            seconds,
            socket_errors,
        })
    }
}

/// wrk's `5.00s`, `1.00m`, `850.12ms`, `12.5us` as seconds.
fn parse_wrk_duration(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .context("no unit")?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => bail!("unknown unit {unit:?}"),
    };
    Ok(number * scale)
}

/// The Lua script: `POST /jobs` with the bench's chat body; with `limit`, each thread
/// sends exactly `limit` of them and then stops (any request asked of it after that, in
/// the same turn of its event loop, is a `GET /healthz`, which makes no job).
fn script(limit: Option<usize>) -> String {
    let body = String::from_utf8(chat_body(MODEL, false)).expect("the chat body is UTF-8");
    let mut script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [[{body}]]\n"
    );
    if let Some(limit) = limit {
        script.push_str(&format!(
            r#"local limit = {limit}
local sent = 0
local post = wrk.format()
local health = wrk.format("GET", "/healthz", {{}}, nil)
function request()
  sent = sent + 1
  if sent < limit then return post end
  if sent == limit then wrk.thread:stop() return post end
  return health
end
"#
        ));
    }
    script
}

fn command(
    bin: &std::path::Path,
    dir: &std::path::Path,
    base: &str,
    connections: usize,
    seconds: u64,
    limit: Option<usize>,
) -> Result<Command> {
    let script_path = dir.join("post_jobs.lua");
    std::fs::write(&script_path, script(limit))?;
    let mut command = Command::new(bin);
    command
        .arg(format!("-t{}", threads(connections)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script_path)
        .arg(format!("{base}/jobs"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}

/// `POST /jobs` from `connections` connections for `duration` (whole seconds, at least
/// one: wrk's unit); `None` without wrk.
pub(crate) async fn post_jobs(
    base: &str,
    connections: usize,
    duration: Duration,
) -> Result<Option<Summary>> {
    let Some(bin) = find_program("wrk") else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let output = command(&bin, dir.path(), base, connections, seconds, None)?
        .output()
        .await
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Summary::parse(&stdout).map(Some)
}

/// wrk submitting [`Submitter::jobs`] jobs from `connections` connections, each thread
/// stopping after its share (`total` rounded down to a multiple of the threads). wrk
/// itself exits only after its duration, so the caller watches the jobs, not wrk, and
/// drops it (which kills it) when done.
#[derive(Debug)]
pub(crate) struct Submitter {
    /// How many jobs it submits.
    pub jobs: usize,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// Starts a [`Submitter`]; `None` without wrk.
pub(crate) fn submit_jobs(
    base: &str,
    connections: usize,
    total: usize,
) -> Result<Option<Submitter>> {
    let Some(bin) = find_program("wrk") else {
        return Ok(None);
    };
    let threads = threads(connections);
    let per_thread = (total / threads).max(1);
    let dir = tempfile::tempdir()?;
    let child = command(&bin, dir.path(), base, connections, 600, Some(per_thread))?
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    Ok(Some(Submitter {
        // wrk calls the first thread's `request()` once before it connects, to check the
        // script (`script_verify_request` in wrk.c), so that thread sends one job fewer.
        jobs: per_thread * threads - 1,
        _child: child,
        _dir: dir,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrk_report_gives_its_requests_duration_and_errors() {
        let report = "Running 5s test @ http://127.0.0.1:1/jobs\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.10ms    1.00ms  20.00ms   90.00%\n  123456 requests in 5.00s, 30.00MB read\n  Socket errors: connect 0, read 0, write 0, timeout 3\n  Non-2xx or 3xx responses: 6\nRequests/sec:  24691.20\nTransfer/sec:      6.00MB\n";
        let summary = Summary::parse(report).unwrap();
        assert_eq!(summary.requests, 123_456);
        assert_eq!(summary.non_2xx, 6);
        assert!((summary.seconds - 5.0).abs() < 1e-9);
        assert!((summary.per_second() - 24_690.0).abs() < 1e-6);
        assert_eq!(
            summary.socket_errors.as_deref(),
            Some("Socket errors: connect 0, read 0, write 0, timeout 3")
        );
    }

    #[test]
    fn wrk_durations_read_in_every_unit() {
        assert!((parse_wrk_duration("1.00m").unwrap() - 60.0).abs() < 1e-9);
        assert!((parse_wrk_duration("850.00ms").unwrap() - 0.85).abs() < 1e-9);
        assert!(parse_wrk_duration("5.00 parsecs").is_err());
    }

    #[test]
    fn a_report_without_a_count_is_an_error_not_a_panic() {
        assert!(Summary::parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }
}
