//! The jobs API: ids, states and their transitions, jobs, artifacts and webhook events.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ollama::ChatRequest;

/// Artifacts up to this size (256 KiB) are inlined in job bodies and webhook events; larger
/// ones are given by URL.
pub const INLINE_ARTIFACT_LIMIT: usize = 256 * 1024;

/// A job's id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub ulid::Ulid);

impl JobId {
    /// A fresh id for a job created now. Ids made by one process are strictly increasing,
    /// even within one millisecond, so sorting by id is submission order.
    pub fn new() -> Self {
        static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
        let mut generator = GENERATOR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // `generate` fails only if 2^80 ids were made in one millisecond.
        Self(generator.generate().unwrap_or_else(|_| ulid::Ulid::new()))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A string that is not a ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job id (expected a 26-character ULID)")]
pub struct ParseIdError(pub String);

impl FromStr for JobId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s)
            .map(Self)
            .map_err(|_| ParseIdError(s.chars().take(64).collect()))
    }
}

/// Where a job is in its life.
///
/// ```text
/// queued ──► loading ──► working ──► done
///   │  ▲        │  │        │  │
///   │  └────────┴──┼────────┘  └──► failed
///   └──────────────┴───────────────► cancelled / failed
/// ```
///
/// A job goes back to `queued` only to be retried. `done`, `failed` and `cancelled` are
/// terminal: they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for its turn.
    Queued,
    /// Its turn came and the target is loading a model that was not resident.
    Loading,
    /// The target is generating.
    Working,
    /// Finished; the result and artifacts are stored.
    Done,
    /// Gave up: an HTTP error from the target, or too many attempts.
    Failed,
    /// Cancelled by a caller, or its caller went away.
    Cancelled,
}

impl JobState {
    /// Every state, in the order a job meets them.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Loading,
        JobState::Working,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Loading => "loading",
            JobState::Working => "working",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the state is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether the job is on the target now.
    pub fn is_running(self) -> bool {
        matches!(self, JobState::Loading | JobState::Working)
    }

    /// Whether a job may move from `self` to `next`.
    ///
    /// ```
    /// use foreman_types::JobState::*;
    /// assert!(Queued.can_become(Loading));
    /// assert!(Working.can_become(Queued)); // a retry
    /// assert!(!Done.can_become(Queued)); // terminal states absorb
    /// ```
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        match self {
            Queued => matches!(next, Loading | Working | Failed | Cancelled),
            Loading => matches!(next, Working | Queued | Done | Failed | Cancelled),
            Working => matches!(next, Queued | Done | Failed | Cancelled),
            Done | Failed | Cancelled => false,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a job state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job state (one of queued, loading, working, done, failed, cancelled)")]
pub struct ParseStateError(pub String);

impl FromStr for JobState {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseStateError(s.chars().take(64).collect()))
    }
}

/// What kind of generation a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobKind {
    /// `/api/chat` (and `POST /jobs`).
    Chat,
    /// `/api/generate`.
    Generate,
    /// `/v1/chat/completions`, the OpenAI-compatible chat.
    #[serde(rename = "openai_chat")]
    OpenAiChat,
    /// `/v1/completions`, the OpenAI-compatible text completion.
    #[serde(rename = "openai_completion")]
    OpenAiCompletion,
    /// `/v1/responses`, the OpenAI Responses API.
    #[serde(rename = "openai_responses")]
    OpenAiResponses,
    /// `/v1/messages`, the Anthropic-compatible Messages API.
    #[serde(rename = "anthropic_messages")]
    AnthropicMessages,
}

impl JobKind {
    /// The kind's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Chat => "chat",
            JobKind::Generate => "generate",
            JobKind::OpenAiChat => "openai_chat",
            JobKind::OpenAiCompletion => "openai_completion",
            JobKind::OpenAiResponses => "openai_responses",
            JobKind::AnthropicMessages => "anthropic_messages",
        }
    }

    /// The Ollama path this kind is sent to.
    pub fn path(self) -> &'static str {
        match self {
            JobKind::Chat => "/api/chat",
            JobKind::Generate => "/api/generate",
            JobKind::OpenAiChat => "/v1/chat/completions",
            JobKind::OpenAiCompletion => "/v1/completions",
            JobKind::OpenAiResponses => "/v1/responses",
            JobKind::AnthropicMessages => "/v1/messages",
        }
    }

    /// Whether the kind speaks OpenAI's wire format (server-sent events, OpenAI error
    /// bodies) rather than Ollama's.
    pub fn is_openai(self) -> bool {
        matches!(
            self,
            JobKind::OpenAiChat | JobKind::OpenAiCompletion | JobKind::OpenAiResponses
        )
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chat" => Ok(JobKind::Chat),
            "generate" => Ok(JobKind::Generate),
            "openai_chat" => Ok(JobKind::OpenAiChat),
            "openai_completion" => Ok(JobKind::OpenAiCompletion),
            "openai_responses" => Ok(JobKind::OpenAiResponses),
            "anthropic_messages" => Ok(JobKind::AnthropicMessages),
            other => Err(ParseStateError(other.chars().take(64).collect())),
        }
    }
}

