//! Model management on several targets at once: the request goes to each, concurrently,
//! and the answers become one.
//!
//! A pull or create streams every target's progress lines as they come, each with the
//! `target` it is about (a field Ollama clients ignore), and holds back each target's own
//! `success` or error line: one target failing must not end the stream, or a client that
//! stops at the first error line would cancel the others' pulls. The last line says how
//! it went everywhere: `{"status":"success"}`, or `{"error":"on gpu2: ..."}` naming each
//! target that failed. With `stream: false` that line is the whole answer. Copy, delete
//! and blob checks are whole answers combined: success if some target succeeded and the
//! others lack the model (404), else the first failure.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header::CONTENT_TYPE, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use foreman_types::{ErrorBody, LineSplitter};
use futures::{SinkExt, Stream, StreamExt};
use serde_json::Value;

use super::relay::{self, Outcome, PullHold};
use crate::error::AppError;
use crate::state::App;
use crate::targets::client::{Answer, TargetError};
use crate::targets::Target;

/// Chunks of a blob upload buffered per target before the slowest one holds the caller.
const UPLOAD_BUFFER: usize = 8;

/// What one target's progress stream says.
enum Event {
    /// A progress line, with its target, to forward.
    Line(Bytes),
    /// The target's operation ended: its name, and the failure if it failed.
    Ended(String, Result<(), Failure>),
}

/// How an operation failed on one target.
#[derive(Debug, Clone)]
struct Failure {
    /// The target's status when it answered one, else 502 (unreachable).
    status: StatusCode,
    message: String,
}

/// Runs a pull, push or create on every target of `to` and answers with their merged
/// progress. With `hold`, the model counts as being pulled onto each target until that
/// target's operation ends (its inventory refreshed first, on success).
pub(super) async fn progress(
    app: &App,
    to: Vec<Arc<Target>>,
    path: &str,
    body: Bytes,
    hold: Option<String>,
) -> Result<Response, AppError> {
    if let [target] = to.as_slice() {
        let hold = hold.map(|model| PullHold::begin(app, target, model));
        return relay::progress(target, path, body, hold).await;
    }
    let streamed = streams(&body);
    let opened = futures::future::join_all(to.iter().map(|target| {
        let body = body.clone();
        async move {
            target
                .client
                .open(Method::POST, path, body.into(), "application/json")
                .await
        }
    }))
    .await;
    let events = to.into_iter().zip(opened).map(|(target, opened)| {
        let hold = hold
            .clone()
            .map(|model| PullHold::begin(app, &target, model));
        Box::pin(one_target(target, opened, hold))
    });
    let mut events = futures::stream::select_all(events);
    if !streamed {
        let mut ended = Vec::new();
        while let Some(event) = events.next().await {
            if let Event::Ended(name, result) = event {
                ended.push((name, result));
            }
        }
        return Ok(match summary(&ended) {
            Ok(()) => json_answer(StatusCode::OK, br#"{"status":"success"}"#.to_vec()),
            Err(failure) => json_answer(failure.status, error_body(&failure.message)),
        });
    }
    let lines = async_stream::stream! {
        let mut ended = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                Event::Line(line) => yield Ok::<Bytes, std::convert::Infallible>(line),
                Event::Ended(name, result) => ended.push((name, result)),
            }
        }
        yield Ok(match summary(&ended) {
            Ok(()) => Bytes::from_static(b"{\"status\":\"success\"}\n"),
            Err(failure) => relay::error_line(&failure.message),
        });
    };
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Whether the request asks for a stream (`stream` defaults to true, as in Ollama).
fn streams(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("stream").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// One target's progress lines, tagged with its name, then how it ended.
fn one_target(
    target: Arc<Target>,
    opened: Result<reqwest::Response, TargetError>,
    hold: Option<PullHold>,
) -> impl Stream<Item = Event> + Send {
    async_stream::stream! {
        let name = target.name.clone();
        let mut hold = hold;
        let upstream = match opened {
            Ok(upstream) => upstream,
            Err(err) => {
                target.inventory.mark_unreachable(&err);
                yield Event::Ended(name, Err(unreachable(&err)));
                return;
            }
        };
        let status = upstream.status();
        if !status.is_success() {
            let message = TargetError::from_response(upstream).await;
            let message = match message {
                TargetError::Http { message, .. } => message,
                other => other.to_string(),
            };
            yield Event::Ended(name, Err(Failure { status, message }));
            return;
        }
        let mut chunks = upstream.bytes_stream();
        let mut splitter = LineSplitter::new();
        let mut failed: Option<Failure> = None;
        loop {
            let (lines, ended) = match chunks.next().await {
                Some(Ok(bytes)) => match splitter.push(&bytes) {
                    Ok(lines) => (lines, false),
                    Err(too_long) => {
                        failed = Some(bad_gateway(format!("the target's progress: {too_long}")));
                        break;
                    }
                },
                Some(Err(err)) => {
                    let err = TargetError::from_reqwest(err);
                    target.inventory.mark_unreachable(&err);
                    failed = Some(bad_gateway(format!("the target's stream broke off: {err}")));
                    break;
                }
                None => (splitter.finish().into_iter().collect(), true),
            };
            for line in lines {
                match relay::outcome(&line) {
                    Outcome::Failed => {
                        let message = ErrorBody::message_in(&line)
                            .unwrap_or_else(|| String::from_utf8_lossy(&line).into_owned());
                        failed.get_or_insert(Failure { status: StatusCode::INTERNAL_SERVER_ERROR, message });
                    }
                    Outcome::Succeeded => {}
                    Outcome::Progress => yield Event::Line(tagged(&line, &name)),
                }
            }
            if ended {
                break;
            }
        }
        match failed {
            Some(failure) => yield Event::Ended(name, Err(failure)),
            None => {
                relay::settle(&target, hold.take()).await;
                yield Event::Ended(name, Ok(()));
            }
        }
    }
}

/// A progress line with `"target": name` added (as is when it is not a JSON object).
fn tagged(line: &[u8], name: &str) -> Bytes {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(mut fields)) => {
            fields.insert("target".into(), Value::String(name.to_owned()));
            let mut out = serde_json::to_vec(&fields).unwrap_or_else(|_| line.to_vec());
            out.push(b'\n');
            Bytes::from(out)
        }
        _ => relay::with_newline(line),
    }
}

