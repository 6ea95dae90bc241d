//! Integration tests of the testkit itself: the fakes must behave like what they stand
//! in for, or every test built on them proves nothing.

mod fake_ollama;
mod fake_ollama_failures;
mod fake_ollama_manage;
mod fake_ollama_messages;
mod fake_ollama_openai;
mod receiver;
mod wait;

use foreman_testkit::FakeOllama;
use serde_json::Value;

/// POSTs `body` as JSON to the fake.
pub(crate) async fn post(ollama: &FakeOllama, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", ollama.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Parses an NDJSON body into its lines.
pub(crate) fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Parses a stream of named server-sent events into `(event, data)` pairs.
pub(crate) fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let (name, data) = event
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("an event line, then a data line: {event:?}"));
            (
                name.to_owned(),
                serde_json::from_str(data).expect("data is JSON"),
            )
        })
        .collect()
}
