//! Streamed answers: Ollama's NDJSON, one JSON object a line, parsed into typed chunks
//! (generations, and the progress of model management).

use std::pin::Pin;

use bytes::Bytes;
use foreman_types::{ChatChunk, ErrorBody, GenerateChunk, LineSplitter, ProgressResponse};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// The chunks of a streamed chat, from [`Client::chat_stream`](crate::Client::chat_stream).
///
/// It yields every chunk up to and including the final one (`done: true`), then ends. An
/// error the server reports mid-stream, or a stream cut off before its final chunk, comes out
/// as an `Err` item (an [`Error::Stream`]) and ends the stream. Dropping it drops the HTTP
/// request, which stops the generation.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk>> + Send>>;

/// The chunks of a streamed generation, from
/// [`Client::generate_stream`](crate::Client::generate_stream); it behaves like
/// [`ChatStream`].
pub type GenerateStream = Pin<Box<dyn Stream<Item = Result<GenerateChunk>> + Send>>;

/// The progress of a pull, push or create, from [`Client::pull`](crate::Client::pull),
/// [`push`](crate::Client::push) and [`create`](crate::Client::create).
///
/// It yields every line up to and including the `success` one, then ends. An
/// `{"error": ...}` line (a name the registry lacks, a digest that does not match), or a
/// stream cut off before `success`, comes out as an [`Error::Stream`] and ends it. Dropping
/// it drops the request, which cancels the operation on the target.
pub type ProgressStream = Pin<Box<dyn Stream<Item = Result<ProgressResponse>> + Send>>;

/// A chunk of a streamed answer: it knows whether it is the last one.
pub(crate) trait Chunk: DeserializeOwned + Send + 'static {
    /// True on the final chunk.
    fn is_done(&self) -> bool;
}

impl Chunk for ChatChunk {
    fn is_done(&self) -> bool {
        self.done
    }
}

impl Chunk for GenerateChunk {
    fn is_done(&self) -> bool {
        self.done
    }
}

impl Chunk for ProgressResponse {
    fn is_done(&self) -> bool {
        self.is_success()
    }
}

/// Parses an NDJSON body into chunks, ending after the `done` chunk.
///
/// Generic over the byte stream so it is tested without a server. The body is moved into the
/// stream, so dropping the stream drops the response and with it the connection.
pub(crate) fn ndjson<T, S, E>(body: S) -> Pin<Box<dyn Stream<Item = Result<T>> + Send>>
where
    T: Chunk,
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send,
    Error: From<E>,
{
    Box::pin(async_stream::try_stream! {
        let mut body = std::pin::pin!(body);
        // Past `MAX_LINE` (16 MiB) the server is not speaking NDJSON.
        let mut lines = LineSplitter::new();
        while let Some(bytes) = body.next().await {
            let complete = lines
                .push(&bytes?)
                .map_err(|too_long| Error::Stream(format!("{too_long} in the stream")))?;
            for line in complete {
                if let Some(chunk) = parse_line::<T>(&line)? {
                    let done = chunk.is_done();
                    yield chunk;
                    if done {
                        return;
                    }
                }
            }
        }
        // The last line may lack its newline.
        if let Some(line) = lines.finish() {
            if let Some(chunk) = parse_line::<T>(&line)? {
                let done = chunk.is_done();
                yield chunk;
                if done {
                    return;
                }
            }
        }
        Err(Error::Stream("the stream ended before its final chunk".into()))?;
    })
}

