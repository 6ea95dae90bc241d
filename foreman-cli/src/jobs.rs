//! The job commands: submit, jobs, job, wait, artifact, cancel.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use foreman_client::{
    ChatMessage, ChatRequest, Client, Job, JobId, JobQuery, JobState, SubmitRequest,
};
use foreman_types::Backoff;

use crate::exit::Failure;
use crate::output::{age, print_json, print_table, short_duration, Progress};

/// `foreman submit`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The model to run
    #[arg(long, short)]
    model: String,
    /// POST every state change of the job to this URL
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// A system prompt
    #[arg(long)]
    system: Option<String>,
    /// Higher runs sooner
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i32>,
    /// Resubmitting with the same key returns the first job instead of a new one
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Wait for the job, showing its progress, and print the answer
    #[arg(long)]
    wait: bool,
    /// How long --wait waits
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
    /// The prompt
    prompt: String,
}

/// `foreman jobs`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only jobs in this state (queued, loading, working, done, failed, cancelled)
    #[arg(long, value_parser = parse_state)]
    state: Option<JobState>,
    /// Only jobs for this model
    #[arg(long)]
    model: Option<String>,
    /// At most this many
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

/// A command that takes one job id.
#[derive(Debug, Args)]
pub(crate) struct IdArg {
    /// The job's id
    #[arg(value_parser = parse_id)]
    id: JobId,
}

/// `foreman wait`.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The job's id
    #[arg(value_parser = parse_id)]
    id: JobId,
    /// Give up after this long (exit 1)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
}

/// `foreman artifact`.
#[derive(Debug, Args)]
pub(crate) struct ArtifactArgs {
    /// The job's id
    #[arg(value_parser = parse_id)]
    id: JobId,
    /// The artifact's name, for example `completion`
    name: String,
    /// Write to this file instead of stdout
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn parse_id(raw: &str) -> Result<JobId, String> {
    raw.parse()
        .map_err(|err: foreman_client::types::ParseIdError| err.to_string())
}

fn parse_state(raw: &str) -> Result<JobState, String> {
    raw.parse()
        .map_err(|err: foreman_client::types::ParseStateError| err.to_string())
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw)
        .map_err(|_| format!("{raw:?} is not a duration (e.g. 30s, 5m, 1h)"))
}

pub(crate) async fn submit(client: &Client, args: SubmitArgs, json: bool) -> Result<(), Failure> {
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::system(system));
    }
    messages.push(ChatMessage::user(args.prompt));
    let mut request = SubmitRequest::new(ChatRequest::new(args.model, messages));
    request.state_webhook_url = args.webhook;
    request.priority = args.priority;
    let id = match &args.idempotency_key {
        Some(key) => client.submit_with_key(request, key).await?,
        None => client.submit(request).await?,
    };
    if !args.wait {
        if json {
            print_json(&serde_json::json!({ "job_id": id }))?;
        } else {
            println!("{id}");
        }
        return Ok(());
    }
    if !json {
        eprintln!("submitted {id}");
    }
    let job = follow(client, id, args.timeout, !json).await?;
    finish(&job, json)
}

