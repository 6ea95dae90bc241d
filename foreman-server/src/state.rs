//! What every handler and background task shares.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use foreman_types::JobId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::estimate::RunTimes;
use crate::inventory::Inventory;
use crate::keys::{KeyRecord, Keys};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::rate::RateLimiter;
use crate::store::Store;
use crate::target::Target;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: Config,
    pub store: Store,
    /// The target; a list when foreman fronts several hosts.
    pub target: Target,
    pub inventory: Inventory,
    pub live: Live,
    /// Wakes the worker when a job is queued.
    pub work: Notify,
    /// Wakes the webhook dispatcher when an event is written.
    pub webhooks: Notify,
    /// Running jobs, so a cancel can stop them.
    pub running: Mutex<HashMap<JobId, CancellationToken>>,
    /// Generations that ran on a different model from the one before: model swaps.
    pub model_swaps: AtomicU64,
    /// The model of the last generation, to count swaps.
    pub last_model: Mutex<Option<String>>,
    /// What `GET /metrics` reports beyond the store's counts.
    pub metrics: Metrics,
    /// Recent run times, for `estimated_wait_ms`.
    pub run_times: RunTimes,
    /// Every API key, by digest, for authentication without a database read.
    pub keys: Keys,
    /// Each tenant's requests in the last minute, for its key's `rpm`.
    pub rate: RateLimiter,
}

impl std::ops::Deref for App {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl App {
    /// Fails when the target's HTTP client cannot be built. `keys` are the stored keys.
    pub(crate) fn new(config: Config, store: Store, keys: Vec<KeyRecord>) -> reqwest::Result<Self> {
        let target = Target::new(
            "default",
            config.target_url.clone(),
            config.target_token.clone(),
        )?;
        let inventory = Inventory::new(target.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                target,
                inventory,
                live: Live::default(),
                work: Notify::new(),
                webhooks: Notify::new(),
                running: Mutex::new(HashMap::new()),
                model_swaps: AtomicU64::new(0),
                last_model: Mutex::new(None),
                metrics: Metrics::default(),
                run_times: RunTimes::default(),
                keys: Keys::new(keys),
                rate: RateLimiter::default(),
            }),
        })
    }

    /// Tells the worker and the webhook dispatcher that something changed.
    pub(crate) fn wake(&self) {
        self.work.notify_one();
        self.webhooks.notify_one();
    }

    /// Stops a running job; true if it was running.
    pub(crate) fn stop_running(&self, id: JobId) -> bool {
        let token = self.running.lock().ok().and_then(|r| r.get(&id).cloned());
        match token {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}
