//! The last hour of queue figures, for the page's plots: one sample every
//! [`SAMPLE_EVERY`], in a ring buffer in memory (a restart starts it again).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// How often a sample is taken.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: one hour's.
const KEPT: usize = 360;

/// The queue at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Sample {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Jobs queued.
    pub depth: u64,
    /// The estimated wait for a job queued now, in milliseconds (0 when unknown).
    pub wait_ms: u64,
    /// Jobs that ended since the sample before.
    pub finished: u64,
}

/// The ring buffer of samples.
#[derive(Debug, Default)]
pub(crate) struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Adds a sample, dropping the oldest beyond an hour's.
    pub(crate) fn record(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Every sample kept, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().copied().collect()
    }
}

/// Samples the queue every [`SAMPLE_EVERY`] until `shutdown`.
pub(crate) async fn run(app: crate::state::App, shutdown: tokio_util::sync::CancellationToken) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    let mut ended_before: Option<u64> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Ok(counts) = app.store.counts_by_state().await else {
            continue;
        };
        let depth = counts
            .iter()
            .filter(|(s, _)| *s == foreman_types::JobState::Queued)
            .map(|(_, n)| n)
            .sum();
        let ended: u64 = counts
            .iter()
            .filter(|(s, _)| s.is_terminal())
            .map(|(_, n)| n)
            .sum();
        // Pruning lowers the count: never a negative throughput.
        let finished = ended_before.map_or(0, |before| ended.saturating_sub(before));
        ended_before = Some(ended);
        app.ui_history.record(Sample {
            at_ms: crate::store::now_ms(),
            depth,
            wait_ms: app.run_times.wait_ms(depth).unwrap_or(0),
            finished,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_last_hour() {
        let history = History::default();
        for i in 0..(KEPT as i64 + 5) {
            history.record(Sample {
                at_ms: i,
                depth: 0,
                wait_ms: 0,
                finished: 0,
            });
        }
        let samples = history.samples();
        assert_eq!(samples.len(), KEPT);
        assert_eq!(samples[0].at_ms, 5);
    }
}
