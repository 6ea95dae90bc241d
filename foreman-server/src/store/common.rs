//! What both backends compute alike, with no SQL: the values a job's row becomes, a
//! webhook event's body, an artifact's view, the scheduler's choice over the heads a
//! backend read, how a run's end changes the job, its usage, the queue position's
//! arithmetic and a delivery's next attempt. Each backend reads and writes its own
//! database and calls these for the rest, so the rules are written once.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use chrono::DateTime;
use foreman_types::{
    Artifact, ArtifactEncoding, Backoff, Job, JobId, JobKind, JobState, WebhookEvent,
};

use super::model::*;
use super::{Result, StoreError};
use crate::keys::KeyHash;
use crate::scheduler::{self, Head, Policy, QueueView, TargetView, Tenant};

/// A stored value that does not decode.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A job id as stored.
pub(crate) fn parse_id(id: &str) -> Result<JobId> {
    id.parse()
        .map_err(|_| corrupt(format_args!("bad job id {id:?}")))
}

/// The columns of a job both backends read, before they become a [`Job`].
#[derive(Debug)]
pub(crate) struct JobRow {
    pub id: String,
    pub model: String,
    pub state: String,
    pub attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub error: Option<String>,
    pub result: Option<Vec<u8>>,
    pub kind: String,
    pub priority: i32,
    pub webhook_url: Option<String>,
    /// Empty until the job is claimed; kept once it has run.
    pub target: String,
    pub tenant_key: String,
    pub tenant_user: String,
    pub prompt_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

impl JobRow {
    /// The job, without artifacts, webhook attempts and queue position.
    pub(crate) fn into_job(self) -> Result<Job> {
        let named = |s: String| (!s.is_empty()).then_some(s);
        Ok(Job {
            id: parse_id(&self.id)?,
            model: self.model,
            state: self.state.parse().map_err(corrupt)?,
            attempts: self.attempts,
            created_at: DateTime::from_timestamp_millis(self.created_at).unwrap_or_default(),
            updated_at: DateTime::from_timestamp_millis(self.updated_at).unwrap_or_default(),
            error: self.error,
            result: match self.result {
                Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(corrupt)?),
                None => None,
            },
            artifacts: Vec::new(),
            kind: self.kind.parse::<JobKind>().map_err(corrupt)?,
            priority: self.priority,
            queue_position: None,
            estimated_wait_ms: None,
            state_webhook_url: self.webhook_url,
            webhook_attempts: Vec::new(),
            target: named(self.target),
            key: named(self.tenant_key),
            user: named(self.tenant_user),
            prompt_tokens: self.prompt_tokens.map(|n| n.max(0) as u64),
            output_tokens: self.output_tokens.map(|n| n.max(0) as u64),
        })
    }
}

/// What a webhook event says about the job, read in the transaction of the change.
#[derive(Debug)]
pub(crate) struct EventFacts {
    pub model: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub result: Option<Vec<u8>>,
}

/// The body of the event announcing that job `id` entered `state` at `now_ms`; a `done`
/// event carries the result and `artifacts` (which the backend reads only for `done`,
/// see [`event_wants_artifacts`]).
pub(crate) fn event_body(
    id: JobId,
    state: JobState,
    facts: EventFacts,
    artifacts: Option<Vec<Artifact>>,
    now_ms: i64,
) -> Result<Vec<u8>> {
    let done = state == JobState::Done;
    let result = match (done, facts.result) {
        (true, Some(bytes)) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|err| corrupt(format_args!("job {id} result: {err}")))?,
        ),
        _ => None,
    };
    let event = WebhookEvent {
        kind: WebhookEvent::kind_for(state),
        job_id: id,
        state,
        model: facts.model,
        attempts: facts.attempts,
        timestamp: DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
        error: if state == JobState::Failed || state == JobState::Cancelled {
            facts.error
        } else {
            None
        },
        result,
        artifacts: if done { artifacts } else { None },
    };
    serde_json::to_vec(&event).map_err(|err| corrupt(format_args!("cannot encode event: {err}")))
}

/// Whether the event for `state` lists the job's artifacts.
pub(crate) fn event_wants_artifacts(state: JobState) -> bool {
    state == JobState::Done
}

/// A fresh `webhook-id`, kept by the event across its delivery attempts.
pub(crate) fn new_webhook_id() -> String {
    format!("msg_{}", ulid::Ulid::new())
}

/// An artifact as the API shows it: `data` is its bytes when they were small enough to
/// read inline (the backend reads them only up to [`foreman_types::INLINE_ARTIFACT_LIMIT`]),
/// else it is linked by URL.
pub(crate) fn artifact_view(
    public_url: &str,
    id: JobId,
    name: String,
    content_type: String,
    size: u64,
    data: Option<Vec<u8>>,
) -> Artifact {
    let (data, encoding, url) = match data {
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), Some(ArtifactEncoding::Utf8), None),
            Err(err) => (
                Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes())),
                Some(ArtifactEncoding::Base64),
                None,
            ),
        },
        None => (
            None,
            None,
            Some(format!(
                "{}/jobs/{id}/artifacts/{}",
                public_url.trim_end_matches('/'),
                url_path_segment(&name)
            )),
        ),
    };
    Artifact {
        name,
        content_type,
        size,
        data,
        encoding,
        url,
    }
}

