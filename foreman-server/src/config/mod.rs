//! Configuration: every `FOREMAN_*` setting, parsed and checked before anything starts.
//!
//! Each setting is written once, as a field of [`Config`]: its variable, flag, default,
//! parser and help live on that field (ADR 13). clap reads them: `foreman serve` flattens
//! [`Config`] into its flags, so `foreman serve --help` lists every setting with its
//! variable and default, a flag wins over its variable, and the environment is read by
//! clap. [`Config::from_lookup`] runs the same definitions over any source of variables,
//! for tests and embedders that do not want the process environment.

mod targets;
mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use url::Url;

pub(crate) use targets::display_url;
pub use targets::{PerTarget, TargetSettings, TargetUrl, TargetUrls};
pub use values::parse_duration;
use values::{
    address, base_url, boolean, duration, lease, number, optional, path, positive_duration,
    postgres_url, secret, setting, text, webhook_secret,
};

/// A value that must never be printed: tokens and secrets. `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How log lines are written (`FOREMAN_LOG_FORMAT`). [`run`](crate::run) installs no
/// subscriber; the `foreman` binary installs one that writes in this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The name the setting takes.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{raw:?} is not a log format (use text or json)")),
        }
    }
}

/// Everything `foreman serve` needs. Each field is a variable and a flag of the same
/// name (`poll_interval`: `FOREMAN_POLL_INTERVAL`, `--poll-interval`; `max_body_bytes` is
/// `FOREMAN_MAX_BODY_SIZE`). An unset or empty variable keeps the default.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Settings (each flag or its variable)")]
#[non_exhaustive]
pub struct Config {
    /// Where foreman listens (an IP and port)
    #[arg(long, env = "FOREMAN_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    #[arg(value_name = "ADDR", value_parser = setting(address))]
    pub listen_addr: SocketAddr,
    /// The Ollama servers: a URL, or a comma-separated list of `URL` or `NAME=URL`
    /// entries (several GPU boxes; ADR 19)
    #[arg(long, env = "FOREMAN_TARGET_URL", value_name = "[NAME=]URL,...")]
    #[arg(default_value = "http://127.0.0.1:11434", value_parser = setting(targets::target_urls))]
    pub target_url: TargetUrls,
    /// Bearer token sent to the targets: one for all, or `NAME=TOKEN,...` per target
    #[arg(long, env = "FOREMAN_TARGET_TOKEN", value_name = "TOKEN")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(secret))]
    #[arg(hide_env_values = true)]
    pub target_token: std::option::Option<Secret>,
    /// Generations each target runs at once (its OLLAMA_NUM_PARALLEL): N for all, or
    /// `NAME=N,...` per target (the others 1, or a bare N among them)
    #[arg(long, env = "FOREMAN_TARGET_PARALLEL", default_value = "1")]
    #[arg(value_name = "[NAME=]N,...", value_parser = setting(targets::per_target_parallel))]
    pub target_parallel: PerTarget<u32>,
    /// When set, every route but /healthz and / needs `Authorization: Bearer <token>`
    #[arg(long, env = "FOREMAN_AUTH_TOKEN", value_name = "TOKEN")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(secret))]
    #[arg(hide_env_values = true)]
    pub auth_token: std::option::Option<Secret>,
    /// The SQLite file (WAL mode)
    #[arg(long, env = "FOREMAN_DB_PATH", default_value = "foreman.db")]
    #[arg(value_name = "PATH", value_parser = setting(path))]
    pub db_path: PathBuf,
    /// A PostgreSQL database (`postgres://user:pass@host:port/db`) shared by replicas;
    /// when set, it holds the queue instead of FOREMAN_DB_PATH
    #[arg(long, env = "FOREMAN_DB_URL", value_name = "URL")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(postgres_url))]
    #[arg(hide_env_values = true)]
    pub db_url: std::option::Option<Secret>,
    /// How long a replica's claims outlive its last heartbeat, on PostgreSQL: a replica
    /// gone this long has its running jobs and target slots taken over
    #[arg(long, env = "FOREMAN_LEASE", default_value = "30s")]
    #[arg(value_name = "DURATION", value_parser = setting(lease))]
    pub lease: Duration,
    /// How often /api/tags and /api/ps are polled
    #[arg(long, env = "FOREMAN_POLL_INTERVAL", default_value = "30s")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub poll_interval: Duration,
    /// Tries per job on connection errors and restarts (1 to 100)
    #[arg(long, env = "FOREMAN_MAX_ATTEMPTS", default_value = "3")]
    #[arg(value_name = "N", value_parser = setting(number::<u32>(1, 100)))]
    pub max_attempts: u32,
    /// Finished jobs older than this are deleted, with their artifacts
    #[arg(long, env = "FOREMAN_JOB_TTL", default_value = "24h")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub job_ttl: Duration,
    /// HMAC key for webhook signatures (`whsec_<base64>` is decoded)
    #[arg(long, env = "FOREMAN_WEBHOOK_SECRET", value_name = "SECRET")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(webhook_secret))]
    #[arg(hide_env_values = true)]
    pub webhook_secret: std::option::Option<Secret>,
    /// Browser origins allowed besides foreman's own and the local ones Ollama allows
    /// (localhost, 127.0.0.1, 0.0.0.0 on any port; app://, file://, tauri://,
    /// vscode-webview://): comma-separated `scheme://host[:port]`, or `*` for any
    #[arg(long, env = "FOREMAN_ALLOWED_ORIGINS", value_name = "ORIGINS")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(text))]
    pub allowed_origins: std::option::Option<String>,
    /// Embedding model loaded at start-up with `keep_alive: -1`, so it stays loaded
    #[arg(long, env = "FOREMAN_EMBED_MODEL", value_name = "MODEL")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(text))]
    pub embed_model: std::option::Option<String>,
    /// Queued jobs beyond this get 503, as Ollama answers
    #[arg(long, env = "FOREMAN_MAX_QUEUE", default_value = "512")]
    #[arg(value_name = "N", value_parser = setting(number::<u64>(1, u32::MAX as u64)))]
    pub max_queue: u64,
    /// Allow webhook URLs on loopback and private networks (home labs, tests)
    #[arg(long, env = "FOREMAN_WEBHOOK_ALLOW_PRIVATE", default_value = "false")]
    #[arg(value_name = "BOOL", action = clap::ArgAction::Set, value_parser = setting(boolean))]
    pub webhook_allow_private: bool,
    /// How long the oldest queued job may be passed over for jobs for the loaded model
    /// (drain by model's bound; 0s is plain FIFO)
    #[arg(long, env = "FOREMAN_AFFINITY_WINDOW", default_value = "30s")]
    #[arg(value_name = "DURATION", value_parser = setting(duration))]
    pub affinity_window: Duration,
    /// The first pause after a target was unreachable before it is given work again;
    /// doubles up to 30s
    #[arg(long, env = "FOREMAN_RETRY_BACKOFF", default_value = "1s")]
    #[arg(value_name = "DURATION", value_parser = setting(duration))]
    pub retry_backoff: Duration,
    /// The largest request body, in bytes (1024 to 4294967296); 413 beyond
    #[arg(
        long = "max-body-size",
        env = "FOREMAN_MAX_BODY_SIZE",
        value_name = "BYTES"
    )]
    #[arg(default_value = "33554432", value_parser = setting(number::<usize>(1024, 1 << 32)))]
    pub max_body_bytes: usize,
    /// The URL clients reach foreman at, for artifact links; by default http:// and the
    /// listen address
    #[arg(long, env = "FOREMAN_PUBLIC_URL", value_name = "URL")]
    #[arg(default_value = "", hide_default_value = true, value_parser = optional(base_url))]
    pub public_url: std::option::Option<String>,
    /// The wait before a webhook's second attempt; doubles for each later one
    #[arg(long, env = "FOREMAN_WEBHOOK_RETRY_WAIT", default_value = "1s")]
    #[arg(value_name = "DURATION", value_parser = setting(duration))]
    pub webhook_retry_wait: Duration,
    /// How long one webhook attempt (connect, send, answer) may take before it counts as
    /// failed
    #[arg(long, env = "FOREMAN_WEBHOOK_TIMEOUT", default_value = "10s")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub webhook_timeout: Duration,
    /// The longest gap between two chunks from the target before the generation is
    /// abandoned as a connection error
    #[arg(long, env = "FOREMAN_STALL_TIMEOUT", default_value = "5m")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub stall_timeout: Duration,
    /// How long a client may take to send a request's headers before its connection is
    /// closed
    #[arg(long, env = "FOREMAN_HEADER_TIMEOUT", default_value = "30s")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub header_timeout: Duration,
    /// The longest pause while a client sends a request body before it is answered 408
    #[arg(long, env = "FOREMAN_BODY_TIMEOUT", default_value = "60s")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub body_timeout: Duration,
    /// How often the status page's stream sends a snapshot when nothing has changed, to
    /// move its elapsed times and tokens per second on (a change is sent at once)
    #[arg(long, env = "FOREMAN_UI_REFRESH", default_value = "1s")]
    #[arg(value_name = "DURATION", value_parser = setting(positive_duration))]
    pub ui_refresh: Duration,
    /// How log lines are written: text, or json (one object a line) for log shippers
    #[arg(long, env = "FOREMAN_LOG_FORMAT", default_value = "text")]
    #[arg(value_name = "FORMAT", value_parser = setting(LogFormat::from_str))]
    pub log_format: LogFormat,
}

