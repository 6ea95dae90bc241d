//! The target pool: every Ollama host foreman fronts, each one value holding its name,
//! URL, HTTP client, inventory (installed and loaded models, health, held pulls) and lane
//! (how many generations it runs at once). Routes and the worker ask the [`Pool`]; nothing
//! else knows how many targets there are.
//!
//! - [`client`]: the HTTP client for one host, and how its failures are told apart.
//! - [`inventory`]: the poller's cache of one host's `/api/tags` and `/api/ps`, whether it
//!   answers, and the models being pulled onto it.
//! - [`lane`]: one host's slots.
//! - [`merged`]: the union views (`/api/tags`, `/api/ps`) over all hosts.

pub(crate) mod client;
pub(crate) mod inventory;
mod lane;
pub(crate) mod merged;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub(crate) use client::TargetClient;
pub(crate) use inventory::{Inventory, Known};
pub(crate) use lane::Lane;

use crate::config::TargetSettings;
use crate::scheduler::TargetView;

/// One Ollama host and everything foreman keeps about it.
#[derive(Debug)]
pub(crate) struct Target {
    /// The name jobs, metrics and `/healthz` show.
    pub name: String,
    /// Its URL, as `/healthz` shows it (no credentials).
    pub url: String,
    /// How to talk to it.
    pub client: TargetClient,
    /// What it has, and whether it answers.
    pub inventory: Inventory,
    /// Its generation slots.
    pub lane: Lane,
}

impl Target {
    /// Whether it answers (as far as foreman knows).
    pub(crate) fn up(&self) -> bool {
        !self.inventory.degraded()
    }

    /// What the scheduler sees of it now: `load` is what runs on it; the store adds the
    /// queued jobs bound for it.
    pub(crate) fn view(&self) -> TargetView {
        TargetView {
            name: self.name.clone(),
            up: self.up(),
            free_slots: self.lane.free(),
            parallel: self.lane.parallel(),
            load: self.lane.running(),
            resident: self.inventory.loaded(),
            installed: self.inventory.installed(),
            unpolled: !self.inventory.polled(),
        }
    }
}

/// Every target, in the order of `FOREMAN_TARGET_URL`; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    targets: Arc<[Arc<Target>]>,
}

impl Pool {
    /// The targets of `settings`. `recovered` is woken when a target answers again.
    ///
    /// # Errors
    /// When an HTTP client cannot be built.
    pub(crate) fn new(
        settings: &[TargetSettings],
        retry_backoff: Duration,
        recovered: &Arc<Notify>,
    ) -> reqwest::Result<Self> {
        let mut targets = Vec::with_capacity(settings.len());
        for target in settings {
            let client = TargetClient::new(
                target.name.clone(),
                target.url.clone(),
                target.token.clone(),
            )?;
            let inventory = Inventory::new(client.clone(), Arc::clone(recovered));
            targets.push(Arc::new(Target {
                name: target.name.clone(),
                url: crate::config::display_url(&target.url),
                client,
                inventory,
                lane: Lane::new(target.parallel, retry_backoff),
            }));
        }
        Ok(Self {
            targets: targets.into(),
        })
    }

