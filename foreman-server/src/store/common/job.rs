//! A job's row as the API shows it, and where a queued job stands.

use chrono::DateTime;
use foreman_types::{Job, JobKind};

use super::{corrupt, parse_id};
use crate::store::model::QUEUE_POSITION_CAP;
use crate::store::Result;

/// The columns of a job both backends read, before they become a [`Job`].
#[derive(Debug)]
pub(crate) struct JobRow {
    pub id: String,
    pub model: String,
    pub state: String,
    pub attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub error: Option<String>,
    pub result: Option<Vec<u8>>,
    pub kind: String,
    pub priority: i32,
    pub webhook_url: Option<String>,
    /// Empty until the job is claimed; kept once it has run.
    pub target: String,
    pub tenant_key: String,
    pub tenant_user: String,
    pub prompt_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

impl JobRow {
    /// The job, without artifacts, webhook attempts and queue position.
    pub(crate) fn into_job(self) -> Result<Job> {
        let named = |s: String| (!s.is_empty()).then_some(s);
        Ok(Job {
            id: parse_id(&self.id)?,
            model: self.model,
            state: self.state.parse().map_err(corrupt)?,
            attempts: self.attempts,
            created_at: DateTime::from_timestamp_millis(self.created_at).unwrap_or_default(),
            updated_at: DateTime::from_timestamp_millis(self.updated_at).unwrap_or_default(),
            error: self.error,
            result: match self.result {
                Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(corrupt)?),
                None => None,
            },
            artifacts: Vec::new(),
            kind: self.kind.parse::<JobKind>().map_err(corrupt)?,
            priority: self.priority,
            queue_position: None,
            estimated_wait_ms: None,
            state_webhook_url: self.webhook_url,
            webhook_attempts: Vec::new(),
            target: named(self.target),
            key: named(self.tenant_key),
            user: named(self.tenant_user),
            prompt_tokens: self.prompt_tokens.map(|n| n.max(0) as u64),
            output_tokens: self.output_tokens.map(|n| n.max(0) as u64),
        })
    }
}

/// How many jobs start before a queued one, as fair share orders them (ADR 14): `higher`
/// jobs of higher priority, `own` older jobs of its tenant at its priority, and from each
/// other tenant at that priority (`(queued, weight)`) about as many as fair share gives it
/// meanwhile. An estimate, capped at [`QUEUE_POSITION_CAP`].
pub(crate) fn fair_position(higher: i64, own: i64, others: &[(i64, f64)], weight: f64) -> u64 {
    // While this tenant's `own` older jobs and then this one run, a tenant of weight w gets
    // about (own + 1/2) * w / weight turns: the half splits the tie of equal counters.
    let turns = |other_weight: f64| ((own as f64 + 0.5) * other_weight / weight).floor() as i64;
    let interleaved: i64 = others
        .iter()
        .map(|(queued, other_weight)| (*queued).min(turns(*other_weight)))
        .sum();
    (higher + own + interleaved).min(QUEUE_POSITION_CAP) as u64
}
