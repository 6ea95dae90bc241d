//! Model management through foreman: passed through to the target for admins, progress
//! streamed line by line, the inventory refreshed before the answer ends.

use std::time::Duration;

use foreman_testkit::bodies::{ndjson, LineReader};
use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::manual_target::manual_target_with;
// Polled hourly, a change shows in the list only if foreman refreshed for it.
use crate::{hourly, DEADLINE, HOUR};

/// `method path` with a JSON body.
async fn call(app: &TestApp, method: Method, path: &str, body: Value) -> reqwest::Response {
    app.http
        .request(method, app.at(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `POST path` with a raw body (a blob, or something that is not JSON).
async fn post_raw(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.http.post(app.at(path)).body(body).send().await.unwrap()
}

/// The model names foreman lists now.
async fn listed(app: &TestApp) -> Vec<String> {
    let tags = app.client.tags().await.unwrap();
    tags.models.into_iter().map(|m| m.name).collect()
}

/// Checks the answer to a pull or create with `stream: false`: 200 with
/// `{"status": "success"}`, and `model` listed at once.
async fn assert_succeeded_and_listed(app: &TestApp, response: reqwest::Response, model: &str) {
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );
    assert!(listed(app).await.contains(&model.to_owned()));
}

/// The bodies the target received on `path`.
fn received(app: &TestApp, path: &str) -> Vec<Value> {
    app.ollama
        .received_requests()
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| r.body_json().unwrap())
        .collect()
}

#[tokio::test]
async fn a_pull_streams_the_targets_progress_and_the_model_is_listed_at_once() {
    let app = hourly().spawn().await;
    let request = json!({"model": "gemma3", "insecure": false, "name": ""});

    let response = call(&app, Method::POST, "/api/pull", request.clone()).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let progress = ndjson(&response.text().await.unwrap());
    assert_eq!(progress[0], json!({"status": "pulling manifest"}));
    assert!(progress.iter().any(|l| l["completed"].is_u64()));
    assert_eq!(progress.last().unwrap(), &json!({"status": "success"}));
    assert_eq!(received(&app, "/api/pull"), vec![request], "sent as given");
    assert!(listed(&app).await.contains(&"gemma3:latest".to_owned()));
    assert!(
        app.jobs_json("").await.is_empty(),
        "model management is not queued"
    );
}

#[tokio::test]
async fn a_pull_without_streaming_answers_one_object_and_refreshes_too() {
    let app = hourly().spawn().await;

    let response = app
        .post("/api/pull", &json!({"model": "phi4", "stream": false}))
        .await;

    assert_succeeded_and_listed(&app, response, "phi4:latest").await;
}

#[tokio::test]
async fn a_failed_pull_streams_its_error_line_and_changes_nothing() {
    let app = hourly().spawn().await;
    app.ollama.make_unpullable("nope");
    let before = listed(&app).await;

    let response = app.post("/api/pull", &json!({"model": "nope"})).await;

    assert_eq!(
        response.status(),
        200,
        "Ollama's status once streaming began"
    );
    let progress = ndjson(&response.text().await.unwrap());
    assert_eq!(
        progress.last().unwrap()["error"],
        "pull model manifest: file does not exist"
    );
    assert_eq!(listed(&app).await, before);
    let whole = app
        .post("/api/pull", &json!({"model": "nope", "stream": false}))
        .await;
    assert_eq!(whole.status(), 500);
    assert!(app.get_json("/queue").await["pulling"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn create_copy_and_delete_show_in_the_list_at_once() {
    let app = hourly().spawn().await;

    let created = app
        .post(
            "/api/create",
            &json!({"model": "mario", "from": "llama3.2", "system": "It's a me"}),
        )
        .await;
    assert_eq!(created.status(), 200);
    let progress = ndjson(&created.text().await.unwrap());
    assert_eq!(progress.last().unwrap(), &json!({"status": "success"}));
    assert!(listed(&app).await.contains(&"mario:latest".to_owned()));

    let copied = app
        .post(
            "/api/copy",
            &json!({"source": "mario", "destination": "luigi"}),
        )
        .await;
    assert_eq!(copied.status(), 200);
    assert!(listed(&app).await.contains(&"luigi:latest".to_owned()));

    // The same delete twice: the second finds nothing.
    let delete_mario = || {
        call(
            &app,
            Method::DELETE,
            "/api/delete",
            json!({"model": "mario"}),
        )
    };
    let deleted = delete_mario().await;
    assert_eq!(deleted.status(), 200);
    let now = listed(&app).await;
    assert!(!now.contains(&"mario:latest".to_owned()) && now.contains(&"luigi:latest".to_owned()));

    let again = delete_mario().await;
    assert_eq!(again.status(), 404, "the target's answer passes through");
    let error: Value = again.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("not found"),
        "{error}"
    );
    let missing = app
        .post("/api/copy", &json!({"source": "nope", "destination": "x"}))
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn management_requests_without_a_model_are_refused_before_the_target() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::POST, "/api/pull"),
        (Method::POST, "/api/push"),
        (Method::POST, "/api/create"),
        (Method::DELETE, "/api/delete"),
    ] {
        let response = call(&app, method.clone(), path, json!({"stream": false})).await;
        assert_eq!(response.status(), 400, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "model is required");
    }
    let not_json = post_raw(&app, "/api/copy", "nope").await;
    assert_eq!(not_json.status(), 400);
    assert!(app
        .ollama
        .received_requests()
        .iter()
        .all(|r| !r.url.path().starts_with("/api/pull") && r.url.path() != "/api/copy"));
}

#[tokio::test]
async fn a_blob_larger_than_the_body_limit_streams_to_the_target() {
    let app = TestApp::with_config(|c| c.max_body_bytes = 1024).await;
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    let blob = format!("/api/blobs/{digest}");

    let before = app.http.head(app.at(&blob)).send().await.unwrap();
    assert_eq!(before.status(), 404);
    let uploaded = post_raw(&app, &blob, data.clone()).await;
    assert_eq!(uploaded.status(), 201);
    let after = app.http.head(app.at(&blob)).send().await.unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(app.ollama.blobs(), vec![digest.clone()]);

    let wrong = post_raw(&app, &format!("/api/blobs/sha256:{}", "0".repeat(64)), data).await;
    assert_eq!(
        wrong.status(),
        400,
        "the target's digest check passes through"
    );
    let malformed = post_raw(&app, "/api/blobs/sha256:not-a-digest", "x").await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        app.ollama.requests_to("/api/blobs/sha256:not-a-digest"),
        0,
        "refused before the target"
    );
    let chat = app
        .post(
            "/api/chat",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x".repeat(4096)}]}),
        )
        .await;
    assert_eq!(chat.status(), 413, "the limit still holds elsewhere");
}

