//! The SDK against a real foreman (in front of the fake Ollama): both halves end to end.

use std::time::Duration;

use foreman_client::{
    ChatMessage, ChatRequest, EmbedRequest, GenerateRequest, JobQuery, JobState, SubmitRequest,
};
use foreman_testkit::TestApp;
use futures::StreamExt;

const DEADLINE: Duration = Duration::from_secs(10);

fn chat() -> ChatRequest {
    ChatRequest::new("llama3.2", vec![ChatMessage::user("hello")])
}

#[tokio::test]
async fn the_ollama_half_works_through_foreman() {
    let app = TestApp::spawn().await;
    let client = &app.client;
    assert_eq!(
        client.chat(chat()).await.unwrap().message.content,
        app.ollama.reply()
    );
    let mut stream = client.chat_stream(chat()).await.unwrap();
    let mut content = String::new();
    let mut last = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        content.push_str(&chunk.message.content);
        last = Some(chunk);
    }
    assert_eq!(content, app.ollama.reply());
    assert!(last.unwrap().done);
    let generated = client
        .generate(GenerateRequest::new("llama3.2", "hi"))
        .await
        .unwrap();
    assert_eq!(generated.response, app.ollama.reply());
    let embedded = client
        .embed(EmbedRequest::new(
            "nomic-embed-text",
            vec!["a".to_owned(), "b".to_owned()],
        ))
        .await
        .unwrap();
    assert_eq!(embedded.embeddings.len(), 2);
    assert!(!client.tags().await.unwrap().models.is_empty());
    client.ps().await.unwrap();
    assert!(!client.version().await.unwrap().version.is_empty());
    let missing = client
        .chat(ChatRequest::new("nope", vec![ChatMessage::user("x")]))
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test]
async fn the_jobs_half_submits_waits_watches_and_fetches_artifacts() {
    let app = TestApp::spawn().await;
    let client = &app.client;
    let health = client.health().await.unwrap();
    assert!(!health.degraded);
    let id = client.submit(SubmitRequest::new(chat())).await.unwrap();
    let states: Vec<JobState> = client
        .watch(id)
        .map(|job| job.unwrap().state)
        .collect()
        .await;
    assert_eq!(states.last(), Some(&JobState::Done), "{states:?}");
    let job = client.wait(id, DEADLINE).await.unwrap();
    assert_eq!(job.state, JobState::Done);
    let completion = client.artifact(id, "completion").await.unwrap();
    assert_eq!(completion.text(), Some(app.ollama.reply().as_str()));
    assert!(completion.content_type.starts_with("text/plain"));
    let listed = client
        .jobs(&JobQuery::new().state(JobState::Done))
        .await
        .unwrap();
    assert_eq!(listed.jobs[0].id, id);
    let queue = client.queue().await.unwrap();
    assert_eq!(queue["depth"], 0);
}

#[tokio::test]
async fn wait_times_out_on_a_job_that_does_not_finish_and_cancel_ends_it() {
    let app = TestApp::with_generation_delay(Duration::from_secs(30)).await;
    let id = app.client.submit(SubmitRequest::new(chat())).await.unwrap();
    let err = app
        .client
        .wait(id, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let cancelled = app.client.cancel(id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_job() {
    let app = TestApp::spawn().await;
    let first = app
        .client
        .submit_with_key(SubmitRequest::new(chat()), "key-1")
        .await
        .unwrap();
    let again = app
        .client
        .submit_with_key(SubmitRequest::new(chat()), "key-1")
        .await
        .unwrap();
    assert_eq!(first, again);
}
