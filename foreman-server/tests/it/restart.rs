//! Nothing accepted is lost across a restart or a crash.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, JobState, SubmitRequest};
use foreman_testkit::TestApp;

use crate::DEADLINE;

fn job() -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new("llama3.2", vec![ChatMessage::user("hi")]))
}

#[tokio::test]
async fn queued_jobs_survive_a_restart_and_then_run() {
    let app = TestApp::spawn().await;
    app.ollama.stop().await;
    let ids: Vec<_> = futures::future::join_all((0..5).map(|_| app.client.submit(job())))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut app = app;
    app.stop().await;
    app.ollama.restart().await;
    let app = app.restart().await;
    for id in ids {
        assert_eq!(
            app.client.wait(id, DEADLINE).await.unwrap().state,
            JobState::Done
        );
    }
}

/// How a test takes foreman down while a job runs.
enum Interrupt {
    Crash,
    Stop,
}

/// Runs an async job, takes foreman down mid-generation, restarts it on the same database
/// with the target answering at once, and returns the job once it is done.
async fn interrupted_then_restarted(how: Interrupt) -> foreman_client::Job {
    let mut app = TestApp::with_generation_delay(Duration::from_secs(30)).await;
    let id = app.client.submit(job()).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    match how {
        Interrupt::Crash => app.crash().await,
        Interrupt::Stop => app.stop().await,
    }
    app.ollama.set_generation_delay(Duration::ZERO);
    let app = app.restart().await;
    app.client.wait(id, DEADLINE).await.unwrap()
}

#[tokio::test]
async fn a_crash_mid_generation_requeues_the_job_and_counts_the_attempt() {
    let done = interrupted_then_restarted(Interrupt::Crash).await;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.attempts, 2, "the crashed run counted");
}

#[tokio::test]
async fn a_graceful_shutdown_puts_the_running_job_back_without_counting_it() {
    let done = interrupted_then_restarted(Interrupt::Stop).await;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.attempts, 1, "the interrupted run was refunded");
}

#[tokio::test]
async fn a_sync_request_interrupted_by_a_crash_is_not_run_again() {
    let mut app = TestApp::with_generation_delay(Duration::from_secs(30)).await;
    let call = app.spawn_post("/api/chat", crate::chat_body("llama3.2", false));
    app.ollama.wait_for_generations(1, DEADLINE).await;
    app.crash().await;
    call.abort();
    let app = app.restart().await;
    let jobs = app.client.jobs(&Default::default()).await.unwrap();
    assert_eq!(jobs.jobs.len(), 1);
    assert_eq!(jobs.jobs[0].state, JobState::Cancelled);
    // Give the worker a chance it must not take: a new job runs, the old one does not.
    // The fake answers at once from now on, before the probe can reach it.
    app.ollama.set_generation_delay(Duration::ZERO);
    let probe = app.client.submit(job()).await.unwrap();
    app.client.wait(probe, DEADLINE).await.unwrap();
    assert_eq!(
        app.ollama.generation_requests().len(),
        2,
        "1 before the crash, the probe after"
    );
}
