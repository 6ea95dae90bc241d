//! The fake's shared mutable state: what it answers with, and what it has seen.
//!
//! Responders read it on every request, so a test changes behaviour mid-flight by
//! changing the state, without remounting mocks. It outlives the wiremock server, so
//! a stop/restart keeps it.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::models::{canonical, Model};

/// State shared by the handle and the responder.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Woken whenever a generation request is recorded.
    pub(crate) generation_seen: Notify,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            generation_seen: Notify::new(),
        }
    }

    /// Locks the state; a panicking test thread must not poison every later assertion.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An injected failure for chat and generate.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// `None`: until cleared; `Some(n)`: for the next `n` generations.
    pub(crate) remaining: Option<usize>,
}

/// Behaviour and observations.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) models: Vec<Model>,
    pub(crate) resident: Option<String>,
    pub(crate) reply: String,
    pub(crate) thinking: String,
    pub(crate) chunks: usize,
    pub(crate) delay: Duration,
    pub(crate) failure: Option<Failure>,
    pub(crate) token: Option<String>,
    /// How long a pull or create takes; the model appears when it is over.
    pub(crate) pull_delay: Duration,
    /// Pulls and creates under way: when each model appears.
    pub(crate) arriving: Vec<(Instant, Model)>,
    /// Names the fake's registry does not have: pulling them fails.
    pub(crate) unpullable: HashSet<String>,
    /// Digests of the blobs uploaded with `POST /api/blobs/{digest}`.
    pub(crate) blobs: HashSet<String>,
    pub(crate) requests: Vec<wiremock::Request>,
    pub(crate) generations: Vec<Value>,
    /// `[start, start + delay)` of each delayed generation.
    pub(crate) intervals: Vec<(Instant, Instant)>,
}

impl State {
    pub(crate) fn find(&self, name: &str) -> Option<&Model> {
        let name = canonical(name);
        self.models.iter().find(|m| m.name == name)
    }

    pub(crate) fn add_model(&mut self, name: &str) {
        if self.find(name).is_none() {
            self.models.push(Model::new(name));
        }
    }

    /// Installs `model` (replacing one of the same name) once `pull_delay` has passed.
    pub(crate) fn install_later(&mut self, model: Model) {
        let at = Instant::now() + self.pull_delay;
        self.arriving.push((at, model));
        self.settle_arrivals();
    }

    /// Installs the models whose pull or create is over by now.
    pub(crate) fn settle_arrivals(&mut self) {
        let now = Instant::now();
        let (due, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.arriving)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.arriving = pending;
        for (_, model) in due {
            self.models.retain(|m| m.name != model.name);
            self.models.push(model);
        }
    }

    /// Starts a generation of `model` on the fake's one GPU, as the `/v1` routes do: an
    /// injected failure answers instead (recorded as a generation, so overlap checks see
    /// it), an unknown model is refused, and otherwise the model becomes resident and the
    /// generation's interval is recorded.
    pub(crate) fn start_generation(&mut self, model: &str) -> Result<(), Refused> {
        let delay = self.delay;
        let start = std::time::Instant::now();
        if let Some((status, failure)) = self.take_failure() {
            self.intervals.push((start, start + delay));
            let message = foreman_types::ErrorBody::message_of(&failure)
                .unwrap_or_else(|| failure.to_string());
            return Err(Refused::Failure { status, message });
        }
        let Some(found) = self.find(model) else {
            return Err(Refused::Unknown);
        };
        self.resident = Some(found.name.clone());
        self.intervals.push((start, start + delay));
        Ok(())
    }

