//! The `foreman` binary, run as a user would, against a spawned foreman.

mod commands;
mod crash;
mod keys;
mod models;
mod process;
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

impl Run {
    /// Checks that the run failed (exit 1) with one clear line on stderr that says `why`.
    pub(crate) fn assert_failed_with(&self, why: &str) {
        assert_eq!(self.code, 1, "{}", self.stderr);
        assert!(self.stderr.contains(why), "{}", self.stderr);
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one clear line: {}",
            self.stderr
        );
    }
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
