//! `foreman serve`: parse the configuration, bind, run until ctrl-c or SIGTERM.

use clap::Args;
use foreman_server::Config;
use foreman_sim as sim;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

use crate::exit::Failure;

/// Each flag overrides the environment variable of the same name.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where foreman listens [env: FOREMAN_LISTEN_ADDR] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen_addr: Option<String>,
    /// The Ollama server [env: FOREMAN_TARGET_URL] [default: http://127.0.0.1:11434]
    #[arg(long, value_name = "URL")]
    target_url: Option<String>,
    /// Bearer token sent to the target [env: FOREMAN_TARGET_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    target_token: Option<String>,
    /// Token every client must send (all routes but /healthz and /) [env: FOREMAN_AUTH_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    auth_token: Option<String>,
    /// The SQLite file [env: FOREMAN_DB_PATH] [default: foreman.db]
    #[arg(long, value_name = "PATH")]
    db_path: Option<String>,
    /// How often /api/tags and /api/ps are polled [env: FOREMAN_POLL_INTERVAL] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    poll_interval: Option<String>,
    /// Tries per job on connection errors and restarts [env: FOREMAN_MAX_ATTEMPTS] [default: 3]
    #[arg(long, value_name = "N")]
    max_attempts: Option<String>,
    /// Finished jobs older than this are deleted [env: FOREMAN_JOB_TTL] [default: 24h]
    #[arg(long, value_name = "DURATION")]
    job_ttl: Option<String>,
    /// HMAC key for webhook signatures [env: FOREMAN_WEBHOOK_SECRET]
    #[arg(long, value_name = "SECRET")]
    webhook_secret: Option<String>,
    /// Embedding model to load at start-up and keep loaded [env: FOREMAN_EMBED_MODEL]
    #[arg(long, value_name = "MODEL")]
    embed_model: Option<String>,
    /// Queued jobs beyond this get 503 [env: FOREMAN_MAX_QUEUE] [default: 512]
    #[arg(long, value_name = "N")]
    max_queue: Option<String>,
    /// Allow webhooks to loopback and private networks [env: FOREMAN_WEBHOOK_ALLOW_PRIVATE]
    #[arg(long, value_name = "BOOL")]
    webhook_allow_private: Option<String>,
    /// How long the oldest job may be passed over for the loaded model's jobs
    /// [env: FOREMAN_AFFINITY_WINDOW] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    affinity_window: Option<String>,
    /// First pause after the target was unreachable, doubling to 30s
    /// [env: FOREMAN_RETRY_BACKOFF] [default: 1s]
    #[arg(long, value_name = "DURATION")]
    retry_backoff: Option<String>,
    /// Largest request body in bytes [env: FOREMAN_MAX_BODY_SIZE] [default: 33554432]
    #[arg(long, value_name = "BYTES")]
    max_body_size: Option<String>,
    /// The URL clients reach foreman at, for artifact links [env: FOREMAN_PUBLIC_URL]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Wait before a webhook's second attempt, doubling after [env: FOREMAN_WEBHOOK_RETRY_WAIT] [default: 1s]
    #[arg(long, value_name = "DURATION")]
    webhook_retry_wait: Option<String>,
    /// How long one webhook attempt may take [env: FOREMAN_WEBHOOK_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION")]
    webhook_timeout: Option<String>,
    /// Longest gap between chunks from the target before a generation is abandoned
    /// [env: FOREMAN_STALL_TIMEOUT] [default: 5m]
    #[arg(long, value_name = "DURATION")]
    stall_timeout: Option<String>,
    /// How long a client may take to send its request headers [env: FOREMAN_HEADER_TIMEOUT] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    header_timeout: Option<String>,
    /// Longest pause while a client sends a request body [env: FOREMAN_BODY_TIMEOUT] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    body_timeout: Option<String>,
    /// Run against a built-in simulated Ollama (no GPU needed) instead of FOREMAN_TARGET_URL
    #[arg(long)]
    sim: bool,
    /// The simulator's model-load time
    #[arg(long, value_name = "DURATION", default_value = "2s", requires = "sim")]
    sim_load_time: String,
    /// The simulator's generation speed
    #[arg(long, value_name = "N", default_value_t = 40.0, requires = "sim")]
    sim_tokens_per_second: f64,
}

