//! Which queued job runs next, and on which target.
//!
//! A pure decision over a snapshot, with no I/O: the store reads a [`QueueView`] (the
//! oldest queued job of each group of jobs that share a priority, a tenant and a model,
//! plus each tenant's weighted service), the caller adds the targets' [`TargetView`]s,
//! [`pick`] chooses, and the store commits the choice compare-and-set. Every rule of the
//! queue's order lives here, in the order it applies:
//!
//! 1. **Routing.** A target takes only jobs for models it has installed (or that no target
//!    lists at all: the target's own answer then decides; while a target has never
//!    answered, such jobs are its), so a model installed on one target only runs only
//!    there, and waits while that target is down. A job whose model
//!    is resident on another target with a free slot is left for that target. Among
//!    targets with a free slot (each runs up to its parallelism), the least loaded
//!    (running plus queued for its resident models) chooses first. The worker asks again
//!    until this says `None`, so no job waits while a target that could run it is idle.
//! 2. **Priority** (ADR 9): strict levels; a lower level runs only when no job of a higher
//!    one can run on this target.
//! 3. **Fair share** (ADR 14): within the level, the tenant (API key, or key and end user)
//!    with the least weighted service goes next. Service is GPU time divided by the
//!    tenant's weight; the store lifts a tenant that becomes active to the least active
//!    counter, so idling banks no credit.
//! 4. **Drain by model** (ADR 2), per target: among the jobs of the tenants tied for least
//!    service, the oldest job of the model the target used last goes first, unless the oldest of those
//!    jobs has waited the affinity window; then the oldest goes and the model swaps.
//! 5. **Age**: otherwise the oldest job.
//!
//! Fair share wins over drain by model when they disagree: a tenant's first job never
//! waits for another tenant's run of jobs for the loaded model. The affinity window bounds
//! how long drain by model may pass over an older job among the jobs it chooses between,
//! exactly as it did with one tenant; see ADR 14 for the proof and the cost.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

/// Who a job is accounted to: an API key, or one end user behind a key that names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct Tenant {
    /// The key's name; empty for an open foreman (no keys, no token).
    pub key: String,
    /// The end user the key named (`X-OpenWebUI-User-Id`, `X-User-Id`), else empty.
    pub user: String,
}

impl Tenant {
    /// A tenant from its key name and end user.
    pub(crate) fn new(key: impl Into<String>, user: impl Into<String>) -> Self {
        Tenant {
            key: key.into(),
            user: user.into(),
        }
    }
}

/// The oldest queued job of one group: the jobs with this priority, tenant and model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    /// The job's id (a ULID: ordering by id is ordering by submission).
    pub job: String,
    /// The group's priority.
    pub priority: i32,
    /// The group's tenant.
    pub tenant: Tenant,
    /// The group's model, normalised (`name:tag`).
    pub model: String,
    /// When the job was queued, Unix milliseconds.
    pub queued_at_ms: i64,
}

/// What the scheduler sees of the queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueView {
    /// The head of every non-empty group.
    pub heads: Vec<Head>,
    /// Each tenant's weighted service (GPU milliseconds divided by weight): what its
    /// finished jobs took, plus an estimate for each job of it running now, so several
    /// lanes starting at once do not all go to one tenant. A tenant not listed counts 0.
    pub service: HashMap<Tenant, f64>,
}

/// What the scheduler sees of one target.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetView {
    /// The target's name.
    pub name: String,
    /// Whether the target answers; a target that does not takes no job.
    pub up: bool,
    /// Generations it may start now (its parallelism less what runs on it).
    pub free_slots: u32,
    /// Generations it runs at once (`FOREMAN_TARGET_PARALLEL`): the slots a shared
    /// queue leases for it, whichever replica runs them.
    pub parallel: u32,
    /// Work on it or bound for it (running plus queued), for least-loaded routing.
    pub load: u32,
    /// Models in memory, the most recently used first.
    pub resident: Vec<String>,
    /// Models installed on it.
    pub installed: Vec<String>,
    /// It has never answered, so what it has is unknown: it may have any model.
    pub unpolled: bool,
}

impl TargetView {
    fn has_resident(&self, model: &str) -> bool {
        self.resident.iter().any(|m| m == model)
    }

    fn has_installed(&self, model: &str) -> bool {
        self.installed.iter().any(|m| m == model) || self.has_resident(model)
    }
}

/// The settings the order depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// How long drain by model may pass over an older job (ADR 2); zero is oldest-first.
    pub affinity_window: Duration,
}

