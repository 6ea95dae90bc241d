//! Every enqueue path files the job under its caller's tenant: the key, the end user a
//! trusted key names, the key's weight. With two keys, a flood from one does not hold
//! back the other's first job.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, JobQuery, NewKey, SubmitRequest};
use foreman_testkit::TestApp;
use serde_json::{json, Value};

use crate::keys::{key_client, with_token, with_token_and_delay};
use crate::DEADLINE;

fn chat(text: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new("llama3.2", vec![ChatMessage::user(text)]))
}

/// Sends `path` with `token` and a user header, and returns the job it became.
async fn job_of(app: &TestApp, path: &str, body: Value, token: &str, header: &str) -> Value {
    let response = app
        .http
        .post(app.at(path))
        .bearer_auth(token)
        .header(header, "u-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let id = match response.headers().get("x-foreman-job-id") {
        Some(id) => id.to_str().unwrap().to_owned(),
        None => response.json::<Value>().await.unwrap()["job_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    serde_json::to_value(app.client.job(id.parse().unwrap()).await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_trusted_keys_jobs_carry_the_named_end_user_on_every_route_and_others_do_not() {
    let app = with_token().await;
    let (_, trusted) = key_client(&app, NewKey::new("webui").trust_user_header(true)).await;
    let (_, plain) = key_client(&app, NewKey::new("plain")).await;
    let chat = json!({"model": "llama3.2", "stream": false,
                      "messages": [{"role": "user", "content": "hi"}]});
    let routes = [
        ("/api/chat", chat.clone()),
        (
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "hi", "stream": false}),
        ),
        ("/jobs", chat.clone()),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "hi"}),
        ),
        ("/v1/responses", json!({"model": "llama3.2", "input": "hi"})),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in routes {
        for header in ["X-OpenWebUI-User-Id", "X-User-Id"] {
            let job = job_of(&app, path, body.clone(), &trusted, header).await;
            assert_eq!(job["key"], "webui", "{path}");
            assert_eq!(job["user"], "u-42", "{path} {header}");
            let job = job_of(&app, path, body.clone(), &plain, header).await;
            assert_eq!(job["key"], "plain", "{path}");
            assert!(
                job.get("user").is_none(),
                "{path}: an untrusted key's header is ignored"
            );
        }
    }
}

#[tokio::test]
async fn a_keys_weight_is_its_tenants_weight_in_fair_share() {
    let app = with_token().await;
    let (heavy, _) = key_client(&app, NewKey::new("heavy").weight(3)).await;
    let id = heavy.submit(chat("x")).await.unwrap();
    heavy.wait(id, DEADLINE).await.unwrap();
    let db = rusqlite::Connection::open(app.db_path()).unwrap();
    let weight: u32 = db
        .query_row(
            "SELECT weight FROM tenants WHERE key_name = 'heavy' AND end_user = ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(weight, 3);
}

#[tokio::test]
async fn a_key_flooding_the_queue_does_not_hold_back_another_keys_first_job() {
    let app = with_token_and_delay(Duration::from_millis(40)).await;
    let (flood, _) = key_client(&app, NewKey::new("flood")).await;
    let (single, _) = key_client(&app, NewKey::new("single")).await;
    for i in 0..20 {
        flood.submit(chat(&format!("flood {i}"))).await.unwrap();
    }
    let mine = single.submit(chat("single")).await.unwrap();
    single.wait(mine, DEADLINE).await.unwrap();
    let order: Vec<String> = app.ollama.generation_strings("/messages/0/content");
    let served_at = order.iter().position(|c| c == "single").unwrap();
    // At most the flood's running job and, arriving mid-claim, one more went first.
    assert!(served_at <= 2, "served as number {served_at}: {order:?}");
    // Each key sees only its own jobs.
    assert_eq!(single.jobs(&JobQuery::new()).await.unwrap().jobs.len(), 1);
    let flooded = flood.jobs(&JobQuery::new().limit(100)).await.unwrap().jobs;
    assert_eq!(flooded.len(), 20);
    assert!(flooded.iter().all(|j| j.key.as_deref() == Some("flood")));
}
