//! Every client command, its output and its exit code.

use foreman_client::JobId;
use foreman_testkit::TestApp;
use serde_json::Value;

use crate::foreman;

/// `foreman submit -m llama3.2 PROMPT`, which must succeed: the new job's id.
async fn submit(app: &TestApp, prompt: &str) -> String {
    let run = foreman(Some(app), &["submit", "-m", "llama3.2", prompt]).await;
    assert_eq!(run.code, 0, "submit: {}", run.stderr);
    run.stdout.trim().to_owned()
}

#[tokio::test]
async fn help_lists_every_command() {
    let run = foreman(None, &["--help"]).await;
    assert_eq!(run.code, 0);
    for command in [
        "serve", "submit", "jobs", "job", "wait", "artifact", "cancel", "chat", "ps", "models",
        "pull", "rm", "cp", "show", "health", "sim", "keys", "usage",
    ] {
        assert!(run.stdout.contains(command), "{command} missing from help");
    }
}

#[tokio::test]
async fn submit_prints_the_job_id_and_submit_wait_prints_the_answer() {
    let app = TestApp::spawn().await;
    let run = foreman(Some(&app), &["submit", "--model", "llama3.2", "hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id: JobId = run.stdout.trim().parse().expect("a job id");
    let done = app
        .client
        .wait(id, crate::commands::DEADLINE)
        .await
        .unwrap();
    assert_eq!(done.state, foreman_client::JobState::Done);

    let run = foreman(Some(&app), &["submit", "-m", "llama3.2", "--wait", "hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), app.ollama.reply());
    assert!(
        run.stderr.contains("done"),
        "progress shows the final state: {}",
        run.stderr
    );
}

#[tokio::test]
async fn json_output_is_machine_readable() {
    let app = TestApp::spawn().await;
    let run = foreman(
        Some(&app),
        &["--json", "submit", "-m", "llama3.2", "--wait", "hi"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let job: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(job["state"], "done");
    let run = foreman(Some(&app), &["jobs", "--json"]).await;
    let list: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    for args in [
        &["ps", "--json"][..],
        &["models", "--json"],
        &["health", "--json"],
    ] {
        let run = foreman(Some(&app), args).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        serde_json::from_str::<Value>(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
}

#[tokio::test]
async fn jobs_job_wait_and_artifact_show_a_finished_job() {
    let app = TestApp::spawn().await;
    let id = submit(&app, "hi").await;

    let run = foreman(Some(&app), &["wait", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), app.ollama.reply());

    let run = foreman(Some(&app), &["jobs"]).await;
    let mut lines = run.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID") && header.contains("MODEL") && header.contains("STATE"));
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id) && row.contains("llama3.2:latest") && row.contains("done"));
    // Columns line up: STATE starts at the same offset in the header and the row.
    assert_eq!(header.find("STATE"), row.find("done"));

    let run = foreman(Some(&app), &["job", &id]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("state") && run.stdout.contains("done"));
    assert!(run.stdout.contains("completion"));

    let run = foreman(Some(&app), &["artifact", &id, "completion"]).await;
    assert_eq!(run.stdout, app.ollama.reply());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    let run = foreman(
        Some(&app),
        &["artifact", &id, "completion", "-o", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0);
    assert_eq!(std::fs::read_to_string(file).unwrap(), app.ollama.reply());
}

#[tokio::test]
async fn a_failed_job_exits_1_with_the_reason() {
    let app = TestApp::spawn().await;
    app.ollama
        .fail_generations(500, serde_json::json!({"error": "out of memory"}));
    let run = foreman(Some(&app), &["submit", "-m", "llama3.2", "--wait", "hi"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("failed") && run.stderr.contains("out of memory"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"));
}

#[tokio::test]
async fn chat_streams_the_answer() {
    let app = TestApp::spawn().await;
    let run = foreman(Some(&app), &["chat", "--model", "llama3.2", "hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim_end(), app.ollama.reply());
    let run = foreman(Some(&app), &["chat", "--model", "nope", "hello"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
}

#[tokio::test]
async fn cancel_ends_a_queued_job() {
    let app = TestApp::with_generation_delay(std::time::Duration::from_secs(30)).await;
    submit(&app, "first").await;
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let id = submit(&app, "second").await;
    let run = foreman(Some(&app), &["cancel", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("cancelled"));
    let run = foreman(Some(&app), &["cancel", &id]).await;
    assert_eq!(
        run.code, 1,
        "cancelling twice is a server-side refusal (409)"
    );
}

#[tokio::test]
async fn ps_models_and_health_print_tables_and_status() {
    let app = TestApp::spawn().await;
    let run = foreman(Some(&app), &["models"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("NAME"));
    assert!(run.stdout.contains("llama3.2:latest"));
    let run = foreman(Some(&app), &["ps"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("queue: 0 waiting"), "{}", run.stdout);
    let run = foreman(Some(&app), &["health"]).await;
    assert_eq!(run.stdout.trim(), "ok");
}

#[tokio::test]
async fn usage_errors_exit_2_and_server_errors_exit_1() {
    let app = TestApp::spawn().await;
    let run = foreman(Some(&app), &["job", "not-an-id"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = foreman(Some(&app), &["submit", "hi"]).await;
    assert_eq!(run.code, 2, "--model is required");
    let run = foreman(Some(&app), &["job", &JobId::new().to_string()]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("404"), "{}", run.stderr);
    let run = foreman(None, &["jobs"]).await;
    run.assert_failed_with("cannot reach foreman");
}

#[tokio::test]
async fn a_wrong_token_is_a_configuration_error() {
    let app = TestApp::builder().auth_token("right").spawn().await;
    let run = foreman(Some(&app), &["--token", "wrong", "jobs"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("FOREMAN_AUTH_TOKEN"));
    let run = foreman(Some(&app), &["--token", "right", "jobs"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

pub(crate) const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

#[tokio::test]
async fn ps_and_health_say_which_target_holds_what_when_there_are_several() {
    use foreman_testkit::FakeOllama;
    let gpu1 = FakeOllama::builder().resident("llama3.2").start().await;
    let gpu2 = FakeOllama::builder().resident("qwen2.5:0.5b").start().await;
    let app = TestApp::builder()
        .target("gpu1", gpu1)
        .target("gpu2", gpu2)
        .spawn()
        .await;
    let run = foreman(Some(&app), &["ps"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table = &run.stdout;
    assert!(table.lines().next().unwrap().ends_with("TARGET"), "{table}");
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or("");
    assert!(
        row("llama3.2:latest").trim_end().ends_with("gpu1"),
        "{table}"
    );
    assert!(row("qwen2.5:0.5b").trim_end().ends_with("gpu2"), "{table}");
    assert!(row("gpu2").contains("up"), "{table}");

    app.fake("gpu2").stop().await;
    let noticed = foreman_testkit::wait_until(DEADLINE, || async {
        foreman(Some(&app), &["health"])
            .await
            .stdout
            .contains("gpu2 unreachable")
    })
    .await;
    assert!(noticed, "foreman health never named the box that is down");
}
