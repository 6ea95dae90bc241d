//! The fake's model management, checked against the shapes Ollama's routes answer.

use std::time::Duration;

use foreman_testkit::FakeOllama;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{ndjson, post, send};

#[tokio::test]
async fn a_pull_streams_per_layer_progress_and_installs_the_model() {
    let ollama = FakeOllama::start().await;

    let response = post(&ollama, "/api/pull", json!({"model": "gemma3"})).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&response.text().await.unwrap());
    assert_eq!(lines[0], json!({"status": "pulling manifest"}));
    assert_eq!(lines.last().unwrap(), &json!({"status": "success"}));
    let layers: Vec<&Value> = lines.iter().filter(|l| l.get("digest").is_some()).collect();
    assert!(layers.len() >= 4, "{lines:?}");
    for line in &layers {
        let digest = line["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        assert_eq!(line["status"], format!("pulling {}", &digest[7..19]));
        assert!(line["completed"].as_u64().unwrap_or(0) <= line["total"].as_u64().unwrap());
    }
    assert!(ollama.models().contains(&"gemma3:latest".to_owned()));
}

#[tokio::test]
async fn a_pull_without_streaming_answers_the_last_line_and_a_missing_name_fails() {
    let ollama = FakeOllama::start().await;
    ollama.make_unpullable("nope");

    let whole = post(&ollama, "/api/pull", json!({"model": "x", "stream": false})).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        whole.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );

    let streamed = post(&ollama, "/api/pull", json!({"model": "nope"})).await;
    assert_eq!(
        streamed.status(),
        StatusCode::OK,
        "the error comes after the stream started"
    );
    let lines = ndjson(&streamed.text().await.unwrap());
    assert_eq!(
        lines.last().unwrap()["error"],
        "pull model manifest: file does not exist"
    );
    let failed = post(
        &ollama,
        "/api/pull",
        json!({"name": "nope", "stream": false}),
    )
    .await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!ollama.models().contains(&"nope:latest".to_owned()));
}

#[tokio::test]
async fn a_pulled_model_appears_once_the_pull_delay_is_over() {
    let ollama = FakeOllama::start().await;
    ollama.set_pull_delay(Duration::from_millis(300));

    let url = format!("{}/api/pull", ollama.url());
    let pull = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .json(&json!({"model": "slow"}))
            .send(),
    );
    foreman_testkit::eventually(Duration::from_secs(5), "the pull to arrive", || {
        let seen = ollama.requests_to("/api/pull");
        async move { seen == 1 }
    })
    .await;
    assert!(
        !ollama.models().contains(&"slow:latest".to_owned()),
        "not before it is done"
    );
    let response = pull.await.unwrap().unwrap();
    response.text().await.unwrap();
    assert!(ollama.models().contains(&"slow:latest".to_owned()));
}

#[tokio::test]
async fn copy_and_delete_change_the_model_list() {
    let ollama = FakeOllama::start().await;

    let copied = post(
        &ollama,
        "/api/copy",
        json!({"source": "llama3.2", "destination": "backup"}),
    )
    .await;
    assert_eq!(copied.status(), StatusCode::OK);
    assert!(copied.bytes().await.unwrap().is_empty());
    assert!(ollama.models().contains(&"backup:latest".to_owned()));
    let missing = post(
        &ollama,
        "/api/copy",
        json!({"source": "nope", "destination": "x"}),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let deleted = send(
        &ollama,
        Method::DELETE,
        "/api/delete",
        json!({"model": "backup"}),
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(!ollama.models().contains(&"backup:latest".to_owned()));
    let again = send(
        &ollama,
        Method::DELETE,
        "/api/delete",
        json!({"model": "backup"}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(again.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("not found"));
}

#[tokio::test]
async fn blobs_are_checked_against_their_digest_and_create_uses_them() {
    let ollama = FakeOllama::start().await;
    let data = b"GGUF fake weights".to_vec();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    let http = reqwest::Client::new();
    let blob = format!("{}/api/blobs/{digest}", ollama.url());

    assert_eq!(
        http.head(&blob).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let wrong = http
        .post(&blob)
        .body(b"other".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let created = http.post(&blob).body(data.clone()).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        http.head(&blob).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(ollama.blobs(), vec![digest.clone()]);

    let response = post(
        &ollama,
        "/api/create",
        json!({"model": "mine", "files": {"model.gguf": digest}}),
    )
    .await;
    let lines = ndjson(&response.text().await.unwrap());
    assert_eq!(lines.last().unwrap(), &json!({"status": "success"}));
    assert!(ollama.models().contains(&"mine:latest".to_owned()));

    let from = post(
        &ollama,
        "/api/create",
        json!({"model": "mario", "from": "llama3.2", "system": "It's a me"}),
    )
    .await;
    assert!(from.text().await.unwrap().contains("using existing layer"));
    let neither = post(&ollama, "/api/create", json!({"model": "x"})).await;
    assert_eq!(neither.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn push_streams_progress_and_status_reports_the_cloud() {
    let ollama = FakeOllama::start().await;

    let pushed = post(&ollama, "/api/push", json!({"model": "llama3.2"})).await;
    let lines = ndjson(&pushed.text().await.unwrap());
    assert_eq!(lines[0], json!({"status": "retrieving manifest"}));
    assert!(lines
        .iter()
        .any(|l| l["status"].as_str().unwrap().starts_with("pushing ")));
    assert_eq!(lines.last().unwrap(), &json!({"status": "success"}));

    let status: Value = reqwest::get(format!("{}/api/status", ollama.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"cloud": {"disabled": false, "source": "none"}})
    );
}
