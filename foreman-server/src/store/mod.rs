//! The durable queue.
//!
//! [`Queue`] is the one narrow interface the rest of the server uses: each method is a
//! queue operation (enqueue, claim the next job, move a job between states, read jobs and
//! artifacts, work the webhook outbox, keys and usage). Two databases implement it:
//! [`sqlite`], the embedded default, and [`postgres`], which several foreman replicas
//! share (ADR 23). Nothing outside this module writes SQL. [`Store`] is the handle the
//! server keeps: a shared pointer to whichever backend `FOREMAN_DB_URL` chose. The
//! values the operations take and give are in `model`; the rules both backends apply
//! alike without SQL (a row as a job, an event's body, the claim's decision, a run's
//! ending and usage) are in `common`.

mod common;
mod forward;
mod model;
pub(crate) mod postgres;
pub(crate) mod sqlite;

#[cfg(test)]
mod enqueue_claim_tests;
#[cfg(test)]
mod fair_share_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod usage_tests;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use foreman_types::{Job, JobId, JobState, UsageRow};

use crate::keys::KeyRecord;
use crate::scheduler::Tenant;
pub(crate) use common::{decide_alone, Chosen};
pub(crate) use model::*;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// This replica's lease had lapsed (ADR 23): other replicas may have taken its work
    /// over. It has given up what it held and renewed; its running jobs must stop.
    #[error("this replica's lease on the database lapsed")]
    LeaseLapsed,
    /// PostgreSQL refused a statement.
    #[error("database error: {}", postgres::detail(.0))]
    Postgres(tokio_postgres::Error),
    /// No connection to the database could be had, or it was lost (PostgreSQL is down or
    /// unreachable).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The queue already holds `FOREMAN_MAX_QUEUE` jobs.
    #[error("the queue is full")]
    QueueFull,
    /// The writer thread is gone (the server is shutting down).
    #[error("the database writer has stopped")]
    WriterGone,
    /// A stored value could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A blocking read task panicked or was cancelled.
    #[error("database read task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Same idempotency key, different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// A key of that name exists already.
    #[error("a key named {0:?} exists already")]
    KeyExists(String),
    /// The change would leave no admin key, and no `FOREMAN_AUTH_TOKEN` to fall back on.
    #[error("no admin key would be left")]
    NoAdminLeft,
    /// The tenant already has its key's `max_queued` jobs queued.
    #[error("the key already has {0} jobs queued, its limit")]
    TenantQueueFull(u32),
}

impl From<tokio_postgres::Error> for StoreError {
    /// A lost or refused connection is [`StoreError::Unavailable`] (the server answers 503
    /// and the pool reconnects by itself); anything else is [`StoreError::Postgres`].
    fn from(err: tokio_postgres::Error) -> Self {
        if postgres::is_outage(&err) {
            StoreError::Unavailable(postgres::detail(&err))
        } else {
            StoreError::Postgres(err)
        }
    }
}

/// Result of a store operation.
pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Options fixed when the store opens.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    /// Base URL for artifact links in webhook bodies (`http://host:port`).
    pub public_url: String,
    /// Jobs beyond this many queued are refused.
    pub max_queue: u64,
    /// How long this replica's claims outlive its last heartbeat (PostgreSQL only).
    pub lease: Duration,
    /// The longest one webhook attempt takes (`FOREMAN_WEBHOOK_TIMEOUT`): a replica's
    /// claim on a delivery lasts this beyond its lease, so it never lapses mid-attempt.
    pub webhook_timeout: Duration,
}

/// The queue operations, whichever database holds the queue.
///
/// Every write is committed before its method returns: a caller told "done" survives a
/// crash of this process. Each state change is a compare-and-set on the state the job was
/// in, with its webhook event written in the same transaction.
#[async_trait::async_trait]
pub(crate) trait Queue: Send + Sync + fmt::Debug {
    /// Commits a new queued job, unless the queue (or the tenant's share of it) is full.
    /// It belongs to no target until a worker claims it for one.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued>;

    /// Picks the next job and a target for it (the scheduler's choice: routing, priority,
    /// fair share, drain by model within the affinity window) and moves it to `loading` or
    /// `working` there, counting an attempt; `None` when no target with a free slot can
    /// run any queued job. Jobs of held models are passed over as if they were not queued.
    async fn claim_next(&self, request: ClaimRequest) -> Result<Option<ClaimedJob>>;

    /// [`Queue::claim_next`] until it finds nothing or every free slot of `request` is
    /// taken, each claim seeing the slots the ones before took. By default one
    /// transaction a claim; SQLite makes them one.
    async fn claim_free_slots(&self, mut request: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        let mut claimed = Vec::new();
        while request.free_slots() > 0 {
            let Some(job) = self.claim_next(request.clone()).await? else {
                break;
            };
            request.took(&job.target);
            claimed.push(job);
        }
        Ok(claimed)
    }

