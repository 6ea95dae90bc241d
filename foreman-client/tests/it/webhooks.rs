//! A webhook receiver needs only this crate: the re-exported verifiers accept foreman's
//! signatures and refuse tampered deliveries.

use std::time::{SystemTime, UNIX_EPOCH};

use foreman_client::{
    verify_signature, JobId, JobState, SignatureError, Webhook, WebhookEvent,
    FOREMAN_SIGNATURE_HEADER,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A delivery as a receiver sees it: the raw body and the request's headers.
fn delivery(body: &[u8]) -> HeaderMap {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signed = Webhook::new(SECRET).unwrap().headers("msg_01", now, body);
    let mut headers = HeaderMap::new();
    for (name, value) in signed.iter() {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn event_body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "job.done",
        "job_id": JobId::new(),
        "state": "done",
        "model": "llama3.2:latest",
        "attempts": 1,
        "timestamp": "2025-01-01T00:00:00Z"
    }))
    .unwrap()
}

#[test]
fn a_signed_delivery_verifies_and_parses_as_an_event() {
    let body = event_body();
    let headers = delivery(&body);

    Webhook::new(SECRET)
        .unwrap()
        .verify(&body, &headers)
        .unwrap();
    let legacy = headers[FOREMAN_SIGNATURE_HEADER].to_str().unwrap();
    verify_signature(SECRET, &body, legacy).unwrap();

    let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
    assert_eq!(event.state, JobState::Done);
}

#[test]
fn a_tampered_body_or_another_secret_is_refused() {
    let body = event_body();
    let headers = delivery(&body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");

    let webhook = Webhook::new(SECRET).unwrap();
    assert_eq!(
        webhook.verify(&tampered, &headers),
        Err(SignatureError::Mismatch)
    );
    let other = Webhook::new("another secret").unwrap();
    assert_eq!(other.verify(&body, &headers), Err(SignatureError::Mismatch));
    let legacy = headers[FOREMAN_SIGNATURE_HEADER].to_str().unwrap();
    assert!(verify_signature(SECRET, &tampered, legacy).is_err());
}
