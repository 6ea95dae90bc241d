//! Several targets behind one foreman: three fake GPU boxes holding different models.
//! Routing by residency and by installation, lanes of N, a target dying mid-request and
//! mid-stream and coming back, a model only a down target has, the union views, model
//! management to every target or a named one.

use std::net::SocketAddr;
use std::time::Duration;

use foreman_sim::SimConfig;
use foreman_testkit::wait::wait_until;
use foreman_testkit::{FakeOllama, TestApp};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::faults::{submit, terminal};
use crate::{chat_body, DEADLINE};

const LLAMA: &str = "llama3.2:latest";
const QWEN: &str = "qwen2.5:0.5b";
const MISTRAL: &str = "mistral:7b";
const EMBED: &str = "nomic-embed-text:latest";

/// gpu1 holds llama in memory, gpu2 qwen; both have both. gpu3 alone has mistral and the
/// embedding model.
async fn three_boxes(delay: Duration) -> TestApp {
    three_boxes_with(delay, |_| {}).await
}

/// A box with llama and qwen, holding `resident` in memory, answering after `delay`.
async fn llama_and_qwen(resident: &str, delay: Duration) -> FakeOllama {
    FakeOllama::builder()
        .model(LLAMA)
        .model(QWEN)
        .resident(resident)
        .generation_delay(delay)
        .start()
        .await
}

async fn three_boxes_with(
    delay: Duration,
    configure: impl FnOnce(&mut foreman_server::Config) + Send + 'static,
) -> TestApp {
    let gpu1 = llama_and_qwen(LLAMA, delay).await;
    let gpu2 = llama_and_qwen(QWEN, delay).await;
    let gpu3 = FakeOllama::builder()
        .model(MISTRAL)
        .model(EMBED)
        .generation_delay(delay)
        .start()
        .await;
    TestApp::builder()
        .target("gpu1", gpu1)
        .target("gpu2", gpu2)
        .target("gpu3", gpu3)
        .configure(configure)
        .spawn()
        .await
}

/// Whether the fake behind target `name` has `model` installed.
fn has(app: &TestApp, name: &str, model: &str) -> bool {
    app.fake(name)
        .models()
        .iter()
        .any(|installed| installed == model)
}

/// The models of the generations a fake received.
fn generated(fake: &FakeOllama) -> Vec<String> {
    fake.generation_requests()
        .iter()
        .map(|body| body["model"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn async_chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn interleaved_chats_land_on_the_box_that_holds_their_model() {
    let app = three_boxes(Duration::ZERO).await;
    for model in [LLAMA, QWEN, MISTRAL, LLAMA, QWEN, MISTRAL, QWEN, LLAMA] {
        let response = app.post("/api/chat", &chat_body(model, false)).await;
        assert_eq!(response.status(), 200, "{model}");
    }
    assert_eq!(generated(app.fake("gpu1")), [LLAMA; 3]);
    assert_eq!(generated(app.fake("gpu2")), [QWEN; 3]);
    assert_eq!(generated(app.fake("gpu3")), ["mistral:7b"; 2]);
    // Every job records where it ran.
    for job in app.jobs_json("limit=20").await {
        let expected = match job["model"].as_str().unwrap() {
            LLAMA => "gpu1",
            QWEN => "gpu2",
            _ => "gpu3",
        };
        assert_eq!(job["target"], expected, "{job}");
    }
}

#[tokio::test]
async fn a_model_installed_on_one_box_runs_only_there_while_the_others_idle() {
    let app = three_boxes(Duration::from_millis(200)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&app, &async_chat(MISTRAL)).await);
    }
    for id in &ids {
        let job = terminal(&app, id).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["target"], "gpu3", "{job}");
    }
    assert!(generated(app.fake("gpu1")).is_empty());
    assert!(generated(app.fake("gpu2")).is_empty());
    assert_eq!(app.fake("gpu3").max_concurrent_generations(), 1);
}