    /// `job` queued and claimed on `chosen`'s target in one transaction: the worker chose
    /// the claim itself (the queue being empty, `job` is the scheduler's only choice) and
    /// has started the run already (ADR 30). Asked only when [`Queue::may_have_queued`]
    /// says no, which a shared store never says; so by default, an error.
    async fn enqueue_claimed(&self, job: NewJob, chosen: Chosen) -> Result<Enqueued> {
        let _ = (job, chosen);
        Err(StoreError::Unavailable(
            "a claim decided outside the database needs a queue of one process".into(),
        ))
    }

    /// [`Queue::enqueue`], then, when the job is new, [`Queue::claim_next`] (whichever job
    /// the scheduler picks, not necessarily this one). A claim that fails
    /// leaves the job queued and claims nothing. By default two transactions; SQLite makes
    /// them one.
    async fn enqueue_and_claim(
        &self,
        job: NewJob,
        claim: ClaimRequest,
    ) -> Result<(Enqueued, Option<ClaimedJob>)> {
        let enqueued = self.enqueue(job).await?;
        let claimed = match &enqueued {
            Enqueued::Created(_) => claim_or_log(self.claim_next(claim).await),
            Enqueued::Existing(_) => None,
        };
        Ok((enqueued, claimed))
    }

    /// [`Queue::finish_reporting`], then, if the run ended, [`Queue::claim_next`]: the slot
    /// the run leaves goes to the next job. A claim that fails claims nothing. By default
    /// two transactions; SQLite makes them one.
    async fn finish_and_claim(
        &self,
        id: JobId,
        finish: Finish,
        reported: Reported,
        claim: ClaimRequest,
    ) -> Result<(Option<JobState>, Option<ClaimedJob>)> {
        let ended = self.finish_reporting(id, finish, reported).await?;
        let claimed = match ended {
            Some(_) => claim_or_log(self.claim_next(claim).await),
            None => None,
        };
        Ok((ended, claimed))
    }

    /// Moves a `loading` job to `working` (the target started answering).
    async fn mark_working(&self, id: JobId) -> Result<bool>;

    /// Ends a run of a job that is `loading` or `working`, with what the target reported
    /// about it for usage. Returns the state it entered, or `None` when the job was no
    /// longer running (a stale writer changes nothing).
    async fn finish_reporting(
        &self,
        id: JobId,
        finish: Finish,
        reported: Reported,
    ) -> Result<Option<JobState>>;

    /// [`finish_reporting`](Self::finish_reporting) with nothing reported.
    async fn finish(&self, id: JobId, finish: Finish) -> Result<Option<JobState>> {
        self.finish_reporting(id, finish, Reported::default()).await
    }

    /// Cancels a job that has not ended. Returns the state it was in, or `None` when it
    /// had already ended.
    async fn cancel(&self, id: JobId, reason: String) -> Result<Option<JobState>>;

    /// Cancels the job only while it is still queued (its caller left before its turn).
    async fn cancel_if_queued(&self, id: JobId, reason: String) -> Result<bool>;

    /// Job `id` with its artifacts, webhook attempts and queue position.
    async fn job(&self, id: JobId) -> Result<Option<Job>>;

    /// The name of the key that submitted job `id` (`""` for an open foreman).
    async fn job_owner(&self, id: JobId) -> Result<Option<String>>;

    /// A page of jobs, newest first.
    async fn list(&self, filter: JobFilter) -> Result<Vec<Job>>;

    /// The queue at a glance: depth by model and the running jobs.
    async fn queue_snapshot(&self) -> Result<QueueSnapshot>;

    /// One artifact's content type and bytes.
    async fn artifact(&self, id: JobId, name: String) -> Result<Option<(String, Vec<u8>)>>;

    /// Every key, live or revoked.
    async fn keys(&self) -> Result<Vec<KeyRecord>>;

    /// Adds a key; refuses a name in use, and (with `keep_an_admin`) a change that would
    /// leave no admin key.
    async fn create_key(&self, key: KeyRecord, keep_an_admin: bool) -> Result<()>;

    /// Revokes the key `name`; `false` when there is no live key of that name.
    async fn revoke_key(&self, name: String, keep_an_admin: bool) -> Result<bool>;

    /// Deliveries due now, at most one per job (the oldest it has pending), so each job's
    /// events go out in state order. Each is claimed for this process until it is
    /// recorded or its claim lapses, so replicas never deliver one event at once. What a
    /// delivery announces is on the disk before it is returned.
    async fn due_deliveries(&self, limit: u32) -> Result<Vec<Delivery>>;

    /// When the next pending delivery falls due (Unix ms), if any is pending.
    async fn next_delivery_at(&self) -> Result<Option<i64>>;

    /// Records an attempt; schedules the next one (waits doubling from `first_wait`) or
    /// gives up after `max_attempts`.
    async fn record_delivery(
        &self,
        delivery: &Delivery,
        outcome: DeliveryOutcome,
        max_attempts: u32,
        first_wait: Duration,
    ) -> Result<()>;

