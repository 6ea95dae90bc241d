//! Tokens and secrets never reach the logs, whatever the requests.

use foreman_testkit::{FakeOllama, TestApp, WebhookReceiver};
use serde_json::json;

use crate::DEADLINE;

const AUTH_TOKEN: &str = "auth-token-7f3a9c";
const WRONG_TOKEN: &str = "someone-elses-token-51b2";
const WEBHOOK_SECRET: &str = "webhook-secret-d41e8";
const TARGET_TOKEN: &str = "target-token-0c6b2";

// A current-thread runtime: every task foreman spawns runs on this thread, under the
// subscriber set here.
#[tokio::test(flavor = "current_thread")]
async fn tokens_and_secrets_never_appear_in_the_logs() {
    let (logs, _guard) = crate::logs::capture();

    let ollama = FakeOllama::builder().token(TARGET_TOKEN).start().await;
    let app = TestApp::builder()
        .ollama(ollama)
        .auth_token(AUTH_TOKEN)
        .configure(|c| {
            c.webhook_secret = Some(foreman_server::Secret::new(WEBHOOK_SECRET));
            c.target_token = Some(foreman_server::Secret::new(TARGET_TOKEN));
        })
        .spawn()
        .await;
    let receiver = WebhookReceiver::start().await;
    receiver.fail_next(1, 500);
    let chat = json!({"model": "llama3.2", "stream": false,
                      "messages": [{"role": "user", "content": "hi"}]});
    for token in [WRONG_TOKEN, AUTH_TOKEN] {
        for (path, body) in [
            ("/api/chat", chat.clone()),
            (
                "/api/embed",
                json!({"model": "nomic-embed-text", "input": "x"}),
            ),
            (
                "/jobs",
                json!({"model": "llama3.2", "messages": [],
                             "state_webhook_url": receiver.url()}),
            ),
            (
                "/jobs",
                json!({"model": "llama3.2", "messages": [],
                             "state_webhook_url": format!("http://user:{token}@127.0.0.1:9/")}),
            ),
        ] {
            let _ = app.post_as(path, token, &body).await;
        }
        let _ = app
            .http
            .get(app.at("/nope"))
            .header("authorization", token)
            .send()
            .await;
    }
    // Signed deliveries, one of them retried.
    let hooks = receiver.wait_for(4, DEADLINE).await;
    assert!(hooks[0].header("webhook-signature").is_some());
    drop(app);

    let logs = logs.text();
    assert!(logs.contains("foreman is listening"), "logs were captured");
    assert!(
        logs.contains("webhook delivery failed"),
        "the retry was logged"
    );
    for secret in [AUTH_TOKEN, WRONG_TOKEN, WEBHOOK_SECRET, TARGET_TOKEN] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
}
