//! Configuration: every `FOREMAN_*` variable, parsed and checked before anything starts.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

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

/// Everything `foreman serve` needs; see the README's configuration table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `FOREMAN_LISTEN_ADDR`: where foreman listens (the binary binds it; `run` takes a
    /// listener).
    pub listen_addr: SocketAddr,
    /// `FOREMAN_TARGET_URL`: the Ollama server.
    pub target_url: Url,
    /// `FOREMAN_TARGET_TOKEN`: bearer token sent to the target.
    pub target_token: Option<Secret>,
    /// `FOREMAN_AUTH_TOKEN`: when set, every route but `/healthz` and `/` needs it.
    pub auth_token: Option<Secret>,
    /// `FOREMAN_DB_PATH`: the SQLite file.
    pub db_path: PathBuf,
    /// `FOREMAN_POLL_INTERVAL`: how often `/api/tags` and `/api/ps` are polled.
    pub poll_interval: Duration,
    /// `FOREMAN_MAX_ATTEMPTS`: tries per job on connection errors and restarts.
    pub max_attempts: u32,
    /// `FOREMAN_JOB_TTL`: finished jobs older than this are deleted.
    pub job_ttl: Duration,
    /// `FOREMAN_WEBHOOK_SECRET`: HMAC key for webhook signatures.
    pub webhook_secret: Option<Secret>,
    /// `FOREMAN_EMBED_MODEL`: loaded at start-up and kept loaded.
    pub embed_model: Option<String>,
    /// `FOREMAN_MAX_QUEUE`: queued jobs beyond this are refused with 503.
    pub max_queue: u64,
    /// `FOREMAN_WEBHOOK_ALLOW_PRIVATE`: allow webhook URLs on loopback and private networks.
    pub webhook_allow_private: bool,
    /// `FOREMAN_AFFINITY_WINDOW`: how long the oldest queued job may be passed over in
    /// favour of jobs for the model already loaded (drain-by-model's bound).
    pub affinity_window: Duration,
    /// `FOREMAN_RETRY_BACKOFF`: the worker's first pause after the target was unreachable;
    /// it doubles per consecutive failure, up to 30 s.
    pub retry_backoff: Duration,
    /// `FOREMAN_MAX_BODY_SIZE`: the largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// `FOREMAN_PUBLIC_URL`: the URL clients reach foreman at, for artifact links; by
    /// default `http://` and the listen address.
    pub public_url: Option<String>,
    /// `FOREMAN_WEBHOOK_RETRY_WAIT`: the wait before a webhook's second attempt; it
    /// doubles for each later one.
    pub webhook_retry_wait: Duration,
    /// `FOREMAN_WEBHOOK_TIMEOUT`: how long one webhook attempt (connect, send, answer) may
    /// take before it counts as failed.
    pub webhook_timeout: Duration,
    /// `FOREMAN_STALL_TIMEOUT`: the longest gap between two chunks from the target before
    /// the generation is abandoned as a connection error.
    pub stall_timeout: Duration,
    /// `FOREMAN_HEADER_TIMEOUT`: how long a client may take to send a request's headers
    /// before its connection is closed.
    pub header_timeout: Duration,
    /// `FOREMAN_BODY_TIMEOUT`: the longest pause while a client sends a request body
    /// before the request is answered 408.
    pub body_timeout: Duration,
}

