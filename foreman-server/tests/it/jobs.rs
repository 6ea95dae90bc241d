//! The async jobs API.

use foreman_client::{ChatMessage, ChatRequest, JobState, SubmitRequest};
use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use serde_json::{json, Value};

use crate::DEADLINE;

fn job(model: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new(model, vec![ChatMessage::user("hello")]))
}

#[tokio::test]
async fn a_submitted_job_is_202_with_a_location_and_finishes_with_its_result() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/jobs",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["job_id"].as_str().unwrap();
    assert_eq!(id.len(), 26, "a ULID");
    assert_eq!(location, format!("/jobs/{id}"));

    let done = app
        .client
        .wait(id.parse().unwrap(), DEADLINE)
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.attempts, 1);
    let result = done.result.unwrap();
    assert_eq!(result["message"]["content"], app.ollama.reply());
    assert_eq!(result["done"], true);
    let completion = done
        .artifacts
        .iter()
        .find(|a| a.name == "completion")
        .unwrap();
    assert_eq!(completion.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        completion.data.as_deref(),
        Some(app.ollama.reply().as_str())
    );
    assert_eq!(completion.size as usize, app.ollama.reply().len());
}

#[tokio::test]
async fn artifacts_are_served_raw_with_their_content_type() {
    let app = TestApp::spawn().await;
    let id = app.client.submit(job("llama3.2")).await.unwrap();
    app.client.wait(id, DEADLINE).await.unwrap();
    let response = app.get(&format!("/jobs/{id}/artifacts/completion")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), app.ollama.reply());
    let missing = app.get(&format!("/jobs/{id}/artifacts/nope")).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_job_that_thought_keeps_its_thinking_as_an_artifact() {
    let app = TestApp::spawn().await;
    let id = app
        .client
        .submit(SubmitRequest::new(
            ChatRequest::new("llama3.2", vec![ChatMessage::user("hi")]).think(true),
        ))
        .await
        .unwrap();
    let done = app.client.wait(id, DEADLINE).await.unwrap();
    let thinking = done.artifacts.iter().find(|a| a.name == "thinking");
    assert!(thinking.is_some(), "{:?}", done.artifacts);
    assert!(done.result.unwrap()["message"]["thinking"].is_string());
}

#[tokio::test]
async fn the_target_receives_the_chat_without_foremans_fields() {
    let app = TestApp::spawn().await;
    let body = json!({
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"temperature": 0},
        "state_webhook_url": "http://127.0.0.1:9/hook",
        "priority": 3,
        "custom": {"kept": true}
    });
    let response = app.post("/jobs", &body).await;
    let id: Value = response.json().await.unwrap();
    app.client
        .wait(id["job_id"].as_str().unwrap().parse().unwrap(), DEADLINE)
        .await
        .unwrap();
    let sent = app.ollama.generation_requests().pop().unwrap();
    assert!(sent.get("state_webhook_url").is_none());
    assert!(sent.get("priority").is_none());
    assert_eq!(sent["custom"], json!({"kept": true}));
    assert_eq!(sent["options"], json!({"temperature": 0}));
}

#[tokio::test]
async fn listing_filters_by_state_and_model_newest_first_with_pages() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for model in ["llama3.2", "qwen2.5:0.5b", "llama3.2"] {
        let id = app.client.submit(job(model)).await.unwrap();
        app.client.wait(id, DEADLINE).await.unwrap();
        ids.push(id);
    }
    let all: Value = app.get_json("/jobs?limit=2").await;
    let page: Vec<&str> = foreman_testkit::bodies::strings(&all["jobs"], "id");
    assert_eq!(page, [ids[2].to_string(), ids[1].to_string()]);
    let cursor = all["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get_json(&format!("/jobs?limit=2&before={cursor}"))
        .await;
    assert_eq!(rest["jobs"][0]["id"], ids[0].to_string());
    assert!(rest.get("next_cursor").is_none());
    let llamas: Value = app.get_json("/jobs?model=llama3.2&state=done").await;
    assert_eq!(llamas["jobs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unknown_model_is_404_and_a_private_webhook_is_400_by_default() {
    let app = TestApp::with_config(|c| c.webhook_allow_private = false).await;
    let missing = app
        .post("/jobs", &json!({"model": "nope", "messages": []}))
        .await;
    assert_eq!(missing.status(), 404);
    let private = app.post("/jobs", &json!({"model": "llama3.2", "messages": [], "state_webhook_url": "http://127.0.0.1:9/x"})).await;
    let body = json_answer(private, 400).await;
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("FOREMAN_WEBHOOK_ALLOW_PRIVATE"));
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_same_job_or_422() {
    let app = TestApp::spawn().await;
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "once"}]});
    let submit = |body: Value| {
        let http = app.http.clone();
        let url = app.at("/jobs");
        async move {
            http.post(url)
                .header("idempotency-key", "order-42")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = submit(body.clone()).await;
    let first = json_answer(first, 202).await;
    let again = submit(body).await;
    let again = json_answer(again, 200).await;
    assert_eq!(first["job_id"], again["job_id"]);
    let different = submit(json!({"model": "llama3.2", "messages": []})).await;
    assert_eq!(different.status(), 422);
}

#[tokio::test]
async fn cancelling_a_queued_job_removes_it_and_a_finished_one_is_409() {
    let app = TestApp::with_generation_delay(std::time::Duration::from_secs(30)).await;
    let running = app.client.submit(job("llama3.2")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let queued = app.client.submit(job("llama3.2")).await.unwrap();
    let cancelled = app.client.cancel(queued).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    let stopped = app.client.cancel(running).await.unwrap();
    assert_eq!(stopped.state, JobState::Cancelled);
    let again = app.delete(&format!("/jobs/{running}")).await;
    assert_eq!(again.status(), 409);
    assert_eq!(app.ollama.generation_requests().len(), 1);
}

#[tokio::test]
async fn cancelling_a_running_job_stops_the_upstream_request_and_announces_it() {
    let receiver = foreman_testkit::WebhookReceiver::start().await;
    let (sim, app) = crate::manual_target::manual_target().await;
    let id = app
        .client
        .submit(job("llama3.2").webhook(receiver.url()))
        .await
        .unwrap();
    let generation = crate::manual_target::next_generation(&sim).await;
    generation.token("partial");
    let working = foreman_testkit::wait::wait_until(DEADLINE, || async {
        app.client.job(id).await.unwrap().state == JobState::Working
    })
    .await;
    assert!(working);

    let cancelled = app.client.cancel(id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    tokio::time::timeout(DEADLINE, generation.hung_up())
        .await
        .expect("the upstream request was dropped, so Ollama stops generating");
    let announced = foreman_testkit::wait::wait_until(DEADLINE, || async {
        receiver
            .received()
            .iter()
            .any(|hook| hook.json()["type"] == "job.cancelled")
    })
    .await;
    assert!(announced, "a job.cancelled webhook was sent");
    assert_eq!(app.client.job(id).await.unwrap().state, JobState::Cancelled);
}
