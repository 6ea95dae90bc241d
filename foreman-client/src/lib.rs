//! The async Rust SDK for [foreman](https://github.com/foreman-rs/foreman), the durable queue
//! in front of an Ollama server.
//!
//! One [`Client`] speaks both halves of foreman's API:
//! - **the Ollama half** ([`chat`](Client::chat), [`chat_stream`](Client::chat_stream),
//!   [`generate`](Client::generate), [`embed`](Client::embed), [`tags`](Client::tags),
//!   [`ps`](Client::ps), ...) and model management ([`pull`](Client::pull),
//!   [`create`](Client::create), [`copy`](Client::copy), [`delete`](Client::delete),
//!   [`push`](Client::push), blobs), which also works against a plain Ollama;
//! - **the foreman half**: background jobs ([`submit`](Client::submit),
//!   [`wait`](Client::wait), [`watch`](Client::watch), [`artifact`](Client::artifact),
//!   [`cancel`](Client::cancel)), [`health`](Client::health) and [`queue`](Client::queue);
//!   API keys for admins ([`create_key`](Client::create_key), [`keys`](Client::keys),
//!   [`revoke_key`](Client::revoke_key)) and [`usage`](Client::usage).
//!
//! Every method returns this crate's [`Result`]; its [`Error`] carries the server's status and
//! message for API errors. The wire types come from `foreman-types` and are re-exported here,
//! so this crate is the only dependency an application needs.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use foreman_client::{ChatMessage, ChatRequest, Client, JobState, SubmitRequest};
//! use futures::StreamExt;
//!
//! # async fn run() -> foreman_client::Result<()> {
//! // FOREMAN_URL and FOREMAN_AUTH_TOKEN, as the `foreman` CLI reads them.
//! let client = Client::from_env()?;
//!
//! // Synchronous chat, streamed token by token. foreman queues it until the GPU is free.
//! let question = ChatRequest::new("llama3.2", vec![ChatMessage::user("Why is the sky blue?")]);
//! let mut stream = client.chat_stream(question.clone()).await?;
//! while let Some(chunk) = stream.next().await {
//!     print!("{}", chunk?.message.content);
//! }
//!
//! // The same question as a background job that survives restarts.
//! let id = client.submit(SubmitRequest::new(question)).await?;
//! let job = client.wait(id, Duration::from_secs(600)).await?;
//! if job.state == JobState::Done {
//!     let answer = client.artifact(id, "completion").await?;
//!     println!("{}", answer.text().unwrap_or_default());
//! }
//! # Ok(()) }
//! ```
//!
//! # Receiving webhooks
//!
//! A job submitted with a `state_webhook_url` has each state change POSTed there. When
//! foreman runs with `FOREMAN_WEBHOOK_SECRET`, check the signature on the raw body before
//! trusting it. [`Webhook::verify`] checks the Standard Webhooks headers (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`) in constant time and rejects stale timestamps;
//! [`verify_signature`] checks the older `X-Foreman-Signature` header alone. In an axum
//! handler, take the body as `Bytes` and the headers as `HeaderMap`, then:
//!
//! ```no_run
//! use foreman_client::{Webhook, WebhookEvent};
//! use reqwest::header::HeaderMap;
//!
//! fn receive(body: &[u8], headers: &HeaderMap) -> Result<WebhookEvent, Box<dyn std::error::Error>> {
//!     let secret = std::env::var("FOREMAN_WEBHOOK_SECRET")?;
//!     Webhook::new(&secret)?.verify(body, headers)?;
//!     // Parse only once the body is known to come from foreman.
//!     let event: WebhookEvent = serde_json::from_slice(body)?;
//!     println!("job {} is now {}", event.job_id, event.state);
//!     Ok(event)
//! }
//! ```
//!
//! # Layout
//! - `client`: [`Client`] and [`ClientBuilder`], and the request plumbing.
//! - `ollama`: the Ollama half's generations and metadata.
//! - `models`: the Ollama half's model management (admin-only through foreman).
//! - `jobs`: the foreman half, with [`Health`], [`JobQuery`] and [`ArtifactContent`].
//! - `keys`: API keys and usage, with [`UsageQuery`].
//! - `wait`: following a job until it ends, by polling with backoff.
//! - `stream`: NDJSON parsing behind [`ChatStream`], [`GenerateStream`] and
//!   [`ProgressStream`].
//! - `error`: [`Error`] and [`Result`].

mod client;
mod error;
mod jobs;
mod keys;
mod models;
mod ollama;
mod stream;
mod wait;

pub use client::{Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_URL};
pub use error::{Error, Result};
pub use jobs::{ArtifactContent, Health, JobQuery, TargetHealth};
pub use keys::UsageQuery;
pub use stream::{ChatStream, GenerateStream, ProgressStream};
pub use wait::{JobWatch, FIRST_POLL_INTERVAL, MAX_POLL_INTERVAL};

/// `Bytes`, the type of [`ArtifactContent::data`].
pub use bytes::Bytes;

pub use foreman_types::{
    model_key, Accepted, ApiKey, Artifact, ArtifactEncoding, ChatChunk, ChatMessage, ChatRequest,
    CopyRequest, CreateRequest, CreatedKey, DeleteRequest, EmbedInput, EmbedRequest, EmbedResponse,
    EmbeddingsRequest, EmbeddingsResponse, ErrorBody, GenerateChunk, GenerateRequest, Job, JobId,
    JobKind, JobList, JobState, KeyList, Metrics, ModelDetails, ModelInfo, NewKey, ParseIdError,
    ParseStateError, ProgressResponse, PsResponse, PullRequest, PushRequest, RunningModel,
    ShowRequest, ShowResponse, SubmitRequest, TagsResponse, ToolCall, ToolCallFunction,
    UsageReport, UsageRow, VersionResponse, WebhookAttempt, WebhookEvent, INLINE_ARTIFACT_LIMIT,
};

/// Verifying webhook deliveries, so a receiver needs only this crate.
pub use foreman_types::{
    verify_signature, SignatureError, SignedHeaders, Webhook, DEFAULT_TOLERANCE,
    FOREMAN_SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
};

/// The whole `foreman-types` crate, for what is not re-exported above.
pub use foreman_types as types;
