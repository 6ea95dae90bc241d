//! Limits: a key's `rpm` and `max_queued` answer 429 with `Retry-After` in the route's
//! own error shape, per end user for keys that name them; a full queue answers 503 with
//! `Retry-After`.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, NewKey, SubmitRequest};
use foreman_testkit::TestApp;
use serde_json::{json, Value};

use crate::keys::{key_client, with_token, with_token_and_delay};
use crate::{chat_body, DEADLINE};

/// `POST path` with `token` (and an end user header when given): status, `Retry-After`,
/// body.
async fn post(
    app: &TestApp,
    path: &str,
    token: &str,
    user: Option<&str>,
    body: &Value,
) -> (u16, Option<u64>, Value) {
    let mut request = app.http.post(app.at(path)).bearer_auth(token).json(body);
    if let Some(user) = user {
        request = request.header("X-OpenWebUI-User-Id", user);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse::<u64>()
            .expect("Retry-After is seconds")
    });
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn openai_chat() -> Value {
    json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]})
}

fn anthropic_messages() -> Value {
    json!({"model": "llama3.2", "max_tokens": 16,
           "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn past_its_rpm_a_key_gets_429_with_retry_after_in_each_apis_error_shape() {
    let app = with_token().await;
    let (_, secret) = key_client(&app, NewKey::new("alice").rpm(2)).await;
    let chat = chat_body("llama3.2", false);
    for _ in 0..2 {
        let (status, _, _) = post(&app, "/api/chat", &secret, None, &chat).await;
        assert_eq!(status, 200);
    }
    let (status, after, body) = post(&app, "/api/chat", &secret, None, &chat).await;
    assert_eq!(status, 429);
    let after = after.expect("a Retry-After header");
    assert!((1..=60).contains(&after), "{after}");
    assert!(
        body["error"].as_str().unwrap().contains("2 a minute"),
        "{body}"
    );

    let (status, after, body) =
        post(&app, "/v1/chat/completions", &secret, None, &openai_chat()).await;
    assert_eq!((status, after.is_some()), (429, true));
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(body["error"]["message"].is_string());

    let (status, after, body) =
        post(&app, "/v1/messages", &secret, None, &anthropic_messages()).await;
    assert_eq!((status, after.is_some()), (429, true));
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let (status, after, _) = post(&app, "/jobs", &secret, None, &chat).await;
    assert_eq!((status, after.is_some()), (429, true));

    // Only requests that queue work count: reading is never limited.
    let alice = app.client_with(&secret);
    alice.tags().await.unwrap();
    alice.jobs(&foreman_client::JobQuery::new()).await.unwrap();
    // The refused requests queued nothing.
    assert_eq!(app.ollama.generation_requests().len(), 2);
}

#[tokio::test]
async fn a_trusted_keys_end_users_each_get_the_keys_rpm_and_other_keys_cannot_split_theirs() {
    let app = with_token().await;
    let (_, webui) = key_client(&app, NewKey::new("webui").rpm(1).trust_user_header(true)).await;
    let (_, plain) = key_client(&app, NewKey::new("plain").rpm(1)).await;
    let body = chat_body("llama3.2", false);
    // In order: each request, and the status it gets.
    for (step, key, user, status) in [
        (1, &webui, Some("u1"), 200),
        (2, &webui, Some("u1"), 429),
        (3, &webui, Some("u2"), 200),
        (4, &webui, None, 200),
        // An untrusted key's header is ignored: every request is the key's own.
        (5, &plain, Some("u1"), 200),
        (6, &plain, Some("u2"), 429),
    ] {
        let got = post(&app, "/api/chat", key, user, &body).await.0;
        assert_eq!(got, status, "request {step}, user {user:?}");
    }
}

#[tokio::test]
async fn past_its_max_queued_a_key_gets_429_and_other_keys_and_users_still_queue() {
    let app = with_token_and_delay(Duration::from_secs(30)).await;
    let (alice, alice_secret) = key_client(&app, NewKey::new("alice").max_queued(2)).await;
    let (bob, _) = key_client(&app, NewKey::new("bob").max_queued(1)).await;
    let (_, webui) = key_client(
        &app,
        NewKey::new("webui").max_queued(1).trust_user_header(true),
    )
    .await;
    let job = || SubmitRequest::new(ChatRequest::new("llama3.2", vec![ChatMessage::user("x")]));
    let running = alice.submit(job()).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    // The running job is not queued: two more fit.
    let mut ids = vec![running];
    ids.push(alice.submit(job()).await.unwrap());
    ids.push(alice.submit(job()).await.unwrap());
    let refused = alice.submit(job()).await.unwrap_err();
    assert!(refused.is_rate_limited(), "{refused}");
    let chat = chat_body("llama3.2", false);
    let (status, after, body) = post(&app, "/jobs", &alice_secret, None, &chat).await;
    assert_eq!(status, 429);
    assert!(after.is_some_and(|s| s >= 1));
    assert!(
        body["error"].as_str().unwrap().contains("2 queued"),
        "{body}"
    );
    let (status, _, body) = post(
        &app,
        "/v1/chat/completions",
        &alice_secret,
        None,
        &openai_chat(),
    )
    .await;
    assert_eq!(status, 429, "a sync request counts against the same limit");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    ids.push(bob.submit(job()).await.unwrap());
    assert_eq!(post(&app, "/jobs", &webui, Some("u1"), &chat).await.0, 202);
    assert_eq!(post(&app, "/jobs", &webui, Some("u1"), &chat).await.0, 429);
    assert_eq!(post(&app, "/jobs", &webui, Some("u2"), &chat).await.0, 202);

    // Once one of alice's jobs leaves the queue, she may queue another.
    alice.cancel(ids[1]).await.unwrap();
    ids.push(alice.submit(job()).await.unwrap());
    app.client.cancel(running).await.unwrap();
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let app = crate::full_queue(1).await;
    for (path, body) in [
        ("/api/chat", chat_body("llama3.2", false)),
        ("/jobs", chat_body("llama3.2", false)),
        ("/v1/chat/completions", openai_chat()),
        ("/v1/messages", anthropic_messages()),
    ] {
        let response = app.post(path, &body).await;
        assert_eq!(response.status(), 503, "{path}");
        let after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(after >= 1, "{path}: {after}");
    }
}
