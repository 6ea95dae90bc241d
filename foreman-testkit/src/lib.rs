//! Test helpers for foreman: a fake Ollama, a webhook receiver and condition waits.
//! Everything listens on `127.0.0.1` port 0 and needs no network, no real Ollama and no
//! sleeps.
//!
//! - [`FakeOllama`] (`fake_ollama`): a wiremock server that answers like Ollama (tags,
//!   ps, show, version, embed, chat and generate, streamed or not, and the
//!   OpenAI-compatible `/v1` routes), with failure
//!   injection, stop/restart on the same URL, and observation of what it received.
//! - [`WebhookReceiver`] (`receiver`): records webhook POSTs (headers, raw body) with a
//!   settable answer status.
//! - [`TestApp`] (`spawn`): a real foreman on port 0 with a fresh database in front of a
//!   fake Ollama, with a typed client; stop, crash and restart it on the same database.
//!   [`TestAppBuilder::target`] puts several named fakes behind it (several GPU boxes),
//!   [`TestApp::fake`] finds each by name.
//! - [`Hop`] (`hop`): a TCP forwarder a test can cut and restore, for network outages.
//! - [`postgres::fresh_database`]: an empty database on the test PostgreSQL server
//!   (`FOREMAN_TEST_PG_URL`, set by `scripts/test.sh`).
//! - [`json_answer`] (`answer`): a response's JSON body once its status is checked.
//! - [`bodies`]: NDJSON lines, server-sent event data and named events of a response.
//! - [`wait_until`], [`eventually`], [`temp_db`] (`wait`): condition waits with a
//!   deadline, and a fresh SQLite path.
//!
//! For a target that streams token by token as the test releases each token, cuts a
//! stream off or notices a client hang up, use the simulator in manual release
//! (`foreman_sim::spawn(SimConfig::manual())`) and point a [`TestApp`] at it with
//! [`TestAppBuilder::target_url`].
//!
//! # Quick start
//!
//! ```no_run
//! # async fn demo() {
//! use foreman_testkit::FakeOllama;
//! use serde_json::json;
//!
//! let ollama = FakeOllama::builder().reply("Hi there").start().await;
//! let answer: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}/api/chat", ollama.url()))
//!     .json(&json!({"model": "llama3.2", "stream": false,
//!                   "messages": [{"role": "user", "content": "Hello"}]}))
//!     .send()
//!     .await
//!     .unwrap()
//!     .json()
//!     .await
//!     .unwrap();
//! assert_eq!(answer["message"]["content"], "Hi there");
//! assert_eq!(ollama.generation_requests().len(), 1);
//! # }
//! ```

mod answer;
pub mod bodies;
pub mod fake_ollama;
mod hop;
mod metrics;
pub mod postgres;
pub mod receiver;
pub mod spawn;
pub mod wait;

pub use answer::json_answer;
pub use fake_ollama::{FakeOllama, FakeOllamaBuilder};
pub use hop::Hop;
pub use metrics::parse_metrics;
pub use receiver::{ReceivedWebhook, WebhookReceiver};
pub use spawn::{TestApp, TestAppBuilder};
pub use wait::{eventually, temp_db, wait_until};
