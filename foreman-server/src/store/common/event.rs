//! Webhook events' bodies and artifacts' views.

use base64::Engine as _;
use chrono::DateTime;
use foreman_types::{Artifact, ArtifactEncoding, JobId, JobState, WebhookEvent};

use super::corrupt;
use crate::store::Result;

/// What a webhook event says about the job, read in the transaction of the change.
#[derive(Debug)]
pub(crate) struct EventFacts {
    pub model: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub result: Option<Vec<u8>>,
}

/// The body of the event announcing that job `id` entered `state` at `now_ms`; a `done`
/// event carries the result and `artifacts` (which the backend reads only for `done`,
/// see [`event_wants_artifacts`]).
pub(crate) fn event_body(
    id: JobId,
    state: JobState,
    facts: EventFacts,
    artifacts: Option<Vec<Artifact>>,
    now_ms: i64,
) -> Result<Vec<u8>> {
    let done = state == JobState::Done;
    let result = match (done, facts.result) {
        (true, Some(bytes)) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|err| corrupt(format_args!("job {id} result: {err}")))?,
        ),
        _ => None,
    };
    let event = WebhookEvent {
        kind: WebhookEvent::kind_for(state),
        job_id: id,
        state,
        model: facts.model,
        attempts: facts.attempts,
        timestamp: DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
        error: if state == JobState::Failed || state == JobState::Cancelled {
            facts.error
        } else {
            None
        },
        result,
        artifacts: if done { artifacts } else { None },
    };
    serde_json::to_vec(&event).map_err(|err| corrupt(format_args!("cannot encode event: {err}")))
}

/// Whether the event for `state` lists the job's artifacts.
pub(crate) fn event_wants_artifacts(state: JobState) -> bool {
    state == JobState::Done
}

/// A fresh `webhook-id`, kept by the event across its delivery attempts.
pub(crate) fn new_webhook_id() -> String {
    format!("msg_{}", ulid::Ulid::new())
}

/// An artifact as the API shows it: `data` is its bytes when they were small enough to
/// read inline (the backend reads them only up to [`foreman_types::INLINE_ARTIFACT_LIMIT`]),
/// else it is linked by URL.
pub(crate) fn artifact_view(
    public_url: &str,
    id: JobId,
    name: String,
    content_type: String,
    size: u64,
    data: Option<Vec<u8>>,
) -> Artifact {
    let (data, encoding, url) = match data {
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), Some(ArtifactEncoding::Utf8), None),
            Err(err) => (
                Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes())),
                Some(ArtifactEncoding::Base64),
                None,
            ),
        },
        None => (
            None,
            None,
            Some(format!(
                "{}/jobs/{id}/artifacts/{}",
                public_url.trim_end_matches('/'),
                url_path_segment(&name)
            )),
        ),
    };
    Artifact {
        name,
        content_type,
        size,
        data,
        encoding,
        url,
    }
}

/// Percent-encodes everything but unreserved characters, for a name inside a URL path.
fn url_path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