#[tokio::test]
async fn a_blob_upload_that_stalls_is_answered_408_and_the_target_stays_healthy() {
    let app = TestApp::with_config(|c| c.body_timeout = Duration::from_millis(300)).await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    sender.send(Ok(b"GGUF".to_vec())).await.unwrap();
    let stalled = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));

    let response = post_raw(
        &app,
        &format!("/api/blobs/sha256:{}", "b".repeat(64)),
        stalled,
    )
    .await;

    assert_eq!(response.status(), 408);
    drop(sender);
    assert_eq!(
        app.get_json("/healthz").await["degraded"],
        false,
        "a stalled caller says nothing about the target"
    );
}

#[tokio::test]
async fn a_created_model_can_be_made_from_an_uploaded_blob() {
    let app = hourly().spawn().await;
    let data = b"GGUF weights".to_vec();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    let blob = format!("/api/blobs/{digest}");
    assert_eq!(post_raw(&app, &blob, data).await.status(), 201);

    let created = app
        .post(
            "/api/create",
            &json!({"model": "mine", "files": {"model.gguf": digest}, "stream": false}),
        )
        .await;

    assert_succeeded_and_listed(&app, created, "mine:latest").await;
}

#[tokio::test]
async fn push_streams_progress_and_status_passes_through() {
    let app = TestApp::spawn().await;

    let pushed = app.post("/api/push", &json!({"model": "llama3.2"})).await;
    assert_eq!(pushed.status(), 200);
    let progress = ndjson(&pushed.text().await.unwrap());
    assert_eq!(progress[0], json!({"status": "retrieving manifest"}));
    assert_eq!(progress.last().unwrap(), &json!({"status": "success"}));

    let status = app.get_json("/api/status").await;
    assert_eq!(
        status,
        json!({"cloud": {"disabled": false, "source": "none"}})
    );
}

