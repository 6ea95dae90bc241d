use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::*;

fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned())
}

/// Every setting's variable, in the order of the struct.
fn variables() -> Vec<String> {
    Config::augment_args(clap::Command::new("test"))
        .get_arguments()
        .filter_map(|arg| Some(arg.get_env()?.to_str()?.to_owned()))
        .collect()
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
    assert!(config.target_token.is_none());
    assert!(config.webhook_secret.is_none());
    assert!(config.embed_model.is_none());
    assert!(config.public_url.is_none());
    assert_eq!(config.affinity_window, Duration::from_secs(30));
    assert_eq!(config.retry_backoff, Duration::from_secs(1));
    assert_eq!(config.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(config.webhook_retry_wait, Duration::from_secs(1));
    assert_eq!(config.webhook_timeout, Duration::from_secs(10));
    assert_eq!(config.stall_timeout, Duration::from_secs(300));
    assert_eq!(config.header_timeout, Duration::from_secs(30));
    assert_eq!(config.body_timeout, Duration::from_secs(60));
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn new_keeps_the_defaults_but_target_and_database() {
    let config = Config::new("http://gpu-box:11434".parse().unwrap(), "/tmp/f.db");
    assert_eq!(config.target_url.as_str(), "http://gpu-box:11434/");
    assert_eq!(config.db_path, PathBuf::from("/tmp/f.db"));
    assert_eq!(config.max_queue, 512);
}

#[test]
fn every_setting_is_read_from_its_variable() {
    let config = parse(&[
        ("FOREMAN_LISTEN_ADDR", "0.0.0.0:9000"),
        ("FOREMAN_TARGET_URL", "https://gpu-box:11434"),
        ("FOREMAN_TARGET_TOKEN", "t"),
        ("FOREMAN_AUTH_TOKEN", "a"),
        ("FOREMAN_DB_PATH", "/var/lib/foreman.db"),
        ("FOREMAN_MAX_ATTEMPTS", " 7 "),
        ("FOREMAN_WEBHOOK_SECRET", "s"),
        ("FOREMAN_EMBED_MODEL", " nomic-embed-text "),
        ("FOREMAN_MAX_QUEUE", "9"),
        ("FOREMAN_WEBHOOK_ALLOW_PRIVATE", "yes"),
        ("FOREMAN_RETRY_BACKOFF", "0s"),
        ("FOREMAN_MAX_BODY_SIZE", "2048"),
        ("FOREMAN_PUBLIC_URL", "https://foreman.example/"),
        ("FOREMAN_WEBHOOK_RETRY_WAIT", "2s"),
        ("FOREMAN_LOG_FORMAT", "JSON"),
    ])
    .unwrap();
    assert_eq!(config.listen_addr.to_string(), "0.0.0.0:9000");
    assert_eq!(config.target_url.as_str(), "https://gpu-box:11434/");
    assert_eq!(config.target_token.unwrap().expose(), "t");
    assert_eq!(config.auth_token.unwrap().expose(), "a");
    assert_eq!(config.db_path, PathBuf::from("/var/lib/foreman.db"));
    assert_eq!(config.max_attempts, 7);
    assert_eq!(config.webhook_secret.unwrap().expose(), "s");
    assert_eq!(config.embed_model.as_deref(), Some("nomic-embed-text"));
    assert_eq!(config.max_queue, 9);
    assert!(config.webhook_allow_private);
    assert_eq!(config.retry_backoff, Duration::ZERO);
    assert_eq!(config.max_body_bytes, 2048);
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://foreman.example")
    );
    assert_eq!(config.webhook_retry_wait, Duration::from_secs(2));
    assert_eq!(config.log_format, LogFormat::Json);
}

#[test]
fn an_empty_variable_keeps_the_default_or_none() {
    let empty: Vec<(String, &str)> = variables().into_iter().map(|v| (v, " ")).collect();
    let empty: Vec<(&str, &str)> = empty.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let config = parse(&empty).unwrap();
    assert_eq!(config.poll_interval, Duration::from_secs(30));
    assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8080");
    assert!(config.auth_token.is_none(), "an empty token is no token");
    assert!(config.webhook_secret.is_none());
    assert!(config.public_url.is_none());
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
        ("FOREMAN_WEBHOOK_TIMEOUT", "30s"),
    ])
    .unwrap();
    assert_eq!(config.poll_interval, Duration::from_millis(1500));
    assert_eq!(config.job_ttl, Duration::from_secs(300));
    assert_eq!(config.affinity_window, Duration::from_secs(86400));
    assert_eq!(config.webhook_timeout, Duration::from_secs(30));
}

#[test]
fn a_bad_value_names_its_variable() {
    let cases = [
        ("FOREMAN_POLL_INTERVAL", "soon"),
        ("FOREMAN_POLL_INTERVAL", "0s"),
        ("FOREMAN_MAX_ATTEMPTS", "three"),
        ("FOREMAN_MAX_ATTEMPTS", "0"),
        ("FOREMAN_MAX_ATTEMPTS", "101"),
        ("FOREMAN_LISTEN_ADDR", "localhost"),
        ("FOREMAN_TARGET_URL", "ftp://x"),
        ("FOREMAN_TARGET_URL", "not a url"),
        ("FOREMAN_PUBLIC_URL", "foreman.example"),
        ("FOREMAN_WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("FOREMAN_MAX_QUEUE", "-1"),
        ("FOREMAN_MAX_BODY_SIZE", "1023"),
        ("FOREMAN_WEBHOOK_SECRET", "whsec_!!!"),
        ("FOREMAN_LOG_FORMAT", "xml"),
        ("FOREMAN_JOB_TTL", "--5m"),
    ];
    for (variable, value) in cases {
        let err = parse(&[(variable, value)]).unwrap_err();
        assert_eq!(err.variable, variable, "{value:?}: {err}");
        assert!(err.to_string().starts_with(variable), "{err}");
    }
    let err = parse(&[("FOREMAN_POLL_INTERVAL", "soon")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "FOREMAN_POLL_INTERVAL: \"soon\" is not a duration (use e.g. 1500ms, 30s, 5m, 24h)"
    );
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

#[test]
fn every_setting_has_a_foreman_variable_a_flag_and_help() {
    let command = Config::augment_args(clap::Command::new("test"));
    let mut seen = 0;
    for arg in command.get_arguments() {
        let variable = arg.get_env().and_then(|v| v.to_str()).unwrap_or_default();
        assert!(
            variable.starts_with("FOREMAN_"),
            "{arg} has no FOREMAN_ variable"
        );
        assert!(arg.get_long().is_some(), "{variable} has no flag");
        assert!(arg.get_help().is_some(), "{variable} has no help");
        seen += 1;
    }
    assert!(seen >= 22, "{seen} settings");
}

#[test]
fn the_readme_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the workspace README");
    for variable in variables() {
        assert!(
            readme.contains(&format!("| `{variable}` |")),
            "README.md's configuration table lacks {variable}"
        );
    }
}
