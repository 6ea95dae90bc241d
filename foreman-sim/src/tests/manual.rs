//! Manual release: the test hands out each token, ends or cuts the stream, and sees the
//! client hang up.

use serde_json::{json, Value};

use super::{chat, manual, LineReader, TestSim, DEADLINE};
use crate::SimConfig;

/// Reads the rest of the body: whether it broke off (`Err`) or ended properly, and what
/// arrived before that.
async fn read_to_end(mut response: reqwest::Response) -> (String, reqwest::Result<()>) {
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout(DEADLINE, response.chunk())
            .await
            .expect("the body ends or breaks off before the deadline");
        match chunk {
            Ok(Some(bytes)) => text.push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
            Ok(None) => return (text, Ok(())),
            Err(err) => return (text, Err(err)),
        }
    }
}

#[tokio::test]
async fn tokens_leave_one_at_a_time_as_the_test_releases_them() {
    let sim = manual().await;
    let response = sim.post("/api/chat", chat("llama3.2", "hi")).await;
    let generation = sim.generation().await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut lines = LineReader::new(response);

    generation.token("Hel");
    let first = lines.next().await.expect("the first token");
    generation.token("lo");
    let second = lines.next().await.expect("the second token");
    generation.finish();
    let rest = lines.rest().await;

    assert_eq!(first["message"]["content"], "Hel");
    assert_eq!(first["done"], false);
    assert_eq!(second["message"]["content"], "lo");
    assert_eq!(rest.len(), 1, "only the final chunk is left: {rest:?}");
    assert_eq!(rest[0]["done"], true);
    assert_eq!(rest[0]["done_reason"], "stop");
    assert_eq!(rest[0]["eval_count"], 2);
    sim.wait_for("the GPU freed", |s| s.in_flight == 0).await;
    let stats = sim.stats();
    assert_eq!((stats.generations, stats.tokens, stats.hung_up), (1, 2, 0));
}

#[tokio::test]
async fn the_handle_carries_the_request_and_the_resident_model_needs_no_load() {
    let config = SimConfig {
        resident: Some("qwen2.5:0.5b".to_owned()),
        ..SimConfig::manual()
    };
    let sim = TestSim::start(config).await;
    assert_eq!(sim.resident().await, ["qwen2.5:0.5b"]);

    let request = json!({ "model": "qwen2.5:0.5b", "prompt": "Count", "stream": false });
    let pending = tokio::spawn({
        let (client, url) = (sim.client.clone(), format!("{}/api/generate", sim.url));
        async move { client.post(url).json(&request).send().await }
    });
    let generation = sim.generation().await;
    let body = generation.request().clone();
    generation.token("One");
    generation.token(", two");
    generation.finish();
    let answer: Value = pending
        .await
        .expect("the request task")
        .expect("an answer")
        .json()
        .await
        .expect("one JSON object");

    assert_eq!(body["prompt"], "Count");
    assert_eq!(answer["response"], "One, two");
    assert_eq!(answer["done"], true);
    assert_eq!(answer["load_duration"], 0);
    assert_eq!(
        sim.stats().loads,
        0,
        "the resident model was not loaded again"
    );
}

#[tokio::test]
async fn the_next_request_waits_for_the_gpu_until_the_first_generation_ends() {
    let sim = manual().await;
    let first = sim.post("/api/chat", chat("llama3.2", "first")).await;
    let generation = sim.generation().await;
    let second = sim.spawn_post("/api/chat", chat("llama3.2", "second"));
    sim.wait_for("the second request in flight", |s| s.in_flight == 2)
        .await;
    let waiting = sim.stats();

    generation.finish();
    LineReader::new(first).rest().await;
    let next = sim.generation().await;

    assert_eq!(waiting.generations, 1, "the second waited: {waiting:?}");
    assert_eq!(next.request()["messages"][0]["content"], "second");
    next.finish();
    let second = second.await.expect("the task").expect("the answer");
    assert_eq!(LineReader::new(second).rest().await.len(), 1);
}

#[tokio::test]
async fn a_client_hanging_up_mid_stream_is_noticed_and_frees_the_gpu() {
    let sim = manual().await;
    let response = sim.post("/api/chat", chat("llama3.2", "hi")).await;
    let generation = sim.generation().await;
    generation.token("Hel");
    let mut lines = LineReader::new(response);
    lines.next().await.expect("the first token");

    drop(lines);
    let noticed = tokio::time::timeout(DEADLINE, generation.hung_up()).await;

    assert!(noticed.is_ok(), "the hang-up was not noticed");
    sim.wait_for("the GPU freed", |s| s.in_flight == 0).await;
    assert_eq!(sim.stats().hung_up, 1);
}

