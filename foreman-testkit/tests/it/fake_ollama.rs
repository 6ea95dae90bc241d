use foreman_testkit::fake_ollama::{DEFAULT_MODELS, DEFAULT_THINKING};
use foreman_testkit::FakeOllama;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{ndjson, post, post_answer};

async fn get(ollama: &FakeOllama, path: &str) -> Value {
    let response = reqwest::get(format!("{}{path}", ollama.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

fn generate(model: &str, prompt: &str) -> Value {
    json!({"model": model, "prompt": prompt})
}

fn embed(model: &str, input: Value) -> Value {
    json!({"model": model, "input": input})
}

#[tokio::test]
async fn tags_list_the_default_models_in_ollama_shape() {
    let ollama = FakeOllama::start().await;

    let tags = get(&ollama, "/api/tags").await;

    let models = tags["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, DEFAULT_MODELS);
    for model in models {
        assert_eq!(model["model"], model["name"]);
        assert!(model["modified_at"].is_string());
        assert!(model["size"].as_u64().unwrap() > 0);
        assert_eq!(model["digest"].as_str().unwrap().len(), 64);
        let details = &model["details"];
        for field in [
            "parent_model",
            "format",
            "family",
            "parameter_size",
            "quantization_level",
        ] {
            assert!(details[field].is_string(), "details.{field} in {model}");
        }
        assert!(details["families"].is_array());
    }
}

#[tokio::test]
async fn ps_is_empty_by_default_and_shows_the_resident_model() {
    let idle = FakeOllama::start().await;
    let loaded = FakeOllama::builder().resident("qwen2.5:0.5b").start().await;

    assert_eq!(get(&idle, "/api/ps").await, json!({"models": []}));
    let ps = get(&loaded, "/api/ps").await;
    let models = ps["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    let model = &models[0];
    assert_eq!(model["name"], "qwen2.5:0.5b");
    assert_eq!(model["model"], "qwen2.5:0.5b");
    for field in ["size", "size_vram"] {
        assert!(model[field].as_u64().unwrap() > 0, "{field}");
    }
    for field in ["digest", "expires_at"] {
        assert!(model[field].is_string(), "{field}");
    }
    assert!(model["details"]["family"].is_string());
}

#[tokio::test]
async fn builder_models_replace_the_defaults_and_resident_installs() {
    let ollama = FakeOllama::builder()
        .model("mistral")
        .resident("phi3:mini")
        .start()
        .await;

    let tags = get(&ollama, "/api/tags").await;

    let names: Vec<&str> = foreman_testkit::bodies::strings(&tags["models"], "name");
    assert_eq!(names, ["mistral:latest", "phi3:mini"]);
    assert_eq!(ollama.resident().as_deref(), Some("phi3:mini"));
}

#[tokio::test]
async fn version_and_root_answer_like_ollama() {
    let ollama = FakeOllama::start().await;

    let version = get(&ollama, "/api/version").await;
    let root = reqwest::get(ollama.url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(version, json!({"version": "0.9.0"}));
    assert_eq!(root, "Ollama is running");
}

#[tokio::test]
async fn show_describes_installed_models_and_404s_others() {
    let ollama = FakeOllama::start().await;

    let known = post_answer(&ollama, "/api/show", json!({"model": "llama3.2"}), 200).await;
    let unknown = post_answer(&ollama, "/api/show", json!({"model": "x"}), 404).await;

    assert_eq!(known["details"]["family"], "llama");
    assert_eq!(known["capabilities"], json!(["completion"]));
    assert_eq!(unknown, json!({"error": "model 'x' not found"}));
}

#[tokio::test]
async fn chat_streams_chunks_that_concatenate_to_the_reply() {
    let ollama = FakeOllama::builder()
        .reply("Hello from the fake")
        .chunks(5)
        .start()
        .await;

    let response = post(&ollama, "/api/chat", chat("llama3.2:latest")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&response.text().await.unwrap());
    assert_eq!(lines.len(), 6, "5 content chunks and the final one");
    let (last, chunks) = lines.split_last().unwrap();
    let text: String = chunks
        .iter()
        .map(|c| c["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from the fake");
    for chunk in chunks {
        assert_eq!(chunk["done"], false);
        assert_eq!(chunk["model"], "llama3.2:latest");
        assert_eq!(chunk["message"]["role"], "assistant");
        assert!(chunk["created_at"].is_string());
    }
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    for metric in [
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ] {
        assert!(last[metric].as_u64().unwrap() > 0, "{metric} in {last}");
    }
}

#[tokio::test]
async fn generate_streams_response_chunks() {
    let ollama = FakeOllama::builder()
        .reply("abcdefgh")
        .chunks(4)
        .start()
        .await;

    let response = post(&ollama, "/api/generate", generate("qwen2.5:0.5b", "Why?")).await;

    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&response.text().await.unwrap());
    let (last, chunks) = lines.split_last().unwrap();
    let pieces: Vec<&str> = chunks
        .iter()
        .map(|c| c["response"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["ab", "cd", "ef", "gh"]);
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert!(last["context"].is_array());
    assert!(last["eval_count"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn stream_false_answers_one_json_object_with_the_whole_reply() {
    let ollama = FakeOllama::builder().reply("All at once").start().await;
    let mut body = chat("llama3.2");
    body["stream"] = json!(false);

    let response = post(&ollama, "/api/chat", body).await;

    assert_eq!(response.headers()["content-type"], "application/json");
    let answer = foreman_testkit::json_answer(response, 200).await;
    assert_eq!(answer["message"]["content"], "All at once");
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "stop");
    assert!(answer["eval_count"].as_u64().is_some());
}

#[tokio::test]
async fn think_true_adds_thinking_to_chat_chunks() {
    let ollama = FakeOllama::start().await;
    let mut body = chat("llama3.2");
    body["think"] = json!(true);

    let response = post(&ollama, "/api/chat", body).await;

    let lines = ndjson(&response.text().await.unwrap());
    let thinking: String = lines
        .iter()
        .filter_map(|c| c["message"]["thinking"].as_str())
        .collect();
    let content: String = lines
        .iter()
        .map(|c| c["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(thinking, DEFAULT_THINKING);
    assert_eq!(content, "Hello from the fake");
}

#[tokio::test]
async fn chat_returns_404_for_an_unknown_model() {
    let ollama = FakeOllama::start().await;

    let body = post_answer(&ollama, "/api/chat", chat("mistral"), 404).await;

    assert_eq!(
        body,
        json!({"error": "model \"mistral\" not found, try pulling it first"})
    );
}

#[tokio::test]
async fn a_name_without_a_tag_resolves_to_latest() {
    let ollama = FakeOllama::builder().model("llama3.2:latest").start().await;
    let tagged_elsewhere = FakeOllama::builder().model("qwen2.5:0.5b").start().await;

    let found = post(&ollama, "/api/generate", generate("llama3.2", "hi")).await;
    let missing = post(
        &tagged_elsewhere,
        "/api/generate",
        generate("qwen2.5", "hi"),
    )
    .await;

    assert_eq!(found.status(), StatusCode::OK);
    let body = foreman_testkit::json_answer(missing, 404).await;
    assert_eq!(
        body["error"],
        "model \"qwen2.5\" not found, try pulling it first"
    );
}

#[tokio::test]
async fn a_generation_makes_its_model_the_only_resident_one() {
    let ollama = FakeOllama::builder().resident("qwen2.5:0.5b").start().await;

    post(&ollama, "/api/chat", chat("llama3.2"))
        .await
        .text()
        .await
        .unwrap();

    let ps = get(&ollama, "/api/ps").await;
    let names: Vec<&str> = foreman_testkit::bodies::strings(&ps["models"], "name");
    assert_eq!(names, ["llama3.2:latest"]);
}

#[tokio::test]
async fn a_chat_without_messages_only_loads_and_keep_alive_zero_unloads() {
    let ollama = FakeOllama::start().await;

    let load = post_answer(&ollama, "/api/chat", json!({"model": "llama3.2"}), 200).await;
    let resident_after_load = ollama.resident();
    let unload = json!({"model": "llama3.2", "messages": [], "keep_alive": 0});
    let unload = post_answer(&ollama, "/api/chat", unload, 200).await;

    assert_eq!(load["done_reason"], "load");
    assert_eq!(resident_after_load.as_deref(), Some("llama3.2:latest"));
    assert_eq!(unload["done_reason"], "unload");
    assert_eq!(ollama.resident(), None);
}

#[tokio::test]
async fn embed_returns_one_vector_per_input() {
    let ollama = FakeOllama::start().await;

    let single = embed("nomic-embed-text", json!("one"));
    let single = post_answer(&ollama, "/api/embed", single, 200).await;
    let many = embed("nomic-embed-text", json!(["one", "two", "three"]));
    let many = post_answer(&ollama, "/api/embed", many, 200).await;

    assert_eq!(single["model"], "nomic-embed-text");
    assert_eq!(single["embeddings"].as_array().unwrap().len(), 1);
    for field in ["total_duration", "load_duration", "prompt_eval_count"] {
        assert!(single[field].as_u64().is_some(), "{field}");
    }
    let vectors = many["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 3);
    assert_eq!(vectors[0], single["embeddings"][0], "deterministic");
    assert_ne!(vectors[0], vectors[1]);
    assert!(!vectors[0].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn legacy_embeddings_return_one_vector() {
    let ollama = FakeOllama::start().await;

    let legacy = json!({"model": "nomic-embed-text", "prompt": "hello"});
    let body = post_answer(&ollama, "/api/embeddings", legacy, 200).await;

    assert!(!body["embedding"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn embed_returns_404_for_an_unknown_model() {
    let ollama = FakeOllama::start().await;

    let response = post(&ollama, "/api/embed", embed("nope", json!("x"))).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn observation_records_requests_bodies_and_paths() {
    let ollama = FakeOllama::start().await;

    get(&ollama, "/api/tags").await;
    get(&ollama, "/api/tags").await;
    post(&ollama, "/api/chat", chat("llama3.2"))
        .await
        .text()
        .await
        .unwrap();
    post(&ollama, "/api/generate", generate("llama3.2", "p"))
        .await
        .text()
        .await
        .unwrap();

    assert_eq!(ollama.received_requests().len(), 4);
    assert_eq!(ollama.requests_to("/api/tags"), 2);
    assert_eq!(ollama.requests_to("/api/ps"), 0);
    let bodies = ollama.generation_requests();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["messages"][0]["content"], "Say hello");
    assert_eq!(bodies[1]["prompt"], "p");
}

#[tokio::test]
async fn behaviour_changes_mid_test_without_remounting() {
    let ollama = FakeOllama::start().await;
    let mut body = chat("llama3.2");
    body["stream"] = json!(false);

    ollama.set_reply("second reply");
    ollama.add_model("mistral");
    let answer = post_answer(&ollama, "/api/chat", body, 200).await;
    let mistral = post(&ollama, "/api/chat", chat("mistral")).await.status();
    ollama.remove_model("mistral");
    let gone = post(&ollama, "/api/chat", chat("mistral")).await.status();

    assert_eq!(answer["message"]["content"], "second reply");
    assert_eq!(mistral, StatusCode::OK);
    assert_eq!(gone, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_required_token_is_enforced() {
    let ollama = FakeOllama::builder().token("s3cret").start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/tags", ollama.url());

    let without = client.get(&url).send().await.unwrap().status();
    let with = client
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .status();

    assert_eq!(without, StatusCode::UNAUTHORIZED);
    assert_eq!(with, StatusCode::OK);
}