pub(crate) async fn list(client: &Client, args: ListArgs, json: bool) -> Result<(), Failure> {
    let mut query = JobQuery::new().limit(args.limit);
    query.state = args.state;
    query.model = args.model;
    let page = client.jobs(&query).await?;
    if json {
        return print_json(&page);
    }
    // Where each job ran, once there is more than the one default target to tell apart.
    let several = page
        .jobs
        .iter()
        .any(|job| job.target.as_deref().is_some_and(|t| t != "default"));
    let rows: Vec<Vec<String>> = page
        .jobs
        .iter()
        .map(|job| {
            let mut row = vec![
                job.id.to_string(),
                job.model.clone(),
                job.state.to_string(),
                job.attempts.to_string(),
                age(job.created_at),
            ];
            if several {
                row.push(job.target.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no jobs");
        return Ok(());
    }
    let mut header = vec!["ID", "MODEL", "STATE", "ATTEMPTS", "AGE"];
    if several {
        header.push("TARGET");
    }
    print_table(&header, &rows);
    Ok(())
}

pub(crate) async fn show(client: &Client, args: IdArg, json: bool) -> Result<(), Failure> {
    let job = client.job(args.id).await?;
    if json {
        return print_json(&job);
    }
    let mut rows = vec![
        ("id", job.id.to_string()),
        ("model", job.model.clone()),
        ("state", job.state.to_string()),
        ("attempts", job.attempts.to_string()),
        ("priority", job.priority.to_string()),
        (
            "created",
            format!(
                "{} ({} ago)",
                job.created_at.to_rfc3339(),
                age(job.created_at)
            ),
        ),
        (
            "updated",
            format!(
                "{} ({} ago)",
                job.updated_at.to_rfc3339(),
                age(job.updated_at)
            ),
        ),
    ];
    if let Some(target) = &job.target {
        rows.push(("target", target.clone()));
    }
    if let Some(position) = job.queue_position {
        rows.push(("queue position", position.to_string()));
    }
    if let Some(ms) = job.estimated_wait_ms {
        rows.push(("estimated wait", format!("~{}", wait_left(ms))));
    }
    if let Some(error) = &job.error {
        rows.push(("error", error.clone()));
    }
    if let Some(url) = &job.state_webhook_url {
        let delivered = job
            .webhook_attempts
            .iter()
            .filter(|a| a.error.is_none())
            .count();
        rows.push((
            "webhook",
            format!(
                "{url} ({delivered} delivered, {} attempts)",
                job.webhook_attempts.len()
            ),
        ));
    }
    for artifact in &job.artifacts {
        rows.push((
            "artifact",
            format!(
                "{} ({}, {} bytes)",
                artifact.name, artifact.content_type, artifact.size
            ),
        ));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in rows {
        println!("{key:<width$}  {value}");
    }
    Ok(())
}

pub(crate) async fn wait(client: &Client, args: WaitArgs, json: bool) -> Result<(), Failure> {
    let job = follow(client, args.id, args.timeout, !json).await?;
    finish(&job, json)
}

pub(crate) async fn artifact(client: &Client, args: ArtifactArgs) -> Result<(), Failure> {
    let content = client.artifact(args.id, &args.name).await?;
    match args.output {
        Some(path) => std::fs::write(&path, &content.data)
            .map_err(|err| Failure::server(format!("cannot write {}: {err}", path.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&content.data)
                .and_then(|()| out.flush())
                .map_err(|err| Failure::server(format!("cannot write to stdout: {err}")))
        }
    }
}

pub(crate) async fn cancel(client: &Client, args: IdArg, json: bool) -> Result<(), Failure> {
    let job = client.cancel(args.id).await?;
    if json {
        return print_json(&job);
    }
    println!("{} {}", job.id, job.state);
    Ok(())
}

/// An estimated wait, rounded up to whole seconds: `12s`, `3m`.
fn wait_left(ms: u64) -> String {
    short_duration(Duration::from_secs(ms.div_ceil(1000)))
}

/// Polls the job until it ends, redrawing a progress line; errors if `timeout` passes.
async fn follow(client: &Client, id: JobId, timeout: Duration, show: bool) -> Result<Job, Failure> {
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut polling = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
    loop {
        let job = client.job(id).await?;
        if show {
            let position = job
                .queue_position
                .map(|p| format!(", {p} ahead"))
                .unwrap_or_default();
            let retry = if job.attempts > 1 {
                format!(", attempt {}", job.attempts)
            } else {
                String::new()
            };
            let key = format!("{}{position}{retry}", job.state);
            // Not part of the key: a moving estimate alone is no reason for a new line.
            let left = job
                .estimated_wait_ms
                .map(|ms| format!(", ~{} left", wait_left(ms)))
                .unwrap_or_default();
            let text = format!("{key}{left}  {}", short_duration(started.elapsed()));
            progress.show(&key, &text);
        }
        if job.state.is_terminal() {
            progress.finish();
            return Ok(job);
        }
        if started.elapsed() >= timeout {
            progress.finish();
            return Err(Failure::server(format!(
                "job {id} did not finish within {}; it is {}",
                humantime::format_duration(timeout),
                job.state
            )));
        }
        tokio::time::sleep(polling.next_delay()).await;
    }
}

/// Prints a finished job's answer (or the whole job as JSON); exit 1 unless it is done.
fn finish(job: &Job, json: bool) -> Result<(), Failure> {
    if json {
        print_json(job)?;
    } else if job.state == JobState::Done {
        let answer = job
            .artifacts
            .iter()
            .find(|a| a.name == "completion")
            .and_then(|a| a.data.clone())
            .or_else(|| {
                job.result
                    .as_ref()
                    .and_then(|r| r["message"]["content"].as_str().map(str::to_owned))
            })
            .unwrap_or_default();
        println!("{answer}");
    }
    match job.state {
        JobState::Done => Ok(()),
        state => Err(Failure::server(format!(
            "job {} {state}{}",
            job.id,
            job.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))),
    }
}
