//! The status page's stream as it moves: a change is pushed at once rather than at the next
//! tick, a running job shows its tokens per second, and the hour of samples its plots draw
//! survives a restart.

use std::time::Duration;

use foreman_client::{JobId, JobState};
use foreman_sim::SimConfig;
use foreman_testkit::TestApp;
use serde_json::Value;

use crate::ui::{ids, Snapshots};
use crate::{chat_job, DEADLINE};

/// So long that no test sees a tick after the first snapshot: what arrives was pushed.
const NO_TICK: Duration = Duration::from_secs(3600);

/// The running job `id` in `snapshot`, if it is there.
fn running(snapshot: &Value, id: JobId) -> Option<Value> {
    let id = id.to_string();
    snapshot["running"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["id"] == id.as_str())
        .cloned()
}

/// Waits for job `id` to show `tokens` streamed tokens, and gives it as then shown.
async fn once_streamed(stream: &mut Snapshots, id: JobId, tokens: u64) -> Value {
    let snapshot = stream
        .until(&format!("{tokens} token(s) streamed"), |s| {
            running(s, id).is_some_and(|job| job["streamed_tokens"] == tokens)
        })
        .await;
    running(&snapshot, id).unwrap()
}

#[tokio::test]
async fn a_submitted_job_is_pushed_at_once_not_at_the_next_tick() {
    let app = TestApp::builder()
        .generation_delay(Duration::from_secs(30))
        .configure(|c| c.ui_refresh = NO_TICK)
        .spawn()
        .await;
    let mut stream = Snapshots::open(&app, "").await;
    let before = stream.next().await;
    assert_eq!(before["depth"], 0);
    assert!(ids(&before, "running").is_empty());

    let first = app
        .client
        .submit(chat_job("llama3.2", "first"))
        .await
        .unwrap();
    let second = app
        .client
        .submit(chat_job("llama3.2", "second"))
        .await
        .unwrap();

    // Only a push can bring this: the next tick is an hour away.
    let claimed = stream
        .until("the first job running and the second queued", |s| {
            running(s, first).is_some() && ids(s, "queued") == [second.to_string()]
        })
        .await;
    assert_eq!(claimed["depth"], 1, "{claimed}");
    app.client.cancel(second).await.unwrap();
    let cancelled = stream
        .until("the second job cancelled", |s| {
            ids(s, "recent").contains(&second.to_string())
        })
        .await;
    assert_eq!(cancelled["depth"], 0);
}

#[tokio::test]
async fn a_target_going_down_is_pushed_at_once() {
    let app = TestApp::builder()
        .configure(|c| c.ui_refresh = NO_TICK)
        .spawn()
        .await;
    let mut stream = Snapshots::open(&app, "").await;
    let before = stream.next().await;
    assert_eq!(before["targets"][0]["up"], true);

    app.ollama.stop().await;

    stream
        .until("the target down", |s| s["targets"][0]["up"] == false)
        .await;
}

#[tokio::test]
async fn a_running_job_shows_the_tokens_it_has_streamed_and_their_rate() {
    let sim = foreman_sim::spawn(SimConfig::manual())
        .await
        .expect("the simulator starts");
    let app = TestApp::builder()
        .target_url(sim.url())
        .configure(|c| c.ui_refresh = Duration::from_millis(50))
        .spawn()
        .await;
    let id = app
        .client
        .submit(chat_job("llama3.2", "count my tokens"))
        .await
        .unwrap();
    let generation = sim.next_generation(DEADLINE).await.expect("a generation");
    let mut stream = Snapshots::open(&app, "").await;

    generation.token("one");
    let job = once_streamed(&mut stream, id, 1).await;
    assert!(
        job["tokens_per_s"].is_null(),
        "one token has no rate: {job}"
    );

    generation.token(" two");
    generation.token(" three");
    let job = once_streamed(&mut stream, id, 3).await;
    let rate = job["tokens_per_s"]
        .as_f64()
        .expect("a rate once tokens came apart");
    assert!(rate > 0.0, "{job}");

    generation.finish();
    assert_eq!(
        app.client.wait(id, DEADLINE).await.unwrap().state,
        JobState::Done
    );
    let after = stream
        .until("the job ended", |s| {
            ids(s, "recent").contains(&id.to_string())
        })
        .await;
    assert!(running(&after, id).is_none(), "{after}");
}

#[tokio::test]
async fn the_hour_of_samples_survives_a_restart() {
    let mut app = TestApp::builder()
        .configure(|c| c.ui_refresh = Duration::from_millis(50))
        .spawn()
        .await;
    let mut stream = Snapshots::open(&app, "").await;
    let sampled = stream
        .until("a sample", |s| !s["history"].as_array().unwrap().is_empty())
        .await;
    let taken = sample_times(&sampled);
    drop(stream);

    app.stop().await;
    let app = app.restart().await;

    let mut stream = Snapshots::open(&app, "").await;
    let restored = sample_times(&stream.next().await);
    for at in &taken {
        assert!(restored.contains(at), "{at} lost: {restored:?}");
    }
}

fn sample_times(snapshot: &Value) -> Vec<i64> {
    snapshot["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| sample["at_ms"].as_i64().unwrap())
        .collect()
}
