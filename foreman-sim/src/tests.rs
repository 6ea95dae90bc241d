//! The simulator's behaviour, through its HTTP API.

mod anthropic;
mod generations;
mod manage;
mod manual;
mod models;
mod openai;
mod pull;
mod responses;

use std::future::Future;
use std::time::Duration;

use foreman_testkit::bodies::{named_events, EventReader, LineReader};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{spawn, SimConfig, SimHandle, SimStats};

/// A safety net for waits that should end long before it.
const DEADLINE: Duration = Duration::from_secs(10);

/// A simulator for one test, stopped when the test ends.
struct TestSim {
    url: String,
    handle: SimHandle,
    client: reqwest::Client,
}

impl TestSim {
    async fn start(config: SimConfig) -> Self {
        let handle = spawn(config).await.expect("the simulator starts");
        Self {
            url: handle.url().to_owned(),
            handle,
            client: reqwest::Client::new(),
        }
    }

    fn stats(&self) -> SimStats {
        self.handle.stats()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        let request = self.client.post(format!("{}{path}", self.url)).json(&body);
        tokio::time::timeout(DEADLINE, request.send())
            .await
            .expect("the simulator answers before the deadline")
            .expect("the request reaches the simulator")
    }

    /// Starts `POST path` in the background, for a request that waits while the test goes
    /// on.
    fn spawn_post(
        &self,
        path: &str,
        body: Value,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let request = self.client.post(format!("{}{path}", self.url)).json(&body);
        tokio::spawn(request.send())
    }

    /// Runs `second` while `held` keeps the GPU busy: once both are in flight, notes the
    /// counters and drops `held`, so that `second` gets the GPU. The counters seen while
    /// `second` waited, and its outcome.
    async fn behind<T>(&self, held: impl Sized, second: impl Future<Output = T>) -> (SimStats, T) {
        let observe = async {
            self.wait_for("second request in flight", |s| s.in_flight == 2)
                .await;
            let waiting = self.stats();
            drop(held);
            waiting
        };
        tokio::join!(observe, second)
    }

    /// Posts and reads the whole answer as JSON, with its status.
    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.post(path, body).await;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(DEADLINE, response.json::<Value>())
            .await
            .expect("the body arrives before the deadline")
            .expect("the body is JSON");
        (status, body)
    }

    /// POSTs `body` and reads the JSON answer, which must come with `status`.
    async fn answer(&self, path: &str, body: Value, status: u16) -> Value {
        let (got, answer) = self.post_json(path, body).await;
        assert_eq!(got, status, "{path} answered {got}: {answer}");
        answer
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the request reaches the simulator");
        assert!(response.status().is_success(), "GET {path}");
        response.json().await.expect("the body is JSON")
    }

    /// The names of the resident models, from `/api/ps`.
    async fn resident(&self) -> Vec<String> {
        let ps = self.get_json("/api/ps").await;
        let mut names: Vec<String> = ps["models"]
            .as_array()
            .expect("models is a list")
            .iter()
            .map(|model| model["name"].as_str().expect("a name").to_owned())
            .collect();
        names.sort();
        names
    }

    /// The next generation to get the GPU (in manual release), or a failed test.
    async fn generation(&self) -> crate::Generation {
        self.handle
            .next_generation(DEADLINE)
            .await
            .expect("a generation gets the GPU before the deadline")
    }

    /// Waits, up to the deadline, until the counters satisfy `condition`.
    async fn wait_for(&self, what: &str, condition: impl Fn(&SimStats) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let stats = self.stats();
            if condition(&stats) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} by the deadline: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A simulator whose tokens the test releases.
async fn manual() -> TestSim {
    TestSim::start(SimConfig::manual()).await
}

/// A quick simulator: 30 ms loads, 5 ms to the first token, 5 tokens at 200 per second.
fn small() -> SimConfig {
    SimConfig {
        load_time: Duration::from_millis(30),
        tokens_per_second: 200.0,
        reply_tokens: 5,
        first_token_latency: Duration::from_millis(5),
        ..SimConfig::default()
    }
}

fn chat(model: &str, content: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": content }] })
}

fn nanos(value: &Value) -> Duration {
    Duration::from_nanos(value.as_u64().expect("a duration in nanoseconds"))
}

/// The simulator's installed models, from `/api/tags`.
async fn listed(sim: &TestSim) -> Vec<String> {
    let tags = sim.get_json("/api/tags").await;
    tags["models"]
        .as_array()
        .expect("models is a list")
        .iter()
        .map(|model| model["name"].as_str().expect("a name").to_owned())
        .collect()
}
