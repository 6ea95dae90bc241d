//! Reading usage off the target's answer as it passes through: tokens in and out and,
//! from Ollama's own routes, the GPU time it reports.
//!
//! Where each API puts it:
//! - Ollama (`/api/chat`, `/api/generate`): `prompt_eval_count`, `eval_count` and
//!   `total_duration` (nanoseconds) on the final chunk, or on the whole answer.
//! - OpenAI (`/v1/chat/completions`, `/v1/completions`): `usage.prompt_tokens` and
//!   `usage.completion_tokens` on the answer, or on the last event of a stream when the
//!   client asked for it (`stream_options.include_usage`).
//! - OpenAI Responses: `response.usage.input_tokens` and `output_tokens`, on the answer
//!   or the `response.completed` event.
//! - Anthropic (`/v1/messages`): `usage.input_tokens` and `output_tokens` on the answer;
//!   in a stream, `message_start` carries the input and `message_delta` the running
//!   output count, so the last value seen wins.
//!
//! Only lines that mention a usage field are parsed, so an ordinary token chunk costs a
//! substring search.
//!
//! On the way, each chunk of a stream (an NDJSON line, a server-sent event's `data:` line)
//! is counted on the job's [`Streamed`] counter, for the status page's tokens per second:
//! Ollama and the OpenAI-compatible routes stream about one token a chunk.

use std::sync::Arc;

use foreman_types::LineSplitter;
use serde_json::Value;

use crate::progress::Streamed;
use crate::store::Reported;

/// What a line must mention to be worth parsing.
const MARKERS: [&str; 3] = ["\"eval_count\"", "\"usage\"", "\"total_duration\""];

/// Gathers what the target reported, from bytes or from parsed chunks.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    lines: LineSplitter,
    reported: Reported,
    /// Where the chunks of a stream are counted while the job runs.
    streamed: Option<Arc<Streamed>>,
}

impl Meter {
    /// A meter that also counts each streamed chunk on `streamed`.
    pub(crate) fn counting(streamed: Arc<Streamed>) -> Self {
        Self {
            streamed: Some(streamed),
            ..Self::default()
        }
    }

    /// Bytes of a streamed answer: NDJSON lines, or server-sent events.
    pub(crate) fn stream(&mut self, bytes: &[u8]) {
        let Ok(lines) = self.lines.push(bytes) else {
            // A line too long to be a usage chunk; the splitter starts afresh.
            self.lines = LineSplitter::new();
            return;
        };
        for line in lines {
            if is_chunk(&line) {
                self.count();
            }
            self.line(&line);
        }
    }

    /// One chunk of a stream, already parsed: counted, and read for usage.
    pub(crate) fn chunk(&mut self, chunk: &Value) {
        self.count();
        self.value(chunk);
    }

    /// A whole JSON answer.
    pub(crate) fn whole(&mut self, body: &[u8]) {
        self.line(body);
    }

    fn count(&self) {
        if let Some(streamed) = &self.streamed {
            streamed.chunk();
        }
    }

    /// One chunk already parsed.
    fn value(&mut self, chunk: &Value) {
        let count = |v: &Value, field: &str| v.get(field).and_then(Value::as_u64);
        let reported = &mut self.reported;
        if let Some(n) = count(chunk, "prompt_eval_count") {
            reported.prompt_tokens = Some(n);
        }
        if let Some(n) = count(chunk, "eval_count") {
            reported.output_tokens = Some(n);
        }
        if let Some(ns) = count(chunk, "total_duration") {
            reported.total_duration_ms = Some(ns / 1_000_000);
        }
        let objects = [
            chunk.get("usage"),
            chunk.get("message").and_then(|m| m.get("usage")),
            chunk.get("response").and_then(|r| r.get("usage")),
        ];
        for usage in objects.into_iter().flatten().filter(|u| u.is_object()) {
            if let Some(n) = count(usage, "prompt_tokens").or_else(|| count(usage, "input_tokens"))
            {
                reported.prompt_tokens = Some(n);
            }
            if let Some(n) =
                count(usage, "completion_tokens").or_else(|| count(usage, "output_tokens"))
            {
                reported.output_tokens = Some(n);
            }
        }
    }

