//! Chat and generate: timing, streaming, the GPU, shutdown.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{chat, nanos, small, LineReader, TestSim, DEADLINE};
use crate::generate::answer_tokens;
use crate::SimConfig;
#[tokio::test]
async fn chat_streams_one_token_per_line_while_it_generates() {
    let config = SimConfig {
        tokens_per_second: 50.0,
        ..small()
    };
    let sim = TestSim::start(config).await;
    let started = Instant::now();

    let response = sim
        .post("/api/chat", chat("llama3.2", "Why is the sky blue?"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut lines = LineReader::new(response);
    let first = lines.next().await.expect("a first chunk");
    let at_first_chunk = sim.stats();
    let mut chunks = vec![first];
    chunks.extend(lines.rest().await);
    let elapsed = started.elapsed();

    assert!(
        at_first_chunk.tokens < 5 && at_first_chunk.in_flight == 1,
        "the first chunk arrived only after the whole answer was produced: {at_first_chunk:?}"
    );
    let (last, tokens) = chunks.split_last().expect("chunks");
    assert_eq!(tokens.len(), 5, "one line per token: {chunks:?}");
    let mut content = String::new();
    for token in tokens {
        assert_eq!(token["model"], "llama3.2", "the model as requested");
        assert_eq!(token["done"], false);
        assert_eq!(token["message"]["role"], "assistant");
        assert!(token["created_at"].is_string());
        content.push_str(token["message"]["content"].as_str().expect("content"));
    }
    assert_eq!(content, "Simulated answer from llama3.2 to:");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["eval_count"], 5);
    assert!(last["prompt_eval_count"].as_u64().expect("a count") > 0);
    let load = nanos(&last["load_duration"]);
    let prompt_eval = nanos(&last["prompt_eval_duration"]);
    let eval = nanos(&last["eval_duration"]);
    assert!(load >= Duration::from_millis(30), "{load:?}");
    assert!(prompt_eval >= Duration::from_millis(5), "{prompt_eval:?}");
    assert!(
        eval >= Duration::from_millis(100),
        "5 tokens at 50/s: {eval:?}"
    );
    assert!(nanos(&last["total_duration"]) >= load + prompt_eval + eval);
    assert!(elapsed >= Duration::from_millis(135), "{elapsed:?}");
    let stats = sim.stats();
    assert_eq!((stats.loads, stats.generations, stats.tokens), (1, 1, 5));
}

#[tokio::test]
async fn generate_streams_thinking_before_the_response_when_asked_to_think() {
    let sim = TestSim::start(small()).await;

    let request = json!({ "model": "qwen2.5:0.5b", "prompt": "Count to three", "think": true });
    let response = sim.post("/api/generate", request).await;
    assert_eq!(response.status(), 200);
    let chunks = LineReader::new(response).rest().await;

    let (last, tokens) = chunks.split_last().expect("chunks");
    let thinking: String = tokens
        .iter()
        .filter_map(|chunk| chunk.get("thinking").and_then(Value::as_str))
        .collect();
    let answer: String = tokens
        .iter()
        .map(|chunk| chunk["response"].as_str().expect("a response"))
        .collect();
    let first_answer = tokens
        .iter()
        .position(|chunk| chunk["response"] != "")
        .expect("an answer");
    assert!(first_answer > 0, "thinking comes first: {chunks:?}");
    assert!(tokens[..first_answer]
        .iter()
        .all(|c| c["thinking"].is_string()));
    assert!(!thinking.is_empty());
    assert_eq!(answer, "Simulated answer from qwen2.5:0.5b to:");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"].as_u64(), Some(tokens.len() as u64));
    assert!(last["context"].is_array());
}

#[tokio::test]
async fn stream_false_answers_one_object_with_the_whole_answer() {
    let config = SimConfig {
        reply_tokens: 12,
        ..small()
    };
    let sim = TestSim::start(config).await;
    let started = Instant::now();

    let mut request = chat("llama3.2:latest", "Hello there, simulator");
    request["stream"] = json!(false);
    let response = sim.post("/api/chat", request).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    let answer: Value = response.json().await.expect("one JSON object");

    assert!(started.elapsed() >= Duration::from_millis(30 + 5 + 60));
    assert_eq!(answer["model"], "llama3.2:latest");
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "stop");
    assert_eq!(answer["eval_count"], 12);
    let content = answer["message"]["content"].as_str().expect("content");
    assert!(
        content.starts_with("Simulated answer from llama3.2:latest to: \"Hello there, simulator\""),
        "{content}"
    );
    assert_eq!(content.split_whitespace().count(), 12);
    assert!(nanos(&answer["eval_duration"]) >= Duration::from_millis(60));
}

