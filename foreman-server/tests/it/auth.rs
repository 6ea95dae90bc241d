//! Bearer auth on every route but `/healthz` and `/`.

use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use serde_json::json;

const TOKEN: &str = "s3cret-token-value";

/// Every route, with a body where it takes one.
fn routes(job: &str) -> Vec<(reqwest::Method, String, Option<serde_json::Value>)> {
    use reqwest::Method;
    let chat = json!({"model": "llama3.2", "messages": [], "stream": false});
    vec![
        (Method::GET, "/api/tags".into(), None),
        (Method::GET, "/api/ps".into(), None),
        (Method::GET, "/api/version".into(), None),
        (
            Method::POST,
            "/api/show".into(),
            Some(json!({"model": "llama3.2"})),
        ),
        (Method::POST, "/api/chat".into(), Some(chat.clone())),
        (
            Method::POST,
            "/api/generate".into(),
            Some(json!({"model": "llama3.2", "prompt": "x", "stream": false})),
        ),
        (
            Method::POST,
            "/api/embed".into(),
            Some(json!({"model": "nomic-embed-text", "input": "x"})),
        ),
        (
            Method::POST,
            "/api/embeddings".into(),
            Some(json!({"model": "nomic-embed-text", "prompt": "x"})),
        ),
        (Method::POST, "/jobs".into(), Some(chat)),
        (Method::GET, "/jobs".into(), None),
        (Method::GET, format!("/jobs/{job}"), None),
        (
            Method::GET,
            format!("/jobs/{job}/artifacts/completion"),
            None,
        ),
        (Method::DELETE, format!("/jobs/{job}"), None),
        (Method::GET, "/queue".into(), None),
        (Method::GET, "/metrics".into(), None),
        (Method::GET, "/v1/models".into(), None),
        (
            Method::POST,
            "/v1/chat/completions".into(),
            Some(json!({"model": "llama3.2", "messages": []})),
        ),
        (
            Method::POST,
            "/v1/completions".into(),
            Some(json!({"model": "llama3.2", "prompt": "x"})),
        ),
        (
            Method::POST,
            "/v1/embeddings".into(),
            Some(json!({"model": "nomic-embed-text", "input": "x"})),
        ),
        (Method::GET, "/api/status".into(), None),
        (
            Method::POST,
            "/v1/responses".into(),
            Some(json!({"model": "llama3.2", "input": "x"})),
        ),
        (
            Method::POST,
            "/v1/messages".into(),
            Some(json!({"model": "llama3.2", "max_tokens": 8, "messages": []})),
        ),
        (
            Method::POST,
            "/api/pull".into(),
            Some(json!({"model": "gemma3", "stream": false})),
        ),
        (
            Method::POST,
            "/api/push".into(),
            Some(json!({"model": "llama3.2", "stream": false})),
        ),
        (
            Method::POST,
            "/api/create".into(),
            Some(json!({"model": "x", "from": "llama3.2", "stream": false})),
        ),
        (
            Method::POST,
            "/api/copy".into(),
            Some(json!({"source": "llama3.2", "destination": "y"})),
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
        (Method::GET, "/nope".into(), None),
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
