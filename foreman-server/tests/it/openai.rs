//! The OpenAI-compatible `/v1` routes: queued like their native twins, passed through
//! byte for byte, errors in OpenAI's shape.

use std::time::Duration;

use foreman_testkit::bodies::{joined, openai_chunks, sse_data};
use foreman_testkit::json_answer;
use foreman_testkit::{FakeOllama, TestApp};
use serde_json::{json, Value};

use crate::manual_target::{first_token, newest_job};
use crate::DEADLINE;

fn chat_completion(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "stream": stream,
    })
}

/// Asserts an OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.
fn assert_openai_error(body: &Value, kind: &str) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "an OpenAI error: {body}");
    assert_eq!(error["type"], kind, "{body}");
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
}

#[tokio::test]
async fn a_streamed_chat_completion_is_server_sent_events_ending_with_done() {
    let app = crate::replying("The sky is blue.", 3).await;

    let response = app
        .post("/v1/chat/completions", &chat_completion("llama3.2", true))
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(response.headers().contains_key("x-foreman-job-id"));
    let body = response.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body:?}");
    let chunks = openai_chunks(&body);
    let content = joined(&chunks, "/choices/0/delta/content");
    assert_eq!(content, "The sky is blue.");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let sent = app.ollama.generation_requests();
    assert_eq!(
        sent,
        vec![chat_completion("llama3.2", true)],
        "sent as given"
    );
    assert_eq!(app.ollama.requests_to("/v1/chat/completions"), 1);
}

#[tokio::test]
async fn a_chat_completion_without_streaming_is_one_json_object_and_a_finished_job() {
    let app = TestApp::spawn().await;

    let response = app
        .post("/v1/chat/completions", &chat_completion("llama3.2", false))
        .await;

    let answer = json_answer(response, 200).await;
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        foreman_testkit::fake_ollama::DEFAULT_REPLY
    );
    let done = foreman_testkit::wait::wait_until(DEADLINE, || async {
        let jobs = app.jobs_json("").await;
        jobs.len() == 1 && jobs[0]["state"] == "done"
    })
    .await;
    assert!(done, "the request ran as a queued job");
}

#[tokio::test]
async fn a_completion_is_queued_and_passed_through() {
    let app = TestApp::spawn().await;
    let request = json!({"model": "qwen2.5:0.5b", "prompt": "Say hi", "max_tokens": 5});

    let response = app.post("/v1/completions", &request).await;

    let answer = json_answer(response, 200).await;
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(
        answer["choices"][0]["text"],
        foreman_testkit::fake_ollama::DEFAULT_REPLY
    );
    assert_eq!(app.ollama.generation_requests(), vec![request]);

    let streamed = app
        .post(
            "/v1/completions",
            &json!({"model": "qwen2.5:0.5b", "prompt": "Say hi", "stream": true}),
        )
        .await;
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let body = streamed.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body:?}");
}

#[tokio::test]
async fn embeddings_go_straight_to_the_target() {
    let app = TestApp::spawn().await;
    let request = json!({"model": "nomic-embed-text", "input": ["a", "b"]});

    let response = app.post("/v1/embeddings", &request).await;

    let answer = json_answer(response, 200).await;
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["data"].as_array().unwrap().len(), 2);
    assert_eq!(answer["data"][1]["object"], "embedding");
    assert_eq!(app.ollama.requests_to("/v1/embeddings"), 1);
    assert!(
        app.jobs_json("").await.is_empty(),
        "embeddings are not queued"
    );
}