#[tokio::test]
async fn num_predict_cuts_the_answer_short_with_done_reason_length() {
    let sim = TestSim::start(small()).await;

    let request = json!({
        "model": "llama3.2", "prompt": "Go on", "stream": false, "options": { "num_predict": 2 },
    });
    let answer = sim.answer("/api/generate", request, 200).await;

    assert_eq!(answer["response"], "Simulated answer.");
    assert_eq!(answer["done_reason"], "length");
    assert_eq!(answer["eval_count"], 2);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_frees_the_gpu() {
    let config = SimConfig {
        load_time: Duration::ZERO,
        tokens_per_second: 100.0,
        reply_tokens: 100_000, // 1000 s: only a freed GPU lets the next request finish
        ..small()
    };
    let sim = TestSim::start(config).await;
    let response = sim
        .post("/api/chat", chat("llama3.2", "a long story"))
        .await;
    let mut lines = LineReader::new(response);
    lines.next().await.expect("a first chunk");

    drop(lines);
    let request = json!({
        "model": "llama3.2", "prompt": "short", "stream": false, "options": { "num_predict": 1 },
    });
    let answer = sim.answer("/api/generate", request, 200).await;

    assert_eq!(answer["done_reason"], "length");
    let stats = sim.stats();
    assert_eq!((stats.generations, stats.in_flight), (2, 0), "{stats:?}");
}

#[tokio::test]
async fn generations_wait_for_the_gpu_one_at_a_time() {
    let config = SimConfig {
        reply_tokens: 100_000,
        ..small()
    };
    let sim = TestSim::start(config).await;
    let long = sim.post("/api/chat", chat("llama3.2", "first")).await;
    let mut long = LineReader::new(long);
    long.next().await.expect("the first request generates");

    let request = json!({
        "model": "llama3.2", "prompt": "second", "stream": false, "options": { "num_predict": 1 },
    });
    let second = sim.post_json("/api/generate", request);
    let (waiting, (status, _)) = sim.behind(long, second).await;

    assert_eq!(
        waiting.generations, 1,
        "the second waits for the GPU: {waiting:?}"
    );
    assert_eq!(status, 200);
    let stats = sim.stats();
    assert_eq!((stats.generations, stats.max_concurrent), (2, 2));
}

#[tokio::test]
async fn shutting_down_ends_generations_in_flight_and_the_server() {
    let config = SimConfig {
        reply_tokens: 100_000,
        tokens_per_second: 100.0,
        ..SimConfig::instant()
    };
    let TestSim {
        handle,
        client,
        url,
    } = TestSim::start(config).await;
    let response = client
        .post(format!("{url}/api/chat"))
        .json(&chat("llama3.2", "endless"))
        .send()
        .await
        .expect("the request reaches the simulator");
    let mut lines = LineReader::new(response);
    lines.next().await.expect("a first chunk");

    let (served, rest) = tokio::join!(tokio::time::timeout(DEADLINE, handle.stop()), lines.rest());

    assert!(
        rest.iter().all(|chunk| chunk["done"] == false),
        "no final chunk"
    );
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

#[tokio::test]
async fn the_instant_config_answers_at_once_with_default_lengths() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let chunks = LineReader::new(sim.post("/api/chat", chat("llama3.2", "hi")).await)
        .rest()
        .await;

    assert_eq!(chunks.len(), 25, "24 tokens and the final chunk");
    assert_eq!(chunks[24]["done_reason"], "stop");
}

#[test]
fn answers_quote_the_prompt_and_close_the_quote_when_cut_short() {
    let whole = answer_tokens("m", "Why is the sky blue?", 12).concat();
    let cut = answer_tokens("m", "Why is the sky blue?", 7).concat();
    let empty = answer_tokens("m", "", 6).concat();

    assert_eq!(
        whole,
        "Simulated answer from m to: \"Why is the sky blue?\" and the."
    );
    assert_eq!(cut, "Simulated answer from m to: \"Why is...\"");
    assert_eq!(empty, "Simulated answer from m to: nothing.");
}
