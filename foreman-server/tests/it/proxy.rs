//! The Ollama-compatible surface: answers as Ollama's, bodies through unchanged.

use foreman_testkit::{json_answer, TestApp};
use serde_json::{json, Value};

use crate::chat_body;

#[tokio::test]
async fn chat_without_streaming_returns_one_json_object_with_the_reply() {
    let app = TestApp::spawn().await;
    let response = app.post("/api/chat", &chat_body("llama3.2", false)).await;
    assert_eq!(response.status(), 200);
    // Sent whole with its length, as Ollama sends it, not as a chunked stream.
    let length = response.headers().get("content-length").cloned();
    let chunked = response.headers().get("transfer-encoding").cloned();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(chunked, None);
    assert_eq!(
        length.and_then(|v| v.to_str().ok()?.parse::<usize>().ok()),
        Some(bytes.len())
    );
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["done"], true);
    assert_eq!(body["message"]["content"], app.ollama.reply());
}

#[tokio::test]
async fn chat_streams_ndjson_chunks_in_order_ending_with_the_final_chunk() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/api/chat",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(chunks.len() > 2, "several chunks, got {}", chunks.len());
    let content: String = chunks
        .iter()
        .map(|c| c["message"]["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(content, app.ollama.reply());
    let last = chunks.last().unwrap();
    assert_eq!(last["done"], true);
    assert!(last["eval_count"].is_u64(), "metrics on the final chunk");
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["done"] == false));
}

#[tokio::test]
async fn generate_works_streaming_and_not() {
    let app = TestApp::spawn().await;
    let whole: Value = app
        .post(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "hi", "stream": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["response"], app.ollama.reply());
    let streamed = app
        .post(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "hi"}),
        )
        .await
        .text()
        .await
        .unwrap();
    let content: String = streamed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["response"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(content, app.ollama.reply());
}

#[tokio::test]
async fn request_bodies_reach_the_target_unchanged() {
    let app = TestApp::spawn().await;
    let body = json!({
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "look", "images": ["aGVsbG8="]}],
        "stream": false,
        "options": {"temperature": 0.25, "num_ctx": 4096},
        "format": {"type": "object"},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "think": true,
        "keep_alive": "10m",
        "a_field_from_the_future": [1, {"x": null}]
    });
    let response = app.post("/api/chat", &body).await;
    assert_eq!(response.status(), 200);
    let seen = app.ollama.generation_requests();
    assert_eq!(seen.last().unwrap(), &body);
}

#[tokio::test]
async fn an_unknown_model_is_404_in_ollamas_words() {
    let app = TestApp::spawn().await;
    for path in ["/api/chat", "/api/generate"] {
        let response = app
            .post(
                path,
                &json!({"model": "nope", "prompt": "x", "messages": []}),
            )
            .await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"],
            "model \"nope\" not found, try pulling it first"
        );
    }
    assert!(
        app.ollama.generation_requests().is_empty(),
        "nothing reached the target"
    );
}

#[tokio::test]
async fn a_model_name_without_a_tag_means_latest() {
    let app = TestApp::spawn().await;
    let response = app.post("/api/chat", &chat_body("llama3.2", false)).await;
    assert_eq!(response.status(), 200);
    let jobs: Value = app.get_json("/jobs").await;
    assert_eq!(jobs["jobs"][0]["model"], "llama3.2:latest");
}

#[tokio::test]
async fn tags_and_ps_come_from_the_cache_in_ollamas_shape() {
    let app = TestApp::spawn().await;
    let tags: Value = app.get_json("/api/tags").await;
    let names: Vec<&str> = foreman_testkit::bodies::strings(&tags["models"], "name");
    assert!(names.contains(&"llama3.2:latest"), "{names:?}");
    let ps: Value = app.get_json("/api/ps").await;
    assert!(ps["models"].is_array());
}

#[tokio::test]
async fn version_show_and_root_answer_like_ollama() {
    let app = TestApp::spawn().await;
    let root = app.get("/").await;
    assert_eq!(root.status(), 200);
    assert_eq!(root.text().await.unwrap(), "Ollama is running");
    let head = app.http.head(app.at("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let version: Value = app.get_json("/api/version").await;
    assert!(version["version"].is_string());
    let show = app.post("/api/show", &json!({"model": "llama3.2"})).await;
    assert_eq!(show.status(), 200);
    let missing = app.post("/api/show", &json!({"model": "nope"})).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn embeddings_pass_straight_through_concurrently() {
    let app = TestApp::spawn().await;
    // A slow generation holds the queue; embeddings must not wait for it.
    app.ollama
        .set_generation_delay(std::time::Duration::from_secs(30));
    let chat = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    app.ollama.wait_for_generations(1, crate::DEADLINE).await;
    let mut embeds = Vec::new();
    for i in 0..4 {
        let http = app.http.clone();
        let url = app.at("/api/embed");
        embeds.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({"model": "nomic-embed-text", "input": ["a", format!("b{i}")]}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    for embed in embeds {
        let body = embed.await.unwrap();
        assert_eq!(body["embeddings"].as_array().unwrap().len(), 2);
    }
    let legacy: Value = app
        .post(
            "/api/embeddings",
            &json!({"model": "nomic-embed-text", "prompt": "x"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(legacy["embedding"].is_array());
    assert!(!chat.is_finished(), "the chat is still generating");
    chat.abort();
}

#[tokio::test]
async fn an_http_error_from_the_target_is_passed_on_and_fails_the_job() {
    let app = crate::failing_target(400, "invalid option num_ctx").await;
    let response = app.post("/api/chat", &chat_body("llama3.2", false)).await;
    let body = json_answer(response, 400).await;
    assert_eq!(body["error"], "invalid option num_ctx");
    let jobs: Value = app.get_json("/jobs").await;
    assert_eq!(jobs["jobs"][0]["state"], "failed");
    assert_eq!(
        jobs["jobs"][0]["attempts"], 1,
        "HTTP errors are not retried"
    );
}

#[tokio::test]
async fn ps_right_after_a_chat_shows_the_model_it_loaded() {
    // With polling effectively off, only the refresh after a generation can show it.
    let app =
        TestApp::with_config(|c| c.poll_interval = std::time::Duration::from_secs(3600)).await;
    let before: Value = app.get_json("/api/ps").await;
    assert_eq!(before["models"].as_array().unwrap().len(), 0);
    app.post("/api/chat", &chat_body("llama3.2", false)).await;
    let after: Value = app.get_json("/api/ps").await;
    assert_eq!(after["models"][0]["name"], "llama3.2:latest");
}

#[tokio::test]
async fn a_model_pulled_after_start_is_found_by_polling_again_on_a_miss() {
    let app =
        TestApp::with_config(|c| c.poll_interval = std::time::Duration::from_secs(3600)).await;
    app.ollama.add_model("mistral:7b");
    let response = app.post("/api/chat", &chat_body("mistral:7b", false)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_burst_of_requests_for_a_missing_model_shares_polls() {
    let app =
        TestApp::with_config(|c| c.poll_interval = std::time::Duration::from_secs(3600)).await;
    let before = app.ollama.requests_to("/api/tags");
    let calls = (0..20).map(|_| {
        app.http
            .post(app.at("/api/chat"))
            .json(&chat_body("nope", false))
            .send()
    });
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 404);
    }
    let polls = app.ollama.requests_to("/api/tags") - before;
    assert!((1..20).contains(&polls), "{polls} polls for 20 misses");
}
