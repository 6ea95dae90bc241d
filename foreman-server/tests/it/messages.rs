//! `/v1/messages` (Anthropic) and `/v1/responses` (OpenAI Responses): queued like
//! `/v1/chat/completions`, passed through unchanged, named events streamed as they come,
//! errors in each API's shape.

use std::time::Duration;

use foreman_testkit::bodies::{named_events, EventReader};
use foreman_testkit::json_answer;
use foreman_testkit::wait::wait_until;
use foreman_testkit::TestApp;
use serde_json::{json, Value};

use crate::manual_target::{first_token, manual_target, newest_job, next_generation};
use crate::{chat_job, DEADLINE};

fn message(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]}],
        "stream": stream,
        "metadata": {"user_id": "u-1"},
    })
}

fn response_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "input": [{"role": "user", "content": "Why is the sky blue?"}],
        "instructions": "Be brief.",
        "stream": stream,
    })
}

fn assert_anthropic_error(body: &Value, kind: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn a_message_is_queued_and_passed_through_unchanged() {
    let app = TestApp::spawn().await;

    let response = app.post("/v1/messages", &message("llama3.2", false)).await;

    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-foreman-job-id"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["content"][0]["text"], app.ollama.reply());
    assert_eq!(
        app.ollama.generation_requests(),
        vec![message("llama3.2", false)]
    );
    assert_eq!(app.ollama.requests_to("/v1/messages"), 1);
    let done = wait_until(DEADLINE, || async {
        let jobs = app.jobs_json("").await;
        jobs.len() == 1 && jobs[0]["state"] == "done" && jobs[0]["kind"] == "anthropic_messages"
    })
    .await;
    assert!(done, "the request ran as a queued job");
}

#[tokio::test]
async fn a_streamed_message_is_anthropics_named_events_in_order() {
    let app = crate::replying("Rayleigh.", 3).await;

    let response = app.post("/v1/messages", &message("llama3.2", true)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = named_events(&response.text().await.unwrap());
    assert_eq!(events.first().unwrap().0, "message_start");
    assert_eq!(events.last().unwrap().0, "message_stop");
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "content_block_delta")
        .map(|(_, data)| data["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Rayleigh.");
}

#[tokio::test]
async fn a_response_is_queued_and_passed_through_unchanged() {
    let app = crate::replying("Rayleigh.", 2).await;

    let whole = app
        .post("/v1/responses", &response_request("llama3.2", false))
        .await;
    let answer = json_answer(whole, 200).await;
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["output"][0]["content"][0]["text"], "Rayleigh.");

    let streamed = app
        .post("/v1/responses", &response_request("llama3.2", true))
        .await;
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let events = named_events(&streamed.text().await.unwrap());
    assert_eq!(events.first().unwrap().0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    assert_eq!(
        app.ollama.generation_requests(),
        vec![
            response_request("llama3.2", false),
            response_request("llama3.2", true)
        ]
    );
    let kinds = wait_until(DEADLINE, || async {
        let jobs = app.jobs_json("state=done").await;
        jobs.len() == 2 && jobs.iter().all(|j| j["kind"] == "openai_responses")
    })
    .await;
    assert!(kinds);
}

#[tokio::test]
async fn each_event_reaches_the_client_before_the_target_sends_the_next() {
    for (path, body, delta, last) in [
        (
            "/v1/messages",
            message("llama3.2", true),
            "content_block_delta",
            "message_stop",
        ),
        (
            "/v1/responses",
            response_request("llama3.2", true),
            "response.output_text.delta",
            "response.completed",
        ),
    ] {
        let (sim, app) = manual_target().await;
        let pending = app.spawn_post(path, body.clone());
        let generation = next_generation(&sim).await;
        assert_eq!(
            generation.request(),
            &body,
            "{path}: passed through unchanged"
        );

        generation.token("The");
        let response = pending.await.unwrap().unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut events = EventReader::new(response);
        let opening = events.until(delta).await;
        assert_eq!(
            text_at(&opening.last().unwrap().1, DELTA_TEXT),
            "The",
            "{path}"
        );
        for word in [" sky", " is"] {
            generation.token(word);
            let (name, data) = events
                .next()
                .await
                .expect("the event arrives while the target holds the next token");
            assert_eq!(name, delta, "{path}");
            assert_eq!(text_at(&data, DELTA_TEXT), word, "{path}");
        }
        generation.finish();
        let rest = events.rest().await;
        assert_eq!(rest.last().unwrap().0, last, "{path}: {rest:?}");
    }
}

/// Where a delta event carries its text: Anthropic's `delta.text`, the Responses API's
/// `delta`.
const DELTA_TEXT: [&str; 2] = ["/delta/text", "/delta"];

/// Where an error event carries its message: Anthropic's `error.message`, the Responses
/// API's `message`.
const ERROR_TEXT: [&str; 2] = ["/error/message", "/message"];

/// The text an event's data holds at the first of `pointers` that has one.
fn text_at<'a>(data: &'a Value, pointers: [&str; 2]) -> &'a str {
    pointers
        .iter()
        .find_map(|pointer| data.pointer(pointer)?.as_str())
        .unwrap_or_else(|| panic!("no text at {pointers:?}: {data}"))
}

