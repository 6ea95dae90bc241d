//! Reading streamed response bodies in tests: NDJSON lines, the `data:` payloads of
//! server-sent events, and named events, either from a whole body or piece by piece as
//! they arrive ([`LineReader`], [`EventReader`]). Each panics with the offending text when
//! the body is not in the expected shape, so a test fails on it clearly.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;

/// How long a reader waits for the next chunk of a body before the test fails.
pub const CHUNK_DEADLINE: Duration = Duration::from_secs(10);

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

/// The string `field` of each object in the JSON list `list` (`tags["models"]`, `"name"`).
pub fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    let items = list.as_array().unwrap_or_else(|| panic!("a list: {list}"));
    items
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("a string {field}: {item}"))
        })
        .collect()
}

/// The JSON chunks of an OpenAI-style stream: `data: {chunk}` events that end with
/// `data: [DONE]`, which this checks and leaves out.
pub fn openai_chunks(body: &str) -> Vec<Value> {
    let data = sse_data(body);
    let Some((done, chunks)) = data.split_last() else {
        panic!("an empty stream: {body:?}");
    };
    assert_eq!(*done, "[DONE]", "the stream ends with [DONE]: {body:?}");
    chunks
        .iter()
        .map(|chunk| {
            serde_json::from_str(chunk).unwrap_or_else(|e| panic!("a JSON chunk, {e}: {chunk:?}"))
        })
        .collect()
}

/// The text that `chunks` carry at `pointer` (`/choices/0/delta/content` for chat
/// completions, `/choices/0/text` for completions), joined.
pub fn joined(chunks: &[Value], pointer: &str) -> String {
    chunks
        .iter()
        .map(|chunk| {
            chunk
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no text at {pointer}: {chunk}"))
        })
        .collect()
}

/// `(event, data)` of each named server-sent event (`event: NAME\ndata: JSON`), in order;
/// the body ends with the blank line of its last event.
pub fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(
        body.is_empty() || body.ends_with("\n\n"),
        "events end with a blank line: {body:?}"
    );
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

/// A streamed response read piece by piece as the pieces arrive, across chunk boundaries:
/// [`LineReader`] for NDJSON lines, [`EventReader`] for named server-sent events.
pub struct BodyReader<T> {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
    separator: &'static [u8],
    what: &'static str,
    parse: fn(&[u8]) -> T,
}

/// The NDJSON lines of a streamed response, read as they arrive.
pub type LineReader = BodyReader<Value>;

/// The named server-sent events of a streamed response, `(event, data)`, read as they
/// arrive.
pub type EventReader = BodyReader<(String, Value)>;

impl LineReader {
    /// Reads `response`'s body line by line.
    pub fn new(response: reqwest::Response) -> Self {
        BodyReader::with(response, b"\n", "line", |line| {
            serde_json::from_slice(line).expect("each line is JSON")
        })
    }
}

impl EventReader {
    /// Reads `response`'s body event by event.
    pub fn new(response: reqwest::Response) -> Self {
        BodyReader::with(response, b"\n\n", "event", |event| {
            let event = std::str::from_utf8(event).expect("events are UTF-8");
            named_events(event).pop().expect("one event")
        })
    }

    /// The events up to and including the first one called `name`.
    pub async fn until(&mut self, name: &str) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let found = event.0 == name;
            events.push(event);
            if found {
                return events;
            }
        }
        panic!("no {name} event among {events:?}");
    }
}

impl<T> BodyReader<T> {
    fn with(
        response: reqwest::Response,
        separator: &'static [u8],
        what: &'static str,
        parse: fn(&[u8]) -> T,
    ) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            separator,
            what,
            parse,
        }
    }

    /// The next piece, `None` at the end of the body (which must end with a whole one).
    pub async fn next(&mut self) -> Option<T> {
        loop {
            let end = self
                .buffer
                .windows(self.separator.len())
                .position(|window| window == self.separator);
            if let Some(end) = end {
                let piece: Vec<u8> = self.buffer.drain(..end + self.separator.len()).collect();
                return Some((self.parse)(&piece));
            }
            let chunk = tokio::time::timeout(CHUNK_DEADLINE, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("a {} arrives before the deadline", self.what));
            match chunk {
                Some(bytes) => self
                    .buffer
                    .extend_from_slice(&bytes.expect("the body reads")),
                None => {
                    assert!(
                        self.buffer.is_empty(),
                        "the body ends with a whole {}: {:?}",
                        self.what,
                        String::from_utf8_lossy(&self.buffer)
                    );
                    return None;
                }
            }
        }
    }

    /// Every piece left, to the end of the body.
    pub async fn rest(mut self) -> Vec<T> {
        let mut pieces = Vec::new();
        while let Some(piece) = self.next().await {
            pieces.push(piece);
        }
        pieces
    }
}

impl<T> std::fmt::Debug for BodyReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("what", &self.what)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}
