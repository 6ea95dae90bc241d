//! How the simulator behaves: its models, its timing, and who releases the tokens.

use std::time::Duration;

/// Settings of the simulated Ollama.
///
/// Start from [`SimConfig::default`] (realistic timing), [`SimConfig::instant`] (no
/// delays at all) or [`SimConfig::manual`] (the test releases every token), and change
/// fields with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use foreman_sim::SimConfig;
///
/// let config = SimConfig {
///     load_time: Duration::from_millis(200),
///     tokens_per_second: 400.0,
///     ..SimConfig::default()
/// };
/// assert_eq!(config.reply_tokens, 24);
/// ```
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The installed models, as `/api/tags` lists them (a name without a tag means `:latest`).
    /// Names containing `embed` are embedding models.
    pub models: Vec<String>,
    /// A model already resident when the simulator starts, as after a warm-up with
    /// `keep_alive: -1`: its first generation pays no load time, and it stays until another
    /// generation model evicts it. Installed too, if `models` lacks it.
    pub resident: Option<String>,
    /// The cost of loading a model that is not resident.
    pub load_time: Duration,
    /// How fast answers are produced. Infinite (or not a positive number) means no delay.
    pub tokens_per_second: f64,
    /// Tokens per answer (a request's `options.num_predict` may cut it shorter).
    pub reply_tokens: usize,
    /// Prompt evaluation time before the first token.
    pub first_token_latency: Duration,
    /// Who releases a generation's tokens (and a pull's progress): the clock, or the test.
    pub release: Release,
    /// The pretend registry: models `/api/pull` can download, besides the ones in
    /// `models` (which came from it too). Not installed until pulled.
    pub registry: Vec<String>,
    /// How fast pulls download and pushes upload, in bytes per second. Infinite (or not a
    /// positive number) means no delay: each layer is done as soon as it is announced.
    pub registry_bytes_per_second: f64,
}

/// Who releases the tokens of a generation once it has the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Release {
    /// The clock: [`SimConfig::reply_tokens`] tokens at [`SimConfig::tokens_per_second`],
    /// after [`SimConfig::first_token_latency`].
    #[default]
    Timed,
    /// The test: each generation is handed over as a [`Generation`](crate::Generation)
    /// by [`SimHandle::next_generation`](crate::SimHandle::next_generation), and its
    /// stream stays open until the test finishes it, fails it or cuts it. Untaken
    /// generations wait, holding the GPU, so the next request waits behind them.
    /// Likewise each pull of a model the registry has is handed over as a
    /// [`Pull`](crate::Pull) by [`SimHandle::next_pull`](crate::SimHandle::next_pull)
    /// once it has sent `pulling manifest`.
    Manual,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            models: vec![
                "llama3.2:latest".to_owned(),
                "qwen2.5:0.5b".to_owned(),
                "nomic-embed-text:latest".to_owned(),
            ],
            resident: None,
            load_time: Duration::from_secs(2),
            tokens_per_second: 40.0,
            reply_tokens: 24,
            first_token_latency: Duration::from_millis(50),
            release: Release::Timed,
            registry: vec!["smollm2:135m".to_owned(), "gemma3:270m".to_owned()],
            // A fast home connection: 800 Mbit/s.
            registry_bytes_per_second: 100e6,
        }
    }
}

impl SimConfig {
    /// The default models with no load time, no latency, no delay between tokens and
    /// downloads that take no time: every sleep is skipped, for throughput benchmarks that
    /// measure foreman rather than the GPU. Each token still leaves in a write of its own,
    /// as Ollama flushes each.
    pub fn instant() -> Self {
        Self {
            load_time: Duration::ZERO,
            tokens_per_second: f64::INFINITY,
            first_token_latency: Duration::ZERO,
            registry_bytes_per_second: f64::INFINITY,
            ..Self::default()
        }
    }

    /// The default models, `llama3.2:latest` resident, no delays, and every token released
    /// by the test ([`Release::Manual`]): for tests of what a proxy does chunk by chunk.
    pub fn manual() -> Self {
        Self {
            resident: Some("llama3.2:latest".to_owned()),
            release: Release::Manual,
            ..Self::instant()
        }
    }

    /// How long moving `bytes` to or from the registry takes; zero when the rate is
    /// infinite or not a positive number.
    pub(crate) fn transfer_time(&self, bytes: u64) -> Duration {
        if self.transfers_instantly() {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(bytes as f64 / self.registry_bytes_per_second)
            .unwrap_or(Duration::MAX)
    }

    /// Whether the registry moves bytes without delay (an infinite or unusable rate).
    pub(crate) fn transfers_instantly(&self) -> bool {
        let rate = self.registry_bytes_per_second;
        !(rate > 0.0 && rate.is_finite())
    }

    /// The time one token takes; zero when the rate is infinite or not a positive number.
    pub(crate) fn token_interval(&self) -> Duration {
        if self.tokens_per_second > 0.0 {
            Duration::try_from_secs_f64(1.0 / self.tokens_per_second).unwrap_or(Duration::ZERO)
        } else {
            Duration::ZERO
        }
    }
}
