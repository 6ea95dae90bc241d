//! Bearer auth on every route but `/healthz` and `/`.

use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-token-value";

/// A route: its method, path, and body where it takes one.
type Route = (Method, String, Option<Value>);

fn get(path: impl Into<String>) -> Route {
    (Method::GET, path.into(), None)
}

fn post(path: impl Into<String>, body: Value) -> Route {
    (Method::POST, path.into(), Some(body))
}

/// Every route, with a body where it takes one.
fn routes(job: &str) -> Vec<Route> {
    let chat = json!({"model": "llama3.2", "messages": [], "stream": false});
    let embed = json!({"model": "nomic-embed-text", "input": "x"});
    vec![
        get("/api/tags"),
        get("/api/ps"),
        get("/api/version"),
        post("/api/show", json!({"model": "llama3.2"})),
        post("/api/chat", chat.clone()),
        post(
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "x", "stream": false}),
        ),
        post("/api/embed", embed.clone()),
        post(
            "/api/embeddings",
            json!({"model": "nomic-embed-text", "prompt": "x"}),
        ),
        post("/jobs", chat),
        get("/jobs"),
        get(format!("/jobs/{job}")),
        get(format!("/jobs/{job}/artifacts/completion")),
        (Method::DELETE, format!("/jobs/{job}"), None),
        get("/queue"),
        get("/metrics"),
        get("/v1/models"),
        post(
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": []}),
        ),
        post(
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "x"}),
        ),
        post("/v1/embeddings", embed),
        get("/api/status"),
        post("/v1/responses", json!({"model": "llama3.2", "input": "x"})),
        post(
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 8, "messages": []}),
        ),
        post("/api/pull", json!({"model": "gemma3", "stream": false})),
        post("/api/push", json!({"model": "llama3.2", "stream": false})),
        post(
            "/api/create",
            json!({"model": "x", "from": "llama3.2", "stream": false}),
        ),
        post(
            "/api/copy",
            json!({"source": "llama3.2", "destination": "y"}),
        ),
        (
            Method::DELETE,
            "/api/delete".into(),
            Some(json!({"model": "y"})),
        ),
        (
            Method::POST,
            format!("/api/blobs/sha256:{}", "a".repeat(64)),
            None,
        ),
        get("/nope"),
    ]
}

#[tokio::test]
async fn every_route_but_health_and_root_needs_the_token() {
    let app = TestApp::builder().auth_token(TOKEN).spawn().await;
    let job = foreman_client::JobId::new().to_string();
    let wrong = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(TOKEN.to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer{TOKEN}")),
        Some("Bearer ".to_owned()),
        Some(format!("Token {TOKEN}")),
    ];
    for (method, path, body) in routes(&job) {
        for header in &wrong {
            let mut request = app.http.request(method.clone(), app.at(&path));
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {header:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = response.json().await.unwrap();
            // Ollama-shaped `{"error": "..."}`, or OpenAI- or Anthropic-shaped under /v1.
            assert!(
                body["error"].is_string() || body["error"]["message"].is_string(),
                "{path}: {body}"
            );
        }
        let mut request = app
            .http
            .request(method.clone(), app.at(&path))
            .bearer_auth(TOKEN);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_ne!(response.status(), 401, "{method} {path} with the token");
    }
    for open in ["/healthz", "/"] {
        let response = app.get(open).await;
        assert_eq!(response.status(), 200, "{open} stays open");
    }
}

#[tokio::test]
async fn the_sdk_sends_the_token() {
    let app = TestApp::builder().auth_token(TOKEN).spawn().await;
    let tags = app.client.tags().await.unwrap();
    assert!(!tags.models.is_empty());
}

#[tokio::test]
async fn a_web_page_from_another_origin_gets_403_even_on_an_open_foreman() {
    let app = TestApp::spawn().await;
    let from = |origin: &'static str| {
        app.http
            .post(app.at("/admin/keys"))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(r#"{"name":"x","admin":true}"#)
            .send()
    };
    let refused = from("https://evil.example").await.unwrap();
    let body = json_answer(refused, 403).await;
    assert!(body["error"].as_str().unwrap().contains("origin"));
    assert!(
        app.client.keys().await.unwrap().is_empty(),
        "no key was made"
    );
    // A local page is allowed, as Ollama allows it.
    let local = from("http://localhost:3000").await.unwrap();
    assert_eq!(local.status(), 201);
}
