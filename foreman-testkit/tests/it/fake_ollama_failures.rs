//! The fake's failure injection, stop/restart and concurrency observation.

use std::time::Duration;

use foreman_testkit::FakeOllama;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn chat_body() -> Value {
    json!({"model": "llama3.2", "stream": false,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn chat(client: &reqwest::Client, ollama: &FakeOllama) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/api/chat", ollama.url()))
        .json(&chat_body())
        .send()
        .await
}

#[tokio::test]
async fn injected_failures_answer_until_cleared() {
    let ollama = FakeOllama::start().await;
    let client = reqwest::Client::new();

    ollama.fail_generations(500, json!({"error": "CUDA out of memory"}));
    let first = chat(&client, &ollama).await.unwrap();
    let second = chat(&client, &ollama).await.unwrap();
    ollama.clear_failures();
    let third = chat(&client, &ollama).await.unwrap();

    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"error": "CUDA out of memory"})
    );
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(ollama.generation_requests().len(), 3);
}

#[tokio::test]
async fn counted_failures_run_out() {
    let ollama = FakeOllama::start().await;
    let client = reqwest::Client::new();

    ollama.fail_next_generations(1, 503, json!({"error": "busy"}));
    let first = chat(&client, &ollama).await.unwrap().status();
    let second = chat(&client, &ollama).await.unwrap().status();

    assert_eq!(first, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second, StatusCode::OK);
}

#[tokio::test]
async fn a_stopped_fake_refuses_connections_and_restarts_on_the_same_url() {
    let ollama = FakeOllama::builder().resident("llama3.2").start().await;
    let url = ollama.url();
    let client = reqwest::Client::new();
    chat(&client, &ollama).await.unwrap();

    ollama.stop().await;
    let while_down = reqwest::Client::new()
        .get(format!("{url}/api/tags"))
        .send()
        .await;
    ollama.restart().await;
    let after = reqwest::Client::new()
        .get(format!("{url}/api/ps"))
        .send()
        .await
        .unwrap();

    let err = while_down.expect_err("a stopped fake refuses connections");
    assert!(err.is_connect(), "expected a connection error, got {err:?}");
    assert_eq!(ollama.url(), url);
    assert!(ollama.is_running().await);
    assert_eq!(after.status(), StatusCode::OK);
    let ps: Value = after.json().await.unwrap();
    assert_eq!(
        ps["models"][0]["name"], "llama3.2:latest",
        "state survives a restart"
    );
    assert_eq!(ollama.generation_requests().len(), 1);
    assert_eq!(ollama.requests_to("/api/ps"), 1);
}

#[tokio::test]
async fn stop_cuts_a_generation_in_flight() {
    let ollama = FakeOllama::builder()
        .generation_delay(Duration::from_secs(30))
        .start()
        .await;
    let client = reqwest::Client::new();
    let request = tokio::spawn({
        let ollama = ollama.clone();
        async move { chat(&client, &ollama).await }
    });
    ollama.wait_for_generations(1, Duration::from_secs(5)).await;

    ollama.stop().await;
    let result = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("the request ends when the fake stops")
        .unwrap();

    assert!(
        result.is_err(),
        "the caller sees the connection go: {result:?}"
    );
}

#[tokio::test]
async fn serial_generations_never_overlap() {
    let ollama = FakeOllama::builder()
        .generation_delay(Duration::from_millis(40))
        .start()
        .await;
    let client = reqwest::Client::new();

    for _ in 0..3 {
        let response = chat(&client, &ollama).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    assert_eq!(ollama.max_concurrent_generations(), 1);
}

#[tokio::test]
async fn parallel_generations_overlap() {
    let ollama = FakeOllama::start().await;
    ollama.set_generation_delay(Duration::from_millis(300));
    let client = reqwest::Client::new();

    let calls = (0..3).map(|_| chat(&client, &ollama));
    let responses = futures::future::join_all(calls).await;

    for response in responses {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    assert!(ollama.max_concurrent_generations() > 1);
}

#[tokio::test]
async fn max_concurrent_generations_is_zero_before_any() {
    let ollama = FakeOllama::start().await;

    assert_eq!(ollama.max_concurrent_generations(), 0);
}

#[tokio::test]
async fn wait_for_generations_returns_once_they_arrived() {
    let ollama = FakeOllama::start().await;
    let client = reqwest::Client::new();
    let sender = tokio::spawn({
        let ollama = ollama.clone();
        async move {
            for _ in 0..2 {
                chat(&client, &ollama).await.unwrap();
            }
        }
    });

    let bodies = ollama.wait_for_generations(2, Duration::from_secs(5)).await;

    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["model"], "llama3.2");
    sender.await.unwrap();
}

#[tokio::test]
#[should_panic(expected = "for 1 generation requests, got 0")]
async fn wait_for_generations_panics_after_its_deadline() {
    let ollama = FakeOllama::start().await;

    ollama
        .wait_for_generations(1, Duration::from_millis(20))
        .await;
}
