//! The values the queue operations take and give, whichever database holds the queue.

use std::time::Duration;

use bytes::Bytes;
use foreman_types::{Job, JobId, JobKind, JobState};

use crate::scheduler::{TargetView, Tenant};

/// Who is waiting for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A caller of `/api/chat` or `/api/generate` holds the connection open.
    Sync,
    /// Submitted with `POST /jobs`; the result is stored and announced by webhook.
    Async,
}

impl Origin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Sync => "sync",
            Origin::Async => "async",
        }
    }

    /// The origin stored as `s`; anything but `sync` is async.
    pub(crate) fn parse(s: &str) -> Self {
        if s == "sync" {
            Origin::Sync
        } else {
            Origin::Async
        }
    }
}

/// A job to add.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub id: JobId,
    pub kind: JobKind,
    pub origin: Origin,
    /// Normalised (`name:tag`).
    pub model: String,
    pub priority: i32,
    /// The request body, forwarded to the target unchanged.
    pub payload: Bytes,
    pub webhook_url: Option<String>,
    /// Who the job is accounted to, for fair share, limits and usage (ADR 14).
    pub tenant: Tenant,
    /// The tenant's weight in fair share (its key's `weight`, at least 1).
    pub weight: u32,
    /// Refuse the job when the tenant has this many queued already (its key's limit).
    pub max_queued: Option<u32>,
    /// With `request_hash`, makes a repeated submission return the first job.
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
}

/// What enqueueing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// A new job was committed.
    Created(JobId),
    /// The idempotency key matched an earlier job with the same request.
    Existing(JobId),
}

impl Enqueued {
    pub(crate) fn id(&self) -> JobId {
        match self {
            Enqueued::Created(id) | Enqueued::Existing(id) => *id,
        }
    }
}

/// What the worker knows when it asks for work.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRequest {
    /// Every target: whether it answers, its free slots, what runs on it (`load`; the
    /// store adds the queued jobs of its resident models), its resident models (the most
    /// recently used first: its jobs go first there, and start `working`, not `loading`)
    /// and its installed ones.
    pub targets: Vec<TargetView>,
    /// How long the oldest job may be passed over in favour of the resident model's.
    pub affinity_window: Duration,
    /// Models whose jobs wait whatever their turn: they are being pulled (ADR 15).
    pub held: Vec<String>,
    /// What a running job is expected to take (the recent mean), counted against its
    /// tenant until the run ends and its real GPU time is known (ADR 14).
    pub running_estimate_ms: f64,
}

impl ClaimRequest {
    /// The slots of the targets that answer, free now: at most this many claims succeed.
    pub(crate) fn free_slots(&self) -> u32 {
        self.targets
            .iter()
            .filter(|t| t.up)
            .map(|t| t.free_slots)
            .sum()
    }

    /// As the request will be once a job has been claimed for `target`: one slot fewer
    /// there, one more job on it (what the dispatcher's next look would see).
    pub(crate) fn took(&mut self, target: &str) {
        for view in self.targets.iter_mut().filter(|view| view.name == target) {
            view.free_slots = view.free_slots.saturating_sub(1);
            view.load += 1;
        }
    }
}

#[cfg(test)]
impl ClaimRequest {
    /// A claim for one target called `default`, with `resident` in memory, as the store's
    /// tests make it.
    pub(crate) fn single(resident: Option<&str>, affinity_window: Duration) -> Self {
        Self {
            targets: vec![TargetView {
                name: "default".into(),
                up: true,
                free_slots: 1,
                // The tests claim again without ending the runs before, as if the lane
                // were wide: a shared queue leases this many slots for the target.
                parallel: 16,
                load: 0,
                resident: resident.map(str::to_owned).into_iter().collect(),
                installed: Vec::new(),
                unpolled: false,
            }],
            affinity_window,
            held: Vec::new(),
            running_estimate_ms: 0.0,
        }
    }
}

/// A job the worker now owns.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedJob {
    pub id: JobId,
    /// The target it runs on.
    pub target: String,
    pub kind: JobKind,
    pub origin: Origin,
    pub model: String,
    pub payload: Bytes,
    /// Including this run.
    pub attempts: u32,
    pub state: JobState,
    /// When the job was submitted (Unix ms), for the queued → started wait.
    pub created_at_ms: i64,
    /// Who the job is accounted to.
    pub tenant: Tenant,
    /// Whether it has a webhook (its state changes write outbox rows).
    pub has_webhook: bool,
}

/// How a run of a job ended.
#[derive(Debug, Clone)]
pub(crate) enum Finish {
    /// Success: the final response and the artifacts to keep.
    Done {
        result: Option<Vec<u8>>,
        artifacts: Vec<NewArtifact>,
    },
    /// A failure that retrying will not fix (an HTTP error from the target).
    Failed { error: String },
    /// A failure that may pass (the target was unreachable): queued again unless the job
    /// has used its attempts, then failed.
    Retry { error: String, max_attempts: u32 },
    /// The caller cancelled or went away.
    Cancelled { reason: String },
    /// foreman is shutting down: back to the queue, and this run does not count.
    Interrupted,
}

/// An artifact to store with a finished job.
#[derive(Debug, Clone)]
pub(crate) struct NewArtifact {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Which jobs `GET /jobs` lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobFilter {
    pub state: Option<JobState>,
    /// Normalised.
    pub model: Option<String>,
    /// Only jobs older than this one (the page cursor).
    pub before: Option<JobId>,
    /// Only jobs this key submitted; every key's when `None`.
    pub key: Option<String>,
    pub limit: u32,
}

/// The queue at a glance.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueSnapshot {
    /// Queued jobs per model, most first.
    pub depth_by_model: Vec<(String, u64)>,
    /// The jobs running now, on any target, oldest first.
    pub running: Vec<Job>,
}

/// The largest queue position reported; a job further back shows this many ahead.
pub(crate) const QUEUE_POSITION_CAP: i64 = 10_000;

/// A webhook delivery to attempt.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub outbox_id: i64,
    /// The `webhook-id` header, the same on every attempt.
    pub webhook_id: String,
    pub job_id: JobId,
    pub url: String,
    pub body: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What one delivery attempt did.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryOutcome {
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
}

impl DeliveryOutcome {
    /// Whether the receiver took it (any 2xx).
    pub(crate) fn delivered(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What start-up recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Async jobs that were running and are queued again.
    pub requeued: usize,
    /// Async jobs that were running and had used their attempts.
    pub failed: usize,
    /// Sync jobs whose caller's connection died with the old process.
    pub cancelled: usize,
}

impl std::ops::AddAssign for Recovered {
    fn add_assign(&mut self, other: Self) {
        self.requeued += other.requeued;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
    }
}

/// What the target reported about one run, from its final chunk or `usage` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reported {
    pub prompt_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Ollama's `total_duration`, in milliseconds: the target's own GPU time for the run.
    pub total_duration_ms: Option<u64>,
}

/// Which usage `GET /usage` sums.
#[derive(Debug, Clone, Default)]
pub(crate) struct UsageFilter {
    /// Only this key's; every key's when `None`.
    pub key: Option<String>,
    /// Unix ms; hours starting at or after it (rounded down to its hour).
    pub since_ms: Option<i64>,
    /// Unix ms; hours starting before it.
    pub until_ms: Option<i64>,
}

/// One key's usage since the start, for `GET /metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyTotals {
    pub key: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub gpu_ms: u64,
}