    /// The start of a `/v1/messages` or `/v1/responses` answer: records the request's
    /// body as a generation and requires its `model`; a refusal is answered in the
    /// route's error shape, `error(status, message)`. Otherwise the body's fields, the
    /// model, and the delay the answer takes. (Answers are boxed: they are large.)
    pub(crate) fn start_from_request(
        &mut self,
        request: &wiremock::Request,
        error: fn(u16, &str) -> wiremock::ResponseTemplate,
    ) -> Result<(Map<String, Value>, String, Duration), Box<wiremock::ResponseTemplate>> {
        let Ok(Value::Object(body)) = request.body_json::<Value>() else {
            return Err(Box::new(error(400, "invalid request body")));
        };
        self.generations.push(Value::Object(body.clone()));
        let model = match body.get("model").and_then(Value::as_str) {
            Some(model) if !model.is_empty() => model.to_owned(),
            _ => return Err(Box::new(error(400, "model is required"))),
        };
        Ok((body, model, self.delay))
    }

    /// [`State::start_generation`], a refusal answered as `error(status, message)`.
    pub(crate) fn start_or_refuse(
        &mut self,
        model: &str,
        error: fn(u16, &str) -> wiremock::ResponseTemplate,
    ) -> Result<(), Box<wiremock::ResponseTemplate>> {
        let delay = self.delay;
        match self.start_generation(model) {
            Ok(()) => Ok(()),
            Err(Refused::Failure { status, message }) => {
                Err(Box::new(error(status, &message).set_delay(delay)))
            }
            Err(Refused::Unknown) => {
                let message = format!("model \"{model}\" not found, try pulling it first");
                Err(Box::new(error(404, &message)))
            }
        }
    }

    /// Takes one use of the injected failure, if any.
    pub(crate) fn take_failure(&mut self) -> Option<(u16, Value)> {
        let failure = self.failure.as_mut()?;
        let answer = (failure.status, failure.body.clone());
        match &mut failure.remaining {
            None => {}
            Some(1) => self.failure = None,
            Some(n) => *n -= 1,
        }
        Some(answer)
    }

    /// The largest number of recorded intervals covering one instant.
    pub(crate) fn max_overlap(&self) -> usize {
        let mut events: Vec<(Instant, i32)> = Vec::with_capacity(self.intervals.len() * 2);
        for &(start, end) in &self.intervals {
            events.push((start, 1));
            events.push((end, -1));
        }
        // Half-open intervals: at a tie the end comes first, so back-to-back calls do not
        // count as overlapping.
        events.sort();
        let (mut now, mut max) = (0_i32, 0_i32);
        for (_, delta) in events {
            now += delta;
            max = max.max(now);
        }
        let max = usize::try_from(max).unwrap_or(0);
        let any = !self.generations.is_empty();
        if any {
            max.max(1)
        } else {
            max
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(intervals: &[(u64, u64)]) -> State {
        let base = Instant::now();
        let at = |ms| base + Duration::from_millis(ms);
        State {
            intervals: intervals.iter().map(|&(s, e)| (at(s), at(e))).collect(),
            generations: vec![Value::Null; intervals.len()],
            ..State::default()
        }
    }

    #[test]
    fn back_to_back_intervals_do_not_overlap() {
        assert_eq!(state_with(&[(0, 10), (10, 20), (20, 30)]).max_overlap(), 1);
    }

    #[test]
    fn nested_intervals_overlap() {
        assert_eq!(
            state_with(&[(0, 100), (10, 20), (15, 30), (50, 60)]).max_overlap(),
            3
        );
    }

    #[test]
    fn failures_with_a_count_run_out() {
        let mut state = State {
            failure: Some(Failure {
                status: 500,
                body: Value::Null,
                remaining: Some(2),
            }),
            ..State::default()
        };
        assert!(state.take_failure().is_some());
        assert!(state.take_failure().is_some());
        assert!(state.take_failure().is_none());
    }
}

/// Why [`State::start_generation`] did not start one.
#[derive(Debug)]
pub(crate) enum Refused {
    /// An injected failure: answer `status` with this message, after the fake's delay.
    Failure { status: u16, message: String },
    /// The fake does not have the model.
    Unknown,
}