/// `POST /jobs`: a chat request plus what foreman needs to run it asynchronously.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitRequest {
    /// The chat to run, exactly as `/api/chat` takes it.
    #[serde(flatten)]
    pub chat: ChatRequest,
    /// Where to POST the job's state changes.
    pub state_webhook_url: Option<String>,
    /// Higher runs sooner; default 0, from -100 to 100. Sync requests run at 10, so by
    /// default they go before async jobs.
    pub priority: Option<i32>,
}

impl SubmitRequest {
    /// A job that runs this chat.
    pub fn new(chat: ChatRequest) -> Self {
        Self {
            chat,
            state_webhook_url: None,
            priority: None,
        }
    }

    /// Sets the webhook URL for state changes.
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.state_webhook_url = Some(url.into());
        self
    }

    setters! {
        priority: i32,
    }
}

/// `202 Accepted` from `POST /jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The new job's id.
    pub job_id: JobId,
}

/// How an artifact's inline `data` is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ArtifactEncoding {
    /// The bytes are UTF-8 text, given as is.
    Utf8,
    /// The bytes are binary, given in standard base64.
    Base64,
}

/// A named, typed output of a job, inline when small, else by URL.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The artifact's name (`completion`, `thinking`...).
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The content, when at most [`INLINE_ARTIFACT_LIMIT`] bytes.
    pub data: Option<String>,
    /// How `data` is encoded, when present.
    pub encoding: Option<ArtifactEncoding>,
    /// Where to fetch the content, when it is not inline.
    pub url: Option<String>,
}

/// One attempt at delivering a webhook.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    /// The delivery's `webhook-id`, the same for every attempt at one event.
    pub webhook_id: String,
    /// The state the event announced.
    pub state: JobState,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// When the attempt was made.
    pub at: DateTime<Utc>,
}

/// A job, as `GET /jobs/{id}` shows it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// The model it runs on.
    pub model: String,
    /// Where it is in its life.
    pub state: JobState,
    /// How many times the worker has started it.
    pub attempts: u32,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// Why it failed, when it did; unlike the other optional fields it is always on the
    /// wire, `null` until then.
    #[serialize_always]
    pub error: Option<String>,
    /// The final Ollama chat response, once done; always on the wire, `null` until then.
    #[serialize_always]
    pub result: Option<Value>,
    /// Its outputs, once done.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// What kind of generation it is.
    #[serde(default = "default_kind")]
    pub kind: JobKind,
    /// Its priority: higher runs sooner.
    #[serde(default)]
    pub priority: i32,
    /// Jobs ahead of it, while queued.
    pub queue_position: Option<u64>,
    /// While queued, roughly how long until it starts, in milliseconds: the jobs ahead
    /// times the recent mean run time, plus what is left of the running job. Absent
    /// until foreman has seen a job run.
    pub estimated_wait_ms: Option<u64>,
    /// The webhook URL its state changes go to.
    pub state_webhook_url: Option<String>,
    /// Every webhook delivery attempt so far, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_attempts: Vec<WebhookAttempt>,
    /// The target (Ollama host) it runs on or last ran on, by name; absent until its
    /// first run starts.
    pub target: Option<String>,
    /// The API key that submitted it (`admin` for `FOREMAN_AUTH_TOKEN`); absent on an
    /// open foreman.
    pub key: Option<String>,
    /// The end user its key named (`X-OpenWebUI-User-Id`, `X-User-Id`), if any.
    pub user: Option<String>,
    /// Prompt tokens, as the target reported them, once it ran.
    pub prompt_tokens: Option<u64>,
    /// Output tokens, as the target reported them, once it ran.
    pub output_tokens: Option<u64>,
}

fn default_kind() -> JobKind {
    JobKind::Chat
}

/// A page of `GET /jobs`, newest first.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs on this page.
    pub jobs: Vec<Job>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The body of a webhook delivery: one state change of one job.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// `job.<state>`, for example `job.done`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The job.
    pub job_id: JobId,
    /// The state it entered.
    pub state: JobState,
    /// The model it runs on.
    pub model: String,
    /// How many times the worker has started it.
    pub attempts: u32,
    /// When it entered the state.
    pub timestamp: DateTime<Utc>,
    /// Why it failed, on `job.failed`.
    pub error: Option<String>,
    /// The final chat response, on `job.done`.
    pub result: Option<Value>,
    /// The artifacts, on `job.done`.
    pub artifacts: Option<Vec<Artifact>>,
}

impl WebhookEvent {
    /// The event type for a state: `job.<state>`.
    pub fn kind_for(state: JobState) -> String {
        format!("job.{state}")
    }
}