#[tokio::test]
async fn no_box_runs_more_generations_at_once_than_its_lanes() {
    let app = three_boxes_with(Duration::from_millis(300), |c| {
        c.target_parallel = "gpu1=2".parse().unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(submit(&app, &async_chat(LLAMA)).await);
    }
    // While they run, /queue and /metrics say where.
    let busy = wait_until(DEADLINE, || async {
        let queue = app.get_json("/queue").await;
        queue["targets"][0]["running"].as_u64() == Some(2)
    })
    .await;
    assert!(busy, "gpu1 never ran two at once");
    for id in &ids {
        assert_eq!(terminal(&app, id).await["state"], "done");
    }
    assert_eq!(app.fake("gpu1").max_concurrent_generations(), 2);
    assert!(app.fake("gpu2").max_concurrent_generations() <= 1);
    let on = |name: &str| {
        let fake = app.fake(name);
        generated(fake).len()
    };
    assert_eq!(on("gpu1") + on("gpu2"), 7);
    assert!(
        on("gpu2") >= 1,
        "an idle box with the model took some of the work"
    );
    assert_eq!(on("gpu3"), 0, "gpu3 lacks llama");
}

#[tokio::test]
async fn a_chat_whose_box_dies_before_answering_is_answered_by_another_and_the_box_rejoins() {
    let app = three_boxes(Duration::from_millis(1500)).await;
    app.fake("gpu1").add_model("phi3:latest");
    let waiting = app.spawn_post("/api/chat", chat_body(LLAMA, false));
    app.fake("gpu1").wait_for_generations(1, DEADLINE).await;
    app.fake("gpu1").stop().await;

    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let id = answer.headers()["x-foreman-job-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["model"], LLAMA);
    let job = app.get_json(&format!("/jobs/{id}")).await;
    assert_eq!(job["target"], "gpu2", "{job}");
    assert_eq!(job["attempts"], 2, "the run on the dead box counts: {job}");

    let health = app.get_json("/healthz").await;
    assert_eq!(health["degraded"], true, "{health}");
    assert_eq!(health["targets"][0]["name"], "gpu1");
    assert_eq!(health["targets"][0]["up"], false, "{health}");

    app.fake("gpu1").restart().await;
    let back = wait_until(DEADLINE, || async {
        app.get_json("/healthz").await["degraded"] == false
    })
    .await;
    assert!(back, "gpu1 never rejoined");
    app.fake("gpu1").set_generation_delay(Duration::ZERO);
    let response = app.post("/api/chat", &chat_body("phi3", false)).await;
    assert_eq!(response.status(), 200, "gpu1's own model runs there again");
}

/// A simulated box on a fixed address that can be killed mid-stream and brought back.
struct KillableSim {
    addr: SocketAddr,
    config: SimConfig,
    running: Option<(CancellationToken, JoinHandle<std::io::Result<()>>)>,
}

impl KillableSim {
    async fn start(config: SimConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sim = Self {
            addr,
            config,
            running: None,
        };
        sim.serve(listener);
        sim
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(foreman_sim::serve(
            listener,
            self.config.clone(),
            stop.clone(),
        ));
        self.running = Some((stop, task));
    }

    /// Stops it, ending the generations in flight, and waits until it has.
    async fn kill(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            let _ = task.await;
        }
    }

    /// Listens again on the same address (a just-closed port may take a moment).
    async fn restore(&mut self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) if tokio::time::Instant::now() > deadline => {
                    panic!("cannot listen on {} again: {err}", self.addr)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }
}

#[tokio::test]
async fn an_async_job_whose_box_dies_mid_stream_is_retried_on_another_box_that_has_the_model() {
    let mut sim = KillableSim::start(SimConfig {
        models: vec![LLAMA.to_owned()],
        resident: Some(LLAMA.to_owned()),
        load_time: Duration::ZERO,
        tokens_per_second: 20.0,
        reply_tokens: 200,
        ..SimConfig::default()
    })
    .await;
    let spare = llama_and_qwen(QWEN, Duration::ZERO).await;
    let app = TestApp::builder()
        .target_at("sim", &sim.url())
        .target("spare", spare)
        .spawn()
        .await;
    let id = submit(&app, &async_chat(LLAMA)).await;
    let streaming = wait_until(DEADLINE, || async {
        app.get_json(&format!("/jobs/{id}")).await["state"] == "working"
    })
    .await;
    assert!(streaming, "the job never started streaming");
    assert_eq!(app.get_json(&format!("/jobs/{id}")).await["target"], "sim");

    sim.kill().await;
    let job = terminal(&app, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["target"], "spare", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(generated(app.fake("spare")), [LLAMA]);

    sim.restore().await;
    let back = wait_until(DEADLINE, || async {
        let health = app.get_json("/healthz").await;
        health["targets"][0]["up"] == true && health["degraded"] == false
    })
    .await;
    assert!(back, "the simulated box never rejoined");
}

#[tokio::test]
async fn a_job_for_a_model_only_a_down_box_has_waits_for_it_without_spending_attempts() {
    let app = three_boxes_with(Duration::ZERO, |c| c.max_attempts = 1).await;
    app.fake("gpu3").stop().await;
    let down = wait_until(DEADLINE, || async {
        app.get_json("/healthz").await["targets"][2]["up"] == false
    })
    .await;
    assert!(down);
    let id = submit(&app, &async_chat(MISTRAL)).await;
    // Other boxes are idle, and a job for their models runs meanwhile.
    let other = app.post("/api/chat", &chat_body(QWEN, false)).await;
    assert_eq!(other.status(), 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let job = app.get_json(&format!("/jobs/{id}")).await;
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["attempts"], 0, "{job}");

    app.fake("gpu3").restart().await;
    let job = terminal(&app, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["target"], "gpu3");
    assert_eq!(job["attempts"], 1);
}

fn names(list: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn tags_ps_models_health_and_queue_are_unions_over_the_boxes() {
    let app = three_boxes(Duration::ZERO).await;
    let tags = app.get_json("/api/tags").await;
    let mut every = [LLAMA, MISTRAL, EMBED, QWEN].map(str::to_owned);
    every.sort();
    assert_eq!(names(&tags["models"], "name"), every);
    let models = app.get_json("/v1/models").await;
    assert_eq!(names(&models["data"], "id").len(), 4, "{models}");

    let ps = app.get_json("/api/ps").await;
    let loaded = ps["models"].as_array().unwrap();
    assert_eq!(loaded.len(), 2, "{ps}");
    let holder = |model: &str| {
        loaded
            .iter()
            .find(|m| m["name"] == model)
            .map(|m| m["target"].clone())
    };
    assert_eq!(holder(LLAMA), Some(json!("gpu1")));
    assert_eq!(holder(QWEN), Some(json!("gpu2")));

    let health = app.get_json("/healthz").await;
    assert_eq!(health["degraded"], false);
    let targets = health["targets"].as_array().unwrap();
    assert_eq!(names(&health["targets"], "name"), ["gpu1", "gpu2", "gpu3"]);
    assert_eq!(targets[0]["url"], app.fake("gpu1").url());
    assert_eq!(targets[0]["resident"], json!([LLAMA]));
    assert_eq!(targets[2]["up"], true);

    let queue = app.get_json("/queue").await;
    assert_eq!(queue["targets"].as_array().unwrap().len(), 3, "{queue}");
    assert_eq!(queue["targets"][1]["parallel"], 1);

    let metrics = app.get("/metrics").await;
    let metrics = metrics.text().await.unwrap();
    for name in ["gpu1", "gpu2", "gpu3"] {
        let line = format!("foreman_target_up{{target=\"{name}\"}} 1");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_pull_goes_to_every_box_unless_one_is_named() {
    let app = three_boxes(Duration::ZERO).await;
    let pulled = app
        .post("/api/pull", &json!({"model": "gemma3", "stream": false}))
        .await;
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.json::<Value>().await.unwrap()["status"], "success");
    for name in ["gpu1", "gpu2", "gpu3"] {
        assert!(
            has(&app, name, "gemma3:latest"),
            "{name} lacks the pulled model"
        );
    }

    let one = app
        .post("/api/pull?target=gpu2", &json!({"model": "phi4"}))
        .await;
    assert_eq!(one.status(), 200);
    let lines = one.text().await.unwrap();
    assert!(
        lines.trim_end().ends_with(r#"{"status":"success"}"#),
        "{lines}"
    );
    assert!(has(&app, "gpu2", "phi4:latest"));
    assert!(!has(&app, "gpu1", "phi4:latest"));

    // A delete named by header goes to that box only; one to all is fine where the
    // model is missing on some.
    let deleted = app
        .http
        .delete(app.at("/api/delete"))
        .header("x-foreman-target", "gpu1")
        .json(&json!({"model": "gemma3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(!has(&app, "gpu1", "gemma3:latest"));
    assert!(has(&app, "gpu2", "gemma3:latest"));
    let everywhere = app
        .http
        .delete(app.at("/api/delete"))
        .json(&json!({"model": "gemma3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(everywhere.status(), 200);
    let tags = app.get_json("/api/tags").await;
    assert!(!names(&tags["models"], "name").contains(&"gemma3:latest".to_owned()));

    let unknown = app
        .post("/api/pull?target=nope", &json!({"model": "gemma3"}))
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_streamed_pull_to_several_boxes_tags_each_line_and_ends_once() {
    let app = three_boxes(Duration::ZERO).await;
    app.fake("gpu3").make_unpullable("gemma3");
    let pulled = app.post("/api/pull", &json!({"model": "gemma3"})).await;
    assert_eq!(pulled.status(), 200);
    let text = pulled.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let last = lines.last().unwrap();
    let error = last["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("on gpu3:"), "{text}");
    assert_eq!(
        lines.iter().filter(|l| l.get("error").is_some()).count(),
        1,
        "one error line, at the end: {text}"
    );
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| l["target"].is_string()));
    assert!(has(&app, "gpu1", "gemma3:latest"));
}

#[tokio::test]
async fn embeddings_go_to_a_box_that_has_the_model() {
    let app = three_boxes(Duration::ZERO).await;
    let response = app
        .post(
            "/api/embed",
            &json!({"model": "nomic-embed-text", "input": "hi"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.fake("gpu3").requests_to("/api/embed"), 1);
    assert_eq!(app.fake("gpu1").requests_to("/api/embed"), 0);
    assert_eq!(app.fake("gpu2").requests_to("/api/embed"), 0);
}
