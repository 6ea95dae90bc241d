//! What both backends compute alike, with no SQL: the values a job's row becomes, a
//! webhook event's body, an artifact's view, the scheduler's choice over the heads a
//! backend read, how a run's end changes the job, its usage, the queue position's
//! arithmetic and a delivery's next attempt. Each backend reads and writes its own
//! database and calls these for the rest, so the rules are written once.
//!
//! - [`job`]: a job's row as a [`foreman_types::Job`], and the queue position's arithmetic.
//! - [`event`]: a webhook event's body and an artifact's view.
//! - [`claim`]: the scheduler's choice over the heads a backend read.
//! - [`ending`]: how a run's end changes the job, its usage charge, a delivery's retry.

mod claim;
mod ending;
mod event;
mod job;

use foreman_types::{JobId, JobState};

pub(crate) use claim::*;
pub(crate) use ending::*;
pub(crate) use event::*;
pub(crate) use job::*;

use super::{Result, StoreError};
use crate::keys::KeyHash;

/// A stored value that does not decode.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A job id as stored.
pub(crate) fn parse_id(id: &str) -> Result<JobId> {
    id.parse()
        .map_err(|_| corrupt(format_args!("bad job id {id:?}")))
}

/// A key's stored hex digest.
pub(crate) fn decode_key_hash(name: &str, hex_hash: &str) -> Result<KeyHash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut hash)
        .map_err(|_| corrupt(format_args!("key {name:?} has a bad hash")))?;
    Ok(hash)
}

/// Jobs per state from `(state, count)` rows: every state present, in [`JobState::ALL`]
/// order.
pub(crate) fn counts_by_state(rows: Vec<(String, i64)>) -> Result<Vec<(JobState, u64)>> {
    let mut counts: Vec<(JobState, u64)> = JobState::ALL.iter().map(|state| (*state, 0)).collect();
    for (state, n) in rows {
        let state: JobState = state.parse().map_err(corrupt)?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = n.max(0) as u64;
        }
    }
    Ok(counts)
}