/// Parses one line: nothing for a blank line, an error for an `{"error": ...}` line.
fn parse_line<T: DeserializeOwned>(line: &[u8]) -> Result<Option<T>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(line).map_err(|err| Error::decode(err, line))?;
    if let Some(message) = ErrorBody::message_of(&value) {
        return Err(Error::Stream(message));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|err| Error::decode(err, line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    /// Runs `parts` through the parser and collects every item.
    async fn parse(parts: &[&str]) -> Vec<Result<ChatChunk>> {
        let parts: Vec<Result<Bytes, Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        ndjson::<ChatChunk, _, _>(stream::iter(parts))
            .collect()
            .await
    }

    fn chunk(content: &str, done: bool) -> String {
        format!(
            r#"{{"model":"m","message":{{"role":"assistant","content":"{content}"}},"done":{done}}}"#
        )
    }

    #[tokio::test]
    async fn lines_split_across_chunks_are_joined() {
        let body = format!(
            "{}\r\n\n{}\n{}\n",
            chunk("Hel", false),
            chunk("lo", false),
            chunk("", true)
        );
        let parts: Vec<&str> = (0..body.len())
            .step_by(7)
            .map(|i| &body[i..(i + 7).min(body.len())])
            .collect();
        let items = parse(&parts).await;
        let chunks: Vec<ChatChunk> = items.into_iter().map(|c| c.unwrap()).collect();
        let text: String = chunks.iter().map(|c| c.message.content.as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(chunks.len(), 3);
        assert!(chunks[2].done);
    }

    #[tokio::test]
    async fn the_stream_ends_at_the_done_chunk_and_a_last_line_needs_no_newline() {
        let items = parse(&[&chunk("a", false), "\n", &chunk("", true)]).await;
        assert_eq!(items.len(), 2);
        let items = parse(&[&format!(
            "{}\n{}\n",
            chunk("", true),
            chunk("ignored", false)
        )])
        .await;
        assert_eq!(items.len(), 1);
    }

    #[tokio::test]
    async fn an_error_line_becomes_an_error_item_and_ends_the_stream() {
        let body = format!(
            "{}\n{{\"error\":\"out of memory\"}}\n{}\n",
            chunk("a", false),
            chunk("", true)
        );
        let items = parse(&[&body]).await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(&items[1], Err(Error::Stream(m)) if m == "out of memory"));
    }

    #[tokio::test]
    async fn a_line_past_16_mib_is_an_error_item() {
        let endless = "a".repeat(foreman_types::MAX_LINE + 1);
        let items = parse(&[&chunk("a", false), "\n", &endless]).await;
        assert_eq!(items.len(), 2);
        assert!(
            matches!(&items[1], Err(Error::Stream(m)) if m.contains("longer than 16 MiB")),
            "{:?}",
            items[1]
        );
    }

    #[tokio::test]
    async fn progress_ends_at_success_and_an_error_line_fails_it() {
        let parse = |body: &'static str| {
            let parts: Vec<Result<Bytes, Error>> = vec![Ok(Bytes::from_static(body.as_bytes()))];
            ndjson::<ProgressResponse, _, _>(stream::iter(parts)).collect::<Vec<_>>()
        };
        let lines = parse(
            "{\"status\":\"pulling manifest\"}\n{\"status\":\"pulling ab\",\"digest\":\"sha256:ab\",\"total\":4,\"completed\":2}\n{\"status\":\"success\"}\n",
        )
        .await;
        assert_eq!(lines.len(), 3);
        let layer = lines[1].as_ref().unwrap();
        assert_eq!((layer.completed, layer.total), (Some(2), Some(4)));
        assert!(lines[2].as_ref().unwrap().is_success());
        let failed =
            parse("{\"status\":\"pulling manifest\"}\n{\"error\":\"file does not exist\"}\n").await;
        assert!(matches!(&failed[1], Err(Error::Stream(m)) if m == "file does not exist"));
        let cut = parse("{\"status\":\"pulling manifest\"}\n").await;
        assert!(matches!(cut.last(), Some(Err(Error::Stream(_)))));
    }

    #[tokio::test]
    async fn a_stream_cut_short_or_garbled_yields_an_error() {
        let items = parse(&[&chunk("a", false), "\n"]).await;
        assert!(matches!(items.last(), Some(Err(Error::Stream(_)))));
        let items = parse(&["not json\n"]).await;
        assert!(matches!(items.as_slice(), [Err(Error::Decode(m))] if m.contains("not json")));
    }
}
