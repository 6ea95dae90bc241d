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

/// The targets configured by `vars`.
fn targets_of(vars: &[(&str, &str)]) -> Vec<TargetSettings> {
    parse(vars)
        .expect("the configuration parses")
        .targets()
        .expect("the targets are valid")
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
    assert_eq!(
        config.target_url.first().unwrap().as_str(),
        "http://127.0.0.1:11434/"
    );
    assert_eq!(config.db_path, PathBuf::from("foreman.db"));
    assert_eq!(config.poll_interval, Duration::from_secs(30));
    assert_eq!(config.max_attempts, 3);
    assert_eq!(config.job_ttl, Duration::from_secs(86400));
    assert_eq!(config.max_queue, 512);
    assert!(!config.webhook_allow_private);
    assert!(config.auth_token.is_none());
    assert!(config.target_token.is_none());
    assert_eq!(config.target_parallel, PerTarget::all(1));
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
    assert_eq!(config.ui_refresh, Duration::from_secs(1));
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn new_keeps_the_defaults_but_target_and_database() {
    let config = Config::new("http://gpu-box:11434".parse().unwrap(), "/tmp/f.db");
    assert_eq!(
        config.target_url.first().unwrap().as_str(),
        "http://gpu-box:11434/"
    );
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
    assert_eq!(
        config.target_url.first().unwrap().as_str(),
        "https://gpu-box:11434/"
    );
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
        ("FOREMAN_UI_REFRESH", "250ms"),
    ])
    .unwrap();
    assert_eq!(config.webhook_timeout, Duration::from_millis(200));
    assert_eq!(config.stall_timeout, Duration::from_secs(120));
    assert_eq!(config.header_timeout, Duration::from_secs(5));
    assert_eq!(config.body_timeout, Duration::from_secs(90));
    assert_eq!(config.ui_refresh, Duration::from_millis(250));
    for variable in [
        "FOREMAN_WEBHOOK_TIMEOUT",
        "FOREMAN_STALL_TIMEOUT",
        "FOREMAN_HEADER_TIMEOUT",
        "FOREMAN_BODY_TIMEOUT",
        "FOREMAN_UI_REFRESH",
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
        ("FOREMAN_TARGET_URL", "http://a:1,,http://b:1"),
        ("FOREMAN_TARGET_URL", "bad name=http://a:1"),
        ("FOREMAN_TARGET_URL", "a=http://a:1,a=http://b:1"),
        ("FOREMAN_TARGET_URL", "http://a:1,http://a:1"),
        ("FOREMAN_TARGET_PARALLEL", "0"),
        ("FOREMAN_TARGET_PARALLEL", "1,2"),
        ("FOREMAN_TARGET_PARALLEL", "nobody=2"),
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

#[test]
fn one_target_url_is_the_default_target_running_one_generation() {
    let targets = targets_of(&[
        ("FOREMAN_TARGET_URL", "http://gpu-box:11434"),
        ("FOREMAN_TARGET_TOKEN", "t=with=equals,and,commas"),
    ]);
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].name, "default");
    assert_eq!(targets[0].url.as_str(), "http://gpu-box:11434/");
    assert_eq!(targets[0].parallel, 1);
    assert_eq!(
        targets[0].token.as_ref().map(Secret::expose),
        Some("t=with=equals,and,commas"),
        "a token that names no target is one token, commas and all"
    );
}

#[test]
fn a_list_of_targets_takes_names_tokens_and_parallelism_per_target() {
    let targets = targets_of(&[
        (
            "FOREMAN_TARGET_URL",
            "gpu1=http://10.0.0.1:11434, gpu2=http://10.0.0.2:11434,http://mac.lan",
        ),
        ("FOREMAN_TARGET_PARALLEL", "2,gpu1=4"),
        ("FOREMAN_TARGET_TOKEN", "gpu2=secret2,shared"),
    ]);
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["gpu1", "gpu2", "mac.lan:80"]);
    let parallel: Vec<u32> = targets.iter().map(|t| t.parallel).collect();
    assert_eq!(parallel, [4, 2, 2]);
    let tokens: Vec<Option<&str>> = targets
        .iter()
        .map(|t| t.token.as_ref().map(Secret::expose))
        .collect();
    assert_eq!(tokens, [Some("shared"), Some("secret2"), Some("shared")]);
}

#[test]
fn per_target_tokens_without_a_shared_one_leave_the_others_without() {
    let targets = targets_of(&[
        ("FOREMAN_TARGET_URL", "a=http://a:1,b=http://b:1"),
        ("FOREMAN_TARGET_TOKEN", "b=only-b"),
    ]);
    assert!(targets[0].token.is_none());
    assert_eq!(targets[1].token.as_ref().unwrap().expose(), "only-b");
    let err = parse(&[
        ("FOREMAN_TARGET_URL", "a=http://a:1,b=http://b:1"),
        ("FOREMAN_TARGET_TOKEN", "b=x,one,two"),
    ])
    .unwrap_err();
    assert_eq!(err.variable, "FOREMAN_TARGET_TOKEN");
    assert!(
        !err.to_string().contains('x'),
        "no token in the message: {err}"
    );
}

#[test]
fn unnamed_targets_in_a_list_are_named_by_host_and_port() {
    let config = parse(&[("FOREMAN_TARGET_URL", "http://a:11434,https://b")]).unwrap();
    let names: Vec<String> = config
        .targets()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a:11434", "b:443"]);
    assert_eq!(config.target_url.to_string(), "http://a:11434,https://b");
}

#[test]
fn credentials_in_a_target_url_are_not_displayed() {
    let config = parse(&[("FOREMAN_TARGET_URL", "g=http://user:pw@gpu:11434/")]).unwrap();
    assert_eq!(config.target_url.to_string(), "g=http://gpu:11434");
}

#[test]
fn a_target_url_with_a_query_is_refused_without_echoing_it() {
    for url in ["http://gpu:11434/?key=s3cret", "http://gpu:11434/#s3cret"] {
        let err = parse(&[("FOREMAN_TARGET_URL", url)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FOREMAN_TARGET_URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