#[tokio::test]
async fn model_management_needs_the_admin_token() {
    let app = TestApp::builder().auth_token("s3cret").spawn().await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let blob = format!("/api/blobs/{digest}");
    let routes = [
        (Method::POST, "/api/pull", json!({"model": "gemma3"})),
        (Method::POST, "/api/push", json!({"model": "llama3.2"})),
        (
            Method::POST,
            "/api/create",
            json!({"model": "x", "from": "llama3.2"}),
        ),
        (
            Method::POST,
            "/api/copy",
            json!({"source": "llama3.2", "destination": "y"}),
        ),
        (Method::DELETE, "/api/delete", json!({"model": "llama3.2"})),
        (Method::HEAD, blob.as_str(), json!(null)),
        (Method::POST, blob.as_str(), json!(null)),
    ];
    for (method, path, body) in &routes {
        for token in [None, Some("wrong")] {
            let mut request = app.http.request(method.clone(), app.at(path));
            if !body.is_null() {
                request = request.json(body);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
        }
    }
    let managed = [
        "/api/pull",
        "/api/push",
        "/api/create",
        "/api/copy",
        "/api/delete",
    ];
    assert!(
        app.ollama
            .received_requests()
            .iter()
            .all(|r| !managed.contains(&r.url.path()) && !r.url.path().starts_with("/api/blobs")),
        "nothing reached the target"
    );
    for (method, path, body) in &routes {
        let mut request = app
            .http
            .request(method.clone(), app.at(path))
            .bearer_auth("s3cret");
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_ne!(response.status(), 401, "{method} {path} with the token");
        assert_ne!(response.status(), 403, "{method} {path} with the token");
    }
    assert!(app.ollama.models().contains(&"gemma3:latest".to_owned()));
}

#[tokio::test]
async fn progress_lines_reach_the_client_one_by_one() {
    let (sim, app) = manual_target_with(|c| c.poll_interval = HOUR).await;
    let request = json!({"model": "smollm2:135m"});
    let pending = app.spawn_post("/api/pull", request.clone());
    let pull = sim
        .next_pull(DEADLINE)
        .await
        .expect("the pull reached the target");
    assert_eq!(pull.request(), &request, "passed through unchanged");
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut body = LineReader::new(response);
    assert_eq!(
        body.next().await.unwrap(),
        json!({"status": "pulling manifest"})
    );

    let layer = pull.layers()[0].clone();
    for completed in [0, layer.total / 3, layer.total] {
        pull.progress(0, completed);
        let got = body
            .next()
            .await
            .expect("the line arrives while the target holds the next one");
        assert_eq!(got["digest"], layer.digest.as_str());
        assert_eq!(got["total"], layer.total);
        assert_eq!(
            got.get("completed").and_then(Value::as_u64).unwrap_or(0),
            completed
        );
    }
    pull.finish();
    assert_eq!(
        body.rest().await,
        [
            json!({"status": "verifying sha256 digest"}),
            json!({"status": "writing manifest"}),
            json!({"status": "success"}),
        ]
    );
    assert!(listed(&app).await.contains(&"smollm2:135m".to_owned()));
}

/// Starts a pull of `model` in the background and waits until foreman holds the model as
/// being pulled (`/queue`); the pull's answer to come.
async fn pull_under_way(app: &TestApp, model: &str) -> crate::Pending {
    let pull = app.spawn_post("/api/pull", json!({ "model": model }));
    let key = format!("{model}:latest");
    foreman_testkit::eventually(DEADLINE, "the pull to be under way", || async {
        app.get_json("/queue").await["pulling"] == json!([key])
    })
    .await;
    pull
}

#[tokio::test]
async fn a_chat_for_a_model_being_pulled_waits_in_the_queue_then_runs() {
    let app = hourly().spawn().await;
    app.ollama.set_pull_delay(Duration::from_millis(800));
    let pull = pull_under_way(&app, "fresh").await;

    let chat = app.spawn_post("/api/chat", crate::chat_body("fresh", false));
    foreman_testkit::eventually(DEADLINE, "the chat to wait in the queue", || async {
        let queued = app.jobs_json("state=queued").await;
        queued.len() == 1 && queued[0]["model"] == "fresh:latest"
    })
    .await;
    assert!(
        app.ollama.generation_requests().is_empty(),
        "held while pulling"
    );

    let pulled = pull.await.unwrap().unwrap();
    assert!(pulled
        .text()
        .await
        .unwrap()
        .ends_with("{\"status\":\"success\"}\n"));
    let answer = chat.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200, "not a 404 racing the pull");
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["message"]["content"], app.ollama.reply());
    let paths: Vec<String> = app
        .ollama
        .received_requests()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    let pulled_at = paths.iter().position(|p| p == "/api/pull").unwrap();
    let chatted_at = paths.iter().position(|p| p == "/api/chat").unwrap();
    assert!(pulled_at < chatted_at, "{paths:?}");
}

#[tokio::test]
async fn a_chat_held_for_a_pull_that_fails_gets_ollamas_404() {
    let app = hourly().spawn().await;
    app.ollama.set_pull_delay(Duration::from_millis(500));
    app.ollama.make_unpullable("ghost");
    let pull = pull_under_way(&app, "ghost").await;

    let chat = app
        .post("/api/chat", &crate::chat_body("ghost", false))
        .await;

    let error = json_answer(chat, 404).await;
    assert_eq!(
        error["error"],
        "model \"ghost\" not found, try pulling it first"
    );
    pull.await.unwrap().unwrap().text().await.unwrap();
    let after = app
        .post("/api/chat", &crate::chat_body("ghost", false))
        .await;
    assert_eq!(after.status(), 404, "unknown again once the pull is over");
}

#[tokio::test]
async fn pulling_an_installed_model_again_does_not_hold_its_chats() {
    let app = hourly().spawn().await;
    app.ollama.set_pull_delay(Duration::from_secs(3));
    let pull = pull_under_way(&app, "llama3.2").await;

    let chat = app
        .post("/api/chat", &crate::chat_body("llama3.2", false))
        .await;

    assert_eq!(chat.status(), 200);
    assert!(
        !pull.is_finished(),
        "the chat ran while the update downloads"
    );
    pull.abort();
}
