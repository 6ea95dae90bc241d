//! The simulator's state: the GPU, the installed and resident models, the pretend registry,
//! the uploaded blobs and the counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use foreman_types::model_key;
use serde_json::Value;
use sha2::Digest;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::catalog::Model;
use super::manual::{Generation, Started};
use super::manual_pull::Pull;
use super::{SimConfig, SimStats};

/// How long a model stays resident after use when the request does not say (Ollama's `5m`).
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5 * 60);

/// The shared state of one simulator.
#[derive(Debug)]
pub(super) struct Sim {
    pub(super) config: SimConfig,
    /// Cancelled to stop the server; also ends the generations in flight.
    pub(super) shutdown: CancellationToken,
    /// Manual release: the generations started, waiting for the test to take them.
    pub(super) started: Started<Generation>,
    /// Manual release: the pulls under way, waiting for the test to take them.
    pub(super) pulls: Started<Pull>,
    /// The installed models, as `/api/tags` lists them.
    installed: Mutex<Vec<Model>>,
    /// The models the pretend registry serves to `/api/pull` (and receives from
    /// `/api/push`).
    registry: Mutex<Vec<Model>>,
    /// Blobs uploaded with `POST /api/blobs/{digest}`: digest and size.
    blobs: Mutex<HashMap<String, u64>>,
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
    /// Numbers the answers that carry an id (`msg_...`, `resp_...`).
    answers: AtomicU64,
}

#[derive(Debug)]
struct Resident {
    model: Model,
    expires_at: DateTime<Utc>,
}

impl Sim {
    pub(super) fn new(config: SimConfig, shutdown: CancellationToken) -> Self {
        let mut installed: Vec<Model> = Vec::new();
        for name in config.models.iter().chain(&config.resident) {
            let model = Model::new(name);
            if !installed.iter().any(|known| known.key == model.key) {
                installed.push(model);
            }
        }
        // The installed models came from the registry too, so they can be pulled again.
        let mut registry = installed.clone();
        for name in &config.registry {
            let model = Model::new(name);
            if !registry.iter().any(|known| known.key == model.key) {
                registry.push(model);
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
            shutdown,
            started: Started::new(),
            pulls: Started::new(),
            installed: Mutex::new(installed),
            registry: Mutex::new(registry),
            blobs: Mutex::new(HashMap::new()),
            gpu: Arc::new(tokio::sync::Mutex::new(())),
            resident: Mutex::new(resident),
            loads: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_concurrent: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            hung_up: AtomicU64::new(0),
            answers: AtomicU64::new(0),
        }
    }

    /// The installed model called `name` (a name without a tag means `:latest`).
    pub(super) fn find(&self, name: &str) -> Option<Model> {
        named(&self.installed, name)
    }

    /// The installed models, in the order they were installed.
    pub(super) fn installed(&self) -> Vec<Model> {
        lock(&self.installed).clone()
    }

    /// Installs `model`, replacing an installed one of the same name.
    pub(super) fn install(&self, model: Model) {
        let mut installed = lock(&self.installed);
        installed.retain(|known| known.key != model.key);
        tracing::debug!(model = %model.key, "simulated model installed");
        installed.push(model);
    }

    /// Removes the installed model called `name`; false if there was none.
    pub(super) fn uninstall(&self, name: &str) -> bool {
        let key = model_key(name);
        let mut installed = lock(&self.installed);
        let before = installed.len();
        installed.retain(|model| model.key != key);
        installed.len() < before
    }

    /// The registry's model called `name`.
    pub(super) fn in_registry(&self, name: &str) -> Option<Model> {
        named(&self.registry, name)
    }

    /// Whether the registry holds a blob, as a push asks before uploading it.
    pub(super) fn registry_has_blob(&self, digest: &str) -> bool {
        lock(&self.registry)
            .iter()
            .any(|model| model.layers.iter().any(|layer| layer.digest == digest))
    }

    /// Puts a pushed model in the registry, so that it can be pulled.
    pub(super) fn publish(&self, model: Model) {
        let mut registry = lock(&self.registry);
        registry.retain(|known| known.key != model.key);
        registry.push(model);
    }

    /// The size of a blob on "disk": uploaded, or a layer of an installed model.
    pub(super) fn blob(&self, digest: &str) -> Option<u64> {
        if let Some(size) = lock(&self.blobs).get(digest) {
            return Some(*size);
        }
        lock(&self.installed)
            .iter()
            .flat_map(|model| &model.layers)
            .find(|layer| layer.digest == digest)
            .map(|layer| layer.size)
    }

    /// Keeps an uploaded blob.
    pub(super) fn store_blob(&self, digest: String, size: u64) {
        lock(&self.blobs).insert(digest, size);
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

    /// An id for an answer, `prefix` and 24 hex digits, unique within this simulator and
    /// unlikely to repeat across simulators.
    pub(super) fn answer_id(&self, prefix: &str) -> String {
        let number = self.answers.fetch_add(1, Ordering::Relaxed);
        let seed = format!(
            "{number}:{}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let hash = sha2::Sha256::digest(seed.as_bytes());
        format!("{prefix}_{}", hex::encode(&hash[..12]))
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
        lock(&self.resident)
    }
}

/// Locks one of the simulator's lists. They stay consistent even if a holder panicked:
/// every change is one statement.
/// The model called `name` in `models` (the installed ones or the registry's), by
/// [`model_key`].
fn named(models: &Mutex<Vec<Model>>, name: &str) -> Option<Model> {
    let key = model_key(name);
    lock(models).iter().find(|model| model.key == key).cloned()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
