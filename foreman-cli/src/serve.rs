//! `foreman serve`: parse the configuration, bind, run until ctrl-c or SIGTERM.

use std::net::SocketAddr;

use clap::Args;
use foreman_server::Config;
use foreman_sim as sim;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exit::Failure;

/// Every setting of [`Config`], and the simulator's flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Run against a built-in simulated Ollama (no GPU needed) instead of FOREMAN_TARGET_URL
    #[arg(long)]
    sim: bool,
    /// The simulator's model-load time
    #[arg(long, value_name = "DURATION", default_value = "2s", requires = "sim")]
    sim_load_time: String,
    /// The simulator's generation speed
    #[arg(long, value_name = "N", default_value_t = 40.0, requires = "sim")]
    sim_tokens_per_second: f64,
    // Last, so that `--help` shows the flags above with the other options and the
    // settings under their own heading.
    #[command(flatten)]
    config: Config,
}

impl ServeArgs {
    /// `FOREMAN_LOG_FORMAT`, for setting up logging before serving.
    pub(crate) fn log_format(&self) -> foreman_server::LogFormat {
        self.config.log_format
    }
}

pub(crate) async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut config = args.config;
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
    // Settings that only make sense together (a token for a target that exists) are
    // checked before anything is bound, so a mistake is a usage error like any other.
    config
        .targets()
        .map_err(|err| Failure::usage(err.to_string()))?;
    let listener = listen(config.listen_addr, "FOREMAN_LISTEN_ADDR").await?;
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
    listen_addr: SocketAddr,
    /// The cost of loading a model that is not resident
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    load_time: String,
    /// Generation speed
    #[arg(long, value_name = "N", default_value_t = 40.0)]
    tokens_per_second: f64,
    /// Tokens per answer
    #[arg(long, value_name = "N", default_value_t = 24)]
    reply_tokens: usize,
    /// An installed model (repeatable); replaces the default llama3.2, qwen2.5:0.5b and
    /// nomic-embed-text, so several simulators can play GPU boxes holding different models
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,
    /// A model already in memory at start, as after a warm-up (installed too)
    #[arg(long, value_name = "NAME")]
    resident: Option<String>,
}

pub(crate) async fn simulate(args: SimArgs) -> Result<(), Failure> {
    let load_time = foreman_server::config::parse_duration("--load-time", &args.load_time, false)
        .map_err(|err| Failure::usage(err.to_string()))?;
    if args.tokens_per_second.is_nan() || args.tokens_per_second <= 0.0 {
        return Err(Failure::usage("--tokens-per-second must be more than zero"));
    }
    let defaults = sim::SimConfig::default();
    let config = sim::SimConfig {
        load_time,
        tokens_per_second: args.tokens_per_second,
        reply_tokens: args.reply_tokens,
        models: if args.models.is_empty() {
            defaults.models.clone()
        } else {
            args.models
        },
        resident: args.resident,
        ..defaults
    };
    let listener = listen(args.listen_addr, "--listen-addr").await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tracing::info!(addr = %args.listen_addr, "simulated Ollama listening");
    sim::serve(listener, config, shutdown)
        .await
        .map_err(|err| Failure::server(format!("simulator: {err}")))
}

/// Binds `addr`; a failure is a usage error that names the setting it came from.
async fn listen(addr: SocketAddr, setting: &str) -> Result<TcpListener, Failure> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| Failure::usage(format!("{setting}: cannot listen on {addr}: {err}")))
}
