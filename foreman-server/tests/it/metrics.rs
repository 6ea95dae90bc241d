//! Visibility: `GET /metrics` in the Prometheus text format, and `estimated_wait_ms`.

use std::collections::HashMap;
use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, JobState, SubmitRequest};
use foreman_testkit::receiver::WebhookReceiver;
use foreman_testkit::wait::wait_until;
use foreman_testkit::TestApp;
use serde_json::Value;

use crate::{chat_body, DEADLINE};

const MODEL: &str = "llama3.2:latest";

fn job(model: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new(model, vec![ChatMessage::user("hello")]))
}

/// Every sample of a scrape, by `name{labels}` as written; checks the content type.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    foreman_testkit::parse_metrics(&response.text().await.unwrap())
}

/// The sample `series`, or 0 when it is absent.
async fn sample(app: &TestApp, series: &str) -> f64 {
    scrape(app).await.get(series).copied().unwrap_or(0.0)
}

/// Waits until `series` reads `value` (recording trails the store by a moment).
async fn wait_for_sample(app: &TestApp, series: &str, value: f64) {
    let reached = wait_until(DEADLINE, || async { sample(app, series).await == value }).await;
    assert!(
        reached,
        "{series} never reached {value}; it is {}",
        sample(app, series).await
    );
}

