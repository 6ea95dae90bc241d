//! Bad input gets a JSON error with the right status, never a panic.

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
async fn malformed_bodies_are_400_with_a_message() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/chat",
        "/api/generate",
        "/jobs",
        "/api/embed",
        "/api/show",
    ] {
        for body in ["", "{", "[]", "{\"model\": 5}", "\"text\""] {
            let response = app
                .http
                .post(app.at(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, message) = error_of(response).await;
            assert_eq!(status, 400, "{path} {body:?}: {message}");
        }
    }
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
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    let (status, _) = error_of(app.http.get(app.at("/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = error_of(app.http.delete(app.at("/api/tags")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    let (status, _) = error_of(app.http.get(app.at("/api/chat")).send().await.unwrap()).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = TestApp::builder()
        .configure(|c| c.max_body_bytes = 4096)
        .spawn()
        .await;
    let big = format!(
        r#"{{"model": "llama3.2", "prompt": "{}"}}"#,
        "x".repeat(10_000)
    );
    let response = app
        .http
        .post(app.at("/api/generate"))
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, message) = error_of(response).await;
    assert_eq!(status, 413, "{message}");
}

#[tokio::test]
async fn bad_job_ids_are_400_and_unknown_ones_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/jobs/not-a-ulid",
        "/jobs/..%2F..%2Fetc",
        "/jobs/x/artifacts/completion",
    ] {
        let (status, _) = error_of(app.http.get(app.at(path)).send().await.unwrap()).await;
        assert_eq!(status, 400, "{path}");
    }
    let unknown = foreman_client::JobId::new();
    let (status, _) = error_of(
        app.http
            .get(app.at(&format!("/jobs/{unknown}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = error_of(
        app.http
            .get(app.at(&format!("/jobs/{unknown}/artifacts/..%2Fsecret")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = error_of(
        app.http
            .get(app.at("/jobs?state=finished"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
}
