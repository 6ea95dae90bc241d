//! The fake's `/v1/messages` (Anthropic) and `/v1/responses` (OpenAI Responses).

use foreman_testkit::FakeOllama;
use serde_json::{json, Value};

use crate::{named_events, post, post_answer};

fn message(model: &str, stream: bool) -> Value {
    json!({
        "model": model, "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}],
    })
}

#[tokio::test]
async fn a_message_is_one_anthropic_message_and_a_stream_is_named_events() {
    let ollama = FakeOllama::builder()
        .reply("Hi there")
        .chunks(2)
        .start()
        .await;

    let whole = post_answer(&ollama, "/v1/messages", message("llama3.2", false), 200).await;
    assert_eq!(whole["type"], "message");
    assert_eq!(whole["role"], "assistant");
    assert_eq!(
        whole["content"],
        json!([{"type": "text", "text": "Hi there"}])
    );
    assert_eq!(whole["stop_reason"], "end_turn");
    assert!(whole["usage"]["input_tokens"].is_u64());

    let response = post(&ollama, "/v1/messages", message("llama3.2", true)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = named_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hi there");
    assert_eq!(ollama.generation_requests().len(), 2);
    assert_eq!(ollama.resident().as_deref(), Some("llama3.2:latest"));
}

#[tokio::test]
async fn message_errors_are_anthropic_shaped() {
    let ollama = FakeOllama::start().await;

    let body = post_answer(&ollama, "/v1/messages", message("nope", false), 404).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    let no_tokens = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]});
    let no_tokens = post_answer(&ollama, "/v1/messages", no_tokens, 400).await;
    assert_eq!(no_tokens["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn a_response_is_one_response_object_and_a_stream_is_numbered_events() {
    let ollama = FakeOllama::builder()
        .reply("Hi there")
        .chunks(2)
        .start()
        .await;
    let request = json!({"model": "llama3.2", "input": "Say hello"});

    let whole = post_answer(&ollama, "/v1/responses", request.clone(), 200).await;
    assert_eq!(whole["object"], "response");
    assert_eq!(whole["status"], "completed");
    assert_eq!(whole["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(whole["output"][0]["content"][0]["text"], "Hi there");
    assert!(whole["usage"]["total_tokens"].is_u64());

    let mut streamed = request;
    streamed["stream"] = json!(true);
    let response = post(&ollama, "/v1/responses", streamed).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = named_events(&response.text().await.unwrap());
    assert_eq!(events[0].0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hi there");

    let unknown = json!({"model": "nope", "input": "x"});
    let unknown = post_answer(&ollama, "/v1/responses", unknown, 404).await;
    assert!(unknown["error"]["message"].is_string());
}
