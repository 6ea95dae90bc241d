//! The one error type of the SDK.

use foreman_types::{ErrorBody, JobId, JobState};

/// A `Result` whose error is the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest server message kept in [`Error::Api`] when the body is not foreman's JSON error.
const MAX_MESSAGE: usize = 1024;

/// Everything that can go wrong talking to foreman or Ollama.
///
/// Match on the variant for control flow, or use the helpers ([`status`](Error::status),
/// [`is_not_found`](Error::is_not_found), [`is_timeout`](Error::is_timeout)) when a rough
/// answer will do:
///
/// ```no_run
/// # async fn run(client: foreman_client::Client, id: foreman_client::JobId) {
/// match client.job(id).await {
///     Ok(job) => println!("{}", job.state),
///     Err(err) if err.is_not_found() => println!("no such job (pruned?)"),
///     Err(err) => eprintln!("{err}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status. `message` is the `error` field of its
    /// `{"error": "..."}` body (Ollama's and foreman's shape) or the `message` of an
    /// OpenAI-shaped `{"error": {"message": ...}}`, else the body's text.
    #[error("the server answered {status}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// What the server said went wrong.
        message: String,
    },
    /// The request did not get an answer: the server is unreachable, the connection broke,
    /// or the request timed out.
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The server's answer could not be read as the expected type.
    #[error("cannot decode the server's answer: {0}")]
    Decode(String),
    /// [`Client::wait`](crate::Client::wait) gave up before the job reached a terminal state.
    #[error("job {job} did not finish in time; it was last {last_state}")]
    Timeout {
        /// The job waited for.
        job: JobId,
        /// The state it was in at the last poll.
        last_state: JobState,
    },
    /// The base URL given to the client is not an `http` or `https` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The token given to the client has characters an HTTP header cannot carry (such as a
    /// newline).
    #[error("the token has characters an HTTP header cannot carry")]
    InvalidToken,
    /// A streamed answer failed part-way: the server sent an `{"error": ...}` line, or the
    /// stream ended before its final (`done: true`) chunk.
    #[error("the stream failed: {0}")]
    Stream(String),
}

impl Error {
    /// The HTTP status behind the error, when there is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Http(err) => err.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// Whether the server answered 404: an unknown job, artifact or model.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the server rejected the request's credentials (401 or 403).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// Whether the server refused the request under a limit (429: a key's `rpm` or
    /// `max_queued`); the answer's `Retry-After` said when to try again.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// Whether time ran out: [`Error::Timeout`] from `wait`, or a request that hit the
    /// client's timeout.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Http(err) => err.is_timeout(),
            _ => false,
        }
    }

    /// Whether the server could not be reached at all.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Http(err) if err.is_connect())
    }

    /// The error for a response with status `status` and body `body`.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        let message = ErrorBody::message_in(body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("no message")
                    .to_owned()
            } else {
                truncate(text, MAX_MESSAGE)
            }
        });
        Error::Api { status, message }
    }

    /// A decoding error for `body`, quoting its start so the cause is visible.
    pub(crate) fn decode(err: serde_json::Error, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        Error::Decode(format!("{err} in {:?}", truncate(text.trim(), 200)))
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_take_the_message_from_the_json_body() {
        let err = Error::from_response(404, br#"{"error":"model \"x\" not found"}"#);
        assert!(
            matches!(&err, Error::Api { status: 404, message } if message == "model \"x\" not found")
        );
        assert!(err.is_not_found());
    }

    #[test]
    fn api_errors_fall_back_to_the_body_text_then_the_reason() {
        let err = Error::from_response(502, b"  Bad things\n");
        assert!(matches!(&err, Error::Api { message, .. } if message == "Bad things"));
        let err = Error::from_response(503, b"");
        assert!(matches!(&err, Error::Api { message, .. } if message == "Service Unavailable"));
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(2000);
        let Error::Api { message, .. } = Error::from_response(500, body.as_bytes()) else {
            panic!("expected an API error");
        };
        assert!(message.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(message.ends_with('…'));
    }
}
