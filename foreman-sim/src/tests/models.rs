//! Models: loading and evicting, embeddings, metadata, errors.

use std::time::Duration;

use serde_json::{json, Value};

use super::{chat, nanos, small, TestSim};
#[tokio::test]
async fn switching_models_loads_the_new_one_and_evicts_the_old_one() {
    let sim = TestSim::start(small()).await;
    let once = |model: &str| {
        let mut request = chat(model, "hi");
        request["stream"] = json!(false);
        request
    };

    let (_, first) = sim.post_json("/api/chat", once("llama3.2")).await;
    assert_eq!(sim.stats().loads, 1);
    assert_eq!(sim.resident().await, ["llama3.2:latest"]);
    assert!(nanos(&first["load_duration"]) >= Duration::from_millis(30));

    let (_, embedded) = sim
        .post_json(
            "/api/embed",
            json!({ "model": "nomic-embed-text", "input": "x" }),
        )
        .await;
    assert_eq!(embedded["embeddings"].as_array().map(Vec::len), Some(1));
    assert_eq!(sim.stats().loads, 2);
    assert_eq!(
        sim.resident().await,
        ["llama3.2:latest", "nomic-embed-text:latest"],
        "an embedding model stays beside the generation model"
    );

    let (_, swapped) = sim.post_json("/api/chat", once("qwen2.5:0.5b")).await;
    assert_eq!(sim.stats().loads, 3);
    assert!(nanos(&swapped["load_duration"]) >= Duration::from_millis(30));
    assert_eq!(
        sim.resident().await,
        ["nomic-embed-text:latest", "qwen2.5:0.5b"]
    );

    let (_, again) = sim.post_json("/api/chat", once("qwen2.5:0.5b")).await;
    assert_eq!(sim.stats().loads, 3, "a resident model is not loaded again");
    assert_eq!(nanos(&again["load_duration"]), Duration::ZERO);

    let ps = sim.get_json("/api/ps").await;
    let entry = &ps["models"][0];
    for field in [
        "name",
        "model",
        "size",
        "digest",
        "details",
        "expires_at",
        "size_vram",
    ] {
        assert!(!entry[field].is_null(), "/api/ps has {field}: {entry}");
    }
}

#[tokio::test]
async fn an_empty_chat_only_loads_and_keep_alive_zero_unloads() {
    let sim = TestSim::start(small()).await;

    let loaded = sim
        .answer(
            "/api/chat",
            json!({ "model": "llama3.2", "messages": [] }),
            200,
        )
        .await;
    assert_eq!(loaded["done_reason"], "load");
    assert_eq!(sim.resident().await, ["llama3.2:latest"]);

    let request = json!({ "model": "llama3.2", "messages": [], "keep_alive": 0 });
    let (_, unloaded) = sim.post_json("/api/chat", request).await;
    assert_eq!(unloaded["done_reason"], "unload");
    assert!(sim.resident().await.is_empty());
    assert_eq!(sim.stats().generations, 0);
}

#[tokio::test]
async fn requests_for_unknown_or_missing_models_are_rejected_like_ollama() {
    let sim = TestSim::start(small()).await;

    let body = sim.answer("/api/chat", chat("mystery", "hi"), 404).await;
    assert_eq!(
        body["error"],
        "model \"mystery\" not found, try pulling it first"
    );
    let (status, body) = sim
        .post_json("/api/generate", json!({ "prompt": "hi" }))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("model is required"))
    );
    let _ = sim
        .answer(
            "/api/embed",
            json!({ "model": "mystery", "input": "x" }),
            404,
        )
        .await;
    let _ = sim
        .answer("/api/show", json!({ "model": "mystery" }), 404)
        .await;
    let (status, body) = sim
        .post_json("/api/chat", chat("nomic-embed-text", "hi"))
        .await;
    assert_eq!(status, 400, "{body}");

    let response = sim
        .client
        .post(format!("{}/api/chat", sim.url))
        .body("{not json")
        .send()
        .await
        .expect("the request reaches the simulator");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("a JSON error");
    assert!(body["error"].is_string());
    assert_eq!(sim.stats().generations, 0);
}

#[tokio::test]
async fn embed_answers_one_deterministic_vector_per_input() {
    let sim = TestSim::start(small()).await;

    let request = json!({ "model": "nomic-embed-text", "input": ["apple", "pear", "apple"] });
    let (status, body) = sim.post_json("/api/embed", request).await;
    let (_, single) = sim
        .post_json(
            "/api/embed",
            json!({ "model": "nomic-embed-text", "input": "pear" }),
        )
        .await;
    let (_, legacy) = sim
        .post_json(
            "/api/embeddings",
            json!({ "model": "nomic-embed-text", "prompt": "apple" }),
        )
        .await;

    assert_eq!(status, 200);
    assert_eq!(body["model"], "nomic-embed-text");
    let vectors: Vec<Vec<f64>> =
        serde_json::from_value(body["embeddings"].clone()).expect("vectors");
    assert_eq!(vectors.len(), 3);
    assert!(vectors.iter().all(|v| v.len() == 8));
    assert_eq!(vectors[0], vectors[2], "the same text, the same vector");
    assert_ne!(vectors[0], vectors[1]);
    let norm: f64 = vectors[0].iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "unit length: {norm}");
    for field in ["total_duration", "load_duration", "prompt_eval_count"] {
        assert!(body[field].is_u64(), "{field}: {body}");
    }
    assert_eq!(single["embeddings"][0], body["embeddings"][1]);
    assert_eq!(legacy["embedding"], body["embeddings"][0]);
    assert_eq!(sim.stats().loads, 1);
    assert_eq!(sim.stats().generations, 0);
}

#[tokio::test]
async fn metadata_routes_answer_like_ollama() {
    let sim = TestSim::start(small()).await;

    let root = sim.client.get(&sim.url).send().await.expect("GET /");
    assert_eq!(root.text().await.expect("text"), "Ollama is running");
    assert_eq!(sim.get_json("/api/version").await["version"], "0.0.0-sim");
    let tags = sim.get_json("/api/tags").await;
    let models = tags["models"].as_array().expect("models");
    assert_eq!(models.len(), 3);
    for model in models {
        for field in ["name", "model", "modified_at", "size", "digest", "details"] {
            assert!(!model[field].is_null(), "/api/tags has {field}: {model}");
        }
        for field in [
            "format",
            "family",
            "families",
            "parameter_size",
            "quantization_level",
        ] {
            assert!(model["details"][field].is_string() || model["details"][field].is_array());
        }
    }
    let llama = sim
        .answer("/api/show", json!({ "model": "llama3.2" }), 200)
        .await;
    assert_eq!(llama["capabilities"], json!(["completion"]));
    for field in [
        "details",
        "model_info",
        "template",
        "parameters",
        "modelfile",
    ] {
        assert!(!llama[field].is_null(), "/api/show has {field}");
    }
    let (_, nomic) = sim
        .post_json("/api/show", json!({ "name": "nomic-embed-text" }))
        .await;
    assert_eq!(nomic["capabilities"], json!(["embedding"]));
    assert_eq!(sim.get_json("/sim/stats").await["loads"], 0);
}
