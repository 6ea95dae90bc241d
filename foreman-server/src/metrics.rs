//! Prometheus metrics: what the worker and the webhook dispatcher record as they go, and
//! the scrape of `GET /metrics` in the text exposition format 0.0.4.
//!
//! Written by hand rather than with `prometheus-client`: that crate speaks OpenMetrics
//! (`# EOF`, `# UNIT`, its own `_total` rules), while the route promises the classic 0.0.4
//! text format, and foreman has only a few families. Gauges that mirror the store (jobs
//! per state, queue depth) are read at scrape time, so they are never stale and cost
//! nothing between scrapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use foreman_types::JobState;

/// The content type of the text exposition format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds (seconds) of the queued → started histogram: sub-second for an idle
/// queue, up to an hour for a batch backlog.
const WAIT_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Bucket bounds (seconds) of the started → ended histogram: a short chat to a long
/// generation with a model load.
const RUN_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// How one webhook delivery attempt went; each attempt counts under exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed and will be tried again.
    FailedAttempt,
    /// It failed and was the last attempt: the event is abandoned.
    GaveUp,
}

impl WebhookOutcome {
    fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Delivered => "delivered",
            WebhookOutcome::FailedAttempt => "failed_attempt",
            WebhookOutcome::GaveUp => "gave_up",
        }
    }
}

/// What the store and the inventory say at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape {
    pub jobs_by_state: Vec<(JobState, u64)>,
    pub queued_by_model: Vec<(String, u64)>,
    pub model_swaps: u64,
    pub target: String,
    pub target_up: bool,
}

/// The recorded metrics; one per [`crate::state::App`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    recorded: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    wait: BTreeMap<String, Histogram>,
    run: BTreeMap<String, Histogram>,
    /// (model, final state) → jobs.
    finished: BTreeMap<(String, &'static str), u64>,
    webhooks: BTreeMap<WebhookOutcome, u64>,
}

impl Metrics {
    /// A job of `model` started after waiting `waited` since it was submitted.
    pub(crate) fn job_waited(&self, model: &str, waited: Duration) {
        self.with(|r| {
            r.wait
                .entry(model.to_owned())
                .or_insert_with(|| Histogram::new(WAIT_BUCKETS))
                .observe(waited.as_secs_f64());
        });
    }

    /// A run of a job of `model` took `took` on the target.
    pub(crate) fn job_ran(&self, model: &str, took: Duration) {
        self.with(|r| {
            r.run
                .entry(model.to_owned())
                .or_insert_with(|| Histogram::new(RUN_BUCKETS))
                .observe(took.as_secs_f64());
        });
    }

    /// A job of `model` reached a terminal state.
    pub(crate) fn job_finished(&self, model: &str, state: JobState) {
        if !state.is_terminal() {
            return;
        }
        self.with(|r| {
            *r.finished
                .entry((model.to_owned(), state.as_str()))
                .or_default() += 1;
        });
    }

    /// A webhook delivery attempt ended.
    pub(crate) fn webhook(&self, outcome: WebhookOutcome) {
        self.with(|r| *r.webhooks.entry(outcome).or_default() += 1);
    }

