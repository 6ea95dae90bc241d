//! How a run ends: the job's new state, recovery's endings, the run's usage charge and a
//! webhook delivery's next attempt.

use std::time::Duration;

use foreman_types::{Backoff, JobState};

use crate::store::model::*;

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
