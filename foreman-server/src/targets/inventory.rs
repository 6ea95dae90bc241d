//! What the target has: installed models (`/api/tags`) and loaded ones (`/api/ps`),
//! polled in the background and kept while the target is down; and the models being
//! pulled through foreman right now (ADR 15).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use foreman_types::{model_key, PsResponse, TagsResponse};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::client::{TargetClient, TargetError};

/// While the target is unreachable it is polled at least this often, to notice it coming
/// back.
const DEGRADED_POLL: Duration = Duration::from_secs(2);

/// The longest `GET /api/ps` waits to refresh a stale cache.
const STALE_PS_REFRESH: Duration = Duration::from_secs(2);

/// Whether the target has a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Installed,
    /// Not installed yet, but a pull (or create) of it is under way through foreman.
    Pulling,
    Missing,
    /// The target has not answered yet, so nobody can tell.
    Unknown,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// `/api/tags` as the target last answered it, for passthrough.
    tags: Option<Value>,
    /// `/api/ps` as the target last answered it.
    ps: Option<Value>,
    installed: HashSet<String>,
    /// Loaded models, the most recently used first.
    loaded: Vec<String>,
    polled_once: bool,
    /// A generation ran since the last poll, so `/api/ps` may be out of date.
    ps_stale: bool,
    /// When the last successful poll finished.
    polled_at: Option<std::time::Instant>,
}

/// The cached inventory of one target; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Inventory {
    target: TargetClient,
    snapshot: Arc<RwLock<Snapshot>>,
    /// One refresh at a time.
    refreshing: Arc<tokio::sync::Mutex<()>>,
    /// One miss-triggered poll at a time, so concurrent misses share it.
    misses: Arc<tokio::sync::Mutex<()>>,
    /// Whether the target is unreachable; the worker gives it nothing meanwhile.
    degraded: Arc<tokio::sync::watch::Sender<bool>>,
    /// Models being pulled or created through foreman, and how many times each.
    pulling: Arc<Mutex<HashMap<String, usize>>>,
    /// Woken when the target answers again, so the worker gives it work at once.
    recovered: Arc<Notify>,
}

impl Inventory {
    pub(crate) fn new(target: TargetClient, recovered: Arc<Notify>) -> Self {
        Self {
            target,
            recovered,
            snapshot: Arc::new(RwLock::new(Snapshot::default())),
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
            misses: Arc::new(tokio::sync::Mutex::new(())),
            degraded: Arc::new(tokio::sync::watch::Sender::new(false)),
            pulling: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&crate::lock::read(&self.snapshot))
    }

