//! Ollama's own error messages for bad input. The wider sweep of malformed bodies, bad
//! ids, unknown routes and oversized bodies is in `hostile.rs`.

use foreman_testkit::TestApp;
use serde_json::Value;

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    (
        status,
        body["error"].as_str().expect("an error message").to_owned(),
    )
}

#[tokio::test]
async fn a_missing_model_is_400_model_is_required() {
    let app = TestApp::spawn().await;
    for path in ["/api/chat", "/api/generate", "/jobs"] {
        for body in [r#"{"messages": []}"#, r#"{"model": "", "prompt": "x"}"#] {
            let response = app.http.post(app.at(path)).body(body).send().await.unwrap();
            assert_eq!(
                error_of(response).await,
                (400, "model is required".into()),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn listing_jobs_in_an_unknown_state_is_400_naming_the_states() {
    let app = TestApp::spawn().await;
    let (status, message) = error_of(app.get("/jobs?state=finished").await).await;
    assert_eq!(status, 400);
    assert!(message.contains("queued"), "{message}");
}
