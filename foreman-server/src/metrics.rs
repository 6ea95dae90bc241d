//! Prometheus metrics: what the worker and the webhook dispatcher record as they go, and
//! the scrape of `GET /metrics` in the text exposition format 0.0.4.
//!
//! Recorded and encoded with `prometheus-client` (ADR 11): one [`Registry`] per
//! [`Metrics`], so every server in a test process keeps its own counts. Gauges that mirror
//! the store (jobs per state, queue depth) are read at scrape time into a registry of
//! their own, so they are never stale and cost nothing between scrapes. A family with no
//! samples yet (a histogram before the first job) is left out of the scrape.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use foreman_types::JobState;
use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::KeyTotals;

/// The content type of the text exposition format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed and will be tried again.
    FailedAttempt,
    /// It failed and was the last attempt: the event is abandoned.
    GaveUp,
}

impl WebhookOutcome {
    const ALL: [WebhookOutcome; 3] = [
        WebhookOutcome::Delivered,
        WebhookOutcome::FailedAttempt,
        WebhookOutcome::GaveUp,
    ];

    fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Delivered => "delivered",
            WebhookOutcome::FailedAttempt => "failed_attempt",
            WebhookOutcome::GaveUp => "gave_up",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelStateLabels {
    model: String,
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TargetModelLabels {
    target: String,
    model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KeyLabel {
    key: String,
}

type Histograms = Family<ModelLabel, Histogram, fn() -> Histogram>;
/// A gauge holding a count (the default gauge is an `i64`).
type CountGauge = Gauge<u64, AtomicU64>;

/// What the store and the targets say at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape {
    pub jobs_by_state: Vec<(JobState, u64)>,
    pub queued_by_model: Vec<(String, u64)>,
    pub model_swaps: u64,
    pub targets: Vec<TargetScrape>,
    /// Each key's usage since the start, from the store (so it survives restarts).
    pub usage: Vec<KeyTotals>,
}

/// One target at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetScrape {
    pub name: String,
    pub up: bool,
    /// Generations running on it now.
    pub running: u64,
    /// How many it may run at once.
    pub slots: u64,
    /// Its model swaps since start-up.
    pub model_swaps: u64,
}

impl Scrape {
    /// The scrape-time families, in a registry made for this scrape.
    fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        let depth: u64 = self.queued_by_model.iter().map(|(_, n)| n).sum();
        registry.register(
            "foreman_queue_depth",
            "Jobs waiting in the queue",
            ConstGauge::new(depth),
        );
        let by_model = Family::<ModelLabel, CountGauge>::default();
        for (model, n) in &self.queued_by_model {
            let labels = ModelLabel {
                model: model.clone(),
            };
            by_model.get_or_create(&labels).set(*n);
        }
        registry.register(
            "foreman_queue_depth_by_model",
            "Jobs waiting in the queue, per model",
            by_model,
        );
        let jobs = Family::<StateLabel, CountGauge>::default();
        for (state, n) in &self.jobs_by_state {
            let labels = StateLabel {
                state: state.as_str(),
            };
            jobs.get_or_create(&labels).set(*n);
        }
        registry.register("foreman_jobs", "Jobs in the store, per state", jobs);
        registry.register(
            "foreman_model_swaps",
            "Generations that ran on a different model from the one before",
            ConstCounter::new(self.model_swaps),
        );
        let target_up = Family::<TargetLabel, CountGauge>::default();
        let running = Family::<TargetLabel, CountGauge>::default();
        let slots = Family::<TargetLabel, CountGauge>::default();
        // Counted by the targets' lanes; this registry lives for one scrape.
        let swaps = Family::<TargetLabel, Counter>::default();
        for target in &self.targets {
            let labels = TargetLabel {
                target: target.name.clone(),
            };
            target_up.get_or_create(&labels).set(u64::from(target.up));
            running.get_or_create(&labels).set(target.running);
            slots.get_or_create(&labels).set(target.slots);
            swaps.get_or_create(&labels).inc_by(target.model_swaps);
        }
        registry.register(
            "foreman_target_up",
            "1 while the target answers, 0 while it is unreachable",
            target_up,
        );
        registry.register(
            "foreman_target_running",
            "Generations running on the target now",
            running,
        );
        registry.register(
            "foreman_target_slots",
            "Generations the target may run at once (FOREMAN_TARGET_PARALLEL)",
            slots,
        );
        registry.register(
            "foreman_target_model_swaps",
            "Generations on the target that ran on a different model from the one before",
            swaps,
        );
        self.register_usage(&mut registry);
        registry
    }

