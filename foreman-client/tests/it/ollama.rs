//! The Ollama half against the fake Ollama, as against a plain Ollama.

use foreman_client::{
    ChatMessage, ChatRequest, Client, EmbedRequest, EmbeddingsRequest, Error, GenerateRequest,
    ShowRequest,
};
use foreman_testkit::FakeOllama;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

const REPLY: &str = "The sky is blue because of Rayleigh scattering.";

fn chat_request(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![ChatMessage::user("Why is the sky blue?")])
        .options(json!({"temperature": 0}))
}

async fn fake() -> (FakeOllama, Client) {
    let ollama = FakeOllama::builder().reply(REPLY).chunks(5).start().await;
    let client = Client::new(ollama.url()).unwrap();
    (ollama, client)
}

#[tokio::test]
async fn chat_returns_the_whole_reply_and_asks_for_no_stream() {
    let (ollama, client) = fake().await;

    let answer = client.chat(chat_request("llama3.2")).await.unwrap();

    assert_eq!(answer.message.content, REPLY);
    assert_eq!(answer.message.role, "assistant");
    assert!(answer.done);
    let sent = ollama.generation_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["stream"], false);
    assert_eq!(
        sent[0]["options"],
        json!({"temperature": 0}),
        "options pass through"
    );
}

#[tokio::test]
async fn chat_stream_yields_chunks_that_concatenate_to_the_reply_and_ends_on_done() {
    let (ollama, client) = fake().await;

    let chunks: Vec<_> = client
        .chat_stream(chat_request("llama3.2"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();

    assert!(chunks.len() > 2, "several chunks, got {}", chunks.len());
    let text: String = chunks.iter().map(|c| c.message.content.as_str()).collect();
    assert_eq!(text, REPLY);
    let (last, rest) = chunks.split_last().unwrap();
    assert!(last.done);
    assert_eq!(last.done_reason.as_deref(), Some("stop"));
    assert!(rest.iter().all(|c| !c.done));
    assert_eq!(ollama.generation_requests()[0]["stream"], true);
}

#[tokio::test]
async fn generate_and_generate_stream_give_the_same_text() {
    let (ollama, client) = fake().await;

    let whole = client
        .generate(GenerateRequest::new("qwen2.5:0.5b", "Why?"))
        .await
        .unwrap();
    let streamed: Vec<_> = client
        .generate_stream(GenerateRequest::new("qwen2.5:0.5b", "Why?"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(whole.response, REPLY);
    assert!(whole.done);
    let text: String = streamed.iter().map(|c| c.response.as_str()).collect();
    assert_eq!(text, REPLY);
    assert!(streamed.len() > 2 && streamed.last().unwrap().done);
    let sent = ollama.generation_requests();
    assert_eq!(
        (&sent[0]["stream"], &sent[1]["stream"]),
        (&json!(false), &json!(true))
    );
}

#[tokio::test]
async fn embed_gives_one_vector_per_input() {
    let (_ollama, client) = fake().await;

    let one = client
        .embed(EmbedRequest::new(
            "nomic-embed-text",
            "Why is the sky blue?",
        ))
        .await
        .unwrap();
    let inputs = vec!["first".to_owned(), "second".to_owned(), "third".to_owned()];
    let many = client
        .embed(EmbedRequest::new("nomic-embed-text", inputs))
        .await
        .unwrap();

    assert_eq!(one.embeddings.len(), 1);
    assert!(!one.embeddings[0].is_empty());
    assert_eq!(many.embeddings.len(), 3);
    assert_ne!(many.embeddings[0], many.embeddings[1]);
}

#[tokio::test]
async fn legacy_embeddings_give_one_vector() {
    let (_ollama, client) = fake().await;
    let request = EmbeddingsRequest {
        model: "nomic-embed-text".into(),
        prompt: "Here is an article".into(),
        extra: Default::default(),
    };

    let answer = client.embeddings(request).await.unwrap();

    assert!(!answer.embedding.is_empty());
}

#[tokio::test]
async fn tags_ps_show_and_version_describe_the_target() {
    let ollama = FakeOllama::builder()
        .model("llama3.2")
        .resident("llama3.2")
        .start()
        .await;
    let client = Client::new(ollama.url()).unwrap();

    let tags = client.tags().await.unwrap();
    let ps = client.ps().await.unwrap();
    let shown = client.show(ShowRequest::new("llama3.2")).await.unwrap();
    let version = client.version().await.unwrap();

    let names: Vec<&str> = tags.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["llama3.2:latest"]);
    assert_eq!(ps.models.len(), 1);
    assert_eq!(ps.models[0].name, "llama3.2:latest");
    assert!(shown.details.family.is_some() || shown.capabilities.is_some());
    assert!(!version.version.is_empty());
}

#[tokio::test]
async fn chat_returns_404_with_ollamas_message_for_an_unknown_model() {
    let (_ollama, client) = fake().await;

    let err = client
        .chat(chat_request("no-such-model"))
        .await
        .unwrap_err();
    let stream_err = client
        .chat_stream(chat_request("no-such-model"))
        .await
        .err()
        .expect("the stream is refused before it starts");

    for err in [err, stream_err] {
        assert!(err.is_not_found());
        assert!(
            matches!(&err, Error::Api { status: 404, message }
                if message == "model \"no-such-model\" not found, try pulling it first"),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_target_gives_an_api_error_with_its_status_and_message() {
    let (ollama, client) = fake().await;
    ollama.fail_generations(500, json!({"error": "llama runner process has terminated"}));

    let err = client
        .generate(GenerateRequest::new("llama3.2", "hi"))
        .await
        .unwrap_err();

    assert_eq!(err.status(), Some(500));
    assert!(
        err.to_string()
            .contains("llama runner process has terminated"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_is_sent_as_a_bearer_authorization_header() {
    let ollama = FakeOllama::builder().token("s3cret").start().await;
    let with_token = Client::builder()
        .base_url(ollama.url())
        .token("s3cret")
        .build()
        .unwrap();
    let without = Client::new(ollama.url()).unwrap();

    with_token.tags().await.unwrap();
    let mut stream = with_token
        .chat_stream(chat_request("llama3.2"))
        .await
        .unwrap();
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
    let refused = without.tags().await.unwrap_err();

    let received = ollama.received_requests();
    let auth: Vec<_> = received
        .iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        auth,
        [
            Some("Bearer s3cret".to_owned()),
            Some("Bearer s3cret".to_owned()),
            None
        ]
    );
    assert!(refused.is_unauthorized(), "{refused:?}");
}
