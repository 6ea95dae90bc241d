//! The simulator's behaviour, through its HTTP API.

mod anthropic;
mod generations;
mod manage;
mod manual;
mod models;
mod openai;
mod pull;
mod responses;

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
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

/// NDJSON lines of a streamed answer, read as they arrive.
struct Lines {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl Lines {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
        }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("each line is JSON"));
            }
            let chunk = tokio::time::timeout(DEADLINE, self.body.next())
                .await
                .expect("a chunk arrives before the deadline");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .extend_from_slice(&bytes.expect("the body reads")),
                None => {
                    assert!(self.buffer.is_empty(), "the stream ends with a whole line");
                    return None;
                }
            }
        }
    }

    async fn rest(mut self) -> Vec<Value> {
        let mut lines = Vec::new();
        while let Some(line) = self.next().await {
            lines.push(line);
        }
        lines
    }
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

/// The `(event, data)` pairs of a stream of named server-sent events, in order.
fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(
        body.is_empty() || body.ends_with("\n\n"),
        "events end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("an event line, then one data line: {event:?}"));
            (
                name.to_owned(),
                serde_json::from_str(data).expect("JSON data"),
            )
        })
        .collect()
}

/// Named server-sent events read as they arrive, across chunk boundaries.
struct Events {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: String,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` at the end of the stream.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                return named_events(&event).pop();
            }
            let chunk = tokio::time::timeout(DEADLINE, self.body.next())
                .await
                .expect("an event arrives before the deadline");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes.expect("the body reads")).expect("UTF-8")),
                None => {
                    assert!(self.buffer.is_empty(), "the stream ends with a whole event");
                    return None;
                }
            }
        }
    }

    /// The events up to and including the first one called `name`.
    async fn until(&mut self, name: &str) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let last = event.0 == name;
            events.push(event);
            if last {
                return events;
            }
        }
        panic!("no {name} event in {events:?}");
    }

    async fn rest(mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
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
