//! Integration tests of the testkit itself: the fakes must behave like what they stand
//! in for, or every test built on them proves nothing.

mod fake_ollama;
mod fake_ollama_failures;
mod fake_ollama_openai;
mod receiver;
mod wait;

use serde_json::Value;

/// Parses an NDJSON body into its lines.
pub(crate) fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}
