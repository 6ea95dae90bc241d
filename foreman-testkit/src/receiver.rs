//! [`WebhookReceiver`]: a tiny HTTP server that records every POST it gets (headers
//! and raw body) and answers with a status the test chooses.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    /// The request path, e.g. `/hook`.
    pub path: String,
    /// All request headers, every value of a repeated one kept in the order sent.
    pub headers: HeaderMap,
    /// The raw body, exactly as sent (what signatures are computed over).
    pub body: Bytes,
    /// The status the receiver answered it with.
    pub answered: u16,
}

impl ReceivedWebhook {
    /// The body parsed as JSON; panics if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "webhook body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header as text, as a receiver that joins repeated fields sees it: its values in
    /// order, separated by `, ` (so a header sent twice reads `a, a`); `None` if absent.
    /// Values that are not visible ASCII are left out.
    pub fn header(&self, name: &str) -> Option<String> {
        let values = self.header_values(name);
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// Every value sent for a header, in order: one entry per time the header appeared.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

#[derive(Debug)]
struct Replies {
    status: u16,
    /// Statuses for the next requests, before falling back to `status`.
    next: VecDeque<u16>,
}

#[derive(Debug)]
struct Shared {
    replies: Mutex<Replies>,
    received: Mutex<Vec<ReceivedWebhook>>,
    sender: mpsc::UnboundedSender<ReceivedWebhook>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A webhook receiver on `127.0.0.1`, port chosen by the OS. It answers every POST,
/// on any path, with the current status (200 unless changed) and forwards what it got
/// over a channel. It shuts down when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    receiver: tokio::sync::Mutex<mpsc::UnboundedReceiver<ReceivedWebhook>>,
    _shutdown: DropGuard,
}

impl WebhookReceiver {
    /// Starts a receiver answering 200.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use std::time::Duration;
    /// let hooks = foreman_testkit::WebhookReceiver::start().await;
    /// // ... submit a job with `state_webhook_url: hooks.url()` ...
    /// let first = hooks.recv(Duration::from_secs(5)).await.expect("a webhook");
    /// assert_eq!(first.json()["state"], "queued");
    /// # }
    /// ```
    pub async fn start() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            replies: Mutex::new(Replies {
                status: 200,
                next: VecDeque::new(),
            }),
            received: Mutex::new(Vec::new()),
            sender,
        });
        let app = axum::Router::new()
            .fallback(record)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(Arc::clone(&shared));
        let (addr, shutdown) = crate::wait::serve_on_loopback(app).await;
        Self {
            addr,
            shared,
            receiver: tokio::sync::Mutex::new(receiver),
            _shutdown: shutdown.drop_guard(),
        }
    }

    /// `http://127.0.0.1:PORT/hook`, the URL to give as `state_webhook_url`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Answers later requests with `status` (e.g. 500 to make deliveries fail).
    pub fn set_status(&self, status: u16) {
        lock(&self.shared.replies).status = status;
    }

    /// Answers the next `n` requests with `status`, then goes back to the
    /// [`set_status`](Self::set_status) one (200 unless changed).
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut replies = lock(&self.shared.replies);
        replies.next.clear();
        replies.next.extend(std::iter::repeat_n(status, n));
    }

    /// The next request not yet taken by `recv`, waiting up to `deadline` for it.
    pub async fn recv(&self, deadline: Duration) -> Option<ReceivedWebhook> {
        let mut receiver = self.receiver.lock().await;
        tokio::time::timeout(deadline, receiver.recv())
            .await
            .ok()
            .flatten()
    }

    /// Everything received so far (whether or not taken by `recv`), in arrival order.
    pub fn received(&self) -> Vec<ReceivedWebhook> {
        lock(&self.shared.received).clone()
    }

    /// Waits up to `deadline` until at least `n` requests have arrived in total, and
    /// returns them all; panics with what did arrive otherwise.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<ReceivedWebhook> {
        let enough = crate::wait::wait_until(deadline, || {
            let count = lock(&self.shared.received).len();
            async move { count >= n }
        })
        .await;
        let received = self.received();
        assert!(
            enough,
            "waited {deadline:?} for {n} webhooks, got {}: {:?}",
            received.len(),
            received
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>()
        );
        received
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST only");
    }
    let answered = {
        let mut replies = lock(&shared.replies);
        let status = replies.status;
        replies.next.pop_front().unwrap_or(status)
    };
    let webhook = ReceivedWebhook {
        path: uri.path().to_owned(),
        headers,
        body,
        answered,
    };
    lock(&shared.received).push(webhook.clone());
    // The receiving half lives as long as the handle; if it is gone nobody listens.
    let _ = shared.sender.send(webhook);
    let status = StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, "")
}
