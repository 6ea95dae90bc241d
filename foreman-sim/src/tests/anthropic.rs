//! `/v1/messages`: Anthropic's shapes and named events, on the same GPU as the other
//! generations.

use serde_json::{json, Value};

use super::{chat, manual, named_events, small, EventReader, TestSim};

fn message(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "system": [{ "type": "text", "text": "Be brief." }],
        "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Why is the sky blue?" }] }],
        "stream": stream,
    })
}

#[tokio::test]
async fn a_message_is_one_anthropic_message_object() {
    let sim = TestSim::start(small()).await;

    let answer = sim
        .answer("/v1/messages", message("llama3.2", false), 200)
        .await;

    assert_eq!(answer["type"], "message");
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["model"], "llama3.2");
    assert!(answer["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(answer["content"][0]["type"], "text");
    assert_eq!(
        answer["content"][0]["text"],
        "Simulated answer from llama3.2 to:"
    );
    assert_eq!(answer["stop_reason"], "end_turn");
    assert_eq!(answer["usage"]["output_tokens"], 5);
    assert!(answer["usage"]["input_tokens"].as_u64() > Some(0));
    let stats = sim.stats();
    assert_eq!((stats.generations, stats.tokens, stats.loads), (1, 5, 1));
}

#[tokio::test]
async fn a_streamed_message_is_anthropics_named_events_one_delta_per_token() {
    let sim = TestSim::start(small()).await;

    let response = sim.post("/v1/messages", message("llama3.2", true)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = named_events(&response.text().await.expect("a body"));

    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "each data names its event");
    }
    assert_eq!(events[0].1["message"]["content"], json!([]));
    assert_eq!(events[0].1["message"]["usage"]["output_tokens"], 0);
    assert_eq!(
        events[1].1["content_block"],
        json!({ "type": "text", "text": "" })
    );
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "content_block_delta")
        .map(|(_, data)| {
            assert_eq!(data["delta"]["type"], "text_delta");
            data["delta"]["text"].as_str().expect("text").to_owned()
        })
        .collect();
    assert_eq!(text, "Simulated answer from llama3.2 to:");
    assert_eq!(events[8].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[8].1["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn max_tokens_cuts_the_answer_with_stop_reason_max_tokens() {
    let sim = TestSim::start(small()).await;
    let mut request = message("llama3.2", false);
    request["max_tokens"] = json!(3);

    let (_, answer) = sim.post_json("/v1/messages", request.clone()).await;
    request["stream"] = json!(true);
    let streamed = named_events(
        &sim.post("/v1/messages", request)
            .await
            .text()
            .await
            .unwrap(),
    );

    assert_eq!(answer["stop_reason"], "max_tokens");
    assert_eq!(answer["usage"]["output_tokens"], 3);
    let delta = &streamed[streamed.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn thinking_comes_in_its_own_block_before_the_text() {
    let sim = TestSim::start(small()).await;
    let mut request = message("llama3.2", true);
    request["thinking"] = json!({ "type": "enabled", "budget_tokens": 1024 });

    let events = named_events(
        &sim.post("/v1/messages", request.clone())
            .await
            .text()
            .await
            .unwrap(),
    );
    request["stream"] = json!(false);
    let (_, whole) = sim.post_json("/v1/messages", request).await;

    let starts: Vec<&Value> = events
        .iter()
        .filter(|(name, _)| name == "content_block_start")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(starts[0]["index"], 0);
    assert_eq!(starts[0]["content_block"]["type"], "thinking");
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(starts[1]["content_block"]["type"], "text");
    let stops = events
        .iter()
        .filter(|(name, _)| name == "content_block_stop")
        .count();
    assert_eq!(stops, 2);
    assert_eq!(whole["content"][0]["type"], "thinking");
    assert_eq!(whole["content"][1]["type"], "text");
}

#[tokio::test]
async fn bad_requests_and_unknown_models_are_anthropic_errors() {
    let sim = TestSim::start(small()).await;
    let mut no_max = message("llama3.2", false);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let mut no_messages = message("llama3.2", false);
    no_messages["messages"] = json!([]);

    for (request, status, kind) in [
        (message("nope", false), 404, "not_found_error"),
        (no_max, 400, "invalid_request_error"),
        (no_messages, 400, "invalid_request_error"),
        (
            json!({ "max_tokens": 8, "messages": [] }),
            400,
            "invalid_request_error",
        ),
        (
            message("nomic-embed-text", false),
            400,
            "invalid_request_error",
        ),
    ] {
        let (got, body) = sim.post_json("/v1/messages", request.clone()).await;
        assert_eq!(got, status, "{request}: {body}");
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"].is_string());
    }
    let (_, body) = sim.post_json("/v1/messages", message("nope", false)).await;
    assert_eq!(
        body["error"]["message"],
        "model \"nope\" not found, try pulling it first"
    );
    assert_eq!(sim.stats().generations, 0);
}

#[tokio::test]
async fn a_message_for_another_model_loads_it_and_evicts_the_resident_one() {
    let sim = TestSim::start(small()).await;
    sim.post_json("/v1/messages", message("llama3.2", false))
        .await;

    let _ = sim
        .answer("/v1/messages", message("qwen2.5:0.5b", false), 200)
        .await;

    assert_eq!(sim.stats().loads, 2);
    assert_eq!(sim.resident().await, ["qwen2.5:0.5b"]);
}

#[tokio::test]
async fn a_message_released_by_hand_streams_each_token_and_can_fail_mid_stream() {
    let sim = manual().await;
    let response = sim.post("/v1/messages", message("llama3.2", true)).await;
    let generation = sim.generation().await;
    assert_eq!(generation.request()["max_tokens"], 256);
    let mut events = EventReader::new(response);

    generation.token("Ray");
    let opened = events.until("content_block_delta").await;
    generation.token("leigh");
    let second = events.next().await.expect("the second token");
    generation.fail("the runner crashed");
    let rest = events.rest().await;

    let names: Vec<&str> = opened.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    assert_eq!(opened[2].1["delta"]["text"], "Ray");
    assert_eq!(second.1["delta"]["text"], "leigh");
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].0, "error");
    assert_eq!(
        rest[0].1,
        json!({ "type": "error", "error": { "type": "api_error", "message": "the runner crashed" } })
    );
}

#[tokio::test]
async fn a_whole_message_that_fails_is_a_500_in_anthropics_shape() {
    let sim = manual().await;
    let pending = tokio::spawn({
        let (client, url) = (sim.client.clone(), format!("{}/v1/messages", sim.url));
        async move {
            client
                .post(url)
                .json(&message("llama3.2", false))
                .send()
                .await
        }
    });

    sim.generation().await.fail("out of memory");
    let response = pending.await.expect("the task").expect("an answer");

    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body["error"],
        json!({ "type": "api_error", "message": "out of memory" })
    );
}