#[tokio::test]
async fn models_are_listed_from_the_inventory_in_openai_shape() {
    let ollama = FakeOllama::builder()
        .model("llama3.2")
        .model("hf.co/org/model:Q4_K_M")
        .start()
        .await;
    let app = TestApp::builder().ollama(ollama).spawn().await;

    let list = app.get_json("/v1/models").await;

    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], "llama3.2:latest");
    assert_eq!(data[0]["object"], "model");
    assert_eq!(data[0]["owned_by"], "library");
    assert!(data[0]["created"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(data[1]["owned_by"], "org");

    let one = app.get_json("/v1/models/hf.co/org/model:Q4_K_M").await;
    assert_eq!(one["id"], "hf.co/org/model:Q4_K_M");
    assert_eq!(one["owned_by"], "org");
    let exact = app.get_json("/v1/models/llama3.2:latest").await;
    assert_eq!(exact, data[0]);
}

#[tokio::test]
async fn an_unknown_model_is_an_openai_shaped_404() {
    let app = TestApp::spawn().await;

    let chat = app
        .post("/v1/chat/completions", &chat_completion("nope", false))
        .await;
    let body = json_answer(chat, 404).await;
    assert_eq!(
        body,
        json!({"error": {
            "message": "model \"nope\" not found, try pulling it first",
            "type": "invalid_request_error", "param": null, "code": "model_not_found"
        }})
    );

    let model = app.get("/v1/models/nope").await;
    assert_openai_error(&json_answer(model, 404).await, "invalid_request_error");
    assert!(app.ollama.generation_requests().is_empty());
}

#[tokio::test]
async fn bad_bodies_are_openai_shaped_400s() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/v1/chat/completions", "not json".to_owned()),
        ("/v1/chat/completions", json!({"messages": []}).to_string()),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2"}).to_string(),
        ),
        ("/v1/completions", json!({"prompt": "hi"}).to_string()),
        ("/v1/embeddings", json!({"input": "hi"}).to_string()),
    ];
    for (path, body) in cases {
        let response = app
            .http
            .post(app.at(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path} {body}");
        assert_openai_error(&response.json().await.unwrap(), "invalid_request_error");
    }
    let missing_model = app
        .post("/v1/chat/completions", &json!({"messages": []}))
        .await;
    let body: Value = missing_model.json().await.unwrap();
    assert_eq!(body["error"]["message"], "model is required");
    assert!(app.ollama.generation_requests().is_empty());
}

#[tokio::test]
async fn auth_and_unknown_routes_answer_in_openai_shape_under_v1() {
    let app = TestApp::builder().auth_token("s3cret").spawn().await;

    let denied = app
        .post("/v1/chat/completions", &chat_completion("llama3.2", false))
        .await;
    assert_openai_error(&json_answer(denied, 401).await, "invalid_request_error");

    let allowed = app.get_as("/v1/models", "s3cret").await;
    assert_eq!(allowed.status(), 200);

    let unknown = app.get_as("/v1/nowhere", "s3cret").await;
    assert_openai_error(&json_answer(unknown, 404).await, "invalid_request_error");
}

#[tokio::test]
async fn an_oversized_body_is_an_openai_shaped_413() {
    let app = TestApp::with_config(|c| c.max_body_bytes = 1024).await;
    let mut request = chat_completion("llama3.2", false);
    request["messages"][0]["content"] = json!("x".repeat(4096));

    let response = app.post("/v1/chat/completions", &request).await;

    assert_openai_error(&json_answer(response, 413).await, "invalid_request_error");
}

#[tokio::test]
async fn a_target_error_keeps_its_status_in_openai_shape() {
    let app = crate::failing_target(500, "the runner crashed").await;

    let response = app
        .post("/v1/chat/completions", &chat_completion("llama3.2", false))
        .await;

    let body = json_answer(response, 500).await;
    assert_openai_error(&body, "api_error");
    assert_eq!(body["error"]["message"], "the runner crashed");
    let recorded = newest_job(&app, |job| {
        job["state"] == "failed" && job["error"] == "the runner crashed"
    })
    .await;
    assert!(recorded, "the job fails with the target's message");
}

#[tokio::test]
async fn concurrent_openai_chats_never_overlap_on_the_target() {
    let app = TestApp::with_generation_delay(Duration::from_millis(40)).await;

    let calls = (0..4)
        .map(|i| {
            let (path, body) = match i % 2 {
                0 => ("/v1/chat/completions", chat_completion("llama3.2", i == 0)),
                _ => (
                    "/v1/completions",
                    json!({"model": "llama3.2", "prompt": "p"}),
                ),
            };
            app.spawn_post(path, body)
        })
        .collect();
    crate::assert_all_ran_one_at_a_time(&app, calls).await;
}

#[tokio::test]
async fn a_stream_cut_by_the_target_ends_with_an_sse_error_event() {
    let (_sim, app, generation, response) = first_token(
        "/v1/chat/completions",
        chat_completion("llama3.2", true),
        "a",
    )
    .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    generation.cut();

    let body = response.text().await.unwrap();
    let data = sse_data(&body);
    let first: Value = serde_json::from_str(data[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "a");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_openai_error(&last, "api_error");
    assert!(
        body.ends_with("\n\n") && !body.contains("[DONE]"),
        "{body:?}"
    );
    let failed = newest_job(&app, |job| job["state"] == "failed").await;
    assert!(failed, "the job ends failed, not done");
}
