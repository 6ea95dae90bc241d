//! Create, copy, delete, blobs and status, as Ollama answers them.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{chat, listed, LineReader, TestSim};
use crate::SimConfig;

impl TestSim {
    /// `DELETE /api/delete` of `model`: the status.
    pub(super) async fn delete_model(&self, model: &str) -> u16 {
        self.client
            .delete(format!("{}/api/delete", self.url))
            .json(&json!({ "model": model }))
            .send()
            .await
            .expect("the request reaches the simulator")
            .status()
            .as_u16()
    }

    /// `method /api/blobs/{digest}` with `body`: the status.
    async fn blob(&self, method: reqwest::Method, digest: &str, body: &'static [u8]) -> u16 {
        self.client
            .request(method, format!("{}/api/blobs/{digest}", self.url))
            .body(body)
            .send()
            .await
            .expect("the request reaches the simulator")
            .status()
            .as_u16()
    }
}

fn statuses(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|line| line["status"].as_str().unwrap_or("<error>"))
        .collect()
}

#[tokio::test]
async fn create_from_an_installed_model_streams_its_layers_and_lists_the_new_one() {
    let sim = TestSim::start(SimConfig::instant()).await;
    let request = json!({ "model": "terse", "from": "llama3.2", "system": "Answer in one word." });

    let response = sim.post("/api/create", request).await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = LineReader::new(response).rest().await;
    let mut once = chat("terse", "hi");
    once["stream"] = json!(false);
    let (chatted, answer) = sim.post_json("/api/chat", once).await;
    let (shown, show) = sim
        .post_json("/api/show", json!({ "model": "terse" }))
        .await;

    let statuses = statuses(&lines);
    assert!(
        statuses[..4]
            .iter()
            .all(|s| s.starts_with("using existing layer sha256:")),
        "{statuses:?}"
    );
    assert!(
        statuses[4].starts_with("creating new layer sha256:"),
        "{statuses:?}"
    );
    assert_eq!(statuses[5..], ["writing manifest", "success"]);
    assert!(listed(&sim).await.contains(&"terse:latest".to_owned()));
    assert_eq!(chatted, 200);
    assert_eq!(answer["model"], "terse");
    assert_eq!(shown, 200);
    assert_eq!(show["details"]["family"], "llama");
}

#[tokio::test]
async fn create_from_a_model_only_the_registry_has_pulls_it_first() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let request = json!({ "model": "tiny", "from": "smollm2:135m", "stream": true });
    let lines = LineReader::new(sim.post("/api/create", request).await)
        .rest()
        .await;
    let unknown = json!({ "model": "x", "from": "nowhere", "stream": false });
    let (status, body) = sim.post_json("/api/create", unknown).await;

    let statuses = statuses(&lines);
    assert_eq!(statuses[0], "pulling manifest");
    assert!(
        statuses.contains(&"verifying sha256 digest"),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&"success"));
    let listed = listed(&sim).await;
    assert!(listed.contains(&"smollm2:135m".to_owned()), "{listed:?}");
    assert!(listed.contains(&"tiny:latest".to_owned()));
    assert_eq!(status, 500);
    assert_eq!(body["error"], "pull model manifest: file does not exist");
}

#[tokio::test]
async fn create_without_from_or_files_is_a_400() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let (status, body) = sim
        .post_json("/api/create", json!({ "model": "empty" }))
        .await;
    let (unnamed, _) = sim
        .post_json("/api/create", json!({ "from": "llama3.2" }))
        .await;

    assert_eq!(status, 400);
    assert_eq!(body["error"], "neither 'from' or 'files' was specified");
    assert_eq!(unnamed, 400);
}

#[tokio::test]
async fn blobs_are_checked_by_their_digest_and_make_models() {
    let sim = TestSim::start(SimConfig::instant()).await;
    let gguf: &'static [u8] = b"GGUF pretend weights";
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(gguf)));
    let wrong = format!("sha256:{}", "0".repeat(64));

    let absent = sim.blob(reqwest::Method::HEAD, &digest, b"").await;
    let mismatch = sim.blob(reqwest::Method::POST, &wrong, gguf).await;
    let malformed = sim.blob(reqwest::Method::POST, "md5:abc", gguf).await;
    let created = sim.blob(reqwest::Method::POST, &digest, gguf).await;
    let again = sim.blob(reqwest::Method::POST, &digest, gguf).await;
    let present = sim.blob(reqwest::Method::HEAD, &digest, b"").await;
    let request = json!({ "model": "mine", "files": { "model.gguf": digest }, "stream": false });
    let (made, answer) = sim.post_json("/api/create", request).await;
    let request = json!({ "model": "other", "files": { "x.gguf": wrong } });
    let missing = LineReader::new(sim.post("/api/create", request).await)
        .rest()
        .await;

    assert_eq!((absent, mismatch, malformed), (404, 400, 400));
    assert_eq!((created, again, present), (201, 200, 200));
    assert_eq!((made, answer), (200, json!({ "status": "success" })));
    assert!(listed(&sim).await.contains(&"mine:latest".to_owned()));
    assert_eq!(missing[0], json!({ "status": "parsing GGUF" }));
    assert!(missing[1]["error"].is_string(), "{missing:?}");
    assert!(!listed(&sim).await.contains(&"other:latest".to_owned()));
}

#[tokio::test]
async fn copy_and_delete_change_the_list_at_once() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let copied = sim
        .client
        .post(format!("{}/api/copy", sim.url))
        .json(&json!({ "source": "llama3.2", "destination": "llama3.2-copy" }))
        .send()
        .await
        .expect("a copy");
    let copied = (
        copied.status().as_u16(),
        copied.text().await.expect("a body"),
    );
    let listed_copy = listed(&sim)
        .await
        .contains(&"llama3.2-copy:latest".to_owned());
    let (unknown_copy, unknown_body) = sim
        .post_json(
            "/api/copy",
            json!({ "source": "ghost", "destination": "x" }),
        )
        .await;
    let deleted = sim.delete_model("llama3.2-copy").await;
    let deleted_again = sim.delete_model("llama3.2-copy").await;
    let (chat_after, _) = sim
        .post_json("/api/chat", chat("llama3.2-copy", "hi"))
        .await;

    assert_eq!(copied, (200, String::new()));
    assert!(listed_copy);
    assert_eq!(unknown_copy, 404);
    assert_eq!(unknown_body["error"], "model \"ghost\" not found");
    assert_eq!((deleted, deleted_again), (200, 404));
    assert!(!listed(&sim)
        .await
        .contains(&"llama3.2-copy:latest".to_owned()));
    assert_eq!(chat_after, 404);
    let response = sim
        .client
        .delete(format!("{}/api/delete", sim.url))
        .json(&json!({ "model": "never-pulled" }))
        .send()
        .await
        .expect("a delete");
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body, json!({ "error": "model 'never-pulled' not found" }));
}

#[tokio::test]
async fn status_answers_like_a_local_ollama() {
    let sim = TestSim::start(SimConfig::instant()).await;

    let status = sim.get_json("/api/status").await;

    assert_eq!(status["cloud"]["disabled"], false);
}
