//! How far each running job has streamed: the chunks the worker has passed on from the
//! target, about one token each, and when the first and the latest came. The status page
//! reads its tokens per second from here.
//!
//! A counter lives in memory only while its job runs, and is two atomic stores per chunk:
//! the store is not written per token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use foreman_types::JobId;

/// Every running job's counter, by job.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    jobs: Mutex<HashMap<JobId, Arc<Streamed>>>,
}

/// One job's stream so far.
#[derive(Debug)]
pub(crate) struct Streamed {
    /// When the run began; the times below count from here.
    began: Instant,
    chunks: AtomicU64,
    /// Microseconds from `began` to the first chunk, and to the latest.
    first_us: AtomicU64,
    last_us: AtomicU64,
}

/// What the status page shows of a running job's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Chunks streamed so far.
    pub tokens: u64,
    /// Between the first chunk and the latest; `None` until two have come apart.
    pub per_second: Option<f64>,
}

impl Progress {
    /// Starts counting for `id`; the counter goes when the returned guard is dropped, so a
    /// run that ends any way (a panic too) leaves nothing behind.
    pub(crate) fn begin(&self, id: JobId) -> Counting<'_> {
        let streamed = Arc::new(Streamed::new());
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, Arc::clone(&streamed));
        }
        Counting {
            progress: self,
            id,
            streamed,
        }
    }

    /// How far `id` has streamed, if it is running.
    pub(crate) fn rate(&self, id: JobId) -> Option<Rate> {
        let jobs = self.jobs.lock().ok()?;
        jobs.get(&id).map(|streamed| streamed.rate())
    }
}

/// A running job's counter, registered until dropped.
#[derive(Debug)]
pub(crate) struct Counting<'a> {
    progress: &'a Progress,
    id: JobId,
    streamed: Arc<Streamed>,
}

impl Counting<'_> {
    /// The counter, for whoever reads the stream.
    pub(crate) fn streamed(&self) -> Arc<Streamed> {
        Arc::clone(&self.streamed)
    }
}

impl Drop for Counting<'_> {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.progress.jobs.lock() {
            jobs.remove(&self.id);
        }
    }
}

impl Streamed {
    /// A counter with nothing streamed yet, its clock starting now.
    pub(crate) fn new() -> Self {
        Self {
            began: Instant::now(),
            chunks: AtomicU64::new(0),
            first_us: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
        }
    }

    /// Counts one chunk, now.
    pub(crate) fn chunk(&self) {
        let at = self
            .began
            .elapsed()
            .as_micros()
            .try_into()
            .unwrap_or(u64::MAX);
        if self.chunks.fetch_add(1, Ordering::Relaxed) == 0 {
            self.first_us.store(at, Ordering::Relaxed);
        }
        self.last_us.store(at, Ordering::Relaxed);
    }

    /// The chunks so far and their rate.
    pub(crate) fn rate(&self) -> Rate {
        let tokens = self.chunks.load(Ordering::Relaxed);
        let first = self.first_us.load(Ordering::Relaxed);
        let last = self.last_us.load(Ordering::Relaxed);
        // The first chunk starts the clock: n chunks span n - 1 gaps.
        let per_second = (tokens >= 2 && last > first)
            .then(|| (tokens - 1) as f64 * 1_000_000.0 / (last - first) as f64);
        Rate { tokens, per_second }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_needs_two_chunks_and_counts_the_gaps_between_them() {
        let streamed = Streamed::new();
        assert_eq!(
            streamed.rate(),
            Rate {
                tokens: 0,
                per_second: None
            }
        );
        streamed.chunk();
        assert_eq!(streamed.rate().per_second, None);

        // Eleven chunks over half a second: ten gaps, twenty a second.
        streamed.chunks.store(11, Ordering::Relaxed);
        streamed.first_us.store(1_000_000, Ordering::Relaxed);
        streamed.last_us.store(1_500_000, Ordering::Relaxed);
        let rate = streamed.rate();
        assert_eq!(rate.tokens, 11);
        assert_eq!(rate.per_second, Some(20.0));
    }

    #[test]
    fn a_runs_counter_is_gone_once_its_guard_is_dropped() {
        let progress = Progress::default();
        let id = JobId::new();
        let counting = progress.begin(id);
        counting.streamed().chunk();
        assert_eq!(progress.rate(id).map(|r| r.tokens), Some(1));

        drop(counting);

        assert_eq!(progress.rate(id), None);
    }
}
