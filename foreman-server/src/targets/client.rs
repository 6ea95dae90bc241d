//! The HTTP client for one Ollama host ("a target").
//!
//! Connection failures are told apart from HTTP errors because they are handled apart:
//! the first are retried (the host may come back), the second are the host's answer. No
//! timeout covers a whole generation, which may rightly take many minutes; only connecting,
//! the short metadata calls and the silence between two chunks of a generation
//! (`FOREMAN_STALL_TIMEOUT`, see [`next_chunk`]) are bounded.

use std::time::Duration;

use bytes::Bytes;
use foreman_types::ErrorBody;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::config::Secret;

/// How long connecting to the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a metadata call (tags, ps, show, version, embeddings) may take in all.
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to the target failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TargetError {
    /// The target could not be reached, or the connection broke: worth retrying.
    #[error("cannot reach the target: {0}")]
    Connection(String),
    /// The target answered with an error status.
    #[error("the target answered {status}: {message}")]
    Http { status: StatusCode, message: String },
    /// The target answered something that is not what Ollama sends.
    #[error("the target's answer could not be read: {0}")]
    Decode(String),
}

impl TargetError {
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        let message = error_chain(&err);
        if err.is_decode() {
            TargetError::Decode(message)
        } else {
            TargetError::Connection(message)
        }
    }

    /// Reads an error response: Ollama's `{"error": ...}` when it is one, else the text.
    pub(crate) async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        TargetError::Http {
            status,
            message: error_message(&body),
        }
    }
}

/// An error and its causes, `outer: inner: innermost`: reqwest's own message is only
/// "error sending request", the reason (refused, reset, timed out) is in its sources.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

/// The message of an Ollama error body (`{"error": "..."}`) or of an OpenAI one (from the
/// `/v1` routes, `{"error": {"message": "..."}}`), or the body as text.
pub(crate) fn error_message(body: &[u8]) -> String {
    ErrorBody::message_in(body).unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(1000)
            .collect()
    })
}

/// The next chunk of a generation's stream, or a connection error when the target has
/// sent nothing for `stall` (`FOREMAN_STALL_TIMEOUT`): a hung target must not hold the
/// one generation slot forever. Dropping the stream afterwards closes the request.
pub(crate) async fn next_chunk<S>(
    chunks: &mut S,
    stall: Duration,
) -> Option<Result<Bytes, TargetError>>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    match tokio::time::timeout(stall, chunks.next()).await {
        Ok(chunk) => chunk.map(|c| c.map_err(TargetError::from_reqwest)),
        Err(_) => Some(Err(TargetError::Connection(format!(
            "the target sent nothing for {} (FOREMAN_STALL_TIMEOUT)",
            humantime::format_duration(stall)
        )))),
    }
}

/// The HTTP client of one Ollama host.
#[derive(Debug, Clone)]
pub(crate) struct TargetClient {
    /// The target's name, for logs.
    pub(crate) name: String,
    base: Url,
    token: Option<Secret>,
    http: reqwest::Client,
}

/// A whole answer from the target: status, content type, body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

impl TargetClient {
    /// Fails only when the HTTP client cannot be built (no TLS backend, say): a default
    /// client in its place would lack the timeouts.
    pub(crate) fn new(
        name: impl Into<String>,
        base: Url,
        token: Option<Secret>,
    ) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            name: name.into(),
            base,
            token,
            http,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {}", token.expose())),
            None => request,
        }
    }

    /// Sends a JSON body and returns the response as it starts, whatever its status, for
    /// the caller to stream. Not time-limited: generations take as long as they take.
    pub(crate) async fn send(
        &self,
        path: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, TargetError> {
        self.open(Method::POST, path, body.into(), "application/json")
            .await
    }

    /// Sends `body` with `content_type`, streamed as it is read (a blob upload is never
    /// held in memory), and returns the response as it starts, whatever its status, for
    /// the caller to stream. Not time-limited: a pull takes as long as the download.
    pub(crate) async fn open(
        &self,
        method: Method,
        path: &str,
        body: reqwest::Body,
        content_type: &'static str,
    ) -> Result<reqwest::Response, TargetError> {
        self.request(method, path)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(TargetError::from_reqwest)
    }

    /// A bounded call whose whole answer is returned as is, errors included (for routes
    /// that pass the target's answer straight through).
    pub(crate) async fn forward(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Answer, TargetError> {
        let mut request = self.request(method, path).timeout(timeout);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(TargetError::from_reqwest)?;
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let body = response.bytes().await.map_err(TargetError::from_reqwest)?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// `GET path` as JSON; an error status is an error.
    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, TargetError> {
        let answer = self
            .forward(Method::GET, path, None, METADATA_TIMEOUT)
            .await?;
        if !answer.status.is_success() {
            return Err(TargetError::Http {
                status: answer.status,
                message: error_message(&answer.body),
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| TargetError::Decode(e.to_string()))
    }
}
