//! Webhooks: every state change, in order, signed, retried, never touching the job.

use foreman_client::{
    ChatMessage, ChatRequest, JobState, SubmitRequest, Webhook, FOREMAN_SIGNATURE_HEADER,
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};
use foreman_testkit::receiver::WebhookReceiver;
use foreman_testkit::TestApp;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::DEADLINE;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn job(receiver: &WebhookReceiver) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new("llama3.2", vec![ChatMessage::user("hi")]))
        .webhook(receiver.url())
}

async fn signed_app() -> TestApp {
    signed_app_with(std::time::Duration::from_millis(20)).await
}

async fn signed_app_with(retry_wait: std::time::Duration) -> TestApp {
    TestApp::with_config(move |c| {
        c.webhook_secret = Some(foreman_server::Secret::new(SECRET));
        c.webhook_retry_wait = retry_wait;
    })
    .await
}

/// Receives `n` deliveries and returns their bodies, checking both signatures on each.
async fn receive(receiver: &WebhookReceiver, n: usize) -> Vec<Value> {
    let verifier = Webhook::new(SECRET).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..n {
        let hook = receiver.recv(DEADLINE).await.expect("a delivery");
        verifier
            .verify(&hook.body, &hook.headers)
            .expect("Standard Webhooks signature");
        let legacy = hook.headers["x-foreman-signature"].to_str().unwrap();
        verifier
            .verify_legacy(&hook.body, legacy)
            .expect("X-Foreman-Signature");
        bodies.push(serde_json::from_slice(&hook.body).unwrap());
    }
    bodies
}

#[tokio::test]
async fn every_state_change_is_delivered_in_order_and_signed_both_ways() {
    let app = signed_app().await;
    let receiver = WebhookReceiver::start().await;
    let id = app.client.submit(job(&receiver)).await.unwrap();
    let events = receive(&receiver, 4).await;
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "loading", "working", "done"]);
    for event in &events {
        assert_eq!(event["job_id"], id.to_string());
        assert_eq!(event["model"], "llama3.2:latest");
        assert_eq!(
            event["type"],
            format!("job.{}", event["state"].as_str().unwrap())
        );
    }
    let done = &events[3];
    assert_eq!(done["result"]["message"]["content"], app.ollama.reply());
    assert_eq!(done["artifacts"][0]["name"], "completion");
    assert_eq!(done["artifacts"][0]["data"], app.ollama.reply());
}

#[tokio::test]
async fn each_signature_header_is_sent_exactly_once() {
    let app = signed_app().await;
    let receiver = WebhookReceiver::start().await;
    app.client.submit(job(&receiver)).await.unwrap();

    let hook = receiver.recv(DEADLINE).await.expect("a delivery");

    let names = [
        WEBHOOK_ID_HEADER,
        WEBHOOK_TIMESTAMP_HEADER,
        WEBHOOK_SIGNATURE_HEADER,
        FOREMAN_SIGNATURE_HEADER,
    ];
    for name in names {
        assert_eq!(
            hook.header_values(name).len(),
            1,
            "{name}: {:?}",
            hook.header_values(name)
        );
    }
    // A receiver that joins repeated fields (`a, a`) verifies what it sees.
    let mut joined = HeaderMap::new();
    for name in names {
        let value = hook.header(name).expect("the header");
        joined.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    Webhook::new(SECRET)
        .unwrap()
        .verify(&hook.body, &joined)
        .expect("the joined headers verify");
}

#[tokio::test]
async fn an_unsigned_delivery_still_carries_one_webhook_id_and_timestamp() {
    let app = TestApp::spawn().await;
    let receiver = WebhookReceiver::start().await;
    app.client.submit(job(&receiver)).await.unwrap();

    let hook = receiver.recv(DEADLINE).await.expect("a delivery");

    assert_eq!(hook.header_values(WEBHOOK_ID_HEADER).len(), 1);
    assert_eq!(hook.header_values(WEBHOOK_TIMESTAMP_HEADER).len(), 1);
    assert!(hook.header_values(WEBHOOK_SIGNATURE_HEADER).is_empty());
    assert!(hook.header_values(FOREMAN_SIGNATURE_HEADER).is_empty());
}

#[tokio::test]
async fn a_receiver_answering_500_is_retried_and_never_changes_the_job() {
    let app = signed_app().await;
    let receiver = WebhookReceiver::start().await;
    receiver.set_status(500);
    let id = app.client.submit(job(&receiver)).await.unwrap();
    let done = app.client.wait(id, DEADLINE).await.unwrap();
    assert_eq!(done.state, JobState::Done);
    // The first event is retried with the same webhook-id.
    let first = receiver.recv(DEADLINE).await.unwrap();
    let second = receiver.recv(DEADLINE).await.unwrap();
    assert_eq!(first.headers["webhook-id"], second.headers["webhook-id"]);
    receiver.set_status(200);
    let recorded = foreman_testkit::wait::wait_until(DEADLINE, || async {
        let job = app.client.job(id).await.unwrap();
        job.webhook_attempts.iter().any(|a| a.status == Some(500))
            && job.webhook_attempts.iter().any(|a| a.status == Some(200))
    })
    .await;
    assert!(recorded, "attempts are recorded on the job");
    assert_eq!(app.client.job(id).await.unwrap().state, JobState::Done);
}

#[tokio::test]
async fn a_restart_between_a_state_change_and_its_delivery_still_delivers() {
    // Long enough that the first event is still pending when foreman dies.
    let mut app = signed_app_with(std::time::Duration::from_secs(2)).await;
    let receiver = WebhookReceiver::start().await;
    // The receiver is down when the job runs: every event waits in the outbox.
    receiver.set_status(503);
    let id = app.client.submit(job(&receiver)).await.unwrap();
    app.client.wait(id, DEADLINE).await.unwrap();
    app.crash().await;
    receiver.set_status(200);
    let app = app.restart().await;
    let delivered = foreman_testkit::wait::wait_until(DEADLINE, || async {
        receiver
            .received()
            .iter()
            .any(|hook| serde_json::from_slice::<Value>(&hook.body).unwrap()["state"] == "done")
    })
    .await;
    assert!(delivered, "the done event arrived after the restart");
    drop(app);
}
