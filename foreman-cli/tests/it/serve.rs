//! `foreman serve` and `foreman sim` as processes.

use std::time::Duration;

use clap::Args;
use foreman_server::Config;
use serde_json::Value;

use crate::foreman;
use crate::process::{json, serve, sigterm, stop_gracefully};

#[tokio::test]
async fn a_bad_setting_stops_serve_with_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_foreman"))
        .arg("serve")
        .env("FOREMAN_POLL_INTERVAL", "soon")
        .env("FOREMAN_DB_PATH", dir.path().join("f.db"))
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FOREMAN_POLL_INTERVAL"), "{stderr}");

    let run = foreman(None, &["serve", "--max-attempts", "zero"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("FOREMAN_MAX_ATTEMPTS"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn serve_help_shows_every_setting_with_its_variable_and_default() {
    let run = foreman(None, &["serve", "--help"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let settings = Config::augment_args(clap::Command::new("settings"));
    for arg in settings.get_arguments() {
        let variable = arg.get_env().unwrap().to_str().unwrap();
        assert!(run.stdout.contains(variable), "{variable} is missing");
        let flag = format!("--{}", arg.get_long().unwrap());
        assert!(run.stdout.contains(&flag), "{flag} is missing");
    }
    for shown in [
        "[default: 30s]",
        "[default: 127.0.0.1:8080]",
        "How often /api/tags and /api/ps are polled",
        "--sim",
    ] {
        assert!(run.stdout.contains(shown), "{shown:?} is missing");
    }
}

#[tokio::test]
async fn a_flag_wins_over_its_variable_and_an_empty_variable_is_unset() {
    // Variables are read in the order of the settings; FOREMAN_JOB_TTL comes after the
    // other two, so its error shows that neither of them stopped start-up first.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_foreman"))
        .args(["serve", "--max-attempts", "2"])
        .env("FOREMAN_MAX_ATTEMPTS", "zero")
        .env("FOREMAN_POLL_INTERVAL", "")
        .env("FOREMAN_JOB_TTL", "soon")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"FOREMAN_JOB_TTL: "soon" is not a duration"#),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_sim_answers_like_ollama_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sim = [
        "--sim",
        "--sim-load-time",
        "10ms",
        "--sim-tokens-per-second",
        "1000",
    ];
    let (mut child, url) = serve(&sim, dir.path(), |c| {
        c.stderr(std::process::Stdio::null());
    })
    .await;
    let http = reqwest::Client::new();
    let chat = serde_json::json!({"model": "llama3.2", "stream": false,
                                  "messages": [{"role": "user", "content": "hi"}]});
    let answer = json(&http, &format!("{url}/api/chat"), Some(&chat)).await;
    assert!(
        answer["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Simulated"),
        "{answer}"
    );

    stop_gracefully(&mut child, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn serve_with_json_logs_writes_one_object_a_line_and_a_line_per_request() {
    let ollama = foreman_testkit::FakeOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = serve(&["--target-url", &ollama.url()], dir.path(), |c| {
        c.env("FOREMAN_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("FOREMAN_AUTH_TOKEN")
            .stderr(std::process::Stdio::piped());
    })
    .await;
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{url}/api/chat"))
        .json(&serde_json::json!({"model": "llama3.2", "stream": false,
                                  "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let job_id = answer.headers()["x-foreman-job-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = answer.bytes().await.unwrap();

    sigterm(&child).await;
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("foreman exits after SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["fields"]["path"] == "/api/chat")
        .unwrap_or_else(|| panic!("no line for the request:\n{stderr}"));
    assert_eq!(request["level"], "INFO");
    assert_eq!(request["fields"]["method"], "POST");
    assert_eq!(request["fields"]["status"], 200);
    assert_eq!(request["fields"]["job_id"], job_id.as_str());
    assert_eq!(request["fields"]["model"], "llama3.2");
    assert!(
        request["fields"]["bytes"].as_u64().unwrap() > 0,
        "{request}"
    );
}