#[tokio::test]
async fn a_cut_stream_breaks_off_after_what_was_released() {
    let sim = manual().await;
    let response = sim.post("/api/chat", chat("llama3.2", "hi")).await;
    let generation = sim.generation().await;

    generation.token("a");
    let mut first = Vec::new();
    let mut response = response;
    while !first.ends_with(b"\n") {
        let chunk = response.chunk().await.expect("the body reads");
        first.extend_from_slice(&chunk.expect("the first token"));
    }
    generation.cut();
    let (rest, ended) = read_to_end(response).await;

    let line: Value = serde_json::from_slice(&first).expect("a JSON line");
    assert_eq!(line["message"]["content"], "a");
    assert!(
        ended.is_err(),
        "the body broke off instead of ending: {rest:?}"
    );
    assert!(!rest.contains("\"done\":true"), "{rest}");
    assert_eq!(sim.stats().hung_up, 0, "a cut is not a hang-up");
}

#[tokio::test]
async fn a_cut_before_any_token_fails_a_whole_answer() {
    let sim = manual().await;
    let mut request = chat("llama3.2", "hi");
    request["stream"] = json!(false);
    let pending = tokio::spawn({
        let (client, url) = (sim.client.clone(), format!("{}/api/chat", sim.url));
        async move {
            let response = client.post(url).json(&request).send().await?;
            response.bytes().await
        }
    });

    sim.generation().await.cut();
    let answer = tokio::time::timeout(DEADLINE, pending)
        .await
        .expect("the caller hears of the cut before the deadline")
        .expect("the request task");

    assert!(
        answer.is_err(),
        "a cut connection, not an answer: {answer:?}"
    );
}

#[tokio::test]
async fn dropping_the_handle_cuts_the_stream() {
    let sim = manual().await;
    let response = sim.post("/api/chat", chat("llama3.2", "hi")).await;

    drop(sim.generation().await);
    let (text, ended) = read_to_end(response).await;

    assert!(ended.is_err(), "the body broke off: {text:?}");
}

#[tokio::test]
async fn a_failed_generation_ends_with_ollamas_error_line_or_a_500() {
    let sim = manual().await;
    let streamed = sim.post("/api/chat", chat("llama3.2", "hi")).await;
    let generation = sim.generation().await;
    generation.token("a");
    generation.fail("out of memory");
    let lines = LineReader::new(streamed).rest().await;

    let mut request = chat("llama3.2", "hi");
    request["stream"] = json!(false);
    let whole = tokio::spawn({
        let (client, url) = (sim.client.clone(), format!("{}/api/chat", sim.url));
        async move { client.post(url).json(&request).send().await }
    });
    sim.generation().await.fail("out of memory");
    let whole = whole.await.expect("the task").expect("an answer");
    let status = whole.status();
    let body: Value = whole.json().await.expect("a JSON error");

    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["message"]["content"], "a");
    assert_eq!(lines[1], json!({ "error": "out of memory" }));
    assert_eq!(status, 500);
    assert_eq!(body, json!({ "error": "out of memory" }));
}

#[tokio::test]
async fn the_openai_routes_stream_released_tokens_as_server_sent_events() {
    let sim = manual().await;
    let request = json!({
        "model": "llama3.2",
        "messages": [{ "role": "user", "content": "hi" }],
        "stream": true,
    });
    let mut response = sim.post("/v1/chat/completions", request).await;
    let generation = sim.generation().await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    generation.token("Hi");
    let first = tokio::time::timeout(DEADLINE, response.chunk())
        .await
        .expect("the first event before the deadline")
        .expect("the body reads")
        .expect("an event");
    generation.finish();
    let (rest, ended) = read_to_end(response).await;

    let first = std::str::from_utf8(&first).expect("UTF-8");
    let data = first
        .strip_prefix("data: ")
        .and_then(|event| event.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("one event: {first:?}"));
    let chunk: Value = serde_json::from_str(data).expect("JSON data");
    assert_eq!(chunk["object"], "chat.completion.chunk");
    assert_eq!(chunk["choices"][0]["delta"]["content"], "Hi");
    assert!(ended.is_ok());
    assert!(rest.contains("\"finish_reason\":\"stop\""), "{rest}");
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
}

#[tokio::test]
async fn an_untaken_generation_holds_the_gpu_until_the_simulator_stops() {
    let sim = manual().await;
    let (client, url) = (sim.client.clone(), sim.url.clone());
    let held = client
        .post(format!("{url}/api/chat"))
        .json(&chat("llama3.2", "held"))
        .send()
        .await
        .expect("the first generation starts");
    let waiting = sim.spawn_post("/api/chat", chat("llama3.2", "waits"));
    sim.wait_for("the second request in flight", |s| s.in_flight == 2)
        .await;

    let stopped = tokio::time::timeout(DEADLINE, sim.handle.stop()).await;
    let (_, held_ended) = read_to_end(held).await;
    let waiting = waiting.await.expect("the task");

    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    assert!(
        held_ended.is_ok(),
        "the held stream ends with the simulator"
    );
    let refused = waiting.map(|response| response.status());
    assert!(
        matches!(refused, Ok(status) if status == 503) || refused.is_err(),
        "{refused:?}"
    );
}

#[tokio::test]
async fn timed_release_hands_out_no_generations() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let generation = sim.handle.next_generation(DEADLINE).await;

    assert!(generation.is_none());
}
