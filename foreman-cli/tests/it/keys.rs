//! `foreman keys` and `foreman usage`, as an admin and as the keys they make.

use foreman_testkit::TestApp;
use serde_json::Value;

use crate::foreman;

const ADMIN: &str = "admin-token-cli-3b7";

/// Runs `foreman --token TOKEN ARGS` against `app`.
async fn as_key(app: &TestApp, token: &str, args: &[&str]) -> crate::Run {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    foreman(Some(app), &all).await
}

/// Creates a key with the CLI and returns its secret.
async fn create(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["keys", "create"];
    all.extend_from_slice(args);
    let run = as_key(app, ADMIN, &all).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let secret = run.stdout.trim().to_owned();
    assert!(
        secret.starts_with("fm_") && !secret.contains('\n'),
        "{secret}"
    );
    assert!(
        run.stderr.contains("shown only this once"),
        "{}",
        run.stderr
    );
    secret
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_from_the_cli() {
    let app = TestApp::builder().auth_token(ADMIN).spawn().await;
    let alice = create(
        &app,
        &["alice", "--weight", "2", "--rpm", "30", "--max-queued", "5"],
    )
    .await;
    let run = as_key(&app, &alice, &["jobs"]).await;
    assert_eq!(run.code, 0, "the new key works: {}", run.stderr);

    let run = as_key(
        &app,
        ADMIN,
        &[
            "--json",
            "keys",
            "create",
            "bob",
            "--admin",
            "--trust-user-header",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bob: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(bob["name"], "bob");
    assert_eq!(bob["admin"], true);
    assert_eq!(bob["trust_user_header"], true);
    assert!(bob["key"].as_str().unwrap().starts_with("fm_"));

    let run = as_key(&app, ADMIN, &["keys", "list"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("NAME") && header.contains("WEIGHT") && header.contains("RPM"));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("alice") && row.contains(&alice[..7]),
        "{row}"
    );
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[2..7], ["no", "2", "5", "30", "no"], "{row}");
    // Columns line up: ADMIN starts where the row's "no" does.
    assert_eq!(header.find("ADMIN"), row.find(" no ").map(|at| at + 1));
    assert!(!run.stdout.contains(&alice), "no secret is listed");
    let run = as_key(&app, ADMIN, &["keys", "list", "--json"]).await;
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);

    let run = as_key(&app, ADMIN, &["keys", "revoke", "alice"]).await;
    assert_eq!((run.code, run.stdout.trim()), (0, "revoked key 'alice'"));
    let run = as_key(&app, &alice, &["jobs"]).await;
    assert_eq!(
        run.code, 2,
        "a revoked key is a credential error: {}",
        run.stderr
    );
    let run = as_key(&app, ADMIN, &["keys", "revoke", "alice"]).await;
    assert_eq!(run.code, 1, "an unknown key is the server's refusal (404)");
    assert!(run.stderr.contains("404"), "{}", run.stderr);
}

#[tokio::test]
async fn key_commands_need_an_admin_and_bad_arguments_exit_2() {
    let app = TestApp::builder().auth_token(ADMIN).spawn().await;
    let plain = create(&app, &["plain"]).await;
    for args in [
        &["keys", "list"][..],
        &["keys", "create", "x"],
        &["keys", "revoke", "plain"],
    ] {
        let run = as_key(&app, &plain, args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("403"), "{}", run.stderr);
    }
    let run = as_key(&app, ADMIN, &["keys", "create", "y", "--weight", "0"]).await;
    assert_eq!(run.code, 1, "the server refuses it (400): {}", run.stderr);
    assert!(run.stderr.contains("weight"));
    let run = as_key(&app, ADMIN, &["keys", "create"]).await;
    assert_eq!(run.code, 2, "a name is required");
    let run = as_key(&app, ADMIN, &["usage", "--since", "last tuesday"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// The story: an admin creates two keys, one floods the queue, the other's job
/// goes next; each sees its own jobs; `foreman usage` shows each key's tokens as the
/// target reported them.
#[tokio::test]
async fn two_keys_see_their_own_jobs_and_usage_matches_what_the_target_reported() {
    let ollama = foreman_testkit::FakeOllama::builder()
        .generation_delay(std::time::Duration::from_millis(20))
        .start()
        .await;
    let app = TestApp::builder()
        .ollama(ollama)
        .auth_token(ADMIN)
        .spawn()
        .await;
    let flood = create(&app, &["flood"]).await;
    let single = create(&app, &["single"]).await;
    let mut flood_ids = Vec::new();
    for i in 0..20 {
        let run = as_key(
            &app,
            &flood,
            &["submit", "-m", "llama3.2", &format!("flood {i}")],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        flood_ids.push(run.stdout.trim().to_owned());
    }
    let run = as_key(
        &app,
        &single,
        &["--json", "submit", "-m", "llama3.2", "--wait", "mine"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mine: Value = serde_json::from_str(&run.stdout).unwrap();

    let run = as_key(&app, &single, &["jobs", "--json"]).await;
    let jobs: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        1,
        "single sees only its job"
    );
    let run = as_key(&app, &single, &["job", &flood_ids[0]]).await;
    assert_eq!(run.code, 1, "another key's job is not found");

    for id in &flood_ids {
        let run = as_key(&app, &flood, &["wait", id]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    // What the target reported, read back from the jobs' results.
    let mut flood_output = 0;
    for id in &flood_ids {
        let run = as_key(&app, &flood, &["--json", "job", id]).await;
        let job: Value = serde_json::from_str(&run.stdout).unwrap();
        flood_output += job["result"]["eval_count"].as_u64().unwrap();
    }
    let single_output = mine["result"]["eval_count"].as_u64().unwrap();

    let run = as_key(&app, ADMIN, &["--json", "usage"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = report["usage"].as_array().unwrap();
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap().clone();
    assert_eq!(row("flood")["requests"], 20);
    assert_eq!(row("flood")["output_tokens"], flood_output);
    assert_eq!(row("single")["requests"], 1);
    assert_eq!(row("single")["output_tokens"], single_output);
    assert_eq!(
        row("single")["prompt_tokens"],
        mine["result"]["prompt_eval_count"]
    );

    let run = as_key(&app, ADMIN, &["usage"]).await;
    let mut lines = run.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("KEY") && header.contains("OUTPUT") && header.contains("GPU"));
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    let single_line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("single"))
        .unwrap();
    assert!(
        single_line.contains(&format!(" {single_output} ")),
        "{single_line}"
    );
    let run = as_key(&app, &single, &["usage"]).await;
    assert_eq!(
        run.stdout.lines().count(),
        2,
        "a key sees its own usage: {}",
        run.stdout
    );
    assert!(!run.stdout.contains("flood"));
}
