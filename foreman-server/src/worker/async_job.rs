//! Running an async job: stream from the target (so `loading` turns `working` as soon as
//! the model answers), gather the answer, store it with its artifacts.

use std::sync::Arc;

use foreman_types::{ErrorBody, JobKind, LineSplitter};
use serde_json::{Map, Value};

use super::usage::Meter;
use super::{finish, finish_reporting, retry, started_answering, Ran, Run};
use crate::progress::Streamed;
use crate::store::{Finish, NewArtifact};
use crate::targets::client::{next_chunk, TargetError};

pub(super) async fn run(run: Run<'_>, streamed: Arc<Streamed>) -> Ran {
    let (app, target, job, stop) = (run.slot.app, run.slot.target, run.job, run.stop);
    let body = match streaming_body(&job.payload) {
        Ok(body) => body,
        Err(error) => {
            finish(app, job, Finish::Failed { error }).await;
            return Ran::Completed;
        }
    };
    let sent = tokio::select! {
        sent = target.client.send(job.kind.path(), body) => sent,
        how = stop.stopped() => {
            finish(app, job, how).await;
            return Ran::Completed;
        }
    };
    let response = match sent {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            let error = TargetError::from_response(response).await.to_string();
            finish(app, job, Finish::Failed { error }).await;
            return Ran::Completed;
        }
        Err(err) => {
            retry(app, target, job, &err).await;
            return Ran::Unreachable;
        }
    };

    let mut answer = Answer::new(job.kind, streamed);
    let mut lines = LineSplitter::new();
    let mut chunks = response.bytes_stream();
    let mut marked = false;
    loop {
        let chunk = tokio::select! {
            chunk = next_chunk(&mut chunks, app.config.stall_timeout) => chunk,
            how = stop.stopped() => {
                finish(app, job, how).await;
                return Ran::Completed;
            }
        };
        let (complete, ended) = match chunk {
            Some(Ok(bytes)) => match lines.push(&bytes) {
                Ok(complete) => (complete, false),
                // Not NDJSON, or a line without end: retrying would only read it again.
                // Returning drops `chunks`, which closes the upstream connection.
                Err(too_long) => {
                    let error = format!("the target's stream is not NDJSON: {too_long}");
                    finish(app, job, Finish::Failed { error }).await;
                    return Ran::Completed;
                }
            },
            Some(Err(err)) => {
                retry(app, target, job, &err).await;
                return Ran::Unreachable;
            }
            None => (lines.finish().into_iter().collect::<Vec<_>>(), true),
        };
        for line in complete {
            started_answering(app, target, job, &mut marked).await;
            match answer.add(&line) {
                Ok(()) => {}
                Err(error) => {
                    finish(app, job, Finish::Failed { error }).await;
                    return Ran::Completed;
                }
            }
        }
        if answer.done || ended {
            break;
        }
    }
    let reported = answer.usage.reported();
    let Some((result, artifacts)) = answer.into_result() else {
        let err = TargetError::Connection("the target's stream ended before its last chunk".into());
        retry(app, target, job, &err).await;
        return Ran::Unreachable;
    };
    let done = Finish::Done {
        result: Some(result),
        artifacts,
    };
    finish_reporting(app, job, done, reported).await;
    Ran::Completed
}

/// The stored request with `stream` forced on.
fn streaming_body(payload: &[u8]) -> Result<bytes::Bytes, String> {
    let mut request: Map<String, Value> = serde_json::from_slice(payload)
        .map_err(|err| format!("the stored request is not a JSON object: {err}"))?;
    request.insert("stream".into(), Value::Bool(true));
    serde_json::to_vec(&request)
        .map(bytes::Bytes::from)
        .map_err(|err| format!("cannot encode the request: {err}"))
}

/// The answer being gathered from streamed chunks.
struct Answer {
    kind: JobKind,
    content: String,
    thinking: String,
    tool_calls: Vec<Value>,
    last: Option<Map<String, Value>>,
    done: bool,
    /// What the target reported, for usage; counts the chunks as they come.
    usage: Meter,
}

impl Answer {
    fn new(kind: JobKind, streamed: Arc<Streamed>) -> Self {
        Self {
            kind,
            content: String::new(),
            thinking: String::new(),
            tool_calls: Vec::new(),
            last: None,
            done: false,
            usage: Meter::counting(streamed),
        }
    }

    /// Adds one NDJSON line; an `{"error": ...}` line fails the job.
    fn add(&mut self, line: &[u8]) -> Result<(), String> {
        let chunk: Value = serde_json::from_slice(line)
            .map_err(|err| format!("the target sent a line that is not JSON: {err}"))?;
        if let Some(error) = ErrorBody::message_of(&chunk) {
            return Err(error);
        }
        self.usage.chunk(&chunk);
        let Value::Object(chunk) = chunk else {
            return Err(format!(
                "the target sent a line that is not a JSON object: {chunk}"
            ));
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        match self.kind {
            JobKind::Generate => {
                self.content.push_str(&text(chunk.get("response")));
                self.thinking.push_str(&text(chunk.get("thinking")));
            }
            _ => {
                let message = chunk.get("message");
                self.content
                    .push_str(&text(message.and_then(|m| m.get("content"))));
                self.thinking
                    .push_str(&text(message.and_then(|m| m.get("thinking"))));
                if let Some(Value::Array(calls)) = message.and_then(|m| m.get("tool_calls")) {
                    self.tool_calls.extend(calls.iter().cloned());
                }
            }
        }
        self.done = chunk.get("done").and_then(Value::as_bool).unwrap_or(false);
        self.last = Some(chunk);
        Ok(())
    }

    /// The final response, shaped as Ollama answers with `stream: false`, and the
    /// artifacts; `None` if the last chunk never came.
    fn into_result(self) -> Option<(Vec<u8>, Vec<NewArtifact>)> {
        if !self.done {
            return None;
        }
        let mut result = self.last?;
        match self.kind {
            JobKind::Generate => {
                result.insert("response".into(), Value::String(self.content.clone()));
                if !self.thinking.is_empty() {
                    result.insert("thinking".into(), Value::String(self.thinking.clone()));
                }
            }
            _ => {
                let mut message = match result.remove("message") {
                    Some(Value::Object(message)) => message,
                    _ => Map::new(),
                };
                message
                    .entry("role")
                    .or_insert_with(|| Value::String("assistant".into()));
                message.insert("content".into(), Value::String(self.content.clone()));
                if !self.thinking.is_empty() {
                    message.insert("thinking".into(), Value::String(self.thinking.clone()));
                }
                if !self.tool_calls.is_empty() {
                    message.insert("tool_calls".into(), Value::Array(self.tool_calls));
                }
                result.insert("message".into(), Value::Object(message));
            }
        }
        let mut artifacts = vec![NewArtifact {
            name: "completion".into(),
            content_type: "text/plain; charset=utf-8".into(),
            data: self.content.into_bytes(),
        }];
        if !self.thinking.is_empty() {
            artifacts.push(NewArtifact {
                name: "thinking".into(),
                content_type: "text/plain; charset=utf-8".into(),
                data: self.thinking.into_bytes(),
            });
        }
        let result = serde_json::to_vec(&Value::Object(result)).ok()?;
        Some((result, artifacts))
    }
}