#[tokio::test]
async fn metrics_expose_every_family_after_a_few_jobs() {
    let app = TestApp::spawn().await;
    for _ in 0..2 {
        let id = app.client.submit(job("llama3.2")).await.unwrap();
        let done = app.client.wait(id, DEADLINE).await.unwrap();
        assert_eq!(done.state, JobState::Done);
    }
    let chat = app.post("/api/chat", &chat_body("llama3.2", false)).await;
    assert_eq!(chat.status(), 200);

    let finished = format!(r#"foreman_jobs_finished_total{{model="{MODEL}",state="done"}}"#);
    wait_for_sample(&app, &finished, 3.0).await;
    let run_count = format!(r#"foreman_job_run_seconds_count{{model="{MODEL}"}}"#);
    wait_for_sample(&app, &run_count, 3.0).await;

    let metrics = scrape(&app).await;
    assert_eq!(metrics[r#"foreman_jobs{state="done"}"#], 3.0);
    assert_eq!(metrics[r#"foreman_jobs{state="queued"}"#], 0.0);
    assert_eq!(metrics["foreman_queue_depth"], 0.0);
    assert_eq!(
        metrics[&format!(r#"foreman_job_wait_seconds_count{{model="{MODEL}"}}"#)],
        3.0
    );
    assert_eq!(
        metrics[&format!(r#"foreman_job_run_seconds_bucket{{model="{MODEL}",le="+Inf"}}"#)],
        3.0
    );
    assert!(metrics[&format!(r#"foreman_job_run_seconds_sum{{model="{MODEL}"}}"#)] > 0.0);
    assert_eq!(metrics["foreman_model_swaps_total"], 0.0);
    assert_eq!(metrics[r#"foreman_target_up{target="default"}"#], 1.0);
    assert_eq!(
        metrics[r#"foreman_webhook_deliveries_total{outcome="delivered"}"#],
        0.0
    );
}

#[tokio::test]
async fn metrics_count_queued_jobs_per_model() {
    let app = TestApp::with_generation_delay(Duration::from_millis(1000)).await;
    let first = app.client.submit(job("llama3.2")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let mut ids = vec![first];
    for model in ["qwen2.5:0.5b", "qwen2.5:0.5b", "llama3.2"] {
        ids.push(app.client.submit(job(model)).await.unwrap());
    }

    let metrics = scrape(&app).await;
    assert_eq!(metrics["foreman_queue_depth"], 3.0);
    assert_eq!(
        metrics[r#"foreman_queue_depth_by_model{model="qwen2.5:0.5b"}"#],
        2.0
    );
    assert_eq!(
        metrics[&format!(r#"foreman_queue_depth_by_model{{model="{MODEL}"}}"#)],
        1.0
    );
    assert_eq!(metrics[r#"foreman_jobs{state="queued"}"#], 3.0);
    let running =
        metrics[r#"foreman_jobs{state="loading"}"#] + metrics[r#"foreman_jobs{state="working"}"#];
    assert_eq!(running, 1.0);

    app.ollama.set_generation_delay(Duration::ZERO);
    for id in ids {
        app.client.wait(id, DEADLINE).await.unwrap();
    }
    wait_for_sample(&app, "foreman_model_swaps_total", 1.0).await;
    assert!(!scrape(&app)
        .await
        .keys()
        .any(|k| k.starts_with("foreman_queue_depth_by_model")));
}

#[tokio::test]
async fn webhook_outcome_counters_move_when_a_receiver_fails() {
    let app = TestApp::spawn().await;
    let receiver = WebhookReceiver::start().await;
    receiver.set_status(500);
    let id = app
        .client
        .submit(job("llama3.2").webhook(receiver.url()))
        .await
        .unwrap();
    app.client.wait(id, DEADLINE).await.unwrap();

    // Four events (queued, loading, working, done), five attempts each.
    wait_for_sample(
        &app,
        r#"foreman_webhook_deliveries_total{outcome="gave_up"}"#,
        4.0,
    )
    .await;
    let metrics = scrape(&app).await;
    assert_eq!(
        metrics[r#"foreman_webhook_deliveries_total{outcome="failed_attempt"}"#],
        16.0
    );
    assert_eq!(
        metrics[r#"foreman_webhook_deliveries_total{outcome="delivered"}"#],
        0.0
    );

    // The model is resident now: queued, working, done.
    receiver.set_status(200);
    app.client
        .submit(job("llama3.2").webhook(receiver.url()))
        .await
        .unwrap();
    wait_for_sample(
        &app,
        r#"foreman_webhook_deliveries_total{outcome="delivered"}"#,
        3.0,
    )
    .await;
}

#[tokio::test]
async fn the_target_reads_down_while_it_is_unreachable() {
    let app = TestApp::spawn().await;
    assert_eq!(
        sample(&app, r#"foreman_target_up{target="default"}"#).await,
        1.0
    );
    app.ollama.stop().await;
    let down = wait_until(DEADLINE, || async {
        let metrics = scrape(&app).await;
        metrics.get(r#"foreman_target_up{target="default"}"#) == Some(&0.0)
    })
    .await;
    assert!(down, "foreman_target_up never went to 0");
}

#[tokio::test]
async fn metrics_need_the_token_like_every_other_route() {
    let app = TestApp::builder().auth_token("s3cret").spawn().await;
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), 401);
    let scraper = app.get_as("/metrics", "s3cret").await;
    assert_eq!(scraper.status(), 200);
}

#[tokio::test]
async fn a_queued_job_has_an_estimated_wait_once_a_job_has_run() {
    let app = TestApp::with_generation_delay(Duration::from_millis(1000)).await;

    // Nothing has run yet: no estimate.
    let first = app.client.submit(job("llama3.2")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let second = app.client.submit(job("llama3.2")).await.unwrap();
    let queued: Value = app.get_json(&format!("/jobs/{second}")).await;
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["queue_position"], 0);
    assert!(queued.get("estimated_wait_ms").is_none(), "{queued}");
    let queue: Value = app.get_json("/queue").await;
    assert!(queue.get("estimated_wait_ms").is_none(), "{queue}");

    // The first job ran; the second runs now; a third waits behind it.
    app.client.wait(first, DEADLINE).await.unwrap();
    app.ollama.wait_for_generations(2, DEADLINE).await;
    let third = app.client.submit(job("llama3.2")).await.unwrap();
    let queued = app.client.job(third).await.unwrap();
    assert_eq!(queued.state, JobState::Queued);
    let estimate = queued.estimated_wait_ms.expect("an estimate after one run");
    // At most what is left of the running job, which takes about as long as the first.
    assert!(estimate <= 5_000, "{estimate}");
    let queue: Value = app.get_json("/queue").await;
    assert!(queue["estimated_wait_ms"].is_u64(), "{queue}");

    app.ollama.set_generation_delay(Duration::ZERO);
    for id in [second, third] {
        let done = app.client.wait(id, DEADLINE).await.unwrap();
        assert_eq!(done.state, JobState::Done);
        assert_eq!(done.estimated_wait_ms, None);
    }
}