impl Default for Config {
    /// Every setting's default.
    fn default() -> Self {
        // The defaults are constants that `defaults_match_the_spec` parses on every test
        // run: this cannot fail in a build whose tests passed.
        Self::from_lookup(|_| None).expect("the default settings are valid")
    }
}

impl Config {
    /// The defaults, with this target and database.
    pub fn new(target_url: Url, db_path: impl Into<PathBuf>) -> Self {
        Self {
            target_url: TargetUrls::one(target_url),
            db_path: db_path.into(),
            ..Self::default()
        }
    }

    /// Reads every setting's variable through `lookup` instead of the process
    /// environment, with the same defaults, parsers and errors as `foreman serve`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let command = Self::augment_args(clap::Command::new("foreman serve"));
        // Every setting goes on the command line, the unset ones as empty values: clap
        // then never falls back to the process environment.
        let argv = command.get_arguments().filter_map(|arg| {
            let long = arg.get_long()?;
            let variable = arg.get_env()?.to_str()?;
            Some(format!("--{long}={}", lookup(variable).unwrap_or_default()))
        });
        let argv: Vec<String> = std::iter::once("foreman serve".to_owned())
            .chain(argv)
            .collect();
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|err| ConfigError::from_clap(&err))?;
        let config =
            Self::from_arg_matches(&matches).map_err(|err| ConfigError::from_clap(&err))?;
        // The settings that only make sense together (a token for a target that exists).
        config.targets()?;
        Ok(config)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The base URL for links to foreman itself.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen_addr))
    }
}

/// A configuration value that cannot be used; names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The variable at fault, e.g. `FOREMAN_POLL_INTERVAL`.
    pub variable: String,
    /// What is wrong with its value.
    pub message: String,
}

impl ConfigError {
    fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }

    /// The setting's error that clap stopped on, or clap's own message for anything else.
    fn from_clap(err: &clap::Error) -> Self {
        use clap::error::{ContextKind, ContextValue};
        match (
            err.get(ContextKind::InvalidArg),
            err.get(ContextKind::Custom),
        ) {
            (Some(ContextValue::String(variable)), Some(ContextValue::String(message))) => {
                Self::new(variable.clone(), message.clone())
            }
            _ => Self::new("foreman serve", err.to_string().trim()),
        }
    }
}

#[cfg(test)]
mod tests;
