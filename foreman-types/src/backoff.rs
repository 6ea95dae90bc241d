//! Waits that double after each failure, up to a cap.
//!
//! The server's worker (after an unreachable target), its webhook retries and its start-up
//! warm-up, and the SDK's and CLI's polling all wait this way; here, in the one crate they
//! all depend on, the rule is written once. Pure arithmetic: the caller does the sleeping.
//!
//! ```
//! use std::time::Duration;
//! use foreman_types::Backoff;
//!
//! let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
//! let waits: Vec<u64> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
//! assert_eq!(waits, [1, 2, 4, 5, 5]);
//! backoff.reset();
//! assert_eq!(backoff.next_delay(), Duration::from_secs(1));
//! assert_eq!(backoff.delay(2), Duration::from_secs(4));
//! ```

use std::time::Duration;

/// Doubling waits from `first` to `max`, and a count of the retries made so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    retries: u32,
}

impl Backoff {
    /// Waits starting at `first` and doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            retries: 0,
        }
    }

    /// The wait before retry `retry` (0 for the first): `first × 2^retry`, at most `max`.
    /// Never overflows, however large `retry` is.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }

    /// The next wait: [`delay`](Self::delay) of the retries counted so far, then counts
    /// one more.
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.delay(self.retries);
        self.retries = self.retries.saturating_add(1);
        wait
    }

    /// Starts over at `first`, after a success.
    pub fn reset(&mut self) {
        self.retries = 0;
    }
}
