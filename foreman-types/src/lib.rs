//! Shared types for foreman: the Ollama wire format, the jobs API, webhook events and their
//! signatures.
//!
//! This crate does no I/O. The server uses it to parse and answer requests, the
//! [`foreman-client`](https://docs.rs/foreman-client) SDK uses it to speak to the server, and
//! webhook receivers use [`Webhook`] to check that a delivery really came from foreman.
//!
//! ```
//! use foreman_types::{ChatMessage, ChatRequest, JobState};
//!
//! let request = ChatRequest::new("llama3.2", vec![ChatMessage::user("Why is the sky blue?")])
//!     .stream(false);
//! let json = serde_json::to_string(&request).unwrap();
//! assert!(json.contains(r#""stream":false"#));
//! assert!(JobState::Done.is_terminal());
//! ```
//!
//! # Layout
//! - [`ollama`]: Ollama's own request and response bodies, model management and its
//!   progress lines included. Every struct keeps the fields it does not model in an `extra`
//!   map, so a parse and re-serialise loses nothing.
//! - [`backoff`]: doubling waits with a cap, for everything that retries or polls.
//! - [`jobs`]: job ids, states and their transitions, jobs, artifacts, webhook events.
//! - [`keys`]: API keys (`/admin/keys`) and usage per key, user and model (`/usage`).
//! - [`ndjson`]: splitting a streamed answer into lines, each capped at [`MAX_LINE`].
//! - [`webhook`]: signing and verifying webhook deliveries, in the prototype's
//!   `X-Foreman-Signature` format and the Standard Webhooks format.

/// Chained setters for a wire struct's optional fields, each `Sets `name`.`: `name: Type`
/// stores `Some(value)`, `name: into Type` stores `Some(value.into())`.
macro_rules! setters {
    () => {};
    ($name:ident: into $ty:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($name), "`.")]
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$name = Some(value.into());
            self
        }
        setters!($($($rest)*)?);
    };
    ($name:ident: $ty:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($name), "`.")]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = Some(value);
            self
        }
        setters!($($($rest)*)?);
    };
}

pub mod backoff;
pub mod jobs;
pub mod keys;
pub mod ndjson;
pub mod ollama;
pub mod webhook;

pub use backoff::Backoff;
pub use jobs::{
    Accepted, Artifact, ArtifactEncoding, Job, JobId, JobKind, JobList, JobState, ParseIdError,
    ParseStateError, SubmitRequest, WebhookAttempt, WebhookEvent, INLINE_ARTIFACT_LIMIT,
};
pub use keys::{ApiKey, CreatedKey, KeyList, NewKey, UsageReport, UsageRow, MAX_WEIGHT};
pub use ndjson::{LineSplitter, LineTooLong, MAX_LINE};
pub use ollama::{
    model_key, model_owner, ollama_anthropic_error, ChatChunk, ChatMessage, ChatRequest,
    CopyRequest, CreateRequest, DeleteRequest, EmbedInput, EmbedRequest, EmbedResponse,
    EmbeddingsRequest, EmbeddingsResponse, ErrorBody, GenerateChunk, GenerateRequest, Metrics,
    ModelDetails, ModelInfo, ProgressResponse, PsResponse, PullRequest, PushRequest,
    RegistryRequest, RunningModel, ShowRequest, ShowResponse, TagsResponse, ToolCall,
    ToolCallFunction, VersionResponse,
};
pub use webhook::{
    verify_signature, SignatureError, SignedHeaders, Webhook, DEFAULT_TOLERANCE,
    FOREMAN_SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
};
