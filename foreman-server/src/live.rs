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
use tokio::sync::{mpsc, oneshot};

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
    /// The job failed before any answer was sent.
    Fail { status: StatusCode, message: String },
    /// The answer is complete: the caller's response ends now, before the worker records
    /// the job's end (a durable commit the caller need not wait for).
    End,
}

/// The sending half, held by the worker while the job runs.
pub(crate) type LiveSender = mpsc::Sender<LiveEvent>;

/// A caller's line: while its job waits in the queue only a hand-off for the channel,
/// which is opened when the job starts (or ends before its turn). A channel costs about
/// 2 KiB before anything is sent, and 10,000 streaming callers waiting their turn (issue
/// 16's benchmark 6) would hold 20 MiB of them.
#[derive(Debug)]
enum Line {
    Queued(oneshot::Sender<mpsc::Receiver<LiveEvent>>),
    Open(LiveSender),
}

impl Line {
    /// The sending half, opening the channel first if the caller has none yet; `None`
    /// when the caller is gone.
    fn open(self) -> Option<LiveSender> {
        match self {
            Line::Open(tx) => Some(tx),
            Line::Queued(hand_off) => {
                let (tx, rx) = mpsc::channel(LIVE_BUFFER);
                hand_off.send(rx).ok()?;
                Some(tx)
            }
        }
    }
}

/// The caller's end of its line.
#[derive(Debug)]
pub(crate) struct LiveReceiver {
    state: Receiving,
}

#[derive(Debug)]
enum Receiving {
    Queued(oneshot::Receiver<mpsc::Receiver<LiveEvent>>),
    Open(mpsc::Receiver<LiveEvent>),
    Gone,
}

impl LiveReceiver {
    /// The next event, or `None` once the worker has nothing more to send (or forgot
    /// the caller). Cancel-safe, as `mpsc::Receiver::recv` is.
    pub(crate) async fn recv(&mut self) -> Option<LiveEvent> {
        if let Receiving::Queued(hand_off) = &mut self.state {
            self.state = match hand_off.await {
                Ok(rx) => Receiving::Open(rx),
                Err(_) => Receiving::Gone,
            };
        }
        match &mut self.state {
            Receiving::Open(rx) => rx.recv().await,
            Receiving::Queued(_) | Receiving::Gone => None,
        }
    }
}

/// The lines of the callers whose jobs have not started.
#[derive(Debug, Default)]
pub(crate) struct Live {
    waiting: Mutex<HashMap<JobId, Line>>,
    /// Set at shutdown: no caller may start waiting after the waiting ones were released.
    closed: AtomicBool,
}

impl Live {
    /// Registers a caller; returns its end of the line, or `None` once foreman is shutting
    /// down.
    pub(crate) fn register(&self, id: JobId) -> Option<LiveReceiver> {
        let (hand_off, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().ok()?;
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        waiting.insert(id, Line::Queued(hand_off));
        Some(LiveReceiver {
            state: Receiving::Queued(rx),
        })
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
        let drained: Vec<(JobId, Line)> = match self.waiting.lock() {
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
            .map(|(id, line)| {
                if let Some(tx) = line.open() {
                    let _ = tx.try_send(LiveEvent::Fail {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        message: message.to_owned(),
                    });
                }
                id
            })
            .collect()
    }

    /// Hands a caller's sender to the worker; `None` if the caller is gone or unknown.
    pub(crate) fn take(&self, id: JobId) -> Option<LiveSender> {
        self.waiting.lock().ok()?.remove(&id)?.open()
    }

    /// Gives a sender back (the job was queued again).
    pub(crate) fn put(&self, id: JobId, tx: LiveSender) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id, Line::Open(tx));
        }
    }

    /// Forgets a caller.
    pub(crate) fn remove(&self, id: JobId) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&id);
        }
    }
}
