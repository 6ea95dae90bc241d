//! Streamed answers with scripted bodies: error lines, cut-off streams, dropped consumers.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, Client, Error, GenerateRequest};
use foreman_sim::SimConfig;
use futures::StreamExt;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::answering_once;

fn chat_request() -> ChatRequest {
    ChatRequest::new("llama3.2", vec![ChatMessage::user("hi")])
}

fn chat_line(content: &str, done: bool) -> String {
    format!(
        "{{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{content}\"}},\"done\":{done}}}\n"
    )
}

async fn ndjson_server(route: &str, body: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .and(body_partial_json(serde_json::json!({"stream": true})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson"))
        .mount(&server)
        .await;
    server
}

/// Every item of a streamed chat whose target answers `body`.
async fn chat_items(body: String) -> Vec<foreman_client::Result<foreman_client::ChatChunk>> {
    let server = ndjson_server("/api/chat", body).await;
    let client = Client::new(server.uri()).unwrap();
    client
        .chat_stream(chat_request())
        .await
        .unwrap()
        .collect()
        .await
}

#[tokio::test]
async fn an_error_line_mid_stream_becomes_an_err_item_and_ends_the_stream() {
    let body = format!(
        "{}{}{{\"error\":\"an error was encountered while running the model\"}}\n{}",
        chat_line("The", false),
        chat_line(" sky", false),
        chat_line("", true)
    );
    let items = chat_items(body).await;

    assert_eq!(items.len(), 3, "two chunks, then the error, then nothing");
    assert_eq!(items[0].as_ref().unwrap().message.content, "The");
    assert!(
        matches!(&items[2], Err(Error::Stream(m)) if m.contains("error was encountered")),
        "{:?}",
        items[2]
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_a_done_chunk_ends_with_an_error() {
    let body = format!("{}{}", chat_line("The", false), chat_line(" sky", false));
    let items = chat_items(body).await;

    assert_eq!(items.len(), 3);
    assert!(matches!(&items[2], Err(Error::Stream(m)) if m.contains("final chunk")));
}

#[tokio::test]
async fn generate_stream_parses_generate_chunks() {
    let body = concat!(
        "{\"model\":\"m\",\"response\":\"4\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"2\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"eval_count\":2}\n"
    );
    let server = ndjson_server("/api/generate", body.to_owned()).await;
    let client = Client::new(server.uri()).unwrap();

    let chunks: Vec<_> = client
        .generate_stream(GenerateRequest::new("m", "6*7?"))
        .await
        .unwrap()
        .map(|chunk| chunk.unwrap())
        .collect()
        .await;

    let text: String = chunks.iter().map(|c| c.response.as_str()).collect();
    assert_eq!(text, "42");
    assert_eq!(chunks.last().unwrap().metrics.eval_count, Some(2));
}

#[tokio::test]
async fn an_error_status_is_returned_before_the_stream_starts() {
    let busy =
        ResponseTemplate::new(503).set_body_json(serde_json::json!({"error": "server busy"}));
    let (_server, client) = answering_once("POST", "/api/chat", busy).await;

    let err = client.chat_stream(chat_request()).await.err().unwrap();

    assert!(
        matches!(&err, Error::Api { status: 503, message } if message == "server busy"),
        "{err:?}"
    );
}

#[tokio::test]
async fn dropping_a_stream_closes_the_connection_to_the_server() {
    let sim = foreman_sim::spawn(SimConfig::manual()).await.unwrap();
    let client = Client::new(sim.url()).unwrap();
    let mut stream = client.chat_stream(chat_request()).await.unwrap();
    // A generation that never ends: the only way out is the client hanging up.
    let generation = sim
        .next_generation(Duration::from_secs(5))
        .await
        .expect("the chat reached the server");
    generation.token("Once");
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.message.content, "Once");

    drop(stream);

    tokio::time::timeout(Duration::from_secs(5), generation.hung_up())
        .await
        .expect("the connection closes soon after the stream is dropped");
}
