//! One generation at a time, drain by model, retries.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, JobState, SubmitRequest};
use foreman_sim::SimHandle;
use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use serde_json::Value;

use crate::{chat_body, DEADLINE};

fn job(model: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new(model, vec![ChatMessage::user("hello")]))
}

#[tokio::test]
async fn concurrent_chats_never_overlap_on_the_target() {
    let app = TestApp::with_generation_delay(Duration::from_millis(40)).await;
    let calls = (0..6)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/api/chat"
            } else {
                "/api/generate"
            };
            let body = serde_json::json!({
                "model": "llama3.2", "prompt": "p", "messages": [], "stream": i % 3 == 0
            });
            app.spawn_post(path, body)
        })
        .collect();
    crate::assert_all_ran_one_at_a_time(&app, calls).await;
}

#[tokio::test]
async fn queued_jobs_drain_by_model_before_swapping() {
    // Hold the worker on a first job so the rest queue up behind it.
    let app = TestApp::with_generation_delay(Duration::from_millis(1000)).await;
    let first = app.client.submit(job("llama3.2")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let mut ids = Vec::new();
    for model in ["qwen2.5:0.5b", "llama3.2", "qwen2.5:0.5b", "llama3.2"] {
        ids.push(app.client.submit(job(model)).await.unwrap());
    }
    app.ollama.set_generation_delay(Duration::ZERO);
    for id in ids.iter().chain([&first]) {
        let done = app.client.wait(*id, DEADLINE).await.unwrap();
        assert_eq!(done.state, JobState::Done);
    }
    let order: Vec<String> = app.ollama.generation_strings("/model");
    // llama3.2 was loaded, so its queued jobs go first, then qwen's.
    assert_eq!(
        order,
        [
            "llama3.2",
            "llama3.2",
            "llama3.2",
            "qwen2.5:0.5b",
            "qwen2.5:0.5b"
        ]
    );
    let queue: Value = app.get_json("/queue").await;
    assert_eq!(queue["model_swaps"], 1);
}

#[tokio::test]
async fn with_a_zero_affinity_window_jobs_run_in_submission_order() {
    let app = TestApp::builder()
        .generation_delay(Duration::from_millis(1000))
        .configure(|c| c.affinity_window = Duration::ZERO)
        .spawn()
        .await;
    let first = app.client.submit(job("llama3.2")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let mut ids = vec![first];
    for model in ["qwen2.5:0.5b", "llama3.2", "qwen2.5:0.5b"] {
        ids.push(app.client.submit(job(model)).await.unwrap());
    }
    app.ollama.set_generation_delay(Duration::ZERO);
    for id in &ids {
        app.client.wait(*id, DEADLINE).await.unwrap();
    }
    let order: Vec<String> = app.ollama.generation_strings("/model");
    assert_eq!(
        order,
        ["llama3.2", "qwen2.5:0.5b", "llama3.2", "qwen2.5:0.5b"]
    );
}

/// A target that answers its polls but whose generations the test cuts off before the
/// first byte: connection errors while the target looks up, which spend attempts.
async fn app_with_a_failing_target(max_attempts: u32) -> (SimHandle, TestApp) {
    crate::manual_target::manual_target_with(move |c| c.max_attempts = max_attempts).await
}

/// Cuts the next `attempts` generations off before their first byte.
async fn cut(sim: &SimHandle, attempts: usize) {
    for attempt in 1..=attempts {
        let generation = sim.next_generation(DEADLINE).await;
        generation
            .unwrap_or_else(|| panic!("attempt {attempt} reached the target"))
            .cut();
    }
}

#[tokio::test]
async fn connection_errors_are_retried_up_to_max_attempts_then_fail() {
    let (sim, app) = app_with_a_failing_target(3).await;
    let id = app.client.submit(job("llama3.2")).await.unwrap();
    cut(&sim, 3).await;
    let failed = app.client.wait(id, DEADLINE).await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.attempts, 3);
    assert!(failed.error.unwrap().contains("gave up after 3 attempts"));
}

#[tokio::test]
async fn a_sync_caller_hears_502_when_attempts_run_out() {
    let (sim, app) = app_with_a_failing_target(2).await;
    let pending = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    cut(&sim, 2).await;
    let response = pending.await.unwrap().unwrap();
    let body = json_answer(response, 502).await;
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("cannot reach the target"));
}

