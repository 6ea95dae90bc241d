//! A key's `max_queued`, checked in the enqueue transaction so concurrent submissions
//! cannot overshoot it.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{Result, StoreError};
use crate::scheduler::Tenant;

/// Refuses when `tenant` already has `limit` jobs queued (the `tenants` row the queue's
/// triggers keep; no row means none queued).
pub(super) fn check(tx: &Transaction<'_>, tenant: &Tenant, limit: Option<u32>) -> Result<()> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let queued: Option<i64> = tx
        .prepare_cached("SELECT queued FROM tenants WHERE key_name = ?1 AND end_user = ?2")?
        .query_row(params![tenant.key, tenant.user], |r| r.get(0))
        .optional()?;
    if queued.unwrap_or(0) >= i64::from(limit) {
        return Err(StoreError::TenantQueueFull(limit));
    }
    Ok(())
}
