//! Requests per minute, per tenant: a sliding window in memory, which the SQLite store
//! keeps (one process; replicas on PostgreSQL share one in the database instead).
//!
//! Each tenant keeps the times of its admitted requests in the last minute, at most its
//! `rpm` of them. A request is admitted while fewer than `rpm` are in the window; a refused
//! one learns exactly when the oldest leaves it, for `Retry-After`. A sliding log rather
//! than a fixed window, so a burst straddling a minute boundary cannot pass twice the
//! limit; rather than a token bucket, so the rule a user reads ("60 a minute") is the rule
//! applied. The state is lost on restart, which costs a limited key at most one extra
//! minute's worth of requests.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::scheduler::Tenant;

/// The window.
const MINUTE: Duration = Duration::from_secs(60);

/// Past this many tenants, idle ones are forgotten on the next request.
const TIDY_ABOVE: usize = 1024;

/// The windows of every tenant with a limit.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<Tenant, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Admits one request of `tenant` at `now` under `rpm` a minute, or says how long
    /// until one more would be admitted.
    pub(crate) fn admit(&self, tenant: &Tenant, rpm: u32, now: Instant) -> Result<(), Duration> {
        let mut windows = crate::lock::lock(&self.windows);
        if windows.len() > TIDY_ABOVE {
            windows.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < MINUTE)
            });
        }
        let times = windows.entry(tenant.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= MINUTE)
        {
            times.pop_front();
        }
        if rpm == 0 {
            return Err(MINUTE);
        }
        if times.len() >= rpm as usize {
            // The limit may have been lowered since: the request after the `rpm`-th
            // newest leaves first.
            let oldest_kept = times[times.len() - rpm as usize];
            return Err(MINUTE.saturating_sub(now.duration_since(oldest_kept)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_its_rpm_a_minute_and_learns_when_the_next_is_free() {
        let limiter = RateLimiter::default();
        let alice = Tenant::new("alice", "");
        let start = Instant::now();
        for i in 0..3 {
            assert!(limiter
                .admit(&alice, 3, start + Duration::from_secs(i))
                .is_ok());
        }
        let wait = limiter
            .admit(&alice, 3, start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(50),
            "when the first leaves the window"
        );
        // Another tenant, even of the same key, has its own window.
        assert!(limiter
            .admit(
                &Tenant::new("alice", "u1"),
                3,
                start + Duration::from_secs(10)
            )
            .is_ok());
        // A minute after the first request, one more fits; then it is full again.
        assert!(limiter
            .admit(&alice, 3, start + Duration::from_secs(60))
            .is_ok());
        assert!(limiter
            .admit(&alice, 3, start + Duration::from_secs(60))
            .is_err());
    }

    #[test]
    fn a_refused_request_does_not_count_and_a_lowered_limit_applies_at_once() {
        let limiter = RateLimiter::default();
        let bob = Tenant::new("bob", "");
        let start = Instant::now();
        assert!(limiter.admit(&bob, 1, start).is_ok());
        for _ in 0..10 {
            assert!(limiter.admit(&bob, 1, start).is_err());
        }
        assert!(limiter.admit(&bob, 1, start + MINUTE).is_ok());
        let later = start + MINUTE + Duration::from_secs(1);
        assert!(limiter.admit(&bob, 5, later).is_ok());
        assert!(limiter.admit(&bob, 1, later).is_err());
        assert!(limiter.admit(&bob, 0, later).is_err());
    }
}
