//! The fake's OpenAI-compatible `/v1` routes, checked against the shapes Ollama serves.

use std::time::Duration;

use foreman_testkit::bodies::{joined, openai_chunks, sse_data};
use foreman_testkit::FakeOllama;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{post, post_answer};

fn chat_completion(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": stream,
    })
}

#[tokio::test]
async fn chat_completions_answer_one_chat_completion_by_default() {
    let ollama = FakeOllama::builder().reply("Hi there").start().await;
    let mut request = chat_completion("llama3.2", false);
    request.as_object_mut().unwrap().remove("stream");

    let response = post(&ollama, "/v1/chat/completions", request.clone()).await;

    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert!(answer["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(answer["model"], "llama3.2");
    assert_eq!(answer["system_fingerprint"], "fp_ollama");
    assert!(answer["created"].is_u64());
    assert_eq!(
        answer["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}])
    );
    let usage = &answer["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(ollama.generation_requests(), vec![request]);
    assert_eq!(ollama.resident().as_deref(), Some("llama3.2:latest"));
}

#[tokio::test]
async fn streamed_chat_completions_are_chunks_then_done() {
    let ollama = FakeOllama::builder()
        .reply("Hello, world")
        .chunks(3)
        .start()
        .await;

    let response = post(
        &ollama,
        "/v1/chat/completions",
        chat_completion("llama3.2", true),
    )
    .await;

    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let chunks = openai_chunks(&body);
    assert_eq!(chunks.len(), 4, "3 pieces, the end, then [DONE]: {body:?}");
    assert_eq!(joined(&chunks, "/choices/0/delta/content"), "Hello, world");
    for chunk in &chunks[..3] {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
    }
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn include_usage_adds_a_usage_chunk_before_done() {
    let ollama = FakeOllama::start().await;
    let mut request = chat_completion("llama3.2", true);
    request["stream_options"] = json!({"include_usage": true});

    let body = post(&ollama, "/v1/chat/completions", request)
        .await
        .text()
        .await
        .unwrap();

    let data = sse_data(&body);
    let usage: Value = serde_json::from_str(data[data.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn completions_answer_text_completions_streamed_or_not() {
    let ollama = FakeOllama::builder().reply("Hi there").start().await;
    let request = json!({"model": "qwen2.5:0.5b", "prompt": "Say hello"});

    let answer = post_answer(&ollama, "/v1/completions", request, 200).await;
    assert_eq!(answer["object"], "text_completion");
    assert!(answer["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(
        answer["choices"],
        json!([{"text": "Hi there", "index": 0, "finish_reason": "stop"}])
    );

    let streamed = post(
        &ollama,
        "/v1/completions",
        json!({"model": "qwen2.5:0.5b", "prompt": "Say hello", "stream": true}),
    )
    .await;
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let body = streamed.text().await.unwrap();
    let chunks = openai_chunks(&body);
    assert_eq!(joined(&chunks, "/choices/0/text"), "Hi there");
}

#[tokio::test]
async fn embeddings_answer_one_embedding_per_input() {
    let ollama = FakeOllama::start().await;

    let request = json!({"model": "nomic-embed-text", "input": ["a", "b"]});

    let answer = post_answer(&ollama, "/v1/embeddings", request, 200).await;

    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "nomic-embed-text");
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(ollama.generation_requests().is_empty(), "not a generation");
}

#[tokio::test]
async fn models_list_and_retrieve_in_openai_shape() {
    let ollama = FakeOllama::builder()
        .model("llama3.2")
        .model("hf.co/org/model:Q4_K_M")
        .start()
        .await;
    let get = |path: &'static str| {
        let url = format!("{}{path}", ollama.url());
        async move { reqwest::get(url).await.unwrap() }
    };

    let list: Value = get("/v1/models").await.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = foreman_testkit::bodies::strings(&list["data"], "id");
    assert_eq!(ids, ["llama3.2:latest", "hf.co/org/model:Q4_K_M"]);
    assert_eq!(list["data"][0]["owned_by"], "library");
    assert_eq!(list["data"][1]["owned_by"], "org");

    let one: Value = get("/v1/models/hf.co/org/model:Q4_K_M")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "hf.co/org/model:Q4_K_M");
    assert_eq!(one["object"], "model");
    let missing = get("/v1/models/nope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn errors_take_openai_shape() {
    let ollama = FakeOllama::start().await;

    let unknown = chat_completion("nope", false);
    let body = post_answer(&ollama, "/v1/chat/completions", unknown, 404).await;
    assert_eq!(
        body,
        json!({"error": {"message": "model \"nope\" not found, try pulling it first",
                         "type": "not_found_error", "param": null, "code": null}})
    );

    ollama.fail_next_generations(1, 500, json!({"error": "boom"}));
    let failed = json!({"model": "llama3.2", "prompt": "x"});
    let body = post_answer(&ollama, "/v1/completions", failed, 500).await;
    assert_eq!(body["error"]["message"], "boom");
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn openai_generations_count_toward_concurrency() {
    let ollama = FakeOllama::builder()
        .generation_delay(Duration::from_millis(50))
        .start()
        .await;
    let calls = (0..2).map(|_| {
        post(
            &ollama,
            "/v1/chat/completions",
            chat_completion("llama3.2", false),
        )
    });
    futures::future::join_all(calls).await;
    assert_eq!(ollama.max_concurrent_generations(), 2);
}
