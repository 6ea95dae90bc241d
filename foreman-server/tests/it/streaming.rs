//! Chunks flushed as the target sends them; disconnects cancel.

use std::time::Duration;

use foreman_testkit::json_answer;
use foreman_testkit::TestApp;
use futures::StreamExt;
use serde_json::Value;

use crate::manual_target::{first_token, manual_target, newest_job, next_generation};
use crate::{chat_body, Pending, DEADLINE};

#[tokio::test]
async fn each_chunk_reaches_the_client_before_the_target_sends_the_next() {
    let (_sim, _app, generation, response) =
        first_token("/api/chat", chat_body("llama3.2", true), "The").await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut body = response.bytes_stream();
    for (i, word) in ["The", " sky", " is"].into_iter().enumerate() {
        if i > 0 {
            generation.token(word);
        }
        let chunk = tokio::time::timeout(DEADLINE, body.next())
            .await
            .expect("the chunk arrives while the target holds the next one")
            .unwrap()
            .unwrap();
        let line: Value =
            serde_json::from_slice(chunk.strip_suffix(b"\n").unwrap_or(&chunk)).unwrap();
        assert_eq!(line["message"]["content"], word);
    }
    generation.finish();
    let rest: Vec<_> = body.collect().await;
    assert!(rest.iter().all(|c| c.is_ok()));
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_stops_the_upstream_request() {
    let (sim, app) = manual_target().await;
    let http = app.http.clone();
    let url = app.at("/api/chat");
    let call = tokio::spawn(async move {
        let response = http
            .post(url)
            .json(&chat_body("llama3.2", true))
            .send()
            .await
            .unwrap();
        let mut body = response.bytes_stream();
        body.next().await.unwrap().unwrap()
        // Dropping `body` here hangs up mid-stream.
    });
    let generation = next_generation(&sim).await;
    generation.token("a");
    call.await.unwrap();
    assert!(
        tokio::time::timeout(DEADLINE, generation.hung_up())
            .await
            .is_ok(),
        "foreman dropped the upstream request"
    );
    let cancelled = newest_job(&app, |job| job["state"] == "cancelled").await;
    assert!(cancelled, "the job ends cancelled");
}

#[tokio::test]
async fn a_client_that_disconnects_while_queued_removes_its_job() {
    // The first call occupies the target; the second waits in the queue, then its
    // caller gives up.
    let (app, busy, waiting) = one_running_one_queued().await;
    waiting.abort();
    let removed = foreman_testkit::wait_until(DEADLINE, || async {
        app.jobs_json("state=cancelled").await.len() == 1
    })
    .await;
    assert!(removed, "the queued job was cancelled when its caller left");
    busy.abort();
    assert_eq!(
        app.ollama.generation_requests().len(),
        1,
        "it never reached the target"
    );
}

#[tokio::test]
async fn a_stream_cut_by_the_target_ends_with_an_error_line() {
    let (_sim, app, generation, response) =
        first_token("/api/chat", chat_body("llama3.2", true), "a").await;
    generation.cut();
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["message"]["content"], "a");
    let last = lines.last().unwrap();
    assert!(last["error"].is_string(), "ends with an error line: {text}");
    let failed = newest_job(&app, |job| job["state"] == "failed").await;
    assert!(failed, "the job ends failed, not done");
}

/// A foreman whose target holds every generation for 30 s, with one call running and one
/// waiting behind it.
async fn one_running_one_queued() -> (TestApp, Pending, Pending) {
    let app = TestApp::with_generation_delay(Duration::from_secs(30)).await;
    let running = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let waiting = app.spawn_post("/api/chat", chat_body("llama3.2", false));
    let queued = foreman_testkit::wait::wait_until(DEADLINE, || async {
        app.jobs_json("state=queued").await.len() == 1
    })
    .await;
    assert!(queued);
    (app, running, waiting)
}

#[tokio::test]
async fn deleting_a_queued_sync_request_answers_its_caller() {
    let (app, running, waiting) = one_running_one_queued().await;
    let id = app.jobs_json("state=queued").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = app.delete(&format!("/jobs/{id}")).await;
    assert_eq!(deleted.status(), 200);
    let answer = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the caller is answered, not left hanging")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 409);
    running.abort();
}

#[tokio::test]
async fn a_graceful_shutdown_answers_every_waiting_caller() {
    let (mut app, running, waiting) = one_running_one_queued().await;
    // stop() fails the test if foreman does not exit within its deadline.
    app.stop().await;
    for call in [running, waiting] {
        let answer = call.await.unwrap().unwrap();
        let body = json_answer(answer, 503).await;
        assert!(
            body["error"].as_str().unwrap().contains("shutting down"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_error_line_from_the_target_reaches_the_caller_and_fails_the_job() {
    let (sim, app) = manual_target().await;
    let pending = app.spawn_post("/api/chat", chat_body("llama3.2", true));
    let generation = next_generation(&sim).await;
    generation.token("a");
    generation.fail("out of memory");
    let text = pending.await.unwrap().unwrap().text().await.unwrap();
    assert!(
        text.lines().last().unwrap().contains("out of memory"),
        "{text}"
    );
    let failed = newest_job(&app, |job| {
        job["state"] == "failed" && job["error"] == "out of memory"
    })
    .await;
    assert!(failed, "the job ends failed with the target's message");
}