    fn with(&self, f: impl FnOnce(&mut Recorded)) {
        // A poisoned lock only means a panic elsewhere mid-update; the counts still serve.
        let mut recorded = self
            .recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut recorded);
    }

    /// Every family, in the text exposition format 0.0.4.
    pub(crate) fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::with_capacity(4096);
        let depth: u64 = scrape.queued_by_model.iter().map(|(_, n)| n).sum();
        family(
            &mut out,
            "foreman_queue_depth",
            "gauge",
            "Jobs waiting in the queue.",
        );
        sample(&mut out, "foreman_queue_depth", &[], depth);
        family(
            &mut out,
            "foreman_queue_depth_by_model",
            "gauge",
            "Jobs waiting in the queue, per model.",
        );
        for (model, n) in &scrape.queued_by_model {
            sample(
                &mut out,
                "foreman_queue_depth_by_model",
                &[("model", model)],
                *n,
            );
        }
        family(
            &mut out,
            "foreman_jobs",
            "gauge",
            "Jobs in the store, per state.",
        );
        for (state, n) in &scrape.jobs_by_state {
            sample(&mut out, "foreman_jobs", &[("state", state.as_str())], *n);
        }
        family(
            &mut out,
            "foreman_model_swaps_total",
            "counter",
            "Generations that ran on a different model from the one before.",
        );
        sample(
            &mut out,
            "foreman_model_swaps_total",
            &[],
            scrape.model_swaps,
        );
        family(
            &mut out,
            "foreman_target_up",
            "gauge",
            "1 while the target answers, 0 while it is unreachable.",
        );
        sample(
            &mut out,
            "foreman_target_up",
            &[("target", &scrape.target)],
            u64::from(scrape.target_up),
        );

        let recorded = self
            .recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        family(
            &mut out,
            "foreman_jobs_finished_total",
            "counter",
            "Jobs that reached a final state since start-up, per model and state.",
        );
        for ((model, state), n) in &recorded.finished {
            let labels = [("model", model.as_str()), ("state", *state)];
            sample(&mut out, "foreman_jobs_finished_total", &labels, *n);
        }
        family(
            &mut out,
            "foreman_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts since start-up, per outcome.",
        );
        for outcome in [
            WebhookOutcome::Delivered,
            WebhookOutcome::FailedAttempt,
            WebhookOutcome::GaveUp,
        ] {
            let n = recorded.webhooks.get(&outcome).copied().unwrap_or(0);
            let labels = [("outcome", outcome.as_str())];
            sample(&mut out, "foreman_webhook_deliveries_total", &labels, n);
        }
        histograms(
            &mut out,
            "foreman_job_wait_seconds",
            "Time from submission to the first start, per model.",
            &recorded.wait,
        );
        histograms(
            &mut out,
            "foreman_job_run_seconds",
            "Time a run held the target, per model.",
            &recorded.run,
        );
        out
    }
}

/// A histogram with fixed bounds.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }
}

fn histograms(out: &mut String, name: &str, help: &str, by_model: &BTreeMap<String, Histogram>) {
    family(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for (model, histogram) in by_model {
        let mut cumulative = 0;
        for (index, count) in histogram.counts.iter().enumerate() {
            cumulative += count;
            let le = match histogram.bounds.get(index) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_owned(),
            };
            sample(out, &bucket, &[("model", model), ("le", &le)], cumulative);
        }
        let labels = [("model", model.as_str())];
        let _ = writeln!(out, "{name}_sum{} {}", label_set(&labels), histogram.sum);
        sample(out, &format!("{name}_count"), &labels, cumulative);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", label_set(labels));
}

/// `{a="x",b="y"}`, values escaped as the format requires; empty without labels.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            let value = value
                .replace('\\', r"\\")
                .replace('"', r#"\""#)
                .replace('\n', r"\n");
            format!("{key}=\"{value}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        metrics.job_ran("llama3.2:latest", Duration::from_millis(50));
        metrics.job_ran("llama3.2:latest", Duration::from_secs(7));
        metrics.job_ran("llama3.2:latest", Duration::from_secs(9999));
        let text = metrics.render(&Scrape::default());
        assert!(
            text.contains(r#"foreman_job_run_seconds_bucket{model="llama3.2:latest",le="0.1"} 1"#)
        );
        assert!(
            text.contains(r#"foreman_job_run_seconds_bucket{model="llama3.2:latest",le="10"} 2"#)
        );
        assert!(
            text.contains(r#"foreman_job_run_seconds_bucket{model="llama3.2:latest",le="+Inf"} 3"#)
        );
        assert!(text.contains(r#"foreman_job_run_seconds_count{model="llama3.2:latest"} 3"#));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_set(&[("model", "a\"b\\c\nd")]),
            r#"{model="a\"b\\c\nd"}"#
        );
    }

    #[test]
    fn only_terminal_states_count_as_finished() {
        let metrics = Metrics::default();
        metrics.job_finished("m", JobState::Queued);
        metrics.job_finished("m", JobState::Done);
        let text = metrics.render(&Scrape::default());
        assert!(text.contains(r#"foreman_jobs_finished_total{model="m",state="done"} 1"#));
        assert!(!text.contains(r#"state="queued"} 1"#));
    }
}
