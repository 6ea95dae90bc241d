//! Running a sync job: the request goes to the target byte for byte, and the answer goes
//! back to the waiting caller chunk by chunk, as the target sends it.

mod error_scan;

use std::sync::Arc;

use axum::http::{header::CONTENT_TYPE, StatusCode};
use bytes::Bytes;
use foreman_types::{JobKind, JobState};

use self::error_scan::ErrorScan;
use super::usage::Meter;
use super::{finish, finish_reporting, retry, started_answering, Ran, Run};
use crate::live::{LiveEvent, LiveSender};
use crate::progress::Streamed;
use crate::state::App;
use crate::store::{ClaimedJob, Finish};
use crate::targets::client::{error_message, next_chunk, TargetError};
use crate::targets::Target;

const CALLER_LEFT: &str = "the caller disconnected";

pub(super) async fn run(run: Run<'_>, streamed: Arc<Streamed>) -> Ran {
    let (app, target, job, stop) = (run.slot.app, run.slot.target, run.job, run.stop);
    let Some(tx) = app.live.take(job.id) else {
        // Nobody is waiting any more (the caller left as the job was claimed).
        return caller_left(app, job).await;
    };
    let sent = tokio::select! {
        sent = target.client.send(job.kind.path(), job.payload.clone()) => sent,
        _ = tx.closed() => return caller_left(app, job).await,
        how = stop.stopped() => return stopped(app, job, &tx, how).await,
    };
    let response = match sent {
        Ok(response) => response,
        Err(err) => return unreachable(app, target, job, tx, err).await,
    };
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    if !status.is_success() {
        // The target's own answer (404 for a model it lacks, 400 for a bad option...)
        // reaches the caller as the target gave it.
        let body = response.bytes().await.unwrap_or_default();
        let message = error_message(&body);
        finish(app, job, Finish::Failed { error: message }).await;
        answer_whole(&tx, status, content_type, body).await;
        return Ran::Completed;
    }
    let streaming = content_type
        .as_ref()
        .and_then(|ct| ct.to_str().ok())
        .is_some_and(|ct| {
            // Ollama's NDJSON, or the server-sent events of its OpenAI-compatible routes.
            ct.starts_with("application/x-ndjson") || ct.starts_with("text/event-stream")
        });
    let mut marked = false;
    if !streaming {
        // One JSON object: read it whole before answering, so a broken connection can
        // still be retried while the caller waits.
        let body = tokio::select! {
            body = response.bytes() => body,
            _ = tx.closed() => return caller_left(app, job).await,
            how = stop.stopped() => return stopped(app, job, &tx, how).await,
        };
        let body = match body {
            Ok(body) => body,
            Err(err) => {
                let err = TargetError::from_reqwest(err);
                return unreachable(app, target, job, tx, err).await;
            }
        };
        // Before the caller has the answer: a load or an unload shows at once.
        super::note_residency(target, job);
        let mut meter = Meter::default();
        meter.whole(&body);
        answer_whole(&tx, status, content_type, body).await;
        run.slot.caller_answered().await;
        started_answering(app, target, job, &mut marked).await;
        let done = Finish::Done {
            result: None,
            artifacts: Vec::new(),
        };
        finish_reporting(app, job, done, meter.reported()).await;
        return Ran::Completed;
    }

    let mut chunks = response.bytes_stream();
    let mut meter = Meter::counting(streamed);
    let mut head_sent = false;
    // An error line or event from the target (say, out of memory mid-generation) reaches
    // the caller as sent; it also decides how the job ends.
    let mut target_error = ErrorScan::default();
    loop {
        tokio::select! {
            chunk = next_chunk(&mut chunks, app.config.stall_timeout) => match chunk {
                Some(Ok(bytes)) => {
                    let first = !head_sent;
                    if first {
                        head_sent = true;
                        if tx.send(LiveEvent::Head { status, content_type: content_type.clone() }).await.is_err() {
                            break caller_left(app, job).await;
                        }
                    }
                    target_error.feed(&bytes);
                    meter.stream(&bytes);
                    if tx.send(LiveEvent::Chunk(bytes)).await.is_err() {
                        // Dropping `chunks` here closes the upstream request: the target
                        // stops generating for nobody.
                        break caller_left(app, job).await;
                    }
                    if first {
                        // After the first chunk is on its way: the caller's time to first
                        // token does not wait on this commit.
                        started_answering(app, target, job, &mut marked).await;
                    }
                }
                Some(Err(err)) => {
                    if !head_sent {
                        break unreachable(app, target, job, tx, err).await;
                    }
                    // Mid-stream: end with an error line, never a stream that looks whole.
                    // The caller has part of an answer, so the job is not run again.
                    target.inventory.mark_unreachable(&err);
                    let message = format!("the target's stream broke off: {err}");
                    let _ = tx.send(LiveEvent::Chunk(error_line(job.kind, &message))).await;
                    finish(app, job, Finish::Failed { error: message }).await;
                    break Ran::Completed;
                }
                None => {
                    if !head_sent {
                        let _ = tx.send(LiveEvent::Head { status, content_type: content_type.clone() }).await;
                    }
                    let _ = tx.send(LiveEvent::End).await;
                    run.slot.caller_answered().await;
                    let ended = match target_error.finish() {
                        Some(error) => Finish::Failed { error },
                        None => Finish::Done { result: None, artifacts: Vec::new() },
                    };
                    finish_reporting(app, job, ended, meter.reported()).await;
                    break Ran::Completed;
                }
            },
            _ = tx.closed() => break caller_left(app, job).await,
            how = stop.stopped() => break stopped(app, job, &tx, how).await,
        }
    }
}

