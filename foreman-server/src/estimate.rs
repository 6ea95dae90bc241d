//! How long a queued job will wait: the jobs ahead of it times the recent mean run time,
//! shared among the targets' generation slots, plus what is left of the running job.
//!
//! The mean is an exponential moving average, so it follows a change of workload (a new
//! model, longer prompts) within a handful of jobs. Every run that reached the target
//! counts, whatever its outcome: the estimate is about how fast the queue moves, and a
//! quick failure moves it as much as a success. Until a job has run there is no estimate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Weight of the newest run in the moving average.
const ALPHA: f64 = 0.2;

/// The recent mean run time and the running job's start.
#[derive(Debug, Default)]
pub(crate) struct RunTimes {
    inner: Mutex<Inner>,
    /// Generation slots over all targets: that many jobs leave the queue at once.
    lanes: u32,
}

#[derive(Debug, Default)]
struct Inner {
    mean_ms: Option<f64>,
    running_since: Option<Instant>,
}

impl RunTimes {
    /// Run times for a pool of `lanes` generation slots.
    pub(crate) fn with_lanes(lanes: u32) -> Self {
        Self {
            inner: Mutex::default(),
            lanes,
        }
    }

    /// A run starts now.
    pub(crate) fn started(&self, at: Instant) {
        self.with(|inner| inner.running_since = Some(at));
    }

    /// The run ended after `took`; `counts` says whether it reached the target (a run cut
    /// short by an unreachable target says nothing about run times).
    pub(crate) fn ended(&self, took: Duration, counts: bool) {
        self.with(|inner| {
            inner.running_since = None;
            if counts {
                let ms = took.as_secs_f64() * 1000.0;
                inner.mean_ms = Some(match inner.mean_ms {
                    Some(mean) => mean + ALPHA * (ms - mean),
                    None => ms,
                });
            }
        });
    }

    /// The expected wait before a job with `ahead` jobs in front of it starts; `None`
    /// until a run has been measured.
    pub(crate) fn wait_ms(&self, ahead: u64) -> Option<u64> {
        self.with(|inner| {
            let mean = inner.mean_ms?;
            let running_left = inner.running_since.map_or(0.0, |since| {
                (mean - since.elapsed().as_secs_f64() * 1000.0).max(0.0)
            });
            let lanes = f64::from(self.lanes.max(1));
            Some((ahead as f64 * mean / lanes + running_left).round() as u64)
        })
    }

    /// The recent mean run time in milliseconds, 0 before any run was measured.
    pub(crate) fn mean_ms(&self) -> f64 {
        self.with(|inner| inner.mean_ms.unwrap_or(0.0))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut crate::lock::lock(&self.inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_no_estimate_before_a_run() {
        let times = RunTimes::default();
        assert_eq!(times.wait_ms(3), None);
        times.ended(Duration::from_secs(1), false);
        assert_eq!(times.wait_ms(3), None);
    }

    #[test]
    fn the_estimate_is_jobs_ahead_times_the_moving_mean() {
        let times = RunTimes::default();
        times.ended(Duration::from_millis(1000), true);
        assert_eq!(times.wait_ms(3), Some(3000));
        times.ended(Duration::from_millis(2000), true);
        // 1000 + 0.2 × (2000 − 1000)
        assert_eq!(times.wait_ms(1), Some(1200));
    }

    #[test]
    fn several_slots_share_the_jobs_ahead() {
        let times = RunTimes::with_lanes(3);
        times.ended(Duration::from_millis(900), true);
        assert_eq!(times.wait_ms(3), Some(900));
    }

    #[test]
    fn the_running_jobs_remaining_time_is_added() {
        let times = RunTimes::default();
        times.ended(Duration::from_secs(60), true);
        times.started(Instant::now());
        let wait = times.wait_ms(0).unwrap();
        assert!(wait > 59_000 && wait <= 60_000, "{wait}");
    }
}