    fn write(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut crate::lock::write(&self.snapshot))
    }

    /// Polls `/api/tags` and `/api/ps` once.
    pub(crate) async fn refresh(&self) -> Result<(), TargetError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let polled = async {
            let tags = self.target.get_json("/api/tags").await?;
            let ps = self.target.get_json("/api/ps").await?;
            Ok::<_, TargetError>((tags, ps))
        }
        .await;
        match polled {
            Ok((tags, ps)) => {
                let installed = serde_json::from_value::<TagsResponse>(tags.clone())
                    .map(|t| t.models.iter().map(|m| model_key(&m.name)).collect())
                    .unwrap_or_default();
                let loaded: Vec<String> = serde_json::from_value::<PsResponse>(ps.clone())
                    .map(|p| p.models.iter().map(|m| model_key(&m.name)).collect())
                    .unwrap_or_default();
                self.write(|s| {
                    // Keep our own knowledge of which loaded model ran last at the front.
                    let mut ordered: Vec<String> = s
                        .loaded
                        .iter()
                        .filter(|m| loaded.contains(m))
                        .cloned()
                        .collect();
                    for model in loaded {
                        if !ordered.contains(&model) {
                            ordered.push(model);
                        }
                    }
                    *s = Snapshot {
                        tags: Some(tags),
                        ps: Some(ps),
                        installed,
                        loaded: ordered,
                        polled_once: true,
                        ps_stale: false,
                        polled_at: Some(std::time::Instant::now()),
                    };
                });
                let recovered = self
                    .degraded
                    .send_if_modified(|degraded| std::mem::replace(degraded, false));
                if recovered {
                    tracing::info!(target_name = %self.target.name, "target reachable again");
                    self.recovered.notify_one();
                }
                Ok(())
            }
            Err(err) => {
                self.mark_unreachable(&err);
                Err(err)
            }
        }
    }

    /// Records that the target could not be reached (by the poller or the worker).
    pub(crate) fn mark_unreachable(&self, err: &TargetError) {
        if !matches!(err, TargetError::Connection(_)) {
            return;
        }
        let changed = self
            .degraded
            .send_if_modified(|degraded| !std::mem::replace(degraded, true));
        if changed {
            tracing::warn!(target_name = %self.target.name, error = %err, "target unreachable");
        }
    }

    /// Polls every `interval` (faster while degraded) until `shutdown`.
    pub(crate) async fn poll_loop(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            let _ = self.refresh().await;
            let wait = if self.degraded() {
                interval.min(DEGRADED_POLL)
            } else {
                interval
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Tells of each change in whether the target is unreachable (the status page shows it
    /// at once).
    pub(crate) fn health(&self) -> tokio::sync::watch::Receiver<bool> {
        self.degraded.subscribe()
    }

    /// Whether the target is unreachable now.
    pub(crate) fn degraded(&self) -> bool {
        *self.degraded.borrow()
    }

    /// The last `/api/tags` answer, if there has been one.
    pub(crate) fn tags(&self) -> Option<Value> {
        self.read(|s| s.tags.clone())
    }

    /// The last `/api/ps` answer, if there has been one.
    pub(crate) fn ps(&self) -> Option<Value> {
        self.read(|s| s.ps.clone())
    }

    /// `/api/ps`, polled again first if a generation ran since the last poll (so a client
    /// asking right after a chat sees the model it just used); the cache when the target
    /// does not answer in time.
    pub(crate) async fn fresh_ps(&self) -> Option<Value> {
        if self.read(|s| s.ps_stale) && !self.degraded() {
            let _ = tokio::time::timeout(STALE_PS_REFRESH, self.refresh()).await;
        }
        self.ps()
    }

    /// Loaded models, the most recently used first.
    pub(crate) fn loaded(&self) -> Vec<String> {
        self.read(|s| s.loaded.clone())
    }

    /// Installed models (normalised), sorted; the last known list while the target is down.
    pub(crate) fn installed(&self) -> Vec<String> {
        let mut models: Vec<String> = self.read(|s| s.installed.iter().cloned().collect());
        models.sort();
        models
    }

    /// Whether the target has answered a poll since foreman started.
    pub(crate) fn polled(&self) -> bool {
        self.read(|s| s.polled_once)
    }

    /// Whether the last poll listed `model` (normalised) as installed.
    pub(crate) fn has_installed(&self, model: &str) -> bool {
        self.read(|s| s.installed.contains(model))
    }

    /// Records that `model` just ran, so it is the resident one until the next poll, and
    /// the cached `/api/ps` (expiry times, which model is loaded) is out of date.
    pub(crate) fn note_ran(&self, model: &str) {
        self.write(|s| {
            s.ps_stale = true;
            s.loaded.retain(|m| m != model);
            s.loaded.insert(0, model.to_owned());
        });
    }

    /// Records that `model` was just unloaded (a request with `keep_alive: 0` ran), so
    /// nothing counts it as resident until a poll says otherwise.
    pub(crate) fn note_unloaded(&self, model: &str) {
        self.write(|s| {
            s.ps_stale = true;
            s.loaded.retain(|m| m != model);
        });
    }

    fn pulls<T>(&self, f: impl FnOnce(&mut HashMap<String, usize>) -> T) -> T {
        f(&mut crate::lock::lock(&self.pulling))
    }

    /// Records that a pull (or create) of `model` (normalised) started.
    pub(crate) fn begin_pull(&self, model: &str) {
        self.pulls(|p| *p.entry(model.to_owned()).or_default() += 1);
    }

    /// Records that a pull of `model` ended, however it ended.
    pub(crate) fn end_pull(&self, model: &str) {
        self.pulls(|p| {
            if let Some(count) = p.get_mut(model) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    p.remove(model);
                }
            }
        });
    }

    /// The models being pulled now, sorted.
    pub(crate) fn pulling(&self) -> Vec<String> {
        let mut models: Vec<String> = self.pulls(|p| p.keys().cloned().collect());
        models.sort();
        models
    }

    /// The models being pulled that the target does not have yet: their jobs wait in the
    /// queue until the pull ends. An installed model being pulled again (an update) keeps
    /// running on the version it has, as Ollama serves it meanwhile.
    pub(crate) fn held(&self) -> Vec<String> {
        let mut pulling = self.pulling();
        self.read(|s| pulling.retain(|m| !s.installed.contains(m)));
        pulling
    }

    /// Whether the target has `model` (normalised), from the cache.
    pub(crate) fn knows(&self, model: &str) -> Known {
        let pulling = self.pulls(|p| p.contains_key(model));
        self.read(|s| {
            if s.installed.contains(model) {
                Known::Installed
            } else if pulling {
                Known::Pulling
            } else if s.polled_once {
                Known::Missing
            } else {
                Known::Unknown
            }
        })
    }

    /// Whether the target has `model`, polling once more on a miss (it may have just
    /// been pulled). `Unknown` when the target cannot be asked.
    ///
    /// A burst of requests for a missing model shares polls: a request that waited for
    /// another's poll, finished after it arrived, trusts that poll. While the target is unreachable nothing is polled
    /// and a model missing from the last known list is `Unknown`: the job waits for the
    /// target rather than failing on stale knowledge.
    pub(crate) async fn check(&self, model: &str) -> Known {
        let known = self.knows(model);
        if matches!(known, Known::Installed | Known::Pulling) {
            return known;
        }
        if self.degraded() {
            return Known::Unknown;
        }
        let arrived = std::time::Instant::now();
        let _one_at_a_time = self.misses.lock().await;
        let fresh = self.read(|s| s.polled_at.is_some_and(|at| at > arrived));
        if fresh {
            return self.knows(model);
        }
        match self.refresh().await {
            Ok(()) => self.knows(model),
            Err(_) => Known::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        let url = "http://127.0.0.1:9".parse().unwrap();
        let client = TargetClient::new("default", url, None).expect("a client builds");
        Inventory::new(client, Arc::new(Notify::new()))
    }

    #[test]
    fn a_model_is_pulling_until_its_last_pull_ends() {
        let inventory = inventory();
        inventory.begin_pull("m:latest");
        inventory.begin_pull("m:latest");
        assert_eq!(inventory.knows("m:latest"), Known::Pulling);
        assert_eq!(inventory.pulling(), vec!["m:latest".to_owned()]);
        assert_eq!(inventory.held(), vec!["m:latest".to_owned()]);
        inventory.end_pull("m:latest");
        assert_eq!(inventory.knows("m:latest"), Known::Pulling);
        inventory.end_pull("m:latest");
        assert_eq!(inventory.knows("m:latest"), Known::Unknown);
        assert!(inventory.pulling().is_empty());
        inventory.end_pull("m:latest");
        assert!(inventory.pulling().is_empty(), "an extra end is harmless");
    }

    #[test]
    fn an_unloaded_model_is_no_longer_resident() {
        let inventory = inventory();
        inventory.note_ran("a:latest");
        inventory.note_ran("b:latest");
        assert_eq!(inventory.loaded(), vec!["b:latest", "a:latest"]);
        inventory.note_unloaded("b:latest");
        assert_eq!(inventory.loaded(), vec!["a:latest"]);
    }
}