/// The decision: run this job on this target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The job's id.
    pub job: String,
    /// The target's name.
    pub target: String,
}

/// Chooses the next job and its target, or `None` when no target with a free slot can run
/// any queued job.
pub(crate) fn pick(
    queue: &QueueView,
    targets: &[TargetView],
    policy: &Policy,
    now_ms: i64,
) -> Option<Assignment> {
    let mut free: Vec<&TargetView> = targets
        .iter()
        .filter(|t| t.up && t.free_slots > 0)
        .collect();
    free.sort_by(|a, b| a.load.cmp(&b.load).then_with(|| a.name.cmp(&b.name)));
    free.iter().find_map(|target| {
        pick_for(queue, target, targets, policy, now_ms).map(|head| Assignment {
            job: head.job.clone(),
            target: target.name.clone(),
        })
    })
}

/// The job `target` runs next, by rules 1 to 5 of the module's documentation.
fn pick_for<'q>(
    queue: &'q QueueView,
    target: &TargetView,
    all: &[TargetView],
    policy: &Policy,
    now_ms: i64,
) -> Option<&'q Head> {
    let runnable: Vec<&Head> = queue
        .heads
        .iter()
        .filter(|head| routes_to(head, target, all))
        .collect();
    let level = runnable.iter().map(|h| h.priority).max()?;
    let at_level = runnable.into_iter().filter(|h| h.priority == level);

    // Fair share: only the tenants tied for the least service are considered.
    let service = |tenant: &Tenant| queue.service.get(tenant).copied().unwrap_or(0.0);
    let candidates: Vec<&Head> = at_level.collect();
    let least = candidates
        .iter()
        .map(|h| service(&h.tenant))
        .min_by(|a, b| a.total_cmp(b))?;
    let fair: Vec<&Head> = candidates
        .into_iter()
        .filter(|h| service(&h.tenant).total_cmp(&least) == Ordering::Equal)
        .collect();

    // Drain by model among them, bounded by the affinity window.
    let oldest = fair.iter().copied().min_by(|a, b| age_order(a, b))?;
    let waited = now_ms.saturating_sub(oldest.queued_at_ms).max(0) as u64;
    if waited >= policy.affinity_window.as_millis() as u64 {
        return Some(oldest);
    }
    let resident = fair
        .iter()
        .copied()
        .filter(|h| target.resident.first().is_some_and(|m| *m == h.model))
        .min_by(|a, b| age_order(a, b));
    Some(resident.unwrap_or(oldest))
}

/// Whether `target` may run `head`'s job now (rule 1).
fn routes_to(head: &Head, target: &TargetView, all: &[TargetView]) -> bool {
    let model = &head.model;
    if all.iter().any(|t| t.has_installed(model)) {
        if !target.has_installed(model) {
            return false;
        }
    } else if all.iter().any(|t| t.unpolled) && !target.unpolled {
        // Nobody lists it, but a target that never answered may have it: it waits for
        // that one rather than fail on a target known to lack it.
        return false;
    }
    // Leave the job to a target that has its model in memory and room to run it.
    let better_elsewhere = !target.has_resident(&head.model)
        && all.iter().any(|t| {
            t.name != target.name && t.up && t.free_slots > 0 && t.has_resident(&head.model)
        });
    !better_elsewhere
}

/// The service a tenant starts from when it becomes active (gets a job while it has none
/// queued or running): lifted to the least settled service (finished jobs only, no
/// estimates for running ones) among the active tenants, so an idle
/// tenant cannot bank credit and burst past the others later. With nobody active, to the
/// most any tenant has: an idle system owes no one anything.
pub(crate) fn activation_service(own: f64, active: &[f64], known: &[f64]) -> f64 {
    let floor = if active.is_empty() {
        known.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    } else {
        active.iter().copied().fold(f64::INFINITY, f64::min)
    };
    if floor.is_finite() {
        own.max(floor)
    } else {
        own
    }
}

/// The service `gpu_ms` of GPU time counts for a tenant of this weight.
pub(crate) fn weighted(gpu_ms: f64, weight: u32) -> f64 {
    gpu_ms / f64::from(weight.max(1))
}

/// Oldest first; the id breaks ties between jobs queued in the same millisecond.
fn age_order(a: &Head, b: &Head) -> Ordering {
    a.queued_at_ms
        .cmp(&b.queued_at_ms)
        .then_with(|| a.job.cmp(&b.job))
}

#[cfg(test)]
mod tests;