    /// Usage per key: counters read from the store, which keeps them across restarts.
    fn register_usage(&self, registry: &mut Registry) {
        let requests = Family::<KeyLabel, Counter>::default();
        let prompt = Family::<KeyLabel, Counter>::default();
        let output = Family::<KeyLabel, Counter>::default();
        let gpu = Family::<KeyLabel, Counter<f64, AtomicU64>>::default();
        for totals in &self.usage {
            let labels = KeyLabel {
                key: totals.key.clone(),
            };
            requests.get_or_create(&labels).inc_by(totals.requests);
            prompt.get_or_create(&labels).inc_by(totals.prompt_tokens);
            output.get_or_create(&labels).inc_by(totals.output_tokens);
            gpu.get_or_create(&labels)
                .inc_by(totals.gpu_ms as f64 / 1000.0);
        }
        registry.register(
            "foreman_key_requests",
            "Jobs that ran on the target and ended, per API key",
            requests,
        );
        registry.register(
            "foreman_key_prompt_tokens",
            "Prompt tokens the target reported, per API key",
            prompt,
        );
        registry.register(
            "foreman_key_output_tokens",
            "Output tokens the target reported, per API key",
            output,
        );
        registry.register(
            "foreman_key_gpu_seconds",
            "GPU time of the jobs, per API key",
            gpu,
        );
    }
}

/// The recorded metrics; one per [`crate::state::App`].
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    wait: Histograms,
    run: Histograms,
    finished: Family<ModelStateLabels, Counter>,
    webhooks: Family<OutcomeLabel, Counter>,
    started: Family<TargetModelLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let wait = Histograms::new_with_constructor(|| Histogram::new(WAIT_BUCKETS.to_vec()));
        let run = Histograms::new_with_constructor(|| Histogram::new(RUN_BUCKETS.to_vec()));
        let finished = Family::<ModelStateLabels, Counter>::default();
        let webhooks = Family::<OutcomeLabel, Counter>::default();
        let started = Family::<TargetModelLabels, Counter>::default();
        // Every outcome reads 0 from the start, so a rate over it is defined.
        for outcome in WebhookOutcome::ALL {
            let _ = webhooks.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        let mut registry = Registry::default();
        registry.register(
            "foreman_jobs_finished",
            "Jobs that reached a final state since start-up, per model and state",
            finished.clone(),
        );
        registry.register(
            "foreman_webhook_deliveries",
            "Webhook delivery attempts since start-up, per outcome",
            webhooks.clone(),
        );
        registry.register(
            "foreman_target_runs",
            "Runs started since start-up, per target and model: where the jobs ran",
            started.clone(),
        );
        registry.register(
            "foreman_job_wait_seconds",
            "Time from submission to the first start, per model",
            wait.clone(),
        );
        registry.register(
            "foreman_job_run_seconds",
            "Time a run held the target, per model",
            run.clone(),
        );
        Self {
            registry,
            wait,
            run,
            finished,
            webhooks,
            started,
        }
    }
}

impl Metrics {
    /// A run of a job of `model` started on `target`.
    pub(crate) fn job_started(&self, target: &str, model: &str) {
        let labels = TargetModelLabels {
            target: target.to_owned(),
            model: model.to_owned(),
        };
        self.started.get_or_create(&labels).inc();
    }

    /// A job of `model` started after waiting `waited` since it was submitted.
    pub(crate) fn job_waited(&self, model: &str, waited: Duration) {
        self.wait
            .get_or_create(&model_label(model))
            .observe(waited.as_secs_f64());
    }

    /// A run of a job of `model` took `took` on the target.
    pub(crate) fn job_ran(&self, model: &str, took: Duration) {
        self.run
            .get_or_create(&model_label(model))
            .observe(took.as_secs_f64());
    }

    /// A job of `model` reached a terminal state.
    pub(crate) fn job_finished(&self, model: &str, state: JobState) {
        if !state.is_terminal() {
            return;
        }
        let labels = ModelStateLabels {
            model: model.to_owned(),
            state: state.as_str(),
        };
        self.finished.get_or_create(&labels).inc();
    }