/// Percent-encodes everything but unreserved characters, for a name inside a URL path.
fn url_path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The heads of the queue's groups a claim may take, and how many jobs each model has
/// queued among them.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    pub heads: Vec<Head>,
    pub queued_by_model: HashMap<String, u32>,
}

impl Heads {
    /// Adds the head of a group of `queued` jobs, unless its model is held.
    pub(crate) fn add(&mut self, head: Head, queued: i64, held: &[String]) {
        if held.contains(&head.model) {
            return;
        }
        let count = u32::try_from(queued.max(0)).unwrap_or(u32::MAX);
        let total = self.queued_by_model.entry(head.model.clone()).or_default();
        *total = total.saturating_add(count);
        self.heads.push(head);
    }
}

/// The job the scheduler chose, and where.
#[derive(Debug)]
pub(crate) struct Chosen {
    pub id: String,
    pub model: String,
    pub tenant: Tenant,
    pub created_at: i64,
    pub target: String,
    /// Whether its model is in the target's memory already: the job starts `working`.
    pub resident: bool,
}

impl Chosen {
    /// The state the claimed job enters.
    pub(crate) fn state(&self) -> JobState {
        if self.resident {
            JobState::Working
        } else {
            JobState::Loading
        }
    }

    /// The claimed job, from the columns its compare-and-set returned.
    pub(crate) fn claimed(
        self,
        kind: &str,
        origin: &str,
        payload: Vec<u8>,
        attempts: u32,
    ) -> Result<ClaimedJob> {
        Ok(ClaimedJob {
            id: parse_id(&self.id)?,
            state: self.state(),
            target: self.target,
            kind: kind.parse().map_err(corrupt)?,
            origin: Origin::parse(origin),
            model: self.model,
            payload: bytes::Bytes::from(payload),
            attempts,
            created_at_ms: self.created_at,
            tenant: self.tenant,
        })
    }
}

/// Asks the scheduler for the next job among `heads`, on the request's targets, each
/// target's load counting the queued jobs drain by model will give it.
pub(crate) fn decide(
    heads: Heads,
    service: HashMap<Tenant, f64>,
    request: &ClaimRequest,
    now: i64,
) -> Result<Option<Chosen>> {
    let queue = QueueView {
        heads: heads.heads,
        service,
    };
    let targets: Vec<TargetView> = request
        .targets
        .iter()
        .map(|target| {
            let bound: u32 = target
                .resident
                .iter()
                .filter_map(|model| heads.queued_by_model.get(model))
                .fold(0, |sum, n| sum.saturating_add(*n));
            TargetView {
                load: target.load.saturating_add(bound),
                ..target.clone()
            }
        })
        .collect();
    let policy = Policy {
        affinity_window: request.affinity_window,
    };
    let Some(assignment) = scheduler::pick(&queue, &targets, &policy, now) else {
        return Ok(None);
    };
    let head = queue
        .heads
        .into_iter()
        .find(|head| head.job == assignment.job)
        .ok_or_else(|| corrupt("the scheduler chose a job it was not shown"))?;
    let resident = targets
        .iter()
        .find(|t| t.name == assignment.target)
        .is_some_and(|t| t.resident.contains(&head.model));
    Ok(Some(Chosen {
        id: head.job,
        model: head.model,
        tenant: head.tenant,
        created_at: head.queued_at_ms,
        target: assignment.target,
        resident,
    }))
}

/// What ending a run (or a queued job) does to the job's row.
#[derive(Debug)]
pub(crate) struct Ending {
    pub state: JobState,
    pub error: Option<String>,
    /// The final response, kept over an earlier one only when there is one.
    pub result: Option<Vec<u8>>,
    pub attempts: u32,
    /// To store with the job.
    pub artifacts: Vec<NewArtifact>,
}

impl Ending {
    /// Applies `finish` to a job that has made `attempts` attempts so far.
    pub(crate) fn of(finish: Finish, attempts: u32) -> Self {
        let ending = |state, error, result| Ending {
            state,
            error,
            result,
            attempts,
            artifacts: Vec::new(),
        };
        match finish {
            Finish::Done { result, artifacts } => Ending {
                artifacts,
                ..ending(JobState::Done, None, result)
            },
            Finish::Failed { error } => ending(JobState::Failed, Some(error), None),
            Finish::Cancelled { reason } => ending(JobState::Cancelled, Some(reason), None),
            Finish::Retry {
                error,
                max_attempts,
            } if attempts >= max_attempts => {
                let error = format!("{error} (gave up after {attempts} attempts)");
                ending(JobState::Failed, Some(error), None)
            }
            Finish::Retry { error, .. } => ending(JobState::Queued, Some(error), None),
            Finish::Interrupted => Ending {
                attempts: attempts.saturating_sub(1),
                ..ending(JobState::Queued, None, None)
            },
        }
    }
}

