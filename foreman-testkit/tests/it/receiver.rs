use std::time::Duration;

use foreman_testkit::WebhookReceiver;
use reqwest::StatusCode;

const DEADLINE: Duration = Duration::from_secs(5);

async fn deliver(hooks: &WebhookReceiver, body: &'static str) -> StatusCode {
    reqwest::Client::new()
        .post(hooks.url())
        .header("content-type", "application/json")
        .header("x-foreman-signature", "sha256=abc")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn records_body_and_headers_and_forwards_them() {
    let hooks = WebhookReceiver::start().await;

    let status = deliver(&hooks, r#"{"state":"queued"}"#).await;
    let got = hooks.recv(DEADLINE).await.expect("a webhook");

    assert_eq!(status, StatusCode::OK);
    assert!(hooks.url().ends_with("/hook"));
    assert_eq!(got.path, "/hook");
    assert_eq!(&got.body[..], br#"{"state":"queued"}"#);
    assert_eq!(got.json()["state"], "queued");
    assert_eq!(
        got.header("x-foreman-signature").as_deref(),
        Some("sha256=abc")
    );
    assert_eq!(got.answered, 200);
    assert_eq!(hooks.received().len(), 1);
}

#[tokio::test]
async fn a_repeated_header_keeps_every_value() {
    let hooks = WebhookReceiver::start().await;

    reqwest::Client::new()
        .post(hooks.url())
        .header("webhook-id", "msg_1")
        .header("webhook-id", "msg_1")
        .send()
        .await
        .unwrap();
    let got = hooks.recv(DEADLINE).await.expect("a webhook");

    assert_eq!(got.header_values("webhook-id"), ["msg_1", "msg_1"]);
    assert_eq!(got.header("webhook-id").as_deref(), Some("msg_1, msg_1"));
    assert!(got.header_values("webhook-signature").is_empty());
    assert_eq!(got.header("webhook-signature"), None);
}

#[tokio::test]
async fn answers_the_status_set_at_any_time() {
    let hooks = WebhookReceiver::start().await;

    hooks.set_status(500);
    let failing = deliver(&hooks, "{}").await;
    hooks.set_status(204);
    let fine = deliver(&hooks, "{}").await;

    assert_eq!(failing, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(fine, StatusCode::NO_CONTENT);
    let answered: Vec<u16> = hooks.received().iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 204]);
}

#[tokio::test]
async fn fail_next_fails_that_many_then_succeeds() {
    let hooks = WebhookReceiver::start().await;

    hooks.fail_next(2, 503);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(deliver(&hooks, "{}").await);
    }

    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    assert_eq!(hooks.wait_for(3, DEADLINE).await.len(), 3);
}

#[tokio::test]
async fn recv_gives_none_when_nothing_arrives_in_time() {
    let hooks = WebhookReceiver::start().await;

    assert!(hooks.recv(Duration::from_millis(20)).await.is_none());
}
