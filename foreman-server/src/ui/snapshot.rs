//! What one push of `/ui/events` holds: the targets, the running jobs, the queue in order,
//! recent outcomes, usage today and the hour's samples, as the caller may see them. A
//! non-admin's snapshot holds only its own key's jobs and usage; counts stay global, so
//! it can still tell how busy the GPU is.

use chrono::{DateTime, Utc};
use foreman_types::{Job, JobState};
use serde::Serialize;

use super::history::Sample;
use crate::routes::Caller;
use crate::state::App;
use crate::store::{self, JobFilter, UsageFilter};

/// Most queued jobs listed (the count covers all of them).
const QUEUE_SHOWN: u32 = 50;
/// Most recent ended jobs listed.
const RECENT_SHOWN: usize = 20;

/// A snapshot, as the page receives it.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    now_ms: i64,
    viewer: Viewer,
    /// Every queued job, every key's.
    depth: u64,
    /// Until the queue drains, once a job has run.
    estimated_wait_ms: Option<u64>,
    targets: Vec<TargetView>,
    running: Vec<JobView>,
    queued: Vec<JobView>,
    recent: Vec<JobView>,
    usage: Vec<KeyUsage>,
    history: Vec<Sample>,
}

#[derive(Debug, Serialize)]
struct Viewer {
    key: String,
    admin: bool,
}

#[derive(Debug, Serialize)]
struct TargetView {
    name: String,
    up: bool,
    parallel: u32,
    running: usize,
    resident: Vec<String>,
    pulling: Vec<String>,
}

/// A job, with only what the page draws.
#[derive(Debug, Serialize)]
struct JobView {
    id: String,
    key: String,
    user: String,
    model: String,
    state: JobState,
    priority: i32,
    target: Option<String>,
    created_ms: i64,
    /// When its state last changed: the start of a running job, the end of an ended one.
    updated_ms: i64,
    position: Option<u64>,
    estimated_wait_ms: Option<u64>,
    error: Option<String>,
    output_tokens: Option<u64>,
    /// A running job's chunks streamed so far (about one token each).
    streamed_tokens: Option<u64>,
    /// A running job's tokens per second since its first token, once it has two.
    tokens_per_s: Option<f64>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        Self {
            id: job.id.to_string(),
            key: job.key.unwrap_or_default(),
            user: job.user.unwrap_or_default(),
            model: job.model,
            state: job.state,
            priority: job.priority,
            target: job.target,
            created_ms: millis(job.created_at),
            updated_ms: millis(job.updated_at),
            position: job.queue_position,
            estimated_wait_ms: job.estimated_wait_ms,
            error: job.error,
            output_tokens: job.output_tokens,
            streamed_tokens: None,
            tokens_per_s: None,
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct KeyUsage {
    key: String,
    requests: u64,
    prompt_tokens: u64,
    output_tokens: u64,
    gpu_ms: u64,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The snapshot `caller` may see now.
pub(crate) async fn build(app: &App, caller: &Caller) -> store::Result<Snapshot> {
    let scope = caller.scope().map(str::to_owned);
    let queue = app.store.queue_snapshot().await?;
    let depth: u64 = queue.depth_by_model.iter().map(|(_, n)| n).sum();
    let targets = app
        .targets
        .all()
        .iter()
        .map(|t| TargetView {
            name: t.name.clone(),
            up: t.up(),
            parallel: t.lane.parallel(),
            running: queue
                .running
                .iter()
                .filter(|job| job.target.as_deref() == Some(t.name.as_str()))
                .count(),
            resident: t.inventory.loaded(),
            pulling: t.inventory.pulling(),
        })
        .collect();
    let running = queue
        .running
        .into_iter()
        .filter(|job| caller.sees(job.key.as_deref().unwrap_or_default()))
        .map(|job| {
            let rate = app.progress.rate(job.id);
            let mut view = JobView::from(job);
            if let Some(rate) = rate {
                view.streamed_tokens = Some(rate.tokens);
                // Rounded: the page shows one decimal, and JSON has no infinity.
                view.tokens_per_s = rate
                    .per_second
                    .filter(|r| r.is_finite())
                    .map(|r| (r * 10.0).round() / 10.0);
            }
            view
        })
        .collect();

    let waiting = app
        .store
        .list(JobFilter {
            state: Some(JobState::Queued),
            key: scope.clone(),
            limit: QUEUE_SHOWN,
            ..JobFilter::default()
        })
        .await?;
    let mut queued = Vec::with_capacity(waiting.len());
    for job in waiting {
        // The full read computes the position under fair share, as `GET /jobs/{id}` does.
        if let Some(mut job) = app.store.job(job.id).await? {
            if job.state != JobState::Queued {
                continue;
            }
            job.estimated_wait_ms = job.queue_position.and_then(|n| app.run_times.wait_ms(n));
            queued.push(JobView::from(job));
        }
    }
    queued.sort_by_key(|job| (job.position.unwrap_or(u64::MAX), job.created_ms));
    // Shown from 1. An admin sees the whole queue, so its place in the list is its turn
    // (ties under fair share broken by age); another key sees its own jobs only, so each
    // is shown behind the jobs fair share puts ahead of it.
    for (at, job) in queued.iter_mut().enumerate() {
        job.position = if caller.admin {
            Some(at as u64 + 1)
        } else {
            job.position.map(|ahead| ahead + 1)
        };
    }

    let mut recent: Vec<JobView> = app
        .store
        .list(JobFilter {
            key: scope.clone(),
            limit: 100,
            ..JobFilter::default()
        })
        .await?
        .into_iter()
        .filter(|job| job.state.is_terminal())
        .take(RECENT_SHOWN)
        .map(JobView::from)
        .collect();
    // Latest outcome first: a long job submitted early ends after short ones.
    recent.sort_by_key(|job| std::cmp::Reverse(job.updated_ms));

    let midnight = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis());
    let rows = app
        .store
        .usage(UsageFilter {
            key: scope,
            since_ms: midnight,
            until_ms: None,
        })
        .await?;
    let mut usage: Vec<KeyUsage> = Vec::new();
    for row in rows {
        let at = match usage.iter().position(|u| u.key == row.key) {
            Some(at) => at,
            None => {
                usage.push(KeyUsage {
                    key: row.key.clone(),
                    ..KeyUsage::default()
                });
                usage.len() - 1
            }
        };
        let sum = &mut usage[at];
        sum.requests += row.requests;
        sum.prompt_tokens += row.prompt_tokens;
        sum.output_tokens += row.output_tokens;
        sum.gpu_ms += row.gpu_ms;
    }

    Ok(Snapshot {
        now_ms: store::now_ms(),
        viewer: Viewer {
            key: caller.key.clone(),
            admin: caller.admin,
        },
        depth,
        estimated_wait_ms: app.run_times.wait_ms(depth),
        targets,
        running,
        queued,
        recent,
        usage,
        history: app.ui_history.samples(),
    })
}
