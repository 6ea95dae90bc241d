//! What every handler and background task shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foreman_types::JobId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, TargetSettings};
use crate::estimate::RunTimes;
use crate::keys::{KeyRecord, Keys};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::store::Store;
use crate::targets::Pool;
use crate::ui::changes::Changes;
use crate::ui::history::History;
use crate::ui::sessions::Sessions;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: Config,
    pub store: Store,
    /// Every Ollama host, each with its client, inventory, health and lane.
    pub targets: Pool,
    pub live: Live,
    /// Wakes the worker: a job was queued, a slot freed, a target came back.
    pub work: Arc<Notify>,
    /// Held by whoever claims a job and takes its slot (the dispatcher, or a request
    /// claiming beside its enqueue), so two claims never count the same free slot.
    pub claiming: Arc<tokio::sync::Mutex<()>>,
    /// Every run in progress, so shutdown can wait for them.
    pub runs: tokio_util::task::TaskTracker,
    /// Wakes the webhook dispatcher when an event is written.
    pub webhooks: Notify,
    /// Running jobs, so a cancel can stop them.
    pub running: Mutex<HashMap<JobId, CancellationToken>>,
    /// Cancelled when this replica's lease lapses (ADR 23): the runs begun before then
    /// go back to the queue, as at a shutdown. Replaced by a fresh token each time.
    pub fence: Mutex<CancellationToken>,
    /// How far each running job has streamed, for the status page's tokens per second.
    pub progress: Progress,
    /// Sync jobs started before their rows were committed, until they are (ADR 30).
    pub unrecorded: crate::worker::Unrecorded,
    /// What `GET /metrics` reports beyond the store's counts.
    pub metrics: Metrics,
    /// Recent run times, for `estimated_wait_ms`.
    pub run_times: RunTimes,
    /// Every API key, by digest, for authentication without a database read.
    pub keys: Keys,
    /// The status page's browser sessions.
    pub ui_sessions: Sessions,
    /// The last hour of queue figures, for the status page's plots.
    pub ui_history: History,
    /// Bumped when a job or a target changes, so the status page's streams push at once.
    pub ui_changes: Changes,
    /// Cancelled when foreman begins to shut down: background tasks stop, and endless
    /// responses (the status page's stream) end so graceful shutdown is not held open.
    pub stopping: CancellationToken,
}

impl std::ops::Deref for App {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl App {
    /// Fails when a target's HTTP client cannot be built. `keys` are the stored keys.
    pub(crate) fn new(
        config: Config,
        targets: &[TargetSettings],
        store: Store,
        keys: Vec<KeyRecord>,
    ) -> reqwest::Result<Self> {
        let work = Arc::new(Notify::new());
        let targets = Pool::new(targets, config.retry_backoff, &work)?;
        let run_times = RunTimes::with_lanes(targets.slots());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                targets,
                live: Live::default(),
                work,
                claiming: Arc::new(tokio::sync::Mutex::new(())),
                runs: tokio_util::task::TaskTracker::new(),
                webhooks: Notify::new(),
                running: Mutex::new(HashMap::new()),
                fence: Mutex::new(CancellationToken::new()),
                progress: Progress::default(),
                unrecorded: crate::worker::Unrecorded::default(),
                metrics: Metrics::default(),
                run_times,
                keys: Keys::new(keys),
                ui_sessions: Sessions::default(),
                ui_history: History::default(),
                ui_changes: Changes::default(),
                stopping: CancellationToken::new(),
            }),
        })
    }

    /// Tells the worker, the webhook dispatcher and the status page that something changed.
    pub(crate) fn wake(&self) {
        self.work.notify_one();
        self.webhooks.notify_one();
        self.ui_changes.bump();
    }

    /// Stops a job the store has just cancelled while it was running; true if its run had
    /// begun. A job claimed but not yet begun gets a cancelled token that its run adopts,
    /// so a cancel landing between the claim and the run still stops it.
    pub(crate) fn stop_running(&self, id: JobId) -> bool {
        let Ok(mut running) = self.running.lock() else {
            return false;
        };
        let begun = running.contains_key(&id);
        running.entry(id).or_default().cancel();
        begun
    }
}
