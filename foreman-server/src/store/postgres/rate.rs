//! Requests per minute shared by every replica: the sliding log of [`crate::rate`] kept
//! in `rate_log`, one tenant's requests at a time (a transaction advisory lock on the
//! tenant), timed by the database's clock so the replicas' clocks need not agree.

use std::time::Duration;

use super::{execute_cached, query_opt_cached, PgStore, Result};
use crate::scheduler::Tenant;

/// The window, in milliseconds.
const MINUTE_MS: i64 = 60_000;

impl PgStore {
    /// Admits one request of `tenant` under `rpm` a minute over all replicas, or says how
    /// long until one more would be: exactly as [`crate::rate::RateLimiter::admit`] does.
    pub(crate) async fn admit(&self, tenant: Tenant, rpm: u32) -> Result<Result<(), Duration>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute_cached(
            &tx,
            "SELECT pg_advisory_xact_lock(24, hashtext($1::TEXT || chr(31) || $2::TEXT))",
            &[&tenant.key, &tenant.user],
        )
        .await?;
        let now: i64 = tx.query_one("SELECT foreman_now_ms()", &[]).await?.get(0);
        execute_cached(
            &tx,
            "DELETE FROM rate_log
                 WHERE tenant_key = $1 AND tenant_user = $2 AND at_ms <= $3::BIGINT - 60000",
            &[&tenant.key, &tenant.user, &now],
        )
        .await?;
        if rpm == 0 {
            tx.commit().await?;
            return Ok(Err(Duration::from_millis(MINUTE_MS as u64)));
        }
        // The limit may have been lowered since: the request after the `rpm`-th newest
        // leaves first.
        let oldest_kept = query_opt_cached(
            &tx,
            "SELECT at_ms FROM rate_log WHERE tenant_key = $1 AND tenant_user = $2
             ORDER BY at_ms DESC OFFSET $3 LIMIT 1",
            &[&tenant.key, &tenant.user, &(i64::from(rpm) - 1)],
        )
        .await?;
        if let Some(row) = oldest_kept {
            tx.commit().await?;
            let at: i64 = row.get(0);
            let wait = (MINUTE_MS - (now - at)).clamp(0, MINUTE_MS);
            return Ok(Err(Duration::from_millis(wait as u64)));
        }
        execute_cached(
            &tx,
            "INSERT INTO rate_log (tenant_key, tenant_user, at_ms) VALUES ($1, $2, $3)",
            &[&tenant.key, &tenant.user, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}
