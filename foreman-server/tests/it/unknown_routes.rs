//! What a route foreman does not know gets (ADR 16): a JSON 404 in the shape of the API
//! it looks like, for admins too, and nothing reaches the target.

use foreman_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn unknown_api_and_v1_routes_are_json_404s_even_for_admins() {
    let app = TestApp::builder().auth_token("admin-token").spawn().await;
    let cases = [
        (Method::POST, "/api/me"),
        (Method::POST, "/api/experimental/web_search"),
        (Method::GET, "/api/experimental/model-recommendations"),
        (Method::DELETE, "/api/user/keys/abc"),
        (Method::POST, "/api/some_future_route"),
        (Method::POST, "/v1/audio/transcriptions"),
        (Method::GET, "/v1/some/future/route"),
        (Method::POST, "/v1/messages/count_tokens"),
    ];
    for (method, path) in cases {
        let response = app
            .http
            .request(method.clone(), app.at(path))
            .bearer_auth("admin-token")
            .json(&json!({"model": "llama3.2"}))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 404, "{method} {path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body: Value = response.json().await.unwrap();
        let message = body["error"]
            .as_str()
            .or(body["error"]["message"].as_str())
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert_eq!(message, "not found", "{path}");
        assert_eq!(
            app.ollama.requests_to(path),
            0,
            "{path} never reached the target"
        );
    }
}

#[tokio::test]
async fn a_known_route_with_an_unknown_method_is_a_json_405() {
    let app = TestApp::spawn().await;
    for (method, path) in [(Method::GET, "/api/pull"), (Method::POST, "/api/delete")] {
        let response = app
            .http
            .request(method.clone(), app.at(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
}