    /// What has been reported so far.
    pub(crate) fn reported(&self) -> Reported {
        self.reported
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_prefix(b"data:").unwrap_or(line);
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        if !MARKERS.iter().any(|marker| text.contains(marker)) {
            return;
        }
        if let Ok(chunk) = serde_json::from_str::<Value>(text.trim()) {
            self.value(&chunk);
        }
    }
}

/// Whether a streamed line carries a chunk of the answer: an NDJSON object, or an event's
/// data other than OpenAI's closing `[DONE]` (blank lines and `event:` names do not).
fn is_chunk(line: &[u8]) -> bool {
    match line.strip_prefix(b"data:") {
        Some(data) => {
            let data = data.trim_ascii();
            !data.is_empty() && data != b"[DONE]"
        }
        None => line.trim_ascii_start().starts_with(b"{"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(tokens: (u64, u64), ms: Option<u64>) -> Reported {
        Reported {
            prompt_tokens: Some(tokens.0),
            output_tokens: Some(tokens.1),
            total_duration_ms: ms,
        }
    }

    #[test]
    fn ollamas_final_chunk_gives_tokens_and_gpu_time_even_split_across_reads() {
        let mut meter = Meter::default();
        meter.stream(b"{\"message\":{\"content\":\"Hi\"},\"done\":false}\n{\"done\":true,");
        assert_eq!(meter.reported(), Reported::default());
        meter.stream(
            b"\"total_duration\":2500000000,\"prompt_eval_count\":26,\"eval_count\":298}\n",
        );
        assert_eq!(meter.reported(), reported((26, 298), Some(2500)));

        let mut whole = Meter::default();
        whole.whole(br#"{"response":"x","done":true,"prompt_eval_count":3,"eval_count":4,"total_duration":9000000}"#);
        assert_eq!(whole.reported(), reported((3, 4), Some(9)));
    }

    #[test]
    fn openai_usage_comes_from_the_answer_or_the_last_event() {
        let mut meter = Meter::default();
        meter.stream(b"data: {\"choices\":[{\"delta\":{\"content\":\"usage\"}}]}\n\n");
        meter.stream(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\ndata: [DONE]\n\n");
        assert_eq!(meter.reported(), reported((12, 5), None));

        let mut responses = Meter::default();
        responses.stream(b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n");
        responses.stream(b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":7,\"output_tokens\":9}}}\n\n");
        assert_eq!(responses.reported(), reported((7, 9), None));
    }

    #[test]
    fn anthropic_streams_report_input_first_and_the_output_count_last() {
        let mut meter = Meter::default();
        meter.stream(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
        meter.stream(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n");
        assert_eq!(meter.reported(), reported((25, 15), None));
    }

    #[test]
    fn chunks_without_usage_and_garbage_report_nothing() {
        let mut meter = Meter::default();
        meter.stream(b"{\"message\":{\"content\":\"the usage of eval_count\"},\"done\":false}\n");
        meter.stream(b"not json \"usage\"\n");
        meter.whole(b"\xff\xfe");
        assert_eq!(meter.reported(), Reported::default());
    }

    #[test]
    fn each_chunk_of_a_stream_is_counted_but_not_blank_lines_event_names_or_done() {
        let streamed = Arc::new(Streamed::new());
        let mut ndjson = Meter::counting(Arc::clone(&streamed));
        ndjson.stream(b"{\"message\":{\"content\":\"a\"}}\n{\"message\":");
        ndjson.stream(b"{\"content\":\"b\"}}\n\n");
        assert_eq!(
            streamed.rate().tokens,
            2,
            "a line split across reads counts once"
        );

        let events = Arc::new(Streamed::new());
        let mut sse = Meter::counting(Arc::clone(&events));
        sse.stream(b"event: content_block_delta\ndata: {\"delta\":{}}\n\n");
        sse.stream(b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n");
        assert_eq!(events.rate().tokens, 2);

        let parsed = Arc::new(Streamed::new());
        let mut async_job = Meter::counting(Arc::clone(&parsed));
        async_job.chunk(&serde_json::json!({"response": "x", "done": false}));
        assert_eq!(parsed.rate().tokens, 1);
    }
}
