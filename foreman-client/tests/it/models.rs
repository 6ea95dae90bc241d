//! Model management: against the fake Ollama as against a plain Ollama, and through
//! foreman with its admin token.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use foreman_client::{
    Client, CopyRequest, CreateRequest, DeleteRequest, Error, ProgressResponse, ProgressStream,
    PullRequest, PushRequest,
};
use foreman_testkit::{FakeOllama, TestApp};
use futures::TryStreamExt;

async fn fake() -> (FakeOllama, Client) {
    let ollama = FakeOllama::start().await;
    let client = Client::new(ollama.url()).unwrap();
    (ollama, client)
}

/// Every line of a progress stream, each of them `Ok`.
async fn all(
    stream: impl Future<Output = foreman_client::Result<ProgressStream>>,
) -> Vec<ProgressResponse> {
    stream.await.unwrap().try_collect().await.unwrap()
}

async fn names(client: &Client) -> Vec<String> {
    let tags = client.tags().await.unwrap();
    tags.models.into_iter().map(|m| m.name).collect()
}

#[tokio::test]
async fn pull_streams_typed_progress_ending_in_success() {
    let (ollama, client) = fake().await;

    let lines = all(client.pull(PullRequest::new("gemma3"))).await;

    assert_eq!(lines[0].status, "pulling manifest");
    let layer = lines.iter().find(|l| l.digest.is_some()).unwrap();
    assert!(layer.status.starts_with("pulling ") && layer.total.is_some());
    assert!(lines.last().unwrap().is_success());
    let sent = &ollama.received_requests()[0];
    assert_eq!(sent.url.path(), "/api/pull");
    let body: serde_json::Value = sent.body_json().unwrap();
    assert_eq!(body["stream"], true);
    assert!(names(&client).await.contains(&"gemma3:latest".to_owned()));
}

#[tokio::test]
async fn a_pull_that_fails_midway_is_a_stream_error() {
    let (ollama, client) = fake().await;
    ollama.make_unpullable("nope");

    let lines: Vec<_> =
        futures::StreamExt::collect(client.pull(PullRequest::new("nope")).await.unwrap()).await;

    assert!(lines[0].is_ok());
    assert!(
        matches!(lines.last(), Some(Err(Error::Stream(m))) if m == "pull model manifest: file does not exist"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn copy_and_delete_change_the_list_and_unknown_models_are_404() {
    let (_ollama, client) = fake().await;

    client
        .copy(CopyRequest::new("llama3.2", "backup"))
        .await
        .unwrap();
    assert!(names(&client).await.contains(&"backup:latest".to_owned()));
    client.delete(DeleteRequest::new("backup")).await.unwrap();
    assert!(!names(&client).await.contains(&"backup:latest".to_owned()));

    let err = client
        .delete(DeleteRequest::new("backup"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = client
        .copy(CopyRequest::new("nope", "x"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn create_works_from_a_model_and_from_an_uploaded_blob() {
    let (ollama, client) = fake().await;
    let data = b"GGUF weights for a test".to_vec();
    let digest = "sha256:".to_owned() + &sha256_hex(&data);

    assert!(!client.blob_exists(&digest).await.unwrap());
    client.upload_blob(&digest, data.clone()).await.unwrap();
    assert!(client.blob_exists(&digest).await.unwrap());
    assert_eq!(ollama.blobs(), vec![digest.clone()]);
    let wrong = "sha256:".to_owned() + &"0".repeat(64);
    let err = client.upload_blob(&wrong, data).await.unwrap_err();
    assert_eq!(err.status(), Some(400));

    let files = BTreeMap::from([("model.gguf".to_owned(), digest)]);
    let lines = all(client.create(CreateRequest::new("mine").files(files))).await;
    assert!(lines.last().unwrap().is_success());
    let lines = all(client.create(
        CreateRequest::new("mario")
            .from("llama3.2")
            .system("It's a me"),
    ))
    .await;
    assert!(lines
        .iter()
        .any(|l| l.status.starts_with("using existing layer")));
    let now = names(&client).await;
    assert!(now.contains(&"mine:latest".to_owned()) && now.contains(&"mario:latest".to_owned()));
}

#[tokio::test]
async fn push_streams_progress() {
    let (_ollama, client) = fake().await;

    let lines = all(client.push(PushRequest::new("llama3.2"))).await;

    assert_eq!(lines[0].status, "retrieving manifest");
    assert!(lines.last().unwrap().is_success());
}

#[tokio::test]
async fn through_foreman_management_needs_the_token_and_lists_the_change_at_once() {
    let app = TestApp::builder()
        .auth_token("admin")
        .configure(|c| c.poll_interval = Duration::from_secs(3600))
        .spawn()
        .await;
    let anonymous = Client::new(&app.url).unwrap();
    let err = match anonymous.pull(PullRequest::new("gemma3")).await {
        Ok(_) => panic!("a pull without the token must fail"),
        Err(err) => err,
    };
    assert!(err.is_unauthorized(), "{err}");

    let lines = all(app.client.pull(PullRequest::new("gemma3"))).await;
    assert!(lines.last().unwrap().is_success());
    assert!(names(&app.client)
        .await
        .contains(&"gemma3:latest".to_owned()));
    app.client
        .copy(CopyRequest::new("gemma3", "gemma3-copy"))
        .await
        .unwrap();
    assert!(names(&app.client)
        .await
        .contains(&"gemma3-copy:latest".to_owned()));
    app.client
        .delete(DeleteRequest::new("gemma3-copy"))
        .await
        .unwrap();
    assert!(!names(&app.client)
        .await
        .contains(&"gemma3-copy:latest".to_owned()));
}

/// The hex sha256 of `data`, as a blob digest names it.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