/// How it went on all targets: each failure named, the first one's status.
fn summary(ended: &[(String, Result<(), Failure>)]) -> Result<(), Failure> {
    let failures: Vec<(&String, &Failure)> = ended
        .iter()
        .filter_map(|(name, result)| result.as_ref().err().map(|f| (name, f)))
        .collect();
    let Some((_, first)) = failures.first() else {
        return Ok(());
    };
    let message = failures
        .iter()
        .map(|(name, failure)| format!("on {name}: {}", failure.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Failure {
        status: first.status,
        message,
    })
}

fn unreachable(err: &TargetError) -> Failure {
    bad_gateway(err.to_string())
}

fn bad_gateway(message: String) -> Failure {
    Failure {
        status: StatusCode::BAD_GATEWAY,
        message,
    }
}

fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody::new(message)).unwrap_or_else(|_| b"{}".to_vec())
}

fn json_answer(status: StatusCode, body: Vec<u8>) -> Response {
    relay::whole(
        status,
        Some(HeaderValue::from_static("application/json; charset=utf-8")),
        Bytes::from(body),
    )
}

/// Sends a whole request to every target of `to` at once; the answers in order, or why a
/// target could not be reached.
pub(super) async fn each(
    to: &[Arc<Target>],
    method: Method,
    path: &str,
    body: Option<Bytes>,
    timeout: std::time::Duration,
) -> Vec<Result<Answer, TargetError>> {
    futures::future::join_all(to.iter().map(|target| {
        let (method, body) = (method.clone(), body.clone());
        async move {
            let answer = target.client.forward(method, path, body, timeout).await;
            if let Err(err) = &answer {
                target.inventory.mark_unreachable(err);
            }
            answer
        }
    }))
    .await
}

/// One answer for a copy, a delete or a blob check sent to several targets: the first
/// success when every other target succeeded or lacks the thing (404), all 404 as the
/// first 404, else the first other failure (502 when a target could not be reached).
pub(super) fn combine(
    to: &[Arc<Target>],
    answers: Vec<Result<Answer, TargetError>>,
    all_must_succeed: bool,
) -> Result<Response, AppError> {
    let mut success = None;
    let mut missing = None;
    for (target, answer) in to.iter().zip(answers) {
        match answer {
            Ok(answer) if answer.status.is_success() => {
                success.get_or_insert(answer);
            }
            Ok(answer) if answer.status == StatusCode::NOT_FOUND => {
                missing.get_or_insert(answer);
            }
            Ok(answer) => {
                let message = crate::targets::client::error_message(&answer.body);
                return Err(AppError::Upstream {
                    status: answer.status,
                    message: format!("on {}: {message}", target.name),
                });
            }
            Err(err) => {
                return Err(AppError::BadGateway(format!("on {}: {err}", target.name)));
            }
        }
    }
    let chosen = match (success, missing, all_must_succeed) {
        (_, Some(missing), true) => missing,
        (Some(success), _, _) => success,
        (None, Some(missing), _) => missing,
        (None, None, _) => return Err(AppError::BadGateway("no target to send it to".into())),
    };
    Ok(super::meta_answer(chosen))
}

