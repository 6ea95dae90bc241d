//! The simulator's state: the GPU, the resident models and the counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use foreman_types::model_key;
use serde_json::Value;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::catalog::{timestamp, Model};
use super::manual::Started;
use super::{SimConfig, SimStats};

/// How long a model stays resident after use when the request does not say (Ollama's `5m`).
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5 * 60);

/// The shared state of one simulator.
#[derive(Debug)]
pub(super) struct Sim {
    pub(super) config: SimConfig,
    pub(super) catalog: Vec<Model>,
    /// When the models were "pulled", as `/api/tags` and `/api/show` report it.
    pub(super) modified_at: String,
    /// Cancelled to stop the server; also ends the generations in flight.
    pub(super) shutdown: CancellationToken,
    /// Manual release: the generations started, waiting for the test to take them.
    pub(super) started: Started,
    /// The GPU: whoever holds the guard is generating.
    gpu: Arc<tokio::sync::Mutex<()>>,
    /// Resident models: at most one generation model, plus any embedding models.
    resident: Mutex<Vec<Resident>>,
    loads: AtomicU64,
    generations: AtomicU64,
    in_flight: AtomicU64,
    max_concurrent: AtomicU64,
    tokens: AtomicU64,
    hung_up: AtomicU64,
}

#[derive(Debug)]
struct Resident {
    model: Model,
    expires_at: DateTime<Utc>,
}

impl Sim {
    pub(super) fn new(config: SimConfig, shutdown: CancellationToken) -> Self {
        let mut catalog: Vec<Model> = Vec::new();
        for name in config.models.iter().chain(&config.resident) {
            let model = Model::new(name);
            if !catalog.iter().any(|known| known.key == model.key) {
                catalog.push(model);
            }
        }
        let resident = config
            .resident
            .iter()
            .map(|name| Resident {
                model: Model::new(name),
                expires_at: KeepAlive::Forever.expires_at(),
            })
            .collect();
        Self {
            config,
            catalog,
            modified_at: timestamp(Utc::now()),
            shutdown,
            started: Started::new(),
            gpu: Arc::new(tokio::sync::Mutex::new(())),
            resident: Mutex::new(resident),
            loads: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_concurrent: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            hung_up: AtomicU64::new(0),
        }
    }

    /// The installed model called `name` (a name without a tag means `:latest`).
    pub(super) fn find(&self, name: &str) -> Option<&Model> {
        let key = model_key(name);
        self.catalog.iter().find(|model| model.key == key)
    }

    pub(super) fn stats(&self) -> SimStats {
        SimStats {
            loads: self.loads.load(Ordering::Relaxed),
            generations: self.generations.load(Ordering::Relaxed),
            max_concurrent: self.max_concurrent.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            tokens: self.tokens.load(Ordering::Relaxed),
            hung_up: self.hung_up.load(Ordering::Relaxed),
        }
    }

