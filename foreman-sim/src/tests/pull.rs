//! Pulls and pushes: the pretend registry, layer progress at the download rate, a model
//! listed once pulled, pulls released by hand.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{chat, listed, LineReader, TestSim, DEADLINE};
use crate::SimConfig;

/// The registry's small model, 84 MB of weights.
const SMALL: &str = "smollm2:135m";

/// Downloads at 500 MB/s: the small model takes a little under 0.2 s.
fn downloading() -> SimConfig {
    SimConfig {
        registry_bytes_per_second: 500e6,
        ..SimConfig::instant()
    }
}

#[tokio::test]
async fn a_pull_reports_each_layer_at_the_download_rate_and_then_lists_the_model() {
    let sim = TestSim::start(downloading()).await;
    assert!(!listed(&sim).await.contains(&SMALL.to_owned()));
    let started = Instant::now();

    let response = sim.post("/api/pull", json!({ "model": SMALL })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    // (That the model is listed only once the pull is done is tested by hand, below: a
    // timed pull runs ahead of the lines the test has read.)
    let progress = LineReader::new(response).rest().await;
    let elapsed = started.elapsed();

    assert_eq!(progress[0], json!({ "status": "pulling manifest" }));
    let statuses: Vec<&str> = progress
        .iter()
        .rev()
        .take(3)
        .map(|line| line["status"].as_str().expect("a status"))
        .collect();
    assert_eq!(
        statuses,
        ["success", "writing manifest", "verifying sha256 digest"]
    );
    let layers: Vec<&Value> = progress
        .iter()
        .filter(|l| l["digest"].is_string())
        .collect();
    let mut digests: Vec<&str> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    digests.dedup();
    assert!(digests.len() >= 2, "weights and more: {digests:?}");
    for digest in &digests {
        let of_layer: Vec<&&Value> = layers.iter().filter(|l| l["digest"] == *digest).collect();
        let hex = digest.strip_prefix("sha256:").expect("sha256:");
        assert_eq!(hex.len(), 64);
        assert_eq!(of_layer[0]["status"], format!("pulling {}", &hex[..12]));
        assert!(
            of_layer[0].get("completed").is_none(),
            "a layer is announced first: {}",
            of_layer[0]
        );
        let total = of_layer[0]["total"].as_u64().expect("a total");
        let completed: Vec<u64> = of_layer[1..]
            .iter()
            .map(|l| l["completed"].as_u64().expect("completed"))
            .collect();
        assert!(completed.windows(2).all(|w| w[0] < w[1]), "{completed:?}");
        assert_eq!(completed.last(), Some(&total));
    }
    let weights = layers[0]["total"].as_u64().unwrap();
    let lines_for_weights = layers.iter().filter(|l| l["digest"] == digests[0]).count();
    assert!(
        lines_for_weights > 2,
        "the weights show progress in between"
    );
    let least = Duration::from_secs_f64(weights as f64 / 500e6);
    assert!(elapsed >= least, "{elapsed:?} for {weights} bytes");
    assert!(listed(&sim).await.contains(&SMALL.to_owned()));
}

#[tokio::test]
async fn a_pulled_model_can_be_chatted_with_and_a_pull_without_streaming_answers_success() {
    let sim = TestSim::start(SimConfig::instant()).await;
    let mut once = chat(SMALL, "hi");
    once["stream"] = json!(false);
    let (before, _) = sim.post_json("/api/chat", once.clone()).await;

    let (status, pulled) = sim
        .post_json("/api/pull", json!({ "name": SMALL, "stream": false }))
        .await;
    let (after, answer) = sim.post_json("/api/chat", once).await;

    assert_eq!(before, 404);
    assert_eq!(status, 200);
    assert_eq!(pulled, json!({ "status": "success" }));
    assert_eq!(after, 200);
    assert_eq!(answer["model"], SMALL);
    assert!(answer["message"]["content"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    let show = sim.post_json("/api/show", json!({ "model": SMALL })).await;
    assert_eq!(show.0, 200);
}

#[tokio::test]
async fn a_name_the_registry_lacks_streams_its_error_after_the_manifest_line() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let response = sim.post("/api/pull", json!({ "model": "nope" })).await;
    let status = response.status();
    let lines = LineReader::new(response).rest().await;
    let (whole, body) = sim
        .post_json("/api/pull", json!({ "model": "nope", "stream": false }))
        .await;
    let (missing, _) = sim.post_json("/api/pull", json!({ "stream": false })).await;

    assert_eq!(status, 200, "Ollama's status once streaming began");
    assert_eq!(
        lines,
        [
            json!({ "status": "pulling manifest" }),
            json!({ "error": "pull model manifest: file does not exist" }),
        ]
    );
    assert_eq!(whole, 500);
    assert_eq!(
        body,
        json!({ "error": "pull model manifest: file does not exist" })
    );
    assert_eq!(missing, 400);
    assert!(!listed(&sim).await.contains(&"nope:latest".to_owned()));
}

#[tokio::test]
async fn pulling_an_installed_model_again_finds_its_layers_on_disk() {
    let sim = TestSim::start(downloading()).await;

    let response = sim.post("/api/pull", json!({ "model": "llama3.2" })).await;
    let lines = LineReader::new(response).rest().await;

    let layers: Vec<&Value> = lines.iter().filter(|l| l["digest"].is_string()).collect();
    assert!(layers.len() >= 2);
    assert!(
        layers.iter().all(|l| l["completed"] == l["total"]),
        "one line per layer, done: {layers:?}"
    );
    assert_eq!(lines.last(), Some(&json!({ "status": "success" })));
}

#[tokio::test]
async fn a_pull_released_by_hand_sends_each_line_when_the_test_does() {
    let sim = TestSim::start(SimConfig::manual()).await;
    let response = sim.post("/api/pull", json!({ "model": SMALL })).await;
    let mut lines = LineReader::new(response);
    assert_eq!(
        lines.next().await,
        Some(json!({ "status": "pulling manifest" }))
    );
    let pull = sim
        .handle
        .next_pull(DEADLINE)
        .await
        .expect("the pull is handed over");
    assert_eq!(pull.request()["model"], SMALL);
    let layer = pull.layers()[0].clone();

    pull.progress(0, 0);
    let announced = lines.next().await.expect("the announcement");
    pull.progress(0, layer.total / 2);
    let half = lines.next().await.expect("half way");
    assert!(!listed(&sim).await.contains(&SMALL.to_owned()));
    pull.finish();
    let rest = lines.rest().await;

    assert_eq!(announced["digest"], layer.digest.as_str());
    assert_eq!(announced["total"], layer.total);
    assert!(announced.get("completed").is_none());
    assert_eq!(half["completed"], layer.total / 2);
    assert_eq!(
        rest.last(),
        Some(&json!({ "status": "success" })),
        "{rest:?}"
    );
    assert!(listed(&sim).await.contains(&SMALL.to_owned()));
}

#[tokio::test]
async fn a_pull_released_by_hand_can_fail_be_cut_or_be_left_by_its_client() {
    let sim = TestSim::start(SimConfig::manual()).await;
    let failing = sim.post("/api/pull", json!({ "model": SMALL })).await;
    sim.handle
        .next_pull(DEADLINE)
        .await
        .expect("a pull")
        .fail("disk full");
    let failed = LineReader::new(failing).rest().await;

    let cut = sim.post("/api/pull", json!({ "model": SMALL })).await;
    sim.handle.next_pull(DEADLINE).await.expect("a pull").cut();
    let broke = tokio::time::timeout(DEADLINE, cut.text())
        .await
        .expect("an end");

    let left = sim.post("/api/pull", json!({ "model": SMALL })).await;
    let pull = sim.handle.next_pull(DEADLINE).await.expect("a pull");
    drop(left);
    let noticed = tokio::time::timeout(DEADLINE, pull.hung_up()).await;

    assert_eq!(failed.last(), Some(&json!({ "error": "disk full" })));
    assert!(broke.is_err(), "the body broke off: {broke:?}");
    assert!(noticed.is_ok(), "the hang-up was noticed");
    pull.finish();
    assert!(!listed(&sim).await.contains(&SMALL.to_owned()));
}

#[tokio::test]
async fn a_push_uploads_only_what_the_registry_lacks_and_then_it_can_be_pulled() {
    let sim = TestSim::start(SimConfig::instant()).await;
    let (created, _) = sim
        .post_json(
            "/api/create",
            json!({ "model": "me/terse", "from": "llama3.2", "system": "One word.", "stream": false }),
        )
        .await;
    assert_eq!(created, 200);

    let response = sim.post("/api/push", json!({ "model": "me/terse" })).await;
    let lines = LineReader::new(response).rest().await;
    let deleted = sim.delete_model("me/terse").await;
    let (pulled, answer) = sim
        .post_json("/api/pull", json!({ "model": "me/terse", "stream": false }))
        .await;

    assert_eq!(lines[0], json!({ "status": "retrieving manifest" }));
    let announced: Vec<&Value> = lines
        .iter()
        .filter(|l| l["digest"].is_string() && l.get("completed").is_none())
        .collect();
    assert_eq!(
        announced.len(),
        2,
        "only the new system layer and config are uploaded: {lines:?}"
    );
    assert!(announced
        .iter()
        .all(|l| l["status"].as_str().unwrap().starts_with("pushing ")));
    let tail: Vec<&Value> = lines.iter().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            &json!({ "status": "success" }),
            &json!({ "status": "pushing manifest" })
        ]
    );
    assert_eq!(deleted, 200);
    assert_eq!((pulled, answer), (200, json!({ "status": "success" })));
}

#[tokio::test]
async fn pushing_a_model_that_is_not_installed_fails_after_the_manifest_lines() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let response = sim.post("/api/push", json!({ "model": "ghost" })).await;
    let lines = LineReader::new(response).rest().await;
    let (whole, _) = sim
        .post_json("/api/push", json!({ "model": "ghost", "stream": false }))
        .await;

    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1], json!({ "status": "couldn't retrieve manifest" }));
    let error = lines[2]["error"].as_str().expect("an error line");
    assert!(error.ends_with("no such file or directory"), "{error}");
    assert_eq!(whole, 500);
}