    /// Start-up recovery: runs this process had in flight are queued again (async, as an
    /// attempt; failed past `max_attempts`) or cancelled (sync: their callers are gone).
    async fn recover(&self, max_attempts: u32) -> Result<Recovered>;

    /// Deletes finished jobs last changed before `cutoff_ms`; returns how many.
    async fn prune(&self, cutoff_ms: i64) -> Result<usize>;

    /// How many jobs are in each state.
    async fn counts_by_state(&self) -> Result<Vec<(JobState, u64)>>;

    /// How many jobs are queued for each model.
    async fn queued_by_model(&self) -> Result<Vec<(String, u64)>>;

    /// Usage summed per hour, key, end user and model.
    async fn usage(&self, filter: UsageFilter) -> Result<Vec<UsageRow>>;

    /// Each key's usage since the start.
    async fn usage_totals(&self) -> Result<Vec<KeyTotals>>;

    /// Replaces the status page's saved samples (`ui::history` encodes them) with `body`.
    async fn save_ui_samples(&self, body: String) -> Result<()>;

    /// The status page's saved samples, if any were saved.
    async fn load_ui_samples(&self) -> Result<Option<String>>;

    /// Keeps this replica's lease alive and takes over the work of replicas whose leases
    /// lapsed: their running async jobs go back to the queue (the run counts as an
    /// attempt), their sync jobs are cancelled (the callers were connected to them), and
    /// their target slots and webhook claims are freed. Called every third of
    /// `FOREMAN_LEASE`. What was taken over is returned. SQLite, owned by one process,
    /// has nothing to do.
    ///
    /// `running` are the jobs this process is running now: a job the database says this
    /// replica runs but that is not among them (its end could not be written, say) is
    /// given back to the queue and its slot freed, once it is a lease old. When the
    /// replica's own lease had lapsed, it gives up all it held, renews, and answers
    /// [`StoreError::LeaseLapsed`].
    async fn keep_alive(&self, max_attempts: u32, running: Vec<JobId>) -> Result<Recovered>;

    /// Starts listening for other replicas' changes: `wakers.work` is notified when a job
    /// is queued or a target slot is freed anywhere, `wakers.keys` when a key is created
    /// or revoked. Polling stays the fallback. SQLite, with one process, has no one to
    /// listen to.
    fn watch(&self, wakers: Wakers, shutdown: tokio_util::sync::CancellationToken);

    /// Whether several processes share this queue (replicas, ADR 23).
    fn is_shared(&self) -> bool;

    /// Whether a job may be waiting in the queue, as of the last commit this process
    /// knows of. When not, a run's end has no one to hand its slot to and need not wake
    /// the dispatcher (whose look would be an empty transaction). A job queued since
    /// then wakes the dispatcher itself. A shared queue always says maybe.
    fn may_have_queued(&self) -> bool;

    /// Admits one request of `tenant` under `rpm` a minute, or says how long until one
    /// more would be admitted: in this process's memory for SQLite, in a window all
    /// replicas share for PostgreSQL.
    async fn admit(&self, tenant: Tenant, rpm: u32) -> Result<Result<(), Duration>>;
}

/// What [`Queue::watch`] wakes.
#[derive(Debug, Clone)]
pub(crate) struct Wakers {
    /// The dispatcher: there may be work for it.
    pub work: Arc<tokio::sync::Notify>,
    /// The key map: reload it from the store.
    pub keys: Arc<tokio::sync::Notify>,
    /// Jobs of this replica (claimed, or sync jobs whose callers wait here) that another
    /// replica cancelled: stop their runs, answer their callers.
    pub cancelled: tokio::sync::mpsc::UnboundedSender<JobId>,
}

pub(crate) use forward::forward_queue;

/// A claim made beside another write: its failure is logged and claims nothing, since
/// the write it follows stands and the dispatcher will claim again.
pub(crate) fn claim_or_log(claimed: Result<Option<ClaimedJob>>) -> Option<ClaimedJob> {
    claimed.unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot claim a job beside another write");
        None
    })
}

/// The server's handle to the queue; cheap to clone. It derefs to the [`Queue`].
#[derive(Debug, Clone)]
pub(crate) struct Store(Arc<dyn Queue>);

impl Store {
    /// Opens the queue `FOREMAN_DB_URL` names (PostgreSQL), or else the SQLite file at
    /// `db_path`, migrating its schema as needed.
    pub(crate) async fn open(
        db_url: Option<&str>,
        db_path: &std::path::Path,
        options: StoreOptions,
    ) -> Result<Self> {
        match db_url {
            Some(url) => Ok(Self(Arc::new(postgres::PgStore::open(url, options).await?))),
            None => Ok(Self(Arc::new(sqlite::SqliteStore::open(db_path, options)?))),
        }
    }

    /// A handle on an open backend.
    #[cfg(test)]
    pub(crate) fn new(backend: impl Queue + 'static) -> Self {
        Self(Arc::new(backend))
    }
}

impl Deref for Store {
    type Target = dyn Queue;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
