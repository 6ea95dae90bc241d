//! Reading streamed response bodies in tests: NDJSON lines, the `data:` payloads of
//! server-sent events, and named events. Each panics with the offending text when the
//! body is not in the expected shape, so a test fails on it clearly.

use serde_json::Value;

/// Parses an NDJSON body into its lines (blank lines skipped).
pub fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON line, {e}: {line:?}"))
        })
        .collect()
}

/// The `data:` payloads of a server-sent event stream with one data line per event.
pub fn sse_data(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("every event is one data line: {event:?}"))
        })
        .collect()
}

/// `(event, data)` of each named server-sent event (`event: NAME\ndata: JSON`).
pub fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let (name, data) = event
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("an event line, then a data line: {event:?}"));
            let data = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("event data is JSON, {e}: {data:?}"));
            (name.to_owned(), data)
        })
        .collect()
}
