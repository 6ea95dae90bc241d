//! Webhook receiver faults: down, slow, redirecting, failing then recovering. None of
//! them changes the job; every attempt is recorded on it.

use std::time::Duration;

use axum::http::{header, StatusCode};
use foreman_testkit::wait::wait_until;
use foreman_testkit::{TestApp, WebhookReceiver};
use serde_json::{json, Value};

use crate::faults::{submit, terminal};
use crate::DEADLINE;

fn job_with_hook(url: &str) -> Value {
    json!({
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "state_webhook_url": url,
    })
}

async fn app() -> TestApp {
    TestApp::with_config(|c| c.webhook_timeout = Duration::from_millis(200)).await
}

/// Waits until the job shows at least `n` webhook attempts; them.
async fn attempts(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    let path = format!("/jobs/{id}");
    let enough = wait_until(DEADLINE, || async {
        let job = app.get_json(&path).await;
        job["webhook_attempts"].as_array().map_or(0, Vec::len) >= n
    })
    .await;
    let job = app.get_json(&path).await;
    assert!(enough, "fewer than {n} attempts: {job}");
    job["webhook_attempts"].as_array().unwrap().clone()
}

/// Serves `router` on a port of its own; its URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_and_each_refusal_recorded() {
    let app = app().await;
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let id = submit(&app, &job_with_hook(&format!("http://{closed}/hook"))).await;
    assert_eq!(terminal(&app, &id).await["state"], "done");
    let tried = attempts(&app, &id, 2).await;
    for attempt in &tried {
        assert!(attempt["status"].is_null(), "{attempt}");
        assert!(attempt["error"].is_string(), "{attempt}");
    }
    assert_eq!(tried[0]["webhook_id"], tried[1]["webhook_id"]);
    assert_eq!(tried[1]["attempt"], 2);
    assert_eq!(app.get_json(&format!("/jobs/{id}")).await["state"], "done");
}

#[tokio::test]
async fn a_receiver_slower_than_the_attempt_timeout_is_cut_off_and_retried() {
    let app = app().await;
    let slow = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        StatusCode::OK
    });
    let url = serve(slow).await;
    let id = submit(&app, &job_with_hook(&url)).await;
    assert_eq!(terminal(&app, &id).await["state"], "done");
    let tried = attempts(&app, &id, 2).await;
    for attempt in &tried[..2] {
        assert!(attempt["status"].is_null(), "{attempt}");
        assert!(
            attempt["latency_ms"].as_u64().unwrap() < 2000,
            "cut off at the 200 ms timeout: {attempt}"
        );
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt() {
    let app = app().await;
    let elsewhere = WebhookReceiver::start().await;
    let location = elsewhere.url();
    let redirecting = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::SEE_OTHER, [(header::LOCATION, location)]) }
    });
    let url = serve(redirecting).await;
    let id = submit(&app, &job_with_hook(&url)).await;
    assert_eq!(terminal(&app, &id).await["state"], "done");
    let tried = attempts(&app, &id, 2).await;
    assert_eq!(tried[0]["status"], 303, "{tried:?}");
    assert!(tried[0]["error"].as_str().unwrap().contains("303"));
    assert!(
        elsewhere.recv(Duration::from_millis(300)).await.is_none(),
        "the redirect target never hears from foreman"
    );
}

#[tokio::test]
async fn a_receiver_failing_twice_then_answering_gets_the_event_with_one_webhook_id() {
    let app = app().await;
    let receiver = WebhookReceiver::start().await;
    receiver.fail_next(2, 500);
    let id = submit(&app, &job_with_hook(&receiver.url())).await;
    assert_eq!(terminal(&app, &id).await["state"], "done");
    let hooks = receiver.wait_for(3, DEADLINE).await;
    let statuses: Vec<u16> = hooks.iter().take(3).map(|h| h.answered).collect();
    assert_eq!(statuses, [500, 500, 200]);
    let ids: Vec<_> = hooks
        .iter()
        .take(3)
        .map(|h| h.header("webhook-id"))
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(hooks[0].body, hooks[2].body, "the same bytes each time");
    let tried = attempts(&app, &id, 3).await;
    let recorded: Vec<_> = tried.iter().take(3).map(|a| a["status"].clone()).collect();
    assert_eq!(recorded, [json!(500), json!(500), json!(200)]);
}