    /// A webhook delivery attempt ended.
    pub(crate) fn webhook(&self, outcome: WebhookOutcome) {
        let labels = OutcomeLabel {
            outcome: outcome.as_str(),
        };
        self.webhooks.get_or_create(&labels).inc();
    }

    /// Every family, in the text exposition format 0.0.4.
    ///
    /// # Errors
    /// Only if a metric cannot be encoded, which writing to a `String` never causes.
    pub(crate) fn render(&self, scrape: &Scrape) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &scrape.registry())?;
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn model_label(model: &str) -> ModelLabel {
    ModelLabel {
        model: model.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &Metrics) -> String {
        metrics.render(&Scrape::default()).unwrap()
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        metrics.job_ran("llama3.2:latest", Duration::from_millis(50));
        metrics.job_ran("llama3.2:latest", Duration::from_secs(7));
        metrics.job_ran("llama3.2:latest", Duration::from_secs(9999));
        let text = render(&metrics);
        assert!(
            text.contains(r#"foreman_job_run_seconds_bucket{model="llama3.2:latest",le="0.1"} 1"#),
            "{text}"
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
        let metrics = Metrics::default();
        metrics.job_finished("a\"b\\c\nd", JobState::Done);
        let text = render(&metrics);
        assert!(
            text.contains(r#"foreman_jobs_finished_total{model="a\"b\\c\nd",state="done"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn only_terminal_states_count_as_finished() {
        let metrics = Metrics::default();
        metrics.job_finished("m", JobState::Queued);
        metrics.job_finished("m", JobState::Done);
        let text = render(&metrics);
        assert!(text.contains(r#"foreman_jobs_finished_total{model="m",state="done"} 1"#));
        assert!(!text.contains(r#"state="queued"} 1"#));
    }

    #[test]
    fn counters_are_typed_under_their_total_name_as_format_0_0_4_wants() {
        let metrics = Metrics::default();
        metrics.job_waited("m", Duration::from_secs(1));
        let text = render(&metrics);
        assert!(
            text.contains("# TYPE foreman_webhook_deliveries_total counter\n"),
            "{text}"
        );
        assert!(text.contains("foreman_webhook_deliveries_total{outcome=\"gave_up\"} 0\n"));
        assert!(text.contains("# TYPE foreman_job_wait_seconds histogram\n"));
        assert!(!text.contains("# EOF"), "no OpenMetrics trailer");
        assert!(
            !text.contains("foreman_job_run_seconds"),
            "a family without samples is left out"
        );
    }

    #[test]
    fn scrape_time_gauges_reflect_the_scrape() {
        let scrape = Scrape {
            jobs_by_state: vec![(JobState::Queued, 3), (JobState::Done, 5)],
            queued_by_model: vec![("a".into(), 2), ("b".into(), 1)],
            model_swaps: 4,
            targets: vec![
                TargetScrape {
                    name: "default".into(),
                    up: true,
                    running: 1,
                    slots: 2,
                    model_swaps: 3,
                },
                TargetScrape {
                    name: "mac".into(),
                    ..TargetScrape::default()
                },
            ],
            usage: vec![KeyTotals {
                key: "alice".into(),
                requests: 2,
                prompt_tokens: 30,
                output_tokens: 12,
                gpu_ms: 1500,
            }],
        };
        let text = Metrics::default().render(&scrape).unwrap();
        for line in [
            "foreman_queue_depth 3\n",
            "foreman_queue_depth_by_model{model=\"a\"} 2\n",
            "foreman_jobs{state=\"done\"} 5\n",
            "foreman_model_swaps_total 4\n",
            "foreman_target_up{target=\"default\"} 1\n",
            "foreman_target_up{target=\"mac\"} 0\n",
            "foreman_target_running{target=\"default\"} 1\n",
            "foreman_target_slots{target=\"default\"} 2\n",
            "foreman_target_model_swaps_total{target=\"default\"} 3\n",
            "foreman_key_requests_total{key=\"alice\"} 2\n",
            "foreman_key_prompt_tokens_total{key=\"alice\"} 30\n",
            "foreman_key_output_tokens_total{key=\"alice\"} 12\n",
            "foreman_key_gpu_seconds_total{key=\"alice\"} 1.5\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