/// Why start-up recovery cancelled a sync job.
pub(crate) const RESTART_CANCELLED: &str =
    "the caller's connection was lost when foreman restarted";
/// Why start-up recovery queued an async job again.
pub(crate) const RESTART_REQUEUED: &str = "interrupted by a foreman restart";

/// How recovery ends a job whose process is gone: a sync job is cancelled (its caller was
/// connected to that process), an async one queued again as a spent attempt.
pub(crate) fn recovery(
    origin: Origin,
    max_attempts: u32,
    sync_reason: &str,
    async_error: &str,
) -> Finish {
    match origin {
        Origin::Sync => Finish::Cancelled {
            reason: sync_reason.to_owned(),
        },
        Origin::Async => Finish::Retry {
            error: async_error.to_owned(),
            max_attempts,
        },
    }
}

/// Counts the recovery's endings.
pub(crate) fn count_recovered(out: &mut Recovered, ended: Option<JobState>) {
    match ended {
        Some(JobState::Queued) => out.requeued += 1,
        Some(JobState::Failed) => out.failed += 1,
        Some(JobState::Cancelled) => out.cancelled += 1,
        _ => {}
    }
}

/// An hour, in milliseconds: the granularity of the `usage` table.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The start of the hour `ms` falls in.
pub(crate) fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// What one run adds to its tenant's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    /// 1 when the run ended the job: a job counts as a request once.
    pub requests: i64,
    pub prompt_tokens: i64,
    pub output_tokens: i64,
    /// The target's `total_duration` when it reported one, else the run's time on the
    /// target as foreman measured it.
    pub gpu_ms: i64,
}

impl Charge {
    /// The charge for a run started at `started_at` that leaves the job in `state` at `now`.
    pub(crate) fn of(
        state: JobState,
        started_at: Option<i64>,
        reported: &Reported,
        now: i64,
    ) -> Self {
        let run_ms = started_at.map_or(0, |start| now.saturating_sub(start).max(0)) as u64;
        let gpu_ms = reported.total_duration_ms.unwrap_or(run_ms);
        Charge {
            requests: i64::from(state.is_terminal()),
            prompt_tokens: reported.prompt_tokens.unwrap_or(0) as i64,
            output_tokens: reported.output_tokens.unwrap_or(0) as i64,
            gpu_ms: gpu_ms as i64,
        }
    }

    /// Whether it adds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.requests == 0 && self.gpu_ms == 0 && self.prompt_tokens == 0 && self.output_tokens == 0
    }
}

/// How many jobs start before a queued one, as fair share orders them (ADR 14): `higher`
/// jobs of higher priority, `own` older jobs of its tenant at its priority, and from each
/// other tenant at that priority (`(queued, weight)`) about as many as fair share gives it
/// meanwhile. An estimate, capped at [`QUEUE_POSITION_CAP`].
pub(crate) fn fair_position(higher: i64, own: i64, others: &[(i64, f64)], weight: f64) -> u64 {
    // While this tenant's `own` older jobs and then this one run, a tenant of weight w gets
    // about (own + 1/2) * w / weight turns: the half splits the tie of equal counters.
    let turns = |other_weight: f64| ((own as f64 + 0.5) * other_weight / weight).floor() as i64;
    let interleaved: i64 = others
        .iter()
        .map(|(queued, other_weight)| (*queued).min(turns(*other_weight)))
        .sum();
    (higher + own + interleaved).min(QUEUE_POSITION_CAP) as u64
}

/// After attempt `attempt` of a delivery: its status and when it is next due.
pub(crate) fn after_attempt(
    outcome: &DeliveryOutcome,
    attempt: u32,
    max_attempts: u32,
    first_wait: Duration,
    now: i64,
) -> (&'static str, i64) {
    if outcome.delivered() {
        ("delivered", now)
    } else if attempt >= max_attempts {
        ("failed", now)
    } else {
        let wait = Backoff::new(first_wait, Duration::MAX).delay(attempt - 1);
        ("pending", now + wait.as_millis() as i64)
    }
}

/// A key's stored hex digest.
pub(crate) fn decode_key_hash(name: &str, hex_hash: &str) -> Result<KeyHash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut hash)
        .map_err(|_| corrupt(format_args!("key {name:?} has a bad hash")))?;
    Ok(hash)
}

/// Jobs per state from `(state, count)` rows: every state present, in [`JobState::ALL`]
/// order.
pub(crate) fn counts_by_state(rows: Vec<(String, i64)>) -> Result<Vec<(JobState, u64)>> {
    let mut counts: Vec<(JobState, u64)> = JobState::ALL.iter().map(|state| (*state, 0)).collect();
    for (state, n) in rows {
        let state: JobState = state.parse().map_err(corrupt)?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = n.max(0) as u64;
        }
    }
    Ok(counts)
}
