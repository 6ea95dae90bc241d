//! Finding the target's own report of an error in a stream foreman relays, so that the job
//! ends `failed` with it although the stream itself ended properly.

use foreman_types::ErrorBody;
use serde_json::Value;

/// Longest start of a line kept while its end has not arrived. Error lines are short; a
/// longer line (a big chunk of an answer) is skipped to its end without being kept.
const MAX_PARTIAL: usize = 64 * 1024;

/// Reads a stream's chunks as they pass, for the first error the target reports in it:
/// an NDJSON `{"error": ...}` line (Ollama), a `data: {"error": ...}` event (the OpenAI
/// chat routes), or a named `event: error` or `event: response.failed` (Anthropic's
/// Messages, OpenAI's Responses), whatever the order of the fields inside. Lines split
/// across chunks are put back together; other lines are not parsed.
#[derive(Debug, Default)]
pub(super) struct ErrorScan {
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// The current line is too long to be an error line: skip to its end.
    skipping: bool,
    /// The current server-sent event is named as an error.
    in_error_event: bool,
    found: Option<String>,
}

impl ErrorScan {
    /// Reads the next chunk of the stream.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = (&bytes[..end], &bytes[end + 1..]);
            bytes = rest;
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
                continue;
            }
            if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole);
            }
        }
        if self.skipping {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_PARTIAL {
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// The first error found, once the stream has ended (a last line without its newline
    /// counts too).
    pub(super) fn finish(mut self) -> Option<String> {
        if !self.skipping && !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        self.found
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // A blank line ends a server-sent event.
            self.in_error_event = false;
            return;
        }
        if self.found.is_some() {
            return;
        }
        if let Some(name) = line.strip_prefix(b"event:") {
            let name = name.trim_ascii();
            self.in_error_event = name == b"error" || name == b"response.failed";
            return;
        }
        let (data, is_data) = match line.strip_prefix(b"data:") {
            Some(data) => (data.trim_ascii_start(), true),
            None => (line, false),
        };
        if is_data && self.in_error_event {
            self.found = Some(message_of_event(data));
        } else if data.starts_with(b"{\"error\"") {
            self.found = ErrorBody::message_in(data);
        }
    }
}

/// The message of a named error event: Anthropic's `error.message`, the Responses API's
/// `message`, or a failed response's `response.error.message`.
fn message_of_event(data: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return String::from_utf8_lossy(data).into_owned();
    };
    ErrorBody::message_of(&value)
        .or_else(|| ErrorBody::message_of(&value["response"]))
        .or_else(|| value["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::ErrorScan;

    fn scan(chunks: &[&[u8]]) -> Option<String> {
        let mut scan = ErrorScan::default();
        for chunk in chunks {
            scan.feed(chunk);
        }
        scan.finish()
    }

    #[test]
    fn ollama_and_openai_error_lines_are_found_and_ordinary_chunks_pass() {
        assert_eq!(
            scan(&[b"{\"error\":\"out of memory\"}\n"]).as_deref(),
            Some("out of memory")
        );
        assert_eq!(
            scan(&[b"{\"done\":false}\n{\"error\":\"boom\"}\n"]).as_deref(),
            Some("boom")
        );
        assert_eq!(
            scan(&[b"data: {\"error\":{\"message\":\"bad\",\"type\":\"api_error\"}}\n\n"])
                .as_deref(),
            Some("bad")
        );
        assert_eq!(
            scan(&[b"{\"message\":{\"content\":\"error\"},\"done\":false}\n"]),
            None
        );
        assert_eq!(scan(&[b"{\"error\""]), None, "a cut-off line is no error");
    }

    #[test]
    fn named_error_events_are_found_whatever_their_field_order() {
        let anthropic = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\"}\n\n\
            event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"out of memory\"}}\n\n";
        assert_eq!(scan(&[anthropic]).as_deref(), Some("out of memory"));
        let responses = b"event: error\ndata: {\"type\":\"error\",\"code\":\"api_error\",\"message\":\"boom\",\"param\":null,\"sequence_number\":6}\n\n";
        assert_eq!(scan(&[responses]).as_deref(), Some("boom"));
        let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"gone\"}}}\n\n";
        assert_eq!(scan(&[failed]).as_deref(), Some("gone"));
    }

    #[test]
    fn an_event_split_across_chunks_is_still_found_and_only_the_first_error_counts() {
        let whole = b"event: message_start\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"first\"}}\n\n{\"error\":\"second\"}\n";
        for split in 1..whole.len() {
            let (a, b) = whole.split_at(split);
            assert_eq!(scan(&[a, b]).as_deref(), Some("first"), "split at {split}");
        }
    }

    #[test]
    fn data_named_otherwise_is_not_an_error_even_if_it_says_error() {
        let events = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"error\"}}\n\n\
            event: response.output_text.delta\ndata: {\"delta\":\"event: error\"}\n\n";
        assert_eq!(scan(&[events]), None);
    }

    #[test]
    fn a_long_line_is_skipped_without_being_kept() {
        let mut scan = ErrorScan::default();
        let long = vec![b'x'; super::MAX_PARTIAL + 10];
        scan.feed(b"{\"message\":\"");
        scan.feed(&long);
        assert!(scan.partial.is_empty());
        scan.feed(b"\"}\n{\"error\":\"after\"}\n");
        assert_eq!(scan.finish().as_deref(), Some("after"));
    }
}
