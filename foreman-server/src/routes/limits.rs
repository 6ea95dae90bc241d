//! Limits, as answers: a key's `rpm` (enforced by the [`Submitter`] extractor that every
//! route queueing work takes), its `max_queued` and the global `FOREMAN_MAX_QUEUE`
//! (enforced in the enqueue transaction, answered by [`refused`]).
//!
//! Each refusal carries `Retry-After`: for `rpm`, exactly when the oldest request leaves
//! the minute's window; for a full queue (a key's or foreman's), roughly when the next
//! job leaves the queue, from the running job's remaining time ([`crate::estimate`]).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::auth::Caller;
use crate::error::AppError;
use crate::state::App;
use crate::store::StoreError;

/// The caller of a request that queues work, admitted under its key's `rpm`: a handler
/// argument, so a refused request is answered 429 before its body is read.
#[derive(Debug, Clone)]
pub(crate) struct Submitter(pub(crate) Caller);

impl FromRequestParts<App> for Submitter {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        if let Some(rpm) = caller.rpm {
            let admitted = app.store.admit(caller.tenant(), rpm).await?;
            admitted.map_err(|wait| AppError::TooManyRequests {
                message: format!("too many requests: this key may make {rpm} a minute"),
                retry_after: wait,
            })?;
        }
        Ok(Submitter(caller))
    }
}

/// An enqueue's failure as an answer: the queue limits with their `Retry-After`.
pub(super) fn refused(app: &App, err: StoreError) -> AppError {
    match err {
        StoreError::QueueFull => AppError::QueueFull(Some(next_start(app))),
        StoreError::TenantQueueFull(limit) => AppError::TooManyRequests {
            message: format!("too many queued jobs: this key may have {limit} queued at once"),
            retry_after: next_start(app),
        },
        other => other.into(),
    }
}

/// Roughly when the next queued job starts: what is left of the running one. A second
/// when foreman cannot tell (nothing has run yet).
fn next_start(app: &App) -> Duration {
    app.run_times
        .wait_ms(0)
        .map_or(Duration::from_secs(1), Duration::from_millis)
}
