//! The webhook dispatcher: works the outbox until shutdown.
//!
//! Events are written to the outbox with their state change, so nothing is lost to a
//! crash. Each delivery is signed in both formats (when a secret is set), attempted up to
//! [`MAX_ATTEMPTS`] times with doubling waits, and every attempt is recorded on the job.
//! A job's events go out one at a time in state order; different jobs' go out together.
//! A failing receiver never changes the job.

use std::time::{Duration, Instant};

use foreman_types::{Webhook, WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::WebhookOutcome;
use crate::state::App;
use crate::store::{Delivery, DeliveryOutcome};
use crate::webhook_url::{literal_is_forbidden, GuardedResolver};

/// Attempts per event before giving up.
pub(crate) const MAX_ATTEMPTS: u32 = 5;
/// Deliveries attempted at once.
const BATCH: u32 = 32;
/// The longest idle wait between outbox checks.
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// The client for deliveries: no redirects, `FOREMAN_WEBHOOK_TIMEOUT`, and the resolver
/// that refuses private addresses. Built at start-up, so that a client which cannot be
/// built stops foreman instead of being replaced by a default one without these.
pub(crate) fn client(config: &Config) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // How long one attempt may take: `FOREMAN_WEBHOOK_TIMEOUT`.
        .timeout(config.webhook_timeout)
        .connect_timeout(config.webhook_timeout);
    if !config.webhook_allow_private {
        builder = builder.dns_resolver(std::sync::Arc::new(GuardedResolver));
    }
    builder.build()
}

pub(crate) async fn run(app: App, http: reqwest::Client, shutdown: CancellationToken) {
    let signer = app
        .config
        .webhook_secret
        .as_ref()
        .and_then(|secret| Webhook::new(secret.expose()).ok());
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let due = match app.store.due_deliveries(BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the webhook outbox");
                Vec::new()
            }
        };
        if !due.is_empty() {
            let attempts = due.iter().map(|d| deliver(&app, &http, signer.as_ref(), d));
            futures::future::join_all(attempts).await;
            continue;
        }
        let wait = match app.store.next_delivery_at().await {
            Ok(Some(at)) => {
                let ms = (at - crate::store::now_ms()).clamp(0, IDLE_WAIT.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
            _ => IDLE_WAIT,
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = app.webhooks.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn deliver(app: &App, http: &reqwest::Client, signer: Option<&Webhook>, delivery: &Delivery) {
    let started = Instant::now();
    let outcome = match attempt(app, http, signer, delivery).await {
        Ok(status) => DeliveryOutcome {
            status: Some(status),
            latency: started.elapsed(),
            error: (!(200..300).contains(&status)).then(|| format!("receiver answered {status}")),
        },
        Err(error) => DeliveryOutcome {
            status: None,
            latency: started.elapsed(),
            error: Some(error),
        },
    };
    app.metrics.webhook(if outcome.delivered() {
        WebhookOutcome::Delivered
    } else if delivery.attempts + 1 >= MAX_ATTEMPTS {
        WebhookOutcome::GaveUp
    } else {
        WebhookOutcome::FailedAttempt
    });
    if outcome.delivered() {
        tracing::debug!(job_id = %delivery.job_id, webhook_id = %delivery.webhook_id, "webhook delivered");
    } else {
        tracing::warn!(
            job_id = %delivery.job_id,
            webhook_id = %delivery.webhook_id,
            attempt = delivery.attempts + 1,
            error = outcome.error.as_deref().unwrap_or_default(),
            "webhook delivery failed"
        );
    }
    if let Err(err) = app
        .store
        .record_delivery(
            delivery,
            outcome,
            MAX_ATTEMPTS,
            app.config.webhook_retry_wait,
        )
        .await
    {
        tracing::error!(job_id = %delivery.job_id, error = %err, "cannot record a webhook attempt");
    }
}

/// One POST; the receiver's status, or why there was none.
async fn attempt(
    app: &App,
    http: &reqwest::Client,
    signer: Option<&Webhook>,
    delivery: &Delivery,
) -> Result<u16, String> {
    let url = url::Url::parse(&delivery.url).map_err(|err| format!("bad URL: {err}"))?;
    if !app.config.webhook_allow_private && literal_is_forbidden(&url) {
        return Err("the URL points at a loopback, private or reserved address".into());
    }
    // The signed timestamp is the attempt's, not the event's: receivers reject stale
    // timestamps, and a retry after an outage is not a replay. The body keeps the time
    // of the state change.
    let sent_at = chrono::Utc::now().timestamp();
    let response = http
        .post(url)
        .headers(headers(signer, delivery, sent_at)?)
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|err| crate::targets::client::error_chain(&err))?;
    Ok(response.status().as_u16())
}

/// A delivery's headers, each exactly once: `RequestBuilder::header` appends, and a
/// receiver that joins a repeated `webhook-id` (`a, a`) fails to verify. Unsigned
/// deliveries still carry the id and timestamp, so receivers can deduplicate.
fn headers(
    signer: Option<&Webhook>,
    delivery: &Delivery,
    sent_at: i64,
) -> Result<HeaderMap, String> {
    let mut headers = match signer {
        Some(signer) => signer
            .headers(&delivery.webhook_id, sent_at, &delivery.body)
            .to_header_map()
            .map_err(|err| err.to_string())?,
        None => {
            let mut headers = HeaderMap::with_capacity(4);
            let id = HeaderValue::from_str(&delivery.webhook_id)
                .map_err(|_| "the webhook id cannot be a header value".to_owned())?;
            headers.insert(WEBHOOK_ID_HEADER, id);
            headers.insert(WEBHOOK_TIMESTAMP_HEADER, HeaderValue::from(sent_at));
            headers
        }
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("foreman/", env!("CARGO_PKG_VERSION"))),
    );
    Ok(headers)
}