    /// Counts a generation request in flight until the returned guard is dropped.
    pub(super) fn enter(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_concurrent.fetch_max(now, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Waits for the GPU; `None` when the server shuts down first.
    pub(super) async fn lock_gpu(&self) -> Option<OwnedMutexGuard<()>> {
        // Shutdown first: the generation that frees the GPU by ending at shutdown must not
        // let a waiting one start.
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            guard = Arc::clone(&self.gpu).lock_owned() => Some(guard),
        }
    }

    pub(super) fn count_generation(&self) {
        self.generations.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_token(&self) {
        self.tokens.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_hang_up(&self) {
        self.hung_up.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes `model` resident, paying the load time if it was not, and keeps it until
    /// `keep_alive` from now. Loading a generation model evicts the other one, so callers
    /// hold the GPU for those. Returns the time spent loading; `None` if the server shut down.
    pub(super) async fn load(&self, model: &Model, keep_alive: &KeepAlive) -> Option<Duration> {
        {
            let mut resident = self.resident();
            if let Some(entry) = resident.iter_mut().find(|r| r.model.key == model.key) {
                entry.expires_at = keep_alive.expires_at();
                return Some(Duration::ZERO);
            }
            // Ollama unloads the old runner before it loads the new one.
            if !model.embedding {
                resident.retain(|r| r.model.embedding);
            }
        }
        let started = Instant::now();
        if !self.sleep(self.config.load_time).await {
            return None;
        }
        let mut resident = self.resident();
        // Two concurrent embed requests may both have loaded the same model: count it once.
        if !resident.iter().any(|r| r.model.key == model.key) {
            resident.push(Resident {
                model: model.clone(),
                expires_at: keep_alive.expires_at(),
            });
            self.loads.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(model = %model.key, "simulated model loaded");
        }
        Some(started.elapsed())
    }

    /// After a use: keeps `model` for `keep_alive` more, or unloads it when that is zero.
    pub(super) fn release(&self, model: &Model, keep_alive: &KeepAlive) {
        let mut resident = self.resident();
        if keep_alive.unloads() {
            resident.retain(|r| r.model.key != model.key);
        } else if let Some(entry) = resident.iter_mut().find(|r| r.model.key == model.key) {
            entry.expires_at = keep_alive.expires_at();
        }
    }

    /// The resident models as `/api/ps` lists them.
    pub(super) fn resident_entries(&self) -> Vec<Value> {
        self.resident()
            .iter()
            .map(|r| r.model.ps_entry(r.expires_at))
            .collect()
    }

    /// Sleeps for `duration` unless it is zero; false if the server shut down meanwhile.
    pub(super) async fn sleep(&self, duration: Duration) -> bool {
        if duration.is_zero() {
            return !self.shutdown.is_cancelled();
        }
        self.sleep_until(Instant::now() + duration).await
    }

    /// Sleeps until `deadline`; false if the server shut down meanwhile.
    pub(super) async fn sleep_until(&self, deadline: Instant) -> bool {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => true,
            () = self.shutdown.cancelled() => false,
        }
    }

    fn resident(&self) -> MutexGuard<'_, Vec<Resident>> {
        // The list stays consistent even if a holder panicked: every change is one statement.
        self.resident.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A generation request in flight, counted in [`SimStats::in_flight`] until dropped.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Sim>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a model stays resident after a request, from its `keep_alive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeepAlive {
    /// Unload as soon as the request is done (`0`).
    Unload,
    /// Stay this long (`"5m"`, `300`).
    For(Duration),
    /// Stay until evicted (a negative value).
    Forever,
}

impl KeepAlive {
    /// Reads Ollama's `keep_alive`: seconds as a number, a duration string, or negative for
    /// ever. Absent or unreadable means five minutes.
    pub(super) fn from_request(value: Option<&Value>) -> Self {
        let seconds = match value {
            Some(Value::Number(number)) => number.as_f64(),
            Some(Value::String(text)) => {
                let text = text.trim();
                text.parse::<f64>().ok().or_else(|| {
                    if text.starts_with('-') {
                        Some(-1.0)
                    } else {
                        humantime::parse_duration(text)
                            .ok()
                            .map(|duration| duration.as_secs_f64())
                    }
                })
            }
            _ => None,
        };
        match seconds {
            Some(seconds) if seconds < 0.0 => Self::Forever,
            Some(0.0) => Self::Unload,
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .map(Self::For)
                .unwrap_or(Self::Forever),
            None => Self::For(DEFAULT_KEEP_ALIVE),
        }
    }

    pub(super) fn unloads(&self) -> bool {
        *self == Self::Unload
    }

    fn expires_at(&self) -> DateTime<Utc> {
        let now = Utc::now();
        let lasting = match self {
            Self::Unload => chrono::Duration::zero(),
            Self::For(duration) => {
                chrono::Duration::from_std(*duration).unwrap_or(chrono::Duration::MAX)
            }
            // Ollama shows a date centuries away for a model kept for ever.
            Self::Forever => chrono::Duration::days(300 * 365),
        };
        now.checked_add_signed(lasting)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
