//! Integration tests of the testkit itself: the fakes must behave like what they stand
//! in for, or every test built on them proves nothing.

mod fake_ollama;
mod fake_ollama_failures;
mod fake_ollama_manage;
mod fake_ollama_messages;
mod fake_ollama_openai;
mod hop;
mod receiver;
mod wait;

use foreman_testkit::FakeOllama;
use reqwest::Method;
use serde_json::Value;

/// POSTs `body` as JSON to the fake.
pub(crate) async fn post(ollama: &FakeOllama, path: &str, body: Value) -> reqwest::Response {
    send(ollama, Method::POST, path, body).await
}

/// POSTs `body` as JSON to the fake and reads its answer, which must be JSON with `status`.
pub(crate) async fn post_answer(
    ollama: &FakeOllama,
    path: &str,
    body: Value,
    status: u16,
) -> Value {
    foreman_testkit::json_answer(post(ollama, path, body).await, status).await
}

/// Sends `body` as JSON to the fake with `method`.
pub(crate) async fn send(
    ollama: &FakeOllama,
    method: Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}{path}", ollama.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) use foreman_testkit::bodies::{named_events, ndjson};
