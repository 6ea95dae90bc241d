//! Priorities: strict levels, sync requests above async jobs by default, a bounded range.

use std::time::Duration;

use foreman_client::JobState;
use foreman_testkit::wait::wait_until;
use foreman_testkit::TestApp;
use serde_json::{json, Value};

use crate::{busy, chat_job, DEADLINE};

/// The first message's content of every generation the target saw, in order.
fn prompts(app: &TestApp) -> Vec<String> {
    app.ollama.generation_strings("/messages/0/content")
}

#[tokio::test]
async fn a_sync_chat_runs_before_async_jobs_queued_ahead_of_it() {
    let (app, first) = busy().await;
    let mut batch = Vec::new();
    for i in 0..5 {
        let id = app
            .client
            .submit(chat_job("llama3.2", &format!("batch {i}")))
            .await
            .unwrap();
        batch.push(id);
    }
    // Another model too: priority outranks draining the resident model.
    let body = json!({
        "model": "qwen2.5:0.5b",
        "messages": [{"role": "user", "content": "interactive"}],
        "stream": false
    });
    let chat = app.spawn_post("/api/chat", body);
    let queued = wait_until(DEADLINE, || async {
        app.get_json("/queue").await["depth"].as_u64() == Some(6)
    })
    .await;
    assert!(queued, "the chat never joined the queue");
    let sync_job = app.jobs_json("state=queued&model=qwen2.5:0.5b").await;
    assert_eq!(sync_job[0]["priority"], 10);

    app.ollama.set_generation_delay(Duration::ZERO);
    let response = chat.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    for id in batch.iter().chain([&first]) {
        let done = app.client.wait(*id, DEADLINE).await.unwrap();
        assert_eq!(done.state, JobState::Done);
        assert_eq!(done.priority, 0);
    }
    assert_eq!(
        prompts(&app),
        [
            "running",
            "interactive",
            "batch 0",
            "batch 1",
            "batch 2",
            "batch 3",
            "batch 4"
        ]
    );
}

#[tokio::test]
async fn a_higher_priority_async_job_runs_before_lower_ones() {
    let (app, first) = busy().await;
    let mut ids = vec![first];
    for (prompt, priority) in [("low", Some(-5)), ("default", None), ("high", Some(50))] {
        let mut request = chat_job("llama3.2", prompt);
        request.priority = priority;
        ids.push(app.client.submit(request).await.unwrap());
    }
    app.ollama.set_generation_delay(Duration::ZERO);
    for id in &ids {
        app.client.wait(*id, DEADLINE).await.unwrap();
    }
    assert_eq!(prompts(&app), ["running", "high", "default", "low"]);
}

#[tokio::test]
async fn a_priority_outside_the_range_is_refused_with_400() {
    let app = TestApp::spawn().await;
    for priority in [101, -101, i32::MAX] {
        let body = json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "priority": priority
        });
        let response = app.post("/jobs", &body).await;
        assert_eq!(response.status(), 400, "priority {priority}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("-100 and 100"),
            "{error}"
        );
    }
    let edge = json!({
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "priority": 100
    });
    assert_eq!(app.post("/jobs", &edge).await.status(), 202);
    assert!(app.jobs_json("").await.len() == 1);
}