/// The last piece of a stream that failed midway, in the stream's own format: an NDJSON
/// `{"error": ...}` line, as Ollama ends a failed stream, or for the OpenAI-compatible
/// kinds a server-sent event carrying an OpenAI error object.
pub(crate) fn error_line(kind: JobKind, message: &str) -> Bytes {
    if let Some(event) = super::named_events::error_event(kind, message) {
        return event;
    }
    if kind.is_openai() {
        let error = serde_json::json!({
            "error": { "message": message, "type": "api_error", "param": null, "code": null }
        });
        let mut event = b"data: ".to_vec();
        event.extend(serde_json::to_vec(&error).unwrap_or_else(|_| b"{}".to_vec()));
        event.extend_from_slice(b"\n\n");
        return Bytes::from(event);
    }
    let mut line = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .unwrap_or_else(|_| b"{\"error\":\"internal error\"}".to_vec());
    line.push(b'\n');
    Bytes::from(line)
}

/// Sends a whole answer (status, content type, body), which ends the caller's response.
async fn answer_whole(
    tx: &LiveSender,
    status: StatusCode,
    content_type: Option<axum::http::HeaderValue>,
    body: Bytes,
) {
    let whole = LiveEvent::Whole {
        status,
        content_type,
        body,
    };
    let _ = tx.send(whole).await;
}

async fn caller_left(app: &App, job: &ClaimedJob) -> Ran {
    finish(
        app,
        job,
        Finish::Cancelled {
            reason: CALLER_LEFT.into(),
        },
    )
    .await;
    Ran::Completed
}

/// The target could not be reached before anything was sent: the job is queued again with
/// the caller still waiting (for any target with the model), or fails and the caller
/// hears why.
async fn unreachable(
    app: &App,
    target: &Target,
    job: &ClaimedJob,
    tx: LiveSender,
    err: TargetError,
) -> Ran {
    // The caller goes back first: once the retry commits, another slot may claim the job
    // at once, and its run must find the caller waiting.
    app.live.put(job.id, tx);
    if retry(app, target, job, &err).await != Some(JobState::Queued) {
        if let Some(tx) = app.live.take(job.id) {
            let _ = tx
                .send(LiveEvent::Fail {
                    status: StatusCode::BAD_GATEWAY,
                    message: err.to_string(),
                })
                .await;
        }
    }
    Ran::Unreachable
}

/// Shutdown or a cancel: a sync caller cannot wait for a restart, so the job ends.
async fn stopped(app: &App, job: &ClaimedJob, tx: &LiveSender, how: Finish) -> Ran {
    let reason = match how {
        Finish::Interrupted => "foreman is shutting down".to_owned(),
        Finish::Cancelled { reason } => reason,
        _ => "stopped".to_owned(),
    };
    let _ = tx
        .send(LiveEvent::Fail {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: reason.clone(),
        })
        .await;
    finish(app, job, Finish::Cancelled { reason }).await;
    Ran::Completed
}