#[tokio::test]
async fn messages_responses_and_chats_wait_for_one_gpu() {
    let sim = manual().await;
    let first = sim.post("/v1/messages", message("llama3.2", true)).await;
    let held = sim.generation().await;
    let (client, url) = (sim.client.clone(), sim.url.clone());
    let others: Vec<_> = [
        (
            "/v1/responses",
            json!({ "model": "llama3.2", "input": "hi", "stream": true }),
        ),
        ("/api/chat", chat("llama3.2", "hi")),
    ]
    .into_iter()
    .map(|(path, body)| {
        let (client, url) = (client.clone(), format!("{url}{path}"));
        tokio::spawn(async move { client.post(url).json(&body).send().await })
    })
    .collect();
    sim.wait_for("all three in flight", |s| s.in_flight == 3)
        .await;
    let waiting = sim.stats();

    held.finish();
    EventReader::new(first).rest().await;
    let second = sim.generation().await;
    let during_second = sim.stats();
    second.finish();
    sim.generation().await.finish();
    for other in others {
        other
            .await
            .expect("the task")
            .expect("an answer")
            .bytes()
            .await
            .expect("a body");
    }

    assert_eq!(waiting.generations, 1, "{waiting:?}");
    assert_eq!(during_second.generations, 2, "{during_second:?}");
    assert_eq!(sim.stats().generations, 3);
}
