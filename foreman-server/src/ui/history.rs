//! The last hour of queue figures, for the page's plots: one sample every
//! [`SAMPLE_EVERY`], in a ring buffer in memory, saved to the store every minute and at
//! shutdown and read back at start-up, so a restart does not blank the plots.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::App;

/// How often a sample is taken.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: one hour's.
const KEPT: usize = 360;
/// The span kept, in milliseconds: saved samples older than this are not restored.
const HOUR_MS: i64 = 3_600_000;
/// Samples taken between two saves: a minute's. A crash loses at most that much.
const SAVE_EVERY: u32 = 6;

/// The queue at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
        let mut samples = crate::lock::lock(&self.samples);
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Every sample kept, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let samples = crate::lock::lock(&self.samples);
        samples.iter().copied().collect()
    }

    /// Puts back `saved` samples, those of the hour before `now_ms` only, oldest first,
    /// ahead of any taken since.
    fn restore(&self, mut saved: Vec<Sample>, now_ms: i64) {
        saved.retain(|s| s.at_ms > now_ms - HOUR_MS && s.at_ms <= now_ms);
        saved.sort_by_key(|s| s.at_ms);
        let mut samples = crate::lock::lock(&self.samples);
        let taken: Vec<Sample> = samples.drain(..).collect();
        samples.extend(saved.into_iter().chain(taken));
        while samples.len() > KEPT {
            samples.pop_front();
        }
    }
}

/// Reads back the samples the last run saved. Start-up goes on without them if they
/// cannot be read: they are only the plots' past.
pub(crate) async fn load(app: &App) {
    let body = match app.store.load_ui_samples().await {
        Ok(Some(body)) => body,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the status page's saved samples");
            return;
        }
    };
    match serde_json::from_str::<Vec<Sample>>(&body) {
        Ok(saved) => app.ui_history.restore(saved, crate::store::now_ms()),
        Err(err) => {
            tracing::warn!(error = %err, "the status page's saved samples are not valid; starting afresh")
        }
    }
}

/// Writes the samples kept to the store; logs (never fails) when it cannot.
async fn save(app: &App) {
    let body = match serde_json::to_string(&app.ui_history.samples()) {
        Ok(body) => body,
        Err(err) => {
            tracing::warn!(error = %err, "cannot encode the status page's samples");
            return;
        }
    };
    if let Err(err) = app.store.save_ui_samples(body).await {
        tracing::warn!(error = %err, "cannot save the status page's samples");
    }
}

/// Samples the queue every [`SAMPLE_EVERY`] and saves the samples every minute until
/// `shutdown`, then saves them once more.
pub(crate) async fn run(app: App, shutdown: tokio_util::sync::CancellationToken) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    let mut ended_before: Option<u64> = None;
    let mut unsaved = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                save(&app).await;
                return;
            }
            _ = ticks.tick() => {}
        }
        if unsaved == SAVE_EVERY {
            save(&app).await;
            unsaved = 0;
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
        unsaved += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at_ms: i64) -> Sample {
        Sample {
            at_ms,
            depth: 1,
            wait_ms: 0,
            finished: 0,
        }
    }

    #[test]
    fn restored_samples_older_than_an_hour_are_dropped_and_come_before_new_ones() {
        let now = 10 * HOUR_MS;
        let history = History::default();
        history.record(at(now));

        let saved = vec![
            at(now - 60_000),
            at(now - HOUR_MS - 1),
            at(now - 120_000),
            at(now - HOUR_MS),
            at(now + HOUR_MS),
        ];
        history.restore(saved, now);

        let kept: Vec<i64> = history.samples().iter().map(|s| s.at_ms).collect();
        assert_eq!(kept, vec![now - 120_000, now - 60_000, now]);
    }

    #[test]
    fn restoring_more_than_an_hours_worth_keeps_the_newest() {
        let now = 10 * HOUR_MS;
        let history = History::default();
        let saved: Vec<Sample> = (0..KEPT as i64 + 10).map(|i| at(now - i * 1000)).collect();

        history.restore(saved, now);

        let samples = history.samples();
        assert_eq!(samples.len(), KEPT);
        assert_eq!(samples.last().map(|s| s.at_ms), Some(now));
    }

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