    /// Every target, in order.
    pub(crate) fn all(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// The target called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Target>> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Whether any target is unreachable.
    pub(crate) fn degraded(&self) -> bool {
        self.targets.iter().any(|t| !t.up())
    }

    /// Generation slots over all targets.
    pub(crate) fn slots(&self) -> u32 {
        self.targets.iter().map(|t| t.lane.parallel()).sum()
    }

    /// Whether a target that answers has a free slot: [`Self::views`] without building them.
    pub(crate) fn have_room(&self) -> bool {
        self.targets.iter().any(|t| t.lane.free() > 0 && t.up())
    }

    /// The scheduler's view of every target.
    pub(crate) fn views(&self) -> Vec<TargetView> {
        self.targets.iter().map(|t| t.view()).collect()
    }

    /// Model swaps over all targets.
    pub(crate) fn model_swaps(&self) -> u64 {
        self.targets.iter().map(|t| t.lane.swaps()).sum()
    }

    /// Models loaded anywhere, each once: each target's most recently used first.
    pub(crate) fn loaded(&self) -> Vec<String> {
        let mut models: Vec<String> = Vec::new();
        for model in self.targets.iter().flat_map(|t| t.inventory.loaded()) {
            if !models.contains(&model) {
                models.push(model);
            }
        }
        models
    }

    /// Models being pulled through foreman onto any target, sorted.
    pub(crate) fn pulling(&self) -> Vec<String> {
        self.each_once(|t| t.inventory.pulling(), |_| true)
    }

    /// Models whose jobs wait whatever their turn (ADR 15): being pulled onto some target
    /// and installed on none yet. A model installed on another target runs there
    /// meanwhile (the scheduler keeps it off the targets that lack it).
    pub(crate) fn held(&self) -> Vec<String> {
        self.each_once(
            |t| t.inventory.held(),
            |m| !self.targets.iter().any(|t| t.inventory.has_installed(m)),
        )
    }

    /// The models `of` lists on every target that `keep` keeps, sorted, each once.
    fn each_once<I: IntoIterator<Item = String>>(
        &self,
        of: impl Fn(&Target) -> I,
        keep: impl Fn(&String) -> bool,
    ) -> Vec<String> {
        let mut models: Vec<String> = self
            .targets
            .iter()
            .flat_map(|t| of(t))
            .filter(|m| keep(m))
            .collect();
        models.sort();
        models.dedup();
        models
    }

    /// Whether any target has `model` (normalised), polling the ones that miss it once
    /// more: installed anywhere, else being pulled anywhere, else unknown while some
    /// target cannot be asked (the job waits for it), else missing.
    pub(crate) async fn check(&self, model: &str) -> Known {
        let cached: Vec<Known> = self
            .targets
            .iter()
            .map(|t| t.inventory.knows(model))
            .collect();
        if let Some(found) = strongest(&cached, &[Known::Installed, Known::Pulling]) {
            return found;
        }
        let polled =
            futures::future::join_all(self.targets.iter().map(|t| t.inventory.check(model))).await;
        strongest(&polled, &[Known::Installed, Known::Pulling, Known::Unknown])
            .unwrap_or(Known::Missing)
    }

    /// The targets an unqueued request for `model` may go to (an embedding, `show`), the
    /// best first: up before down, then the model resident, then installed, then the
    /// fewest generations running. Targets that do not list the model come last, for the
    /// case where no target lists it (the target's answer then decides).
    pub(crate) fn for_model(&self, model: &str) -> Vec<Arc<Target>> {
        let mut ranked: Vec<(u8, u32, usize, Arc<Target>)> = self
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let has = if target.inventory.loaded().iter().any(|m| m == model) {
                    0
                } else if target.inventory.has_installed(model) {
                    1
                } else {
                    2
                };
                let rank = u8::from(!target.up()) * 3 + has;
                (rank, target.lane.running(), index, Arc::clone(target))
            })
            .collect();
        ranked.sort_by_key(|(rank, running, index, _)| (*rank, *running, *index));
        let listed = ranked.iter().any(|(rank, ..)| rank % 3 < 2);
        ranked
            .into_iter()
            .filter(|(rank, ..)| !listed || rank % 3 < 2)
            .map(|(.., target)| target)
            .collect()
    }

    /// Every target, those that answer first: for a request any of them can answer.
    pub(crate) fn up_first(&self) -> Vec<Arc<Target>> {
        let mut targets: Vec<Arc<Target>> = self.targets.to_vec();
        targets.sort_by_key(|t| !t.up());
        targets
    }

    /// Polls every target's inventory at once.
    pub(crate) async fn refresh_all(&self) {
        futures::future::join_all(self.targets.iter().map(|t| t.inventory.refresh())).await;
    }

    /// The targets named by `name`, or all of them.
    pub(crate) fn select(&self, name: Option<&str>) -> Option<Vec<Arc<Target>>> {
        match name {
            Some(name) => self.get(name).map(|t| vec![Arc::clone(t)]),
            None => Some(self.targets.to_vec()),
        }
    }
}

/// The first of `order` that any answer in `answers` is.
fn strongest(answers: &[Known], order: &[Known]) -> Option<Known> {
    order.iter().copied().find(|k| answers.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(names: &[&str]) -> Pool {
        let settings: Vec<TargetSettings> = names
            .iter()
            .enumerate()
            .map(|(i, name)| TargetSettings {
                name: (*name).to_owned(),
                url: format!("http://127.0.0.1:{}", 9 + i).parse().unwrap(),
                token: None,
                parallel: 1,
            })
            .collect();
        Pool::new(&settings, Duration::ZERO, &Arc::new(Notify::new())).unwrap()
    }

    #[test]
    fn a_model_pulled_onto_one_target_is_held_only_while_no_target_has_it() {
        let pool = pool(&["a", "b"]);
        pool.get("a").unwrap().inventory.begin_pull("m:latest");
        assert_eq!(pool.held(), ["m:latest"]);
        assert_eq!(pool.pulling(), ["m:latest"]);
    }

    #[test]
    fn unqueued_requests_prefer_a_target_that_answers() {
        let pool = pool(&["a", "b"]);
        let order: Vec<String> = pool.up_first().iter().map(|t| t.name.clone()).collect();
        assert_eq!(order, ["a", "b"]);
        let order: Vec<String> = pool
            .for_model("nobody-lists:latest")
            .iter()
            .map(|t| t.name.clone())
            .collect();
        assert_eq!(order, ["a", "b"], "a model nobody lists may go anywhere");
    }
}
