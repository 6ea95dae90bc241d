//! The claim's decision: the scheduler's choice over the heads of the queue a backend
//! read, and the claimed job it becomes.

use std::collections::HashMap;

use foreman_types::JobState;

use super::{corrupt, parse_id};
use crate::scheduler::{self, Head, Policy, QueueView, TargetView, Tenant};
use crate::store::model::*;
use crate::store::Result;

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
        has_webhook: bool,
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
            has_webhook,
        })
    }
}

/// The scheduler's choice when the queue holds `job` alone: the target it would run on
/// now, or `None` when its model is held or no free target can run it.
pub(crate) fn decide_alone(job: &NewJob, request: &ClaimRequest, now: i64) -> Option<Chosen> {
    let mut heads = Heads::default();
    let head = Head {
        job: job.id.to_string(),
        priority: job.priority,
        tenant: job.tenant.clone(),
        model: job.model.clone(),
        queued_at_ms: now,
    };
    heads.add(head, 1, &request.held);
    decide(heads, HashMap::new(), request, now).ok().flatten()
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
