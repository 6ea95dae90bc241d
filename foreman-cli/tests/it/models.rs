//! The model commands, run as a user would: pull, rm, cp, show.

use foreman_testkit::TestApp;
use serde_json::Value;

use crate::foreman;

#[tokio::test]
async fn pull_prints_plain_progress_lines_when_not_on_a_terminal() {
    let app = TestApp::spawn().await;

    let run = foreman(Some(&app), &["pull", "gemma3"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"pulling manifest"));
    assert_eq!(lines.last(), Some(&"success"));
    let layer = lines
        .iter()
        .find(|l| l.starts_with("pulling ") && l.ends_with("GB"))
        .unwrap_or_else(|| panic!("a layer with its size: {}", run.stdout));
    let done = format!("{}: 100% ", layer.split(':').next().unwrap());
    assert!(lines.iter().any(|l| l.starts_with(&done)), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\r') && !run.stdout.contains('\x1b'),
        "no redrawing"
    );
    let models = foreman(Some(&app), &["models"]).await;
    assert!(models.stdout.contains("gemma3:latest"), "{}", models.stdout);
}

#[tokio::test]
async fn pull_json_prints_each_progress_line() {
    let app = TestApp::spawn().await;

    let run = foreman(Some(&app), &["--json", "pull", "gemma3"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines[0]["status"], "pulling manifest");
    assert!(lines
        .iter()
        .any(|l| l["total"].is_u64() && l["digest"].is_string()));
    assert_eq!(lines.last().unwrap()["status"], "success");
}

#[tokio::test]
async fn a_failed_pull_exits_1_with_the_reason() {
    let app = TestApp::spawn().await;
    app.ollama.make_unpullable("nope");

    let run = foreman(Some(&app), &["pull", "nope"]).await;

    run.assert_failed_with("pull model manifest: file does not exist");
}

#[tokio::test]
async fn cp_and_rm_change_the_models_and_say_so() {
    let app = TestApp::spawn().await;

    let run = foreman(Some(&app), &["cp", "llama3.2", "backup"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "copied 'llama3.2' to 'backup'");
    assert!(app.ollama.models().contains(&"backup:latest".to_owned()));

    let run = foreman(Some(&app), &["rm", "backup"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "deleted 'backup'");
    assert!(!app.ollama.models().contains(&"backup:latest".to_owned()));

    let run = foreman(Some(&app), &["rm", "backup"]).await;
    assert_eq!(run.code, 1, "an unknown model is the server's refusal");
    assert!(
        run.stderr.contains("404") && run.stderr.contains("not found"),
        "{}",
        run.stderr
    );
    let run = foreman(Some(&app), &["cp", "nope", "x"]).await;
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn cp_and_rm_print_json_with_json() {
    let app = TestApp::spawn().await;

    let run = foreman(Some(&app), &["--json", "cp", "llama3.2", "a"]).await;
    let copied: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(copied["destination"], "a");
    foreman(Some(&app), &["cp", "llama3.2", "b"]).await;

    let run = foreman(Some(&app), &["--json", "rm", "a", "b"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let deleted: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(deleted["deleted"], serde_json::json!(["a", "b"]));
}

#[tokio::test]
async fn show_prints_the_model_its_capabilities_and_its_modelfile() {
    let app = TestApp::spawn().await;

    let run = foreman(Some(&app), &["show", "llama3.2"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("  Model\n"), "{}", run.stdout);
    assert!(run.stdout.contains("architecture") && run.stdout.contains("llama"));
    assert!(run.stdout.contains("context length") && run.stdout.contains("131072"));
    assert!(
        run.stdout.contains("  Capabilities\n    completion\n"),
        "{}",
        run.stdout
    );

    let run = foreman(Some(&app), &["show", "llama3.2", "--modelfile"]).await;
    assert!(run.stdout.starts_with("# Modelfile"), "{}", run.stdout);
    let run = foreman(Some(&app), &["show", "--json", "llama3.2"]).await;
    let shown: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(shown["details"]["family"], "llama");
    let run = foreman(Some(&app), &["show", "nope"]).await;
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn model_commands_exit_2_on_usage_errors_and_a_missing_token() {
    let app = TestApp::builder().auth_token("admin").spawn().await;
    for args in [&["cp", "only-one"][..], &["rm"], &["pull"], &["show"]] {
        let run = foreman(Some(&app), args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    let run = foreman(Some(&app), &["pull", "gemma3"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("FOREMAN_AUTH_TOKEN"), "{}", run.stderr);
    let run = foreman(Some(&app), &["--token", "admin", "pull", "gemma3"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}
