//! `degraded` while the target is unreachable, and back.

use foreman_testkit::wait::wait_until;
use foreman_testkit::TestApp;
use serde_json::Value;

use crate::DEADLINE;

async fn degraded(app: &TestApp) -> bool {
    let health: Value = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    health["degraded"].as_bool().unwrap()
}

#[tokio::test]
async fn health_turns_degraded_while_the_target_is_down_and_recovers() {
    let app = TestApp::spawn().await;
    assert!(!degraded(&app).await);
    app.ollama.stop().await;
    assert!(
        wait_until(DEADLINE, || degraded(&app)).await,
        "degraded once down"
    );
    // The last known inventory is still served, and work is still accepted.
    let tags: Value = app.get_json("/api/tags").await;
    assert!(!tags["models"].as_array().unwrap().is_empty());
    let submitted = app
        .post("/jobs", &crate::chat_body("llama3.2", false))
        .await;
    assert_eq!(submitted.status(), 202);
    app.ollama.restart().await;
    assert!(
        wait_until(DEADLINE, || async { !degraded(&app).await }).await,
        "recovers"
    );
}