/// Waits until foreman reports the target unreachable.
async fn wait_degraded(app: &TestApp) {
    let degraded = foreman_testkit::wait::wait_until(DEADLINE, || async {
        app.get_json("/healthz").await["degraded"] == true
    })
    .await;
    assert!(degraded, "foreman noticed the target is down");
}

#[tokio::test]
async fn a_job_queued_while_the_target_is_down_spends_no_attempts_and_runs_when_it_returns() {
    let app = TestApp::with_config(|c| c.max_attempts = 2).await;
    app.ollama.stop().await;
    let id = app.client.submit(job("llama3.2")).await.unwrap();
    wait_degraded(&app).await;
    // The poller may notice the target gone before the run that found it so has put the
    // job back in the queue: wait for the job to be back.
    let back = foreman_testkit::wait::wait_until(DEADLINE, || async {
        app.client.job(id).await.unwrap().state == JobState::Queued
    })
    .await;
    assert!(back, "the job went back to the queue");
    // However long the outage, at most the one attempt that found the target gone.
    let waiting = app.client.job(id).await.unwrap();
    assert!(
        waiting.attempts <= 1,
        "{} attempts spent while down",
        waiting.attempts
    );
    app.ollama.restart().await;
    let done = app.client.wait(id, DEADLINE).await.unwrap();
    assert_eq!(done.state, JobState::Done);
    assert!(done.attempts <= 2);
}

#[tokio::test]
async fn a_sync_caller_waits_through_a_target_outage() {
    let app = TestApp::with_config(|c| c.max_attempts = 2).await;
    app.ollama.stop().await;
    let call = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    wait_degraded(&app).await;
    let queued = foreman_testkit::wait::wait_until(DEADLINE, || async {
        app.jobs_json("state=queued").await.len() == 1
    })
    .await;
    assert!(queued, "the caller's job waits in the queue");
    app.ollama.restart().await;
    let response = call.await.unwrap().unwrap();
    let body = json_answer(response, 200).await;
    assert_eq!(body["message"]["content"], app.ollama.reply());
}

#[tokio::test]
async fn a_full_queue_answers_503_with_ollamas_message() {
    let app = crate::full_queue(2).await;
    let response = app.post("/jobs", &chat_body("llama3.2", false)).await;
    let body = json_answer(response, 503).await;
    assert!(body["error"].as_str().unwrap().starts_with("server busy"));
}

/// Into an empty queue, a chat's run starts before its row is committed (ADR 30). The row
/// is there while the target is still generating, and the end, the usage and the answer
/// are recorded as for any other job; the id its answer names can be looked up at once.
/// The second chat surely takes that path: the first one's end left the queue empty.
#[tokio::test]
async fn a_chat_into_an_empty_queue_is_recorded_while_it_runs_and_when_it_ends() {
    let (sim, app) = crate::manual_target::manual_target().await;
    for prompt in ["first", "second"] {
        let body = serde_json::json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": prompt}],
            "stream": false
        });
        let pending = app.spawn_post("/api/chat", body);
        let generation = crate::manual_target::next_generation(&sim).await;
        generation.token(prompt);
        let running = crate::manual_target::newest_job(&app, |job| {
            job["state"] == "working" && job["kind"] == "chat"
        })
        .await;
        assert!(
            running,
            "the {prompt} chat's row while its target generates"
        );
        assert!(
            !pending.is_finished(),
            "the {prompt} chat answered before its end"
        );
        generation.finish();
        let response = pending.await.unwrap().unwrap();
        let id = response.headers()["x-foreman-job-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let answer = json_answer(response, 200).await;
        // Its id is known to foreman from the answer on, committed or not.
        assert_eq!(app.get(&format!("/jobs/{id}")).await.status(), 200);
        assert!(
            answer["message"]["content"]
                .as_str()
                .unwrap()
                .contains(prompt),
            "{answer}"
        );
    }
    let jobs = app.jobs_json("").await;
    let states: Vec<&Value> = jobs.iter().map(|job| &job["state"]).collect();
    assert_eq!(states, ["done", "done"], "{jobs:?}");
    let tokens: Vec<&Value> = jobs.iter().map(|job| &job["output_tokens"]).collect();
    assert_eq!(
        tokens,
        [1, 1],
        "the usage of each chat, on its job: {jobs:?}"
    );
}
