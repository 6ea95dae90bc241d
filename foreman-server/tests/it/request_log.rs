//! One log line per request, once it is answered, with its job and model and no secret.

use std::time::Duration;

use foreman_testkit::{FakeOllama, TestApp};
use serde_json::{json, Value};

use crate::logs::Logs;
use crate::{chat_body, DEADLINE};

const AUTH_TOKEN: &str = "auth-token-3e1f0a";
const PROMPT: &str = "Why is the sky blue?";

/// Waits for the log line that contains `needle`, checks it has each of `parts`, and
/// returns it.
async fn assert_logged(logs: &Logs, needle: &str, parts: &[&str]) -> String {
    let line = logs.line(|l| l.contains(needle), DEADLINE).await;
    for part in parts {
        assert!(line.contains(part), "{part:?} is not in {line}");
    }
    line
}

// A current-thread runtime: every task foreman spawns runs on this thread, under the
// subscriber set here.
#[tokio::test(flavor = "current_thread")]
async fn each_request_is_logged_once_answered_with_its_job_and_model_and_no_token() {
    let (logs, _guard) = crate::logs::capture();
    let ollama = FakeOllama::builder().chunks(4).start().await;
    let app = TestApp::builder()
        .ollama(ollama)
        .auth_token(AUTH_TOKEN)
        .spawn()
        .await;

    // A streamed sync chat: its job id is the response header's, its bytes all chunks'.
    let answer = app
        .post_as("/api/chat", AUTH_TOKEN, &chat_body("llama3.2", true))
        .await;
    assert_eq!(answer.status(), 200);
    let job_id = answer.headers()["x-foreman-job-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let sent = answer.bytes().await.unwrap().len();
    assert_logged(
        &logs,
        "path=/api/chat",
        &[
            " INFO ",
            "answered",
            "method=POST",
            "status=200",
            "latency_ms=",
            &format!("bytes={sent}"),
            &format!("job_id={job_id}"),
            "model=llama3.2",
            "complete=true",
        ],
    )
    .await;

    // An async job, then its status: the id comes from the path.
    let submitted: Value = app
        .post_as(
            "/jobs",
            AUTH_TOKEN,
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": PROMPT}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let async_id = submitted["job_id"].as_str().unwrap().to_owned();
    let shown = app.get_as(&format!("/jobs/{async_id}"), AUTH_TOKEN).await;
    assert_eq!(shown.status(), 200);
    let _ = shown.bytes().await.unwrap();
    assert_logged(
        &logs,
        "method=POST path=/jobs ",
        &[
            "status=202",
            &format!("job_id={async_id}"),
            "model=llama3.2",
        ],
    )
    .await;
    assert_logged(
        &logs,
        &format!("path=/jobs/{async_id} "),
        &["method=GET", "status=200", &format!("job_id={async_id}")],
    )
    .await;

    // Error answers are logged with what the request named.
    let missing = app
        .post_as("/api/chat", AUTH_TOKEN, &chat_body("no-such-model", false))
        .await;
    assert_eq!(missing.status(), 404);
    let _ = missing.bytes().await.unwrap();
    assert_logged(
        &logs,
        "model=no-such-model",
        &["path=/api/chat", "status=404"],
    )
    .await;
    let refused = app.get("/api/tags").await;
    assert_eq!(refused.status(), 401);
    let _ = refused.bytes().await.unwrap();
    logs.line(|l| l.contains("path=/api/tags status=401"), DEADLINE)
        .await;

    let all = logs.text();
    let lines = all
        .lines()
        .filter(|l| l.contains("answered") && l.contains(&format!("job_id={job_id}")))
        .count();
    assert_eq!(lines, 1, "one line per request:\n{all}");
    assert!(!all.contains(AUTH_TOKEN), "the token is in the logs");
    assert!(!all.contains(PROMPT), "a prompt is in the logs");
    assert!(
        !all.contains(&app.ollama.reply()),
        "an answer is in the logs"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_leaves_before_its_answer_is_logged_without_a_status() {
    let (logs, _guard) = crate::logs::capture();
    let app = TestApp::with_generation_delay(Duration::from_secs(30)).await;
    let waiting = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    app.ollama.wait_for_generations(1, DEADLINE).await;

    waiting.abort();

    let line = assert_logged(
        &logs,
        "client left before the answer",
        &[
            "method=POST",
            "path=/api/chat",
            "model=llama3.2",
            "job_id=",
            "complete=false",
        ],
    )
    .await;
    assert!(!line.contains("status="), "{line}");
}