impl Config {
    /// The defaults, with this target and database.
    pub fn new(target_url: Url, db_path: impl Into<PathBuf>) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            target_url,
            target_token: None,
            auth_token: None,
            db_path: db_path.into(),
            poll_interval: Duration::from_secs(30),
            max_attempts: 3,
            job_ttl: Duration::from_secs(24 * 3600),
            webhook_secret: None,
            embed_model: None,
            max_queue: 512,
            webhook_allow_private: false,
            affinity_window: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            max_body_bytes: 32 * 1024 * 1024,
            public_url: None,
            webhook_retry_wait: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
        }
    }

    /// Reads every variable through `lookup` (the environment, or flags over it).
    /// An unset or empty variable keeps its default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let target_url = match get("FOREMAN_TARGET_URL") {
            Some(raw) => parse_url("FOREMAN_TARGET_URL", &raw)?,
            None => Url::parse("http://127.0.0.1:11434")
                .map_err(|e| ConfigError::new("FOREMAN_TARGET_URL", format!("bad default: {e}")))?,
        };
        let mut config = Self::new(target_url, "foreman.db");
        if let Some(raw) = get("FOREMAN_LISTEN_ADDR") {
            config.listen_addr = raw.trim().parse().map_err(|_| {
                ConfigError::new(
                    "FOREMAN_LISTEN_ADDR",
                    format!("{raw:?} is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        config.target_token = get("FOREMAN_TARGET_TOKEN").map(Secret::new);
        config.auth_token = get("FOREMAN_AUTH_TOKEN").map(Secret::new);
        if let Some(raw) = get("FOREMAN_DB_PATH") {
            config.db_path = PathBuf::from(raw);
        }
        if let Some(raw) = get("FOREMAN_POLL_INTERVAL") {
            config.poll_interval = parse_duration("FOREMAN_POLL_INTERVAL", &raw, true)?;
        }
        if let Some(raw) = get("FOREMAN_MAX_ATTEMPTS") {
            config.max_attempts = parse_number("FOREMAN_MAX_ATTEMPTS", &raw, 1, 100)? as u32;
        }
        if let Some(raw) = get("FOREMAN_JOB_TTL") {
            config.job_ttl = parse_duration("FOREMAN_JOB_TTL", &raw, true)?;
        }
        config.webhook_secret = get("FOREMAN_WEBHOOK_SECRET").map(Secret::new);
        if let Some(secret) = &config.webhook_secret {
            foreman_types::Webhook::new(secret.expose())
                .map_err(|e| ConfigError::new("FOREMAN_WEBHOOK_SECRET", e.to_string()))?;
        }
        config.embed_model = get("FOREMAN_EMBED_MODEL").map(|m| m.trim().to_owned());
        if let Some(raw) = get("FOREMAN_MAX_QUEUE") {
            config.max_queue = parse_number("FOREMAN_MAX_QUEUE", &raw, 1, u32::MAX as u64)?;
        }
        if let Some(raw) = get("FOREMAN_WEBHOOK_ALLOW_PRIVATE") {
            config.webhook_allow_private = parse_bool("FOREMAN_WEBHOOK_ALLOW_PRIVATE", &raw)?;
        }
        if let Some(raw) = get("FOREMAN_AFFINITY_WINDOW") {
            config.affinity_window = parse_duration("FOREMAN_AFFINITY_WINDOW", &raw, false)?;
        }
        if let Some(raw) = get("FOREMAN_RETRY_BACKOFF") {
            config.retry_backoff = parse_duration("FOREMAN_RETRY_BACKOFF", &raw, false)?;
        }
        if let Some(raw) = get("FOREMAN_MAX_BODY_SIZE") {
            config.max_body_bytes =
                parse_number("FOREMAN_MAX_BODY_SIZE", &raw, 1024, 1 << 32)? as usize;
        }
        if let Some(raw) = get("FOREMAN_PUBLIC_URL") {
            let url = parse_url("FOREMAN_PUBLIC_URL", &raw)?;
            config.public_url = Some(url.as_str().trim_end_matches('/').to_owned());
        }
        if let Some(raw) = get("FOREMAN_WEBHOOK_RETRY_WAIT") {
            config.webhook_retry_wait = parse_duration("FOREMAN_WEBHOOK_RETRY_WAIT", &raw, false)?;
        }
        if let Some(raw) = get("FOREMAN_WEBHOOK_TIMEOUT") {
            config.webhook_timeout = parse_duration("FOREMAN_WEBHOOK_TIMEOUT", &raw, true)?;
        }
        if let Some(raw) = get("FOREMAN_STALL_TIMEOUT") {
            config.stall_timeout = parse_duration("FOREMAN_STALL_TIMEOUT", &raw, true)?;
        }
        if let Some(raw) = get("FOREMAN_HEADER_TIMEOUT") {
            config.header_timeout = parse_duration("FOREMAN_HEADER_TIMEOUT", &raw, true)?;
        }
        if let Some(raw) = get("FOREMAN_BODY_TIMEOUT") {
            config.body_timeout = parse_duration("FOREMAN_BODY_TIMEOUT", &raw, true)?;
        }
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
    pub variable: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// Parses `1500ms`, `30s`, `5m`, `24h` (and combinations such as `1h30m`).
pub fn parse_duration(
    variable: &'static str,
    raw: &str,
    positive: bool,
) -> Result<Duration, ConfigError> {
    let duration = humantime::parse_duration(raw.trim()).map_err(|_| {
        ConfigError::new(
            variable,
            format!("{raw:?} is not a duration (use e.g. 1500ms, 30s, 5m, 24h)"),
        )
    })?;
    if positive && duration.is_zero() {
        return Err(ConfigError::new(variable, "must be more than zero"));
    }
    Ok(duration)
}

fn parse_number(variable: &'static str, raw: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(variable, format!("{raw:?} is not a whole number")))?;
    if n < min || n > max {
        return Err(ConfigError::new(
            variable,
            format!("{n} is out of range ({min} to {max})"),
        ));
    }
    Ok(n)
}

fn parse_bool(variable: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            variable,
            format!("{raw:?} is not true or false"),
        )),
    }
}

fn parse_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError::new(variable, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            variable,
            format!("{raw:?} must be an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.target_url.as_str(), "http://127.0.0.1:11434/");
        assert_eq!(config.db_path, PathBuf::from("foreman.db"));
        assert_eq!(config.poll_interval, Duration::from_secs(30));
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.job_ttl, Duration::from_secs(86400));
        assert_eq!(config.max_queue, 512);
        assert!(!config.webhook_allow_private);
        assert!(config.auth_token.is_none());
        assert_eq!(config.webhook_timeout, Duration::from_secs(10));
        assert_eq!(config.stall_timeout, Duration::from_secs(300));
        assert_eq!(config.header_timeout, Duration::from_secs(30));
        assert_eq!(config.body_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_timeouts_parse_and_must_be_positive() {
        let config = parse(&[
            ("FOREMAN_WEBHOOK_TIMEOUT", "200ms"),
            ("FOREMAN_STALL_TIMEOUT", "2m"),
            ("FOREMAN_HEADER_TIMEOUT", "5s"),
            ("FOREMAN_BODY_TIMEOUT", "1m30s"),
        ])
        .unwrap();
        assert_eq!(config.webhook_timeout, Duration::from_millis(200));
        assert_eq!(config.stall_timeout, Duration::from_secs(120));
        assert_eq!(config.header_timeout, Duration::from_secs(5));
        assert_eq!(config.body_timeout, Duration::from_secs(90));
        for variable in [
            "FOREMAN_WEBHOOK_TIMEOUT",
            "FOREMAN_STALL_TIMEOUT",
            "FOREMAN_HEADER_TIMEOUT",
            "FOREMAN_BODY_TIMEOUT",
        ] {
            for bad in ["0s", "forever"] {
                let err = parse(&[(variable, bad)]).unwrap_err();
                assert_eq!(err.variable, variable, "{bad:?}");
            }
        }
    }

    #[test]
    fn durations_accept_the_documented_forms() {
        let config = parse(&[
            ("FOREMAN_POLL_INTERVAL", "1500ms"),
            ("FOREMAN_JOB_TTL", "5m"),
            ("FOREMAN_AFFINITY_WINDOW", "24h"),
        ])
        .unwrap();
        assert_eq!(config.poll_interval, Duration::from_millis(1500));
        assert_eq!(config.job_ttl, Duration::from_secs(300));
        assert_eq!(config.affinity_window, Duration::from_secs(86400));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let cases = [
            ("FOREMAN_POLL_INTERVAL", "soon"),
            ("FOREMAN_POLL_INTERVAL", "0s"),
            ("FOREMAN_MAX_ATTEMPTS", "three"),
            ("FOREMAN_MAX_ATTEMPTS", "0"),
            ("FOREMAN_LISTEN_ADDR", "localhost"),
            ("FOREMAN_TARGET_URL", "ftp://x"),
            ("FOREMAN_TARGET_URL", "not a url"),
            ("FOREMAN_WEBHOOK_ALLOW_PRIVATE", "maybe"),
            ("FOREMAN_MAX_QUEUE", "-1"),
            ("FOREMAN_WEBHOOK_SECRET", "whsec_!!!"),
        ];
        for (variable, value) in cases {
            let err = parse(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value:?}");
            assert!(err.to_string().starts_with(variable), "{err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let config = parse(&[
            ("FOREMAN_AUTH_TOKEN", "hunter2-token"),
            ("FOREMAN_WEBHOOK_SECRET", "hook-secret-value"),
            ("FOREMAN_TARGET_TOKEN", "target-token-value"),
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2-token"));
        assert!(!printed.contains("hook-secret-value"));
        assert!(!printed.contains("target-token-value"));
        assert!(printed.contains("[redacted]"));
    }
}
