//! Target faults: down before a generation, a stall mid-stream, garbage, a 500.
//! (Down during a stream is in `streaming.rs`.)

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use foreman_sim::SimHandle;
use foreman_testkit::json_answer;
use foreman_testkit::wait::wait_until;
use foreman_testkit::{FakeOllama, TestApp};
use futures::StreamExt;
use serde_json::Value;

use crate::manual_target::manual_target_with;
use crate::{chat_body, DEADLINE};

/// Submits an async chat job; its id.
pub(crate) async fn submit(app: &TestApp, body: &Value) -> String {
    let response = app.post("/jobs", body).await;
    let accepted = json_answer(response, 202).await;
    accepted["job_id"].as_str().unwrap().to_owned()
}

/// Waits until the job is terminal; the job as JSON.
pub(crate) async fn terminal(app: &TestApp, id: &str) -> Value {
    let path = format!("/jobs/{id}");
    let ended = wait_until(DEADLINE, || async {
        let job = app.get_json(&path).await;
        matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled"))
    })
    .await;
    let job = app.get_json(&path).await;
    assert!(ended, "job {id} did not end: {job}");
    job
}

async fn degraded(app: &TestApp) -> bool {
    app.get_json("/healthz").await["degraded"] == true
}

#[tokio::test]
async fn a_job_submitted_while_the_target_is_down_waits_without_spending_attempts_and_runs_after() {
    let app = TestApp::with_config(|c| c.max_attempts = 1).await;
    app.ollama.stop().await;
    assert!(wait_until(DEADLINE, || degraded(&app)).await);
    let id = submit(&app, &chat_body("llama3.2", false)).await;
    // Several poll intervals pass with the target down: the job must stay queued even
    // with a single attempt allowed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let job = app.get_json(&format!("/jobs/{id}")).await;
    assert_eq!(job["state"], "queued", "{job}");
    app.ollama.restart().await;
    let job = terminal(&app, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert!(wait_until(DEADLINE, || async { !degraded(&app).await }).await);
}

#[tokio::test]
async fn a_sync_caller_waits_out_a_target_outage() {
    let app = TestApp::spawn().await;
    app.ollama.stop().await;
    assert!(wait_until(DEADLINE, || degraded(&app)).await);
    let pending = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "the caller keeps waiting");
    app.ollama.restart().await;
    let response = tokio::time::timeout(DEADLINE, pending)
        .await
        .expect("answered once the target is back")
        .unwrap()
        .unwrap();
    let answer = json_answer(response, 200).await;
    assert!(answer["message"]["content"].is_string(), "{answer}");
}

/// A simulated Ollama whose tokens the test releases, and a foreman in front of it that
/// gives up on a stream silent for 300 ms.
async fn stalling_app(max_attempts: u32) -> (SimHandle, TestApp) {
    manual_target_with(move |c| {
        c.stall_timeout = Duration::from_millis(300);
        c.max_attempts = max_attempts;
    })
    .await
}

#[tokio::test]
async fn a_stream_that_stalls_mid_way_ends_with_an_error_line_after_the_stall_timeout() {
    let (sim, app) = stalling_app(3).await;
    let pending = app.spawn_post("/api/chat", chat_body("llama3.2", true));
    let generation = sim.next_generation(DEADLINE).await.expect("a generation");
    generation.token("The");
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(DEADLINE, async {
        let mut all = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            all.extend_from_slice(&chunk);
        }
        all
    })
    .await
    .expect("the stream ends instead of hanging");
    let text = String::from_utf8(body).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let error = last["error"].as_str().expect("an error line");
    assert!(error.contains("FOREMAN_STALL_TIMEOUT"), "{error}");
    // The upstream request is dropped, so the target stops generating for nobody.
    tokio::time::timeout(DEADLINE, generation.hung_up())
        .await
        .expect("the stalled request is closed");
    let jobs = app.jobs_json("").await;
    assert_eq!(jobs[0]["state"], "failed", "{jobs:?}");
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
}

#[tokio::test]
async fn an_async_job_whose_target_stalls_is_retried_then_fails_with_the_stall_as_reason() {
    let (sim, app) = stalling_app(2).await;
    let id = submit(&app, &chat_body("llama3.2", false)).await;
    // Two attempts, each answered with one chunk and then silence (held, not cut).
    let mut held = Vec::new();
    for _ in 0..2 {
        let generation = sim.next_generation(DEADLINE).await.expect("an attempt");
        generation.token("The");
        held.push(generation);
    }
    let job = terminal(&app, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("sent nothing"),
        "{job}"
    );
}

/// A target whose tags and ps are a fake Ollama's, but whose generations answer 200
/// with text that is not JSON.
async fn garbage_target() -> (String, FakeOllama) {
    let fake = FakeOllama::builder().resident("llama3.2").start().await;
    let tags: Value = reqwest::get(format!("{}/api/tags", fake.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ps: Value = reqwest::get(format!("{}/api/ps", fake.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let garbage = || async {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>proxy error: upstream is a teapot</html>",
        )
    };
    let app = axum::Router::new()
        .route("/api/tags", get(move || async move { axum::Json(tags) }))
        .route("/api/ps", get(move || async move { axum::Json(ps) }))
        .route("/api/chat", post(garbage))
        .route("/api/generate", post(garbage));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

#[tokio::test]
async fn garbage_from_the_target_reaches_a_sync_caller_as_sent_and_fails_an_async_job() {
    let (url, _fake) = garbage_target().await;
    let app = TestApp::with_config(move |c| c.target_url = url.parse().unwrap()).await;
    for stream in [false, true] {
        let response = app.post("/api/chat", &chat_body("llama3.2", stream)).await;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let text = response.text().await.unwrap();
        assert!(text.contains("teapot"), "stream {stream}: {text}");
    }
    let id = submit(&app, &chat_body("llama3.2", false)).await;
    let job = terminal(&app, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("not JSON"), "{error}");
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
}

#[tokio::test]
async fn a_500_from_the_target_fails_the_job_at_once_and_is_passed_on() {
    let app = crate::failing_target(500, "CUDA error: out of memory").await;
    let response = app.post("/api/chat", &chat_body("llama3.2", false)).await;
    let body = json_answer(response, 500).await;
    assert_eq!(body["error"], "CUDA error: out of memory");

    let id = submit(&app, &chat_body("llama3.2", false)).await;
    let job = terminal(&app, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 1, "an HTTP error is not retried: {job}");
    assert!(job["error"].as_str().unwrap().contains("out of memory"));
}