#[tokio::test]
async fn unknown_models_are_404s_in_each_routes_shape() {
    let app = TestApp::spawn().await;

    let anthropic = app.post("/v1/messages", &message("nope", false)).await;
    let body = json_answer(anthropic, 404).await;
    assert_eq!(
        body,
        json!({"type": "error", "error": {
            "type": "not_found_error",
            "message": "model \"nope\" not found, try pulling it first"
        }})
    );

    let openai = app
        .post("/v1/responses", &response_request("nope", false))
        .await;
    let body = json_answer(openai, 404).await;
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(app.ollama.generation_requests().is_empty());
}

#[tokio::test]
async fn bad_bodies_auth_and_unknown_paths_answer_in_anthropics_shape() {
    let app = TestApp::builder().auth_token("s3cret").spawn().await;
    let denied = app.post("/v1/messages", &message("llama3.2", false)).await;
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["www-authenticate"], "Bearer");
    assert_anthropic_error(&denied.json().await.unwrap(), "authentication_error");

    for body in [
        json!({"messages": []}),
        json!({"model": "llama3.2"}),
        json!("text"),
    ] {
        let response = app.post_as("/v1/messages", "s3cret", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_anthropic_error(&response.json().await.unwrap(), "invalid_request_error");
    }
    let with_api_key = app
        .http
        .post(app.at("/v1/messages"))
        .header("x-api-key", "s3cret")
        .json(&message("llama3.2", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_api_key.status(),
        200,
        "the Anthropic SDKs' header works too"
    );
    let unknown = app
        .post_as(
            "/v1/messages/count_tokens",
            "s3cret",
            &message("llama3.2", false),
        )
        .await;
    assert_anthropic_error(&json_answer(unknown, 404).await, "not_found_error");

    let responses = app
        .post_as("/v1/responses", "s3cret", &json!({"input": "hi"}))
        .await;
    let body = json_answer(responses, 400).await;
    assert_eq!(body["error"]["message"], "model is required");
    assert_eq!(
        app.ollama.generation_requests().len(),
        1,
        "only the authorised one"
    );
}

#[tokio::test]
async fn a_target_error_keeps_its_status_in_anthropics_shape() {
    let app = crate::failing_target(500, "the runner crashed").await;

    let response = app.post("/v1/messages", &message("llama3.2", false)).await;

    let body = json_answer(response, 500).await;
    assert_anthropic_error(&body, "api_error");
    assert_eq!(body["error"]["message"], "the runner crashed");
}

#[tokio::test]
async fn messages_responses_and_chats_never_overlap_on_the_target() {
    let app = TestApp::with_generation_delay(Duration::from_millis(40)).await;

    let calls = (0..6)
        .map(|i| match i % 3 {
            0 => app.spawn_post("/v1/messages", message("llama3.2", i == 0)),
            1 => app.spawn_post("/v1/responses", response_request("llama3.2", i == 1)),
            _ => app.spawn_post("/api/chat", crate::chat_body("llama3.2", false)),
        })
        .collect();
    crate::assert_all_ran_one_at_a_time(&app, calls).await;
}

#[tokio::test]
async fn a_message_runs_before_async_jobs_queued_ahead_of_it() {
    let (app, _running) = crate::busy().await;
    let batch = app
        .client
        .submit(chat_job("llama3.2", "batch"))
        .await
        .unwrap();
    let interactive = app.spawn_post("/v1/messages", message("llama3.2", false));
    foreman_testkit::eventually(DEADLINE, "both to be queued", || async {
        app.get_json("/queue").await["depth"] == 2
    })
    .await;

    app.ollama.set_generation_delay(Duration::ZERO);
    assert_eq!(interactive.await.unwrap().unwrap().status(), 200);
    app.client.wait(batch, DEADLINE).await.unwrap();
    let order: Vec<bool> = app
        .ollama
        .generation_requests()
        .iter()
        .map(|r| r.get("max_tokens").is_some())
        .collect();
    assert_eq!(
        order,
        [false, true, false],
        "the message went before the batch"
    );
}

#[tokio::test]
async fn a_messages_caller_that_disconnects_while_queued_removes_its_job() {
    let app = TestApp::with_generation_delay(Duration::from_secs(30)).await;
    let busy = app.spawn_post("/api/chat", crate::chat_body("llama3.2", false));
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let waiting = app.spawn_post("/v1/messages", message("llama3.2", true));
    foreman_testkit::eventually(DEADLINE, "the message to be queued", || async {
        app.jobs_json("state=queued").await.len() == 1
    })
    .await;

    waiting.abort();

    foreman_testkit::eventually(DEADLINE, "the job to be cancelled", || async {
        let cancelled = app.jobs_json("state=cancelled").await;
        cancelled.len() == 1 && cancelled[0]["kind"] == "anthropic_messages"
    })
    .await;
    busy.abort();
    assert_eq!(app.ollama.generation_requests().len(), 1, "it never ran");
}

/// A streamed request to each route: Anthropic's Messages, OpenAI's Responses.
fn streamed_requests() -> [(&'static str, Value); 2] {
    [
        ("/v1/messages", message("llama3.2", true)),
        ("/v1/responses", response_request("llama3.2", true)),
    ]
}

#[tokio::test]
async fn a_broken_stream_ends_with_an_error_event_in_each_apis_shape() {
    for (path, body) in streamed_requests() {
        let (_sim, app, generation, response) = first_token(path, body, "a").await;
        generation.cut();

        let events = named_events(&response.text().await.unwrap());
        let (name, data) = events.last().unwrap();
        assert_eq!(name, "error", "{path}: {events:?}");
        assert_eq!(data["type"], "error");
        assert!(
            text_at(data, ERROR_TEXT).contains("broke off"),
            "{path}: {data}"
        );
        let failed = newest_job(&app, |job| job["state"] == "failed").await;
        assert!(failed, "{path}: the job ends failed, not done");
    }
}

#[tokio::test]
async fn an_error_event_from_the_target_mid_stream_reaches_the_caller_and_fails_the_job() {
    for (path, body) in streamed_requests() {
        let (_sim, app, generation, response) = first_token(path, body, "Ray").await;
        generation.fail("out of memory");

        let events = named_events(&response.text().await.unwrap());
        let errors: Vec<&Value> = events
            .iter()
            .filter(|(name, _)| name == "error")
            .map(|(_, data)| data)
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "{path}: the target's own, once: {events:?}"
        );
        assert_eq!(
            text_at(errors[0], ERROR_TEXT),
            "out of memory",
            "{path}: {events:?}"
        );
        let failed = newest_job(&app, |job| {
            job["state"] == "failed" && job["error"] == "out of memory"
        })
        .await;
        assert!(
            failed,
            "{path}: the job ends failed with the target's error: {:?}",
            app.jobs_json("").await
        );
    }
}
