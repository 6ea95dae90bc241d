//! The `foreman` binary, run as a user would, against a spawned foreman.

mod commands;
mod crash;
mod keys;
mod models;
mod replicas;
mod serve;

use foreman_testkit::TestApp;

/// What a run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `foreman ARGS` against `app` (or no server when `None`).
pub(crate) async fn foreman(app: Option<&TestApp>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_foreman"));
    command
        .args(args)
        .env_remove("FOREMAN_AUTH_TOKEN")
        .env("NO_COLOR", "1");
    match app {
        Some(app) => command.env("FOREMAN_URL", &app.url),
        // A port nothing listens on.
        None => command.env("FOREMAN_URL", "http://127.0.0.1:9"),
    };
    let output = command.output().await.expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
