//! Loading and unloading as Ollama defines them: an empty prompt loads a model,
//! `keep_alive: 0` unloads it. Both go through the queue, reach the target unchanged, and
//! foreman's idea of the resident model follows without waiting for a poll.

use std::time::Duration;

use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use serde_json::{json, Value};

// Polled hourly, what foreman knows of residency here comes from the jobs.
use crate::{chat_job, hourly, DEADLINE};

async fn resident(app: &TestApp) -> Value {
    app.get_json("/queue").await["resident"].clone()
}

#[tokio::test]
async fn an_empty_prompt_or_no_messages_loads_the_model_through_the_queue() {
    let app = hourly().spawn().await;
    let load = json!({"model": "qwen2.5:0.5b"});

    let response = app.post("/api/generate", &load).await;

    let answer = json_answer(response, 200).await;
    assert_eq!(answer["done_reason"], "load");
    assert_eq!(resident(&app).await, json!(["qwen2.5:0.5b"]));
    let chat_load = json!({"model": "llama3.2", "messages": []});
    let answer: Value = app
        .post("/api/chat", &chat_load)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["done_reason"], "load");
    assert_eq!(resident(&app).await[0], "llama3.2:latest");
    assert_eq!(
        app.ollama.generation_requests(),
        vec![load, chat_load],
        "they reach the target unchanged"
    );
    let jobs = app.jobs_json("").await;
    assert_eq!(jobs.len(), 2, "both went through the queue");
}

#[tokio::test]
async fn keep_alive_zero_unloads_and_foreman_forgets_the_resident_model() {
    let app = hourly().spawn().await;
    let chat = app
        .post("/api/chat", &crate::chat_body("llama3.2", false))
        .await;
    assert_eq!(chat.status(), 200);
    assert_eq!(resident(&app).await, json!(["llama3.2:latest"]));

    // What `ollama stop llama3.2` sends.
    let stop = json!({"model": "llama3.2", "keep_alive": 0});
    let response = app.post("/api/generate", &stop).await;

    let answer = json_answer(response, 200).await;
    assert_eq!(answer["done_reason"], "unload");
    assert_eq!(app.ollama.resident(), None);
    assert_eq!(resident(&app).await, json!([]));
    assert_eq!(app.ollama.generation_requests().last().unwrap(), &stop);

    // Open WebUI's unload: a chat with no messages and keep_alive 0.
    app.post(
        "/api/chat",
        &json!({"model": "qwen2.5:0.5b", "messages": []}),
    )
    .await;
    assert_eq!(resident(&app).await, json!(["qwen2.5:0.5b"]));
    app.post(
        "/api/chat",
        &json!({"model": "qwen2.5:0.5b", "messages": [], "keep_alive": "0s"}),
    )
    .await;
    assert_eq!(resident(&app).await, json!([]));
}

#[tokio::test]
async fn after_an_unload_drain_by_model_no_longer_favours_the_unloaded_model() {
    let app = hourly()
        .generation_delay(Duration::from_millis(1000))
        .spawn()
        .await;
    // A generation that unloads its model when it is done.
    let mut last_words = chat_job("llama3.2", "last words");
    last_words.chat.keep_alive = Some(json!(0));
    let first = app.client.submit(last_words).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let older = app
        .client
        .submit(chat_job("qwen2.5:0.5b", "older"))
        .await
        .unwrap();
    let newer = app
        .client
        .submit(chat_job("llama3.2", "newer"))
        .await
        .unwrap();

    app.ollama.set_generation_delay(Duration::ZERO);
    for id in [first, older, newer] {
        app.client.wait(id, DEADLINE).await.unwrap();
    }

    let order: Vec<String> = app.ollama.generation_strings("/messages/0/content");
    assert_eq!(
        order,
        ["last words", "older", "newer"],
        "nothing is resident after the unload, so the oldest job goes next"
    );
}