impl ServeArgs {
    /// The flags given, keyed by their environment variable.
    fn flags(&self) -> HashMap<&'static str, String> {
        let pairs = [
            ("FOREMAN_LISTEN_ADDR", &self.listen_addr),
            ("FOREMAN_TARGET_URL", &self.target_url),
            ("FOREMAN_TARGET_TOKEN", &self.target_token),
            ("FOREMAN_AUTH_TOKEN", &self.auth_token),
            ("FOREMAN_DB_PATH", &self.db_path),
            ("FOREMAN_POLL_INTERVAL", &self.poll_interval),
            ("FOREMAN_MAX_ATTEMPTS", &self.max_attempts),
            ("FOREMAN_JOB_TTL", &self.job_ttl),
            ("FOREMAN_WEBHOOK_SECRET", &self.webhook_secret),
            ("FOREMAN_EMBED_MODEL", &self.embed_model),
            ("FOREMAN_MAX_QUEUE", &self.max_queue),
            ("FOREMAN_WEBHOOK_ALLOW_PRIVATE", &self.webhook_allow_private),
            ("FOREMAN_AFFINITY_WINDOW", &self.affinity_window),
            ("FOREMAN_RETRY_BACKOFF", &self.retry_backoff),
            ("FOREMAN_MAX_BODY_SIZE", &self.max_body_size),
            ("FOREMAN_PUBLIC_URL", &self.public_url),
            ("FOREMAN_WEBHOOK_RETRY_WAIT", &self.webhook_retry_wait),
            ("FOREMAN_WEBHOOK_TIMEOUT", &self.webhook_timeout),
            ("FOREMAN_STALL_TIMEOUT", &self.stall_timeout),
            ("FOREMAN_HEADER_TIMEOUT", &self.header_timeout),
            ("FOREMAN_BODY_TIMEOUT", &self.body_timeout),
        ];
        pairs
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
            .collect()
    }

    fn config(&self) -> Result<Config, Failure> {
        let flags = self.flags();
        Config::from_lookup(|name| {
            flags
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        })
        .map_err(|err| Failure::usage(err.to_string()))
    }
}

pub(crate) async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut config = args.config()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let mut simulated = None;
    if args.sim {
        let load_time =
            foreman_server::config::parse_duration("--sim-load-time", &args.sim_load_time, false)
                .map_err(|err| Failure::usage(err.to_string()))?;
        if !(args.sim_tokens_per_second > 0.0 && args.sim_tokens_per_second.is_finite()) {
            return Err(Failure::usage(
                "--sim-tokens-per-second must be more than zero",
            ));
        }
        let sim_config = sim::SimConfig {
            load_time,
            tokens_per_second: args.sim_tokens_per_second,
            ..sim::SimConfig::default()
        };
        let handle = sim::spawn(sim_config)
            .await
            .map_err(|err| Failure::server(format!("cannot start the simulator: {err}")))?;
        tracing::info!(url = %handle.url(), "serving against the simulated Ollama");
        config.target_url = handle
            .url()
            .parse()
            .map_err(|err| Failure::server(format!("simulator URL: {err}")))?;
        simulated = Some(handle);
    }
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|err| {
            Failure::usage(format!(
                "FOREMAN_LISTEN_ADDR: cannot listen on {}: {err}",
                config.listen_addr
            ))
        })?;
    let served = foreman_server::run(config, listener, shutdown).await;
    drop(simulated);
    served.map_err(|err| Failure::server(err.to_string()))
}

/// Cancels `shutdown` on ctrl-c or SIGTERM; a second signal exits at once.
async fn stop_on_signal(shutdown: CancellationToken) {
    wait_for_signal().await;
    tracing::info!("shutting down; a second signal exits at once");
    shutdown.cancel();
    wait_for_signal().await;
    std::process::exit(130);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `foreman sim`: the simulated Ollama on its own, for benchmarks and client tests.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Where the simulator listens
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:11434")]
    listen_addr: std::net::SocketAddr,
    /// The cost of loading a model that is not resident
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    load_time: String,
    /// Generation speed
    #[arg(long, value_name = "N", default_value_t = 40.0)]
    tokens_per_second: f64,
    /// Tokens per answer
    #[arg(long, value_name = "N", default_value_t = 24)]
    reply_tokens: usize,
}

pub(crate) async fn simulate(args: SimArgs) -> Result<(), Failure> {
    let load_time = foreman_server::config::parse_duration("--load-time", &args.load_time, false)
        .map_err(|err| Failure::usage(err.to_string()))?;
    if args.tokens_per_second.is_nan() || args.tokens_per_second <= 0.0 {
        return Err(Failure::usage("--tokens-per-second must be more than zero"));
    }
    let config = sim::SimConfig {
        load_time,
        tokens_per_second: args.tokens_per_second,
        reply_tokens: args.reply_tokens,
        ..sim::SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen_addr)
        .await
        .map_err(|err| {
            Failure::usage(format!(
                "--listen-addr: cannot listen on {}: {err}",
                args.listen_addr
            ))
        })?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tracing::info!(addr = %args.listen_addr, "simulated Ollama listening");
    sim::serve(listener, config, shutdown)
        .await
        .map_err(|err| Failure::server(format!("simulator: {err}")))
}
