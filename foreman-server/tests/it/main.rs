//! foreman-server's integration tests: a real foreman on port 0 in front of the testkit's
//! fake Ollama (or the simulator, where a test releases the target's answer by hand), one
//! binary for all.

mod auth;
mod errors;
mod faults;
mod health;
mod hostile;
mod isolation;
mod jobs;
mod keys;
mod limits;
mod logs;
mod long_lines;
mod manual_target;
mod messages;
mod metrics;
mod models;
mod openai;
mod priority;
mod proxy;
mod queue;
mod request_log;
mod residency;
mod restart;
mod secrets_in_logs;
mod ssrf;
mod streaming;
mod targets;
mod tenants;
mod ui;
mod ui_live;
mod unknown_routes;
mod usage;
mod webhook_faults;
mod webhooks;

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, JobId, SubmitRequest};
use foreman_testkit::{FakeOllama, TestApp, TestAppBuilder};

/// How long any condition in these tests may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Longer than any test: a poll interval that never comes round within one.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// A foreman that polls its target only hourly, so what it knows of the target's models
/// comes from its own requests, not from a poll.
pub(crate) fn hourly() -> TestAppBuilder {
    TestApp::builder().configure(|c| c.poll_interval = HOUR)
}

/// A call running in the background, as [`TestApp::spawn_post`] starts it.
pub(crate) type Pending = tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>;

/// Awaits every call, each answered 200 and read to its end, then checks that the target
/// received them all and never ran two generations at once.
pub(crate) async fn assert_all_ran_one_at_a_time(app: &TestApp, calls: Vec<Pending>) {
    let n = calls.len();
    for call in calls {
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    assert_eq!(app.ollama.generation_requests().len(), n);
    assert_eq!(app.ollama.max_concurrent_generations(), 1);
}

/// A foreman whose target fails every generation with `status` and `{"error": error}`.
pub(crate) async fn failing_target(status: u16, error: &str) -> TestApp {
    let app = TestApp::spawn().await;
    app.ollama
        .fail_generations(status, serde_json::json!({ "error": error }));
    app
}

/// A foreman in front of a fake that answers `reply`, streamed in `n` chunks.
pub(crate) async fn replying(reply: &str, n: usize) -> TestApp {
    TestApp::builder()
        .ollama(FakeOllama::builder().reply(reply).chunks(n).start().await)
        .spawn()
        .await
}

/// A foreman whose target holds each generation for a second and is already running a
/// first async job (prompt `running`, returned): what comes next queues behind it, until
/// the test sets the delay to zero.
pub(crate) async fn busy() -> (TestApp, JobId) {
    let app = TestApp::with_generation_delay(Duration::from_millis(1000)).await;
    let first = app.client.submit(chat_job("llama3.2", "running")).await;
    app.ollama.wait_for_generations(1, DEADLINE).await;
    (app, first.expect("the first job is accepted"))
}

/// A foreman whose queue is full: its target holds a first job for 30 s, and
/// `max_queue` more wait behind it.
pub(crate) async fn full_queue(max_queue: u64) -> TestApp {
    let app = TestApp::builder()
        .generation_delay(Duration::from_secs(30))
        .configure(move |c| c.max_queue = max_queue)
        .spawn()
        .await;
    app.client
        .submit(chat_job("llama3.2", "running"))
        .await
        .unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    for i in 0..max_queue {
        let queued = app
            .client
            .submit(chat_job("llama3.2", &format!("queued {i}")));
        queued.await.expect("there is room in the queue");
    }
    app
}

/// An async job: a chat of one user message.
pub(crate) fn chat_job(model: &str, prompt: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new(model, vec![ChatMessage::user(prompt)]))
}

/// A chat request body.
pub(crate) fn chat_body(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "stream": stream
    })
}
