//! Hostile input: malformed, mistyped, deeply nested, oversized, path tricks, unknown
//! routes, slow and stalled clients. Each gets a 4xx JSON error (or, for headers that
//! never finish, a closed connection), and foreman stays healthy.

use std::time::{Duration, Instant};

use foreman_testkit::TestApp;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn app() -> TestApp {
    TestApp::with_config(|c| {
        c.max_body_bytes = 64 * 1024;
        c.header_timeout = Duration::from_millis(300);
        c.body_timeout = Duration::from_millis(300);
    })
    .await
}

async fn assert_healthy(app: &TestApp) {
    let health = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok", "{health}");
}

/// Sends `body` raw to `path`; asserts a 4xx with a JSON `error`; the status.
async fn assert_json_4xx(app: &TestApp, method: &str, path: &str, body: Vec<u8>) -> u16 {
    let method: reqwest::Method = method.parse().unwrap();
    let response = app
        .http
        .request(method.clone(), app.at(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("foreman answers");
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    assert!(
        (400..500).contains(&status),
        "{method} {path}: {status} {text}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "{method} {path}: {content_type}"
    );
    let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert!(error["error"].is_string(), "{method} {path}: {text}");
    status
}

const BODY_ROUTES: [&str; 6] = [
    "/api/chat",
    "/api/generate",
    "/jobs",
    "/api/embed",
    "/api/embeddings",
    "/api/show",
];

#[tokio::test]
async fn malformed_and_mistyped_bodies_get_400_on_every_route_that_takes_one() {
    let app = app().await;
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"llama3.2\"".to_vec(),
        br#"{"model": 5}"#.to_vec(),
        br#"{"model": null}"#.to_vec(),
        br#"{"model": ["llama3.2"]}"#.to_vec(),
        br#"{"model": ""}"#.to_vec(),
        vec![0xff, 0xfe, b'{', 0x80],
        br#"{"model": "llama3.2" "#.to_vec(),
    ];
    for route in BODY_ROUTES {
        for body in &bad {
            let status = assert_json_4xx(&app, "POST", route, body.clone()).await;
            assert_eq!(status, 400, "{route} {:?}", String::from_utf8_lossy(body));
        }
    }
    // Wrong types inside an otherwise fine job.
    for body in [
        r#"{"model": "llama3.2", "messages": "hi"}"#,
        r#"{"model": "llama3.2", "messages": [{"role": 1, "content": "x"}]}"#,
        r#"{"model": "llama3.2", "messages": [], "stream": "yes"}"#,
        r#"{"model": "llama3.2", "messages": [], "state_webhook_url": 7}"#,
        r#"{"model": "llama3.2", "messages": [], "state_webhook_url": "file:///etc/passwd"}"#,
        r#"{"model": "llama3.2", "messages": [], "priority": "urgent"}"#,
    ] {
        let status = assert_json_4xx(&app, "POST", "/jobs", body.into()).await;
        assert_eq!(status, 400, "{body}");
    }
    assert_healthy(&app).await;
}

#[tokio::test]
async fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let app = app().await;
    let depth = 60_000; // within the 64 KiB limit, far past serde_json's 128
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let in_field = format!(
        r#"{{"model": "llama3.2", "messages": [], "options": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let objects = format!(
        r#"{}"model": "x"{}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    for route in BODY_ROUTES {
        for body in [&arrays, &in_field, &objects] {
            assert_json_4xx(&app, "POST", route, body.clone().into_bytes()).await;
        }
    }
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_a_declared_one_is_refused_before_it_is_sent() {
    let app = app().await;
    let big = format!(
        r#"{{"model": "llama3.2", "prompt": "{}"}}"#,
        "x".repeat(100 * 1024)
    );
    for route in BODY_ROUTES {
        let status = assert_json_4xx(&app, "POST", route, big.clone().into_bytes()).await;
        assert_eq!(status, 413, "{route}");
    }
    // 10 GB announced, 2 bytes sent: the answer must not wait for the rest.
    let (answer, took) = raw(
        &app,
        b"POST /api/chat HTTP/1.1\r\nHost: foreman\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{}",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#"{"error":"#), "{answer}");
    assert!(
        took < Duration::from_millis(250),
        "decided from Content-Length, before the body timeout: {took:?}"
    );
    assert_healthy(&app).await;
}

/// Writes `request` on a fresh connection and reads until the server closes it or 3 s
/// pass; what came back, and how long that took.
async fn raw(app: &TestApp, request: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    // Enough to judge: the status line and a JSON body.
                    if answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn bad_job_ids_and_artifact_path_tricks_get_json_errors() {
    let app = app().await;
    for path in [
        "/jobs/not-a-ulid",
        "/jobs/0123456789ABCDEFGHJKMNPQRU", // U is not Crockford base32
        "/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAVX",
        "/jobs/%00",
        "/jobs/..%2F..%2Fetc%2Fpasswd",
    ] {
        let status = assert_json_4xx(&app, "GET", path, Vec::new()).await;
        assert_eq!(status, 400, "{path}");
    }
    let unknown = foreman_client::JobId::new();
    assert_eq!(
        assert_json_4xx(&app, "GET", &format!("/jobs/{unknown}"), Vec::new()).await,
        404
    );
    let id = app
        .client
        .submit(foreman_client::SubmitRequest::new(
            foreman_types::ChatRequest::new("llama3.2", vec![]),
        ))
        .await
        .unwrap();
    app.client.wait(id, crate::DEADLINE).await.unwrap();
    for name in [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2E%2E",
        "completion%00.txt",
        "..%5C..%5Cwindows",
        "%2Fetc%2Fpasswd",
        "completion%2F..%2Fcompletion",
    ] {
        let path = format!("/jobs/{id}/artifacts/{name}");
        let status = assert_json_4xx(&app, "GET", &path, Vec::new()).await;
        assert_eq!(status, 404, "{path}");
    }
    assert_healthy(&app).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_404_and_405_as_json() {
    let app = app().await;
    for (method, path, status) in [
        ("GET", "/nope", 404),
        ("GET", "/api", 404),
        ("GET", "/api/chat/extra", 404),
        ("POST", "/api/me", 404),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd", 404),
        ("PUT", "/api/chat", 405),
        ("DELETE", "/api/tags", 405),
        ("PATCH", "/jobs", 405),
        ("GET", "/api/chat", 405),
        ("TRACE", "/healthz", 405),
    ] {
        let got = assert_json_4xx(&app, method, path, Vec::new()).await;
        assert_eq!(got, status, "{method} {path}");
    }
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = app().await;
    let (answer, waited) = raw(
        &app,
        b"POST /api/chat HTTP/1.1\r\nHost: foreman\r\nX-Slow: ",
    )
    .await;
    assert!(
        waited < Duration::from_secs(2),
        "closed after the 300 ms header timeout, not held open: {waited:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_408() {
    let app = app().await;
    let (answer, took) = raw(
        &app,
        b"POST /jobs HTTP/1.1\r\nHost: foreman\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#"{"error":"#), "{answer}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_healthy(&app).await;
}
