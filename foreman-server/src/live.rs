//! Callers waiting on the line: the channel from the worker to each `/api/chat` or
//! `/api/generate` request whose job is queued or running.
//!
//! The caller owns the receiving end. When it goes away (the client disconnected), the
//! worker's next send fails or `closed()` fires, and the worker drops the upstream request,
//! which stops the generation on the target.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode};
use bytes::Bytes;
use foreman_types::JobId;
use tokio::sync::mpsc;

/// Chunks buffered between the worker and a slow client before the worker waits.
pub(crate) const LIVE_BUFFER: usize = 64;

/// What the worker tells a waiting caller.
#[derive(Debug)]
pub(crate) enum LiveEvent {
    /// The target answered: the status and content type to answer with.
    Head {
        status: StatusCode,
        content_type: Option<HeaderValue>,
    },
    /// Bytes of the answer, as the target sent them.
    Chunk(Bytes),
    /// The whole answer at once (one JSON object, or the target's error), in place of a
    /// head, chunks and the end: the caller gets it with its length, as the target sent
    /// it, in one write.
    Whole {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    /// The job failed before any answer was sent.
    Fail { status: StatusCode, message: String },
    /// The answer is complete: the caller's response ends now, before the worker records
    /// the job's end (a durable commit the caller need not wait for).
    End,
}

/// The sending half, held by the worker while the job runs.
pub(crate) type LiveSender = mpsc::Sender<LiveEvent>;

/// Senders of the callers whose jobs have not started.
#[derive(Debug, Default)]
pub(crate) struct Live {
    waiting: Mutex<HashMap<JobId, LiveSender>>,
    /// Set at shutdown: no caller may start waiting after the waiting ones were released.
    closed: AtomicBool,
}

impl Live {
    /// Registers a caller; returns the receiving half, or `None` once foreman is shutting
    /// down.
    pub(crate) fn register(&self, id: JobId) -> Option<mpsc::Receiver<LiveEvent>> {
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        let mut waiting = self.waiting.lock().ok()?;
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        waiting.insert(id, tx);
        Some(rx)
    }

    /// Tells one waiting caller its job ended before its turn (it was cancelled).
    pub(crate) fn release(&self, id: JobId, status: StatusCode, message: String) {
        if let Some(tx) = self.take(id) {
            let _ = tx.try_send(LiveEvent::Fail { status, message });
        }
    }

    /// Stops taking callers and answers every waiting one with `message`, so graceful
    /// shutdown does not wait on connections whose jobs will never run. Returns their
    /// job ids.
    pub(crate) fn close(&self, message: &str) -> Vec<JobId> {
        self.drain(message, true)
    }

    /// Answers every waiting caller 503 with `message`, as [`close`](Self::close) does,
    /// but keeps taking new ones (a replica whose lease lapsed, ADR 23).
    pub(crate) fn release_all(&self, message: &str) -> Vec<JobId> {
        self.drain(message, false)
    }

    fn drain(&self, message: &str, close: bool) -> Vec<JobId> {
        let drained: Vec<(JobId, LiveSender)> = match self.waiting.lock() {
            Ok(mut waiting) => {
                if close {
                    self.closed.store(true, Ordering::SeqCst);
                }
                waiting.drain().collect()
            }
            Err(_) => Vec::new(),
        };
        drained
            .into_iter()
            .map(|(id, tx)| {
                let _ = tx.try_send(LiveEvent::Fail {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: message.to_owned(),
                });
                id
            })
            .collect()
    }

    /// Hands a caller's sender to the worker.
    pub(crate) fn take(&self, id: JobId) -> Option<LiveSender> {
        self.waiting.lock().ok()?.remove(&id)
    }

    /// Gives a sender back (the job was queued again).
    pub(crate) fn put(&self, id: JobId, tx: LiveSender) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id, tx);
        }
    }

    /// Forgets a caller.
    pub(crate) fn remove(&self, id: JobId) {
        self.take(id);
    }
}
