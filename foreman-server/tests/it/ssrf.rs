//! Webhook URLs that reach loopback or private addresses, in every spelling, through
//! the full submit path; and the switch that allows them.

use foreman_testkit::{TestApp, WebhookReceiver};
use serde_json::{json, Value};

use crate::faults::{submit, terminal};
use crate::DEADLINE;

fn job(url: &str) -> Value {
    json!({"model": "llama3.2", "messages": [], "state_webhook_url": url})
}

#[tokio::test]
async fn private_webhook_urls_are_refused_at_submit_in_every_spelling() {
    let app = TestApp::with_config(|c| c.webhook_allow_private = false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://2130706433/hook", // 127.0.0.1 as one integer
        "http://0x7f000001/hook", // ... in hex
        "http://0x7f.0.0.1/hook", // hex first octet
        "http://0177.0.0.1/hook", // octal first octet
        "http://127.1/hook",      // short form
        "http://0/hook",          // 0.0.0.0
        "http://[::1]/hook",
        "http://[::ffff:7f00:1]/hook",    // IPv4-mapped loopback
        "http://[::ffff:a9fe:a9fe]/hook", // IPv4-mapped 169.254.169.254
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://localhost:9/hook",
        "http://LocalHost./hook",
        "http://api.localhost/hook",
    ] {
        let response = app.post("/jobs", &job(url)).await;
        assert_eq!(response.status(), 400, "{url}");
        let body: Value = response.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("FOREMAN_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: {error}"
        );
    }
    assert!(app.jobs_json("").await.is_empty(), "nothing was queued");
}

#[tokio::test]
async fn allow_private_lets_a_loopback_name_through_and_it_is_delivered() {
    let app = TestApp::with_config(|c| c.webhook_allow_private = true).await;
    let receiver = WebhookReceiver::start().await;
    let url = format!("http://localhost:{}/hook", receiver.address().port());
    let id = submit(&app, &job(&url)).await;
    assert_eq!(terminal(&app, &id).await["state"], "done");
    let hook = receiver
        .recv(DEADLINE)
        .await
        .expect("delivered to localhost");
    assert_eq!(hook.json()["job_id"], id);
}
