//! The OpenAI-compatible `/v1` routes: the same GPU, server-sent events, OpenAI's shapes.

use serde_json::{json, Value};

use super::{small, TestSim, DEADLINE};
use crate::SimConfig;

fn chat_completion(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{ "role": "user", "content": "Why is the sky blue?" }],
        "stream": stream,
    })
}

/// The `data:` payloads of a server-sent event stream, read as they arrive.
async fn events(response: reqwest::Response) -> Vec<String> {
    let body = tokio::time::timeout(DEADLINE, response.text())
        .await
        .expect("the stream ends before the deadline")
        .expect("the body reads");
    assert!(
        body.ends_with("\n\n"),
        "events end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("an event is one data line: {event:?}"))
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn chat_completions_stream_server_sent_events_ending_with_done() {
    let sim = TestSim::start(small()).await;
    let response = sim
        .post("/v1/chat/completions", chat_completion("llama3.2", true))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(response).await;

    let (done, chunks) = events.split_last().expect("events");
    assert_eq!(done, "[DONE]");
    let chunks: Vec<Value> = chunks
        .iter()
        .map(|c| serde_json::from_str(c).expect("JSON"))
        .collect();
    let (last, tokens) = chunks.split_last().expect("chunks");
    assert_eq!(tokens.len(), 5, "one event per token: {chunks:?}");
    let content: String = tokens
        .iter()
        .map(|chunk| {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], "llama3.2");
            assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .expect("content")
                .to_owned()
        })
        .collect();
    assert_eq!(content, "Simulated answer from llama3.2 to:");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let stats = sim.stats();
    assert_eq!((stats.generations, stats.tokens), (1, 5), "{stats:?}");
}

#[tokio::test]
async fn chat_completions_without_streaming_answer_one_object_with_usage() {
    let sim = TestSim::start(small()).await;
    let answer = sim
        .answer(
            "/v1/chat/completions",
            chat_completion("llama3.2", false),
            200,
        )
        .await;
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Simulated answer from llama3.2 to:"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["completion_tokens"], 5);
    let total = answer["usage"]["total_tokens"].as_u64().expect("a count");
    assert!(total > 5, "{answer}");
}

#[tokio::test]
async fn completions_stream_text_and_stop_at_max_tokens() {
    let sim = TestSim::start(small()).await;
    let request = json!({
        "model": "llama3.2", "prompt": "Hello", "stream": true, "max_tokens": 2,
        "stream_options": { "include_usage": true },
    });
    let response = sim.post("/v1/completions", request).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(response).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|c| serde_json::from_str(c).expect("JSON"))
        .collect();
    // Two tokens, the end, and the usage chunk.
    assert_eq!(chunks.len(), 4, "{chunks:?}");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(chunks[0]["choices"][0]["text"], "Simulated");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[3]["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn openai_and_native_generations_share_the_gpu() {
    let config = SimConfig {
        reply_tokens: 100_000,
        ..small()
    };
    let sim = TestSim::start(config).await;
    let long = sim
        .post("/api/chat", super::chat("llama3.2", "first"))
        .await;
    assert_eq!(long.status(), 200);
    let mut request = chat_completion("llama3.2", false);
    request["max_tokens"] = json!(1);
    let second = sim.post_json("/v1/chat/completions", request);
    let (waiting, (status, _)) = sim.behind(long, second).await;
    assert_eq!(waiting.generations, 1, "it waits for the GPU: {waiting:?}");
    assert_eq!(status, 200);
    assert_eq!(sim.stats().generations, 2);
}

#[tokio::test]
async fn embeddings_and_models_answer_in_openai_shapes() {
    let sim = TestSim::start(small()).await;
    let request = json!({ "model": "nomic-embed-text", "input": ["a", "b"] });
    let answer = sim.answer("/v1/embeddings", request, 200).await;
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(
        answer["data"][0]["embedding"].as_array().map(Vec::len),
        Some(8)
    );

    let models = sim.get_json("/v1/models").await;
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("an id"))
        .collect();
    assert!(ids.contains(&"llama3.2:latest"), "{ids:?}");
    let one = sim.get_json("/v1/models/qwen2.5:0.5b").await;
    assert_eq!(one["owned_by"], "library");
    assert!(one["created"].as_i64().expect("seconds") > 1_600_000_000);
}

#[tokio::test]
async fn an_unknown_model_is_an_openai_shaped_404() {
    let sim = TestSim::start(small()).await;
    let answer = sim
        .answer("/v1/chat/completions", chat_completion("nope", false), 404)
        .await;
    assert_eq!(
        answer["error"]["message"],
        "model \"nope\" not found, try pulling it first"
    );
    assert_eq!(answer["error"]["type"], "not_found_error");
    assert_eq!(sim.stats().generations, 0);
}