/// Streams a blob upload to every target of `to` at once (each gets every chunk, the
/// slowest holding the caller back by at most a few chunks) and answers 201 if some
/// target created it, 200 if all had it, else the first failure.
pub(super) async fn upload(
    to: Vec<Arc<Target>>,
    path: &str,
    body: Body,
) -> Result<Response, AppError> {
    if let [target] = to.as_slice() {
        return relay::upload(target, path, body).await;
    }
    let mut senders = Vec::with_capacity(to.len());
    let mut bodies = Vec::with_capacity(to.len());
    for _ in &to {
        let (sender, receiver) =
            futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(UPLOAD_BUFFER);
        senders.push(sender);
        bodies.push(reqwest::Body::wrap_stream(receiver));
    }
    let pump = async move {
        let mut data = body.into_data_stream();
        let mut timed_out = None;
        while let Some(chunk) = data.next().await {
            let chunk = match chunk {
                Ok(chunk) => Ok(chunk),
                Err(err) => {
                    timed_out = Some(crate::routes::body::timed_out(&err));
                    Err(std::io::Error::other("the upload broke off"))
                }
            };
            let failed = chunk.is_err();
            for sender in &mut senders {
                // A target that stopped reading has answered; the others go on.
                let chunk = match &chunk {
                    Ok(bytes) => Ok(bytes.clone()),
                    Err(_) => Err(std::io::Error::other("the upload broke off")),
                };
                let _ = sender.send(chunk).await;
            }
            if failed {
                break;
            }
        }
        drop(senders);
        timed_out
    };
    let sends = futures::future::join_all(to.iter().zip(bodies).map(|(target, body)| {
        target
            .client
            .open(Method::POST, path, body, "application/octet-stream")
    }));
    let (caller_failed, sent) = tokio::join!(pump, sends);
    match caller_failed {
        Some(true) => return Err(AppError::RequestTimeout),
        Some(false) => {
            return Err(AppError::BadRequest(
                "the upload broke off before its end".into(),
            ))
        }
        None => {}
    }
    let mut created = None;
    let mut present = None;
    for (target, sent) in to.iter().zip(sent) {
        let upstream = sent.map_err(|err| relay::unreachable(target, err))?;
        let status = upstream.status();
        let content_type = upstream.headers().get(CONTENT_TYPE).cloned();
        let bytes = upstream
            .bytes()
            .await
            .map_err(|err| relay::unreachable(target, TargetError::from_reqwest(err)))?;
        if !status.is_success() {
            return Ok(relay::whole(status, content_type, bytes));
        }
        let slot = if status == StatusCode::CREATED {
            &mut created
        } else {
            &mut present
        };
        slot.get_or_insert((status, content_type, bytes));
    }
    let (status, content_type, bytes) = created
        .or(present)
        .ok_or_else(|| AppError::BadGateway("no target to send it to".into()))?;
    Ok(relay::whole(status, content_type, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_which_target_they_are_about() {
        let line = tagged(br#"{"status":"pulling abc","completed":5}"#, "gpu2");
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["target"], "gpu2");
        assert_eq!(value["completed"], 5);
        assert!(line.ends_with(b"\n"));
        assert_eq!(&tagged(b"not json", "gpu2")[..], b"not json\n");
    }

    #[test]
    fn the_summary_names_every_target_that_failed() {
        let ended = vec![
            ("a".to_owned(), Ok(())),
            ("b".to_owned(), Err(bad_gateway("refused".into()))),
            (
                "c".to_owned(),
                Err(Failure {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "no space".into(),
                }),
            ),
        ];
        let failure = summary(&ended).unwrap_err();
        assert_eq!(failure.status, StatusCode::BAD_GATEWAY);
        assert_eq!(failure.message, "on b: refused; on c: no space");
        assert!(summary(&ended[..1]).is_ok());
    }

    #[test]
    fn stream_defaults_to_true() {
        assert!(streams(br#"{"model":"m"}"#));
        assert!(!streams(br#"{"model":"m","stream":false}"#));
    }
}
