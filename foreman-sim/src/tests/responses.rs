//! `/v1/responses`: OpenAI's Responses shapes and named events, on the same GPU.

use serde_json::{json, Value};

use super::{manual, named_events, small, EventReader, TestSim};

fn response_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "input": [{ "role": "user", "content": [{ "type": "input_text", "text": "Why is the sky blue?" }] }],
        "instructions": "Be brief.",
        "stream": stream,
    })
}

#[tokio::test]
async fn a_response_is_one_completed_response_object() {
    let sim = TestSim::start(small()).await;

    let answer = sim
        .answer("/v1/responses", response_request("llama3.2", false), 200)
        .await;

    assert_eq!(answer["object"], "response");
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["model"], "llama3.2");
    assert_eq!(answer["instructions"], "Be brief.");
    assert!(answer["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("resp_")));
    let item = &answer["output"][0];
    assert_eq!(
        (&item["type"], &item["role"]),
        (&json!("message"), &json!("assistant"))
    );
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(
        item["content"][0]["text"],
        "Simulated answer from llama3.2 to:"
    );
    assert_eq!(answer["usage"]["output_tokens"], 5);
    let input = answer["usage"]["input_tokens"].as_u64().expect("a count");
    assert_eq!(answer["usage"]["total_tokens"], input + 5);
    assert!(answer["completed_at"].is_i64());
    assert_eq!(sim.stats().generations, 1);
}

#[tokio::test]
async fn a_streamed_response_is_the_responses_named_events_with_sequence_numbers() {
    let sim = TestSim::start(small()).await;

    let response = sim
        .post("/v1/responses", response_request("llama3.2", true))
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = named_events(&response.text().await.expect("a body"));

    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let deltas = ["response.output_text.delta"; 5];
    let expected: Vec<&str> = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    .into_iter()
    .chain(deltas)
    .chain([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ])
    .collect();
    assert_eq!(names, expected);
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i, "{name}");
    }
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().expect("a delta").to_owned())
        .collect();
    let completed = &events.last().expect("events").1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["content"][0]["text"], text.as_str());
    assert_eq!(events[9].1["text"], text.as_str());
    assert_eq!(completed["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn max_output_tokens_limits_the_answer() {
    let sim = TestSim::start(small()).await;
    let mut request = response_request("llama3.2", false);
    request["max_output_tokens"] = json!(2);

    let (_, answer) = sim.post_json("/v1/responses", request).await;

    assert_eq!(answer["usage"]["output_tokens"], 2);
    assert_eq!(answer["max_output_tokens"], 2);
    assert_eq!(
        answer["output"][0]["content"][0]["text"],
        "Simulated answer."
    );
}

#[tokio::test]
async fn unknown_models_and_bad_requests_are_openai_errors() {
    let sim = TestSim::start(small()).await;

    let (status, body) = sim
        .post_json("/v1/responses", response_request("nope", false))
        .await;
    let (missing, missing_body) = sim
        .post_json("/v1/responses", json!({ "input": "hi" }))
        .await;

    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(
        body["error"]["message"],
        "model \"nope\" not found, try pulling it first"
    );
    assert_eq!(missing, 400);
    assert_eq!(missing_body["error"]["message"], "model is required");
    assert_eq!(sim.stats().generations, 0);
}

#[tokio::test]
async fn a_response_released_by_hand_streams_each_token_and_can_fail_mid_stream() {
    let sim = manual().await;
    let response = sim
        .post("/v1/responses", response_request("llama3.2", true))
        .await;
    let generation = sim.generation().await;
    let mut events = EventReader::new(response);

    generation.token("Ray");
    let opened = events.until("response.output_text.delta").await;
    generation.token("leigh");
    let second = events.next().await.expect("the second token");
    generation.fail("the runner crashed");
    let rest = events.rest().await;

    assert_eq!(opened.len(), 5, "{opened:?}");
    assert_eq!(opened[4].1["delta"], "Ray");
    assert_eq!(second.1["delta"], "leigh");
    assert_eq!(rest.len(), 1, "{rest:?}");
    let (name, error) = &rest[0];
    assert_eq!(name, "error");
    assert_eq!(error["type"], "error");
    assert_eq!(error["message"], "the runner crashed");
    assert_eq!(error["sequence_number"], 6);
}
