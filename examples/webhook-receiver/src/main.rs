//! A webhook receiver that checks foreman's signatures before trusting a delivery.
//!
//! Run it, then submit a job whose webhook points at it (foreman must allow private
//! addresses to call a receiver on the same machine):
//!
//! ```sh
//! FOREMAN_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
//!   cargo run -p example-webhook-receiver            # listens on 127.0.0.1:9000
//! FOREMAN_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw FOREMAN_WEBHOOK_ALLOW_PRIVATE=true \
//!   cargo run -p foreman-cli -- serve --sim
//! cargo run -p foreman-cli -- submit -m llama3.2 --webhook http://127.0.0.1:9000/hook "hi"
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use foreman_client::{Webhook, WebhookEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("FOREMAN_WEBHOOK_SECRET")
        .map_err(|_| "set FOREMAN_WEBHOOK_SECRET to the secret foreman signs with")?;
    let verifier = Arc::new(Webhook::new(&secret)?);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
    println!("listening on http://{}/hook", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Verifies the Standard Webhooks signature (which also rejects stale timestamps, so a
/// captured delivery cannot be replayed later), then acts on the event.
async fn receive(
    State(verifier): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if let Err(err) = verifier.verify(&body, &headers) {
        eprintln!("rejected a delivery: {err}");
        return StatusCode::UNAUTHORIZED;
    }
    let event: WebhookEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => {
            eprintln!("a signed body that is not an event: {err}");
            return StatusCode::BAD_REQUEST;
        }
    };
    // Deliveries are at least once: a real receiver keeps the `webhook-id` header and
    // ignores one it has seen.
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    println!(
        "{id}: job {} is {} ({})",
        event.job_id, event.state, event.model
    );
    if let Some(result) = &event.result {
        println!("  answer: {}", result["message"]["content"]);
    }
    StatusCode::NO_CONTENT
}
