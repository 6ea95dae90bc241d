//! Job priorities: sync requests outrank async jobs by default (docs/adr/0009).
//!
//! The queue runs strictly by priority, higher first, and drains by model within a level.
//! A caller holding a connection open (`/api/chat`, `/api/generate`) gets [`SYNC`], above
//! the async default, so one chat never waits behind a batch of `POST /jobs`. An async job
//! may ask for any level in [`ASYNC_RANGE`], above `SYNC` too when it is more urgent than
//! interactive traffic.

use std::ops::RangeInclusive;

use crate::error::AppError;

/// The priority of every sync request.
pub(crate) const SYNC: i32 = 10;
/// An async job's priority when it names none.
pub(crate) const ASYNC_DEFAULT: i32 = 0;
/// The priorities `POST /jobs` accepts.
pub(crate) const ASYNC_RANGE: RangeInclusive<i32> = -100..=100;

// The whole point: by default, an interactive caller never waits behind a batch.
const _: () = assert!(ASYNC_DEFAULT < SYNC);

/// The priority of an async job, or 400 when it asks for one outside [`ASYNC_RANGE`].
pub(crate) fn for_async(requested: Option<i32>) -> Result<i32, AppError> {
    let priority = requested.unwrap_or(ASYNC_DEFAULT);
    if !ASYNC_RANGE.contains(&priority) {
        return Err(AppError::BadRequest(format!(
            "priority must be between {} and {} (got {priority})",
            ASYNC_RANGE.start(),
            ASYNC_RANGE.end()
        )));
    }
    Ok(priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_async_job_without_a_priority_gets_the_default() {
        assert_eq!(for_async(None).unwrap(), ASYNC_DEFAULT);
    }

    #[test]
    fn priorities_outside_the_range_are_refused() {
        assert!(for_async(Some(100)).is_ok());
        assert!(for_async(Some(-100)).is_ok());
        assert!(for_async(Some(101)).is_err());
        assert!(for_async(Some(i32::MIN)).is_err());
    }
}
