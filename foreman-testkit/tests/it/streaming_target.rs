use std::time::Duration;

use foreman_testkit::StreamingTarget;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(5);

async fn start_chat(target: &StreamingTarget) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/chat", target.url()))
        .json(&json!({"model": target.model(), "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

/// The next body chunk, as JSON (one line per chunk, since each push is one write).
async fn next_line(response: &mut reqwest::Response) -> Option<Value> {
    let chunk = tokio::time::timeout(DEADLINE, response.chunk())
        .await
        .expect("a chunk within the deadline")
        .unwrap()?;
    Some(serde_json::from_slice(&chunk).unwrap())
}

#[tokio::test]
async fn tags_and_ps_show_the_configured_model() {
    let target = StreamingTarget::with_model("qwen2.5:0.5b").await;

    let tags: Value = reqwest::get(format!("{}/api/tags", target.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ps: Value = reqwest::get(format!("{}/api/ps", target.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(tags["models"][0]["name"], "qwen2.5:0.5b");
    assert_eq!(ps["models"][0]["name"], "qwen2.5:0.5b");
}

#[tokio::test]
async fn chunks_are_released_one_at_a_time() {
    let target = StreamingTarget::start().await;

    let mut response = start_chat(&target).await;
    let request = target.next_request(DEADLINE).await.expect("the request");
    target.push_chunk(target.chat_chunk("Hel"));
    let first = next_line(&mut response).await;
    target.push_chunk(target.chat_chunk("lo"));
    let second = next_line(&mut response).await;
    target.push_chunk(target.done_chunk());
    target.finish();
    let last = next_line(&mut response).await;
    let end = next_line(&mut response).await;

    assert_eq!(request["messages"][0]["content"], "hi");
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(first.unwrap()["message"]["content"], "Hel");
    assert_eq!(second.unwrap()["message"]["content"], "lo");
    assert_eq!(last.unwrap()["done"], true);
    assert!(end.is_none(), "the stream ends after finish");
    assert_eq!(target.dropped_connections(), 0);
}

#[tokio::test]
async fn each_request_gets_a_fresh_stream_and_early_pushes_wait_for_it() {
    let target = StreamingTarget::start().await;
    target.push_chunk(json!({"n": 1}));
    target.finish();
    target.push_chunk(json!({"n": 2}));
    target.finish();

    let first = start_chat(&target).await.text().await.unwrap();
    let second = start_chat(&target).await.text().await.unwrap();

    assert_eq!(first, "{\"n\":1}\n");
    assert_eq!(second, "{\"n\":2}\n");
    assert!(target.next_request(DEADLINE).await.is_some());
    assert!(target.next_request(DEADLINE).await.is_some());
}

#[tokio::test]
async fn a_client_hanging_up_mid_stream_is_noticed() {
    let target = StreamingTarget::start().await;
    let mut response = start_chat(&target).await;
    target.next_request(DEADLINE).await.expect("the request");
    target.push_chunk(target.chat_chunk("Hel"));
    next_line(&mut response).await.expect("the first chunk");

    drop(response);
    let noticed = tokio::time::timeout(DEADLINE, target.connection_dropped()).await;

    assert!(noticed.is_ok(), "the hang-up was not noticed");
    assert_eq!(target.dropped_connections(), 1);
}

#[tokio::test]
async fn a_finished_stream_is_not_a_hang_up() {
    let target = StreamingTarget::start().await;
    target.push_chunk(target.done_chunk());
    target.finish();

    let body = start_chat(&target).await.text().await.unwrap();

    assert!(body.contains("\"done\":true"));
    assert_eq!(target.dropped_connections(), 0);
}
