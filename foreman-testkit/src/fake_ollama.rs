//! [`FakeOllama`]: a wiremock [`MockServer`] that behaves like Ollama for everything a
//! proxy touches, with failure injection and observation for tests.
//!
//! One catch-all responder reads shared state on every request, so a test can change
//! the reply, the delay, the installed models or inject failures mid-flight, and the
//! state survives [`FakeOllama::stop`] / [`FakeOllama::restart`].
//!
//! Routes: `GET|HEAD /`, `GET /api/version`, `GET /api/tags`, `GET /api/ps`,
//! `POST /api/show`, `POST /api/embed`, `POST /api/embeddings`, `POST /api/chat`,
//! `POST /api/generate`; model management, `POST /api/pull`, `/api/push`, `/api/create`,
//! `/api/copy`, `DELETE /api/delete`, `HEAD|POST /api/blobs/{digest}`, `GET /api/status`
//! (NDJSON progress, the model list changing; see `fake_ollama/manage.rs`); the
//! OpenAI-compatible `POST /v1/chat/completions`, `POST /v1/completions`,
//! `POST /v1/embeddings`, `GET /v1/models` and `GET /v1/models/{id}` (server-sent events
//! when streamed, OpenAI-shaped errors; see `fake_ollama/openai.rs`), `POST /v1/responses`
//! (`fake_ollama/responses.rs`) and the Anthropic-compatible `POST /v1/messages`
//! (`fake_ollama/anthropic.rs`); anything else is `404 page not found`, as Ollama answers.
//!
//! Chat and generate follow Ollama: `stream` defaults to true (NDJSON,
//! `application/x-ndjson`, the reply cut into [`chunks`](FakeOllamaBuilder::chunks)
//! then a final chunk with `done: true`, `done_reason: "stop"` and the metrics);
//! `stream: false` gives one JSON object; an unknown model (a name without a tag means
//! `:latest`) is `404 {"error":"model \"X\" not found, try pulling it first"}`; a
//! request without messages (chat) or prompt (generate) only loads the model
//! (`done_reason: "load"`, or `"unload"` with `keep_alive: 0`); `think: true` adds
//! thinking chunks before the content. A generated-for model becomes the one resident
//! model (a GPU that holds one). Embeddings do not change residency.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use wiremock::{Mock, MockServer};

mod anthropic;
mod manage;
pub(crate) mod models;
mod openai;
mod respond;
mod responses;
mod state;

use respond::Router;
use state::{Failure, Shared, State};

/// The models a default fake has installed.
pub const DEFAULT_MODELS: [&str; 3] =
    ["llama3.2:latest", "qwen2.5:0.5b", "nomic-embed-text:latest"];

/// The reply a default fake generates.
pub const DEFAULT_REPLY: &str = "Hello from the fake";

/// The thinking a default fake emits when asked to think.
pub const DEFAULT_THINKING: &str = "Let me think about that.";

/// A fake Ollama on `127.0.0.1`, port chosen by the OS. Cheap to clone; clones share the
/// server and state. The server shuts down when the last clone is dropped.
#[derive(Clone)]
pub struct FakeOllama {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::sync::Mutex<Option<MockServer>>,
}

impl fmt::Debug for FakeOllama {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOllama")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Sets up a [`FakeOllama`]; see [`FakeOllama::builder`].
#[derive(Debug)]
pub struct FakeOllamaBuilder {
    models: Option<Vec<String>>,
    resident: Option<String>,
    reply: String,
    thinking: String,
    chunks: usize,
    delay: Duration,
    token: Option<String>,
}

impl FakeOllamaBuilder {
    /// Installs a model (a name without a tag means `:latest`). The first call replaces
    /// the [`DEFAULT_MODELS`]; later calls add to it.
    pub fn model(mut self, name: &str) -> Self {
        self.models
            .get_or_insert_with(Vec::new)
            .push(name.to_owned());
        self
    }

    /// Installs no model at all.
    pub fn no_models(mut self) -> Self {
        self.models = Some(Vec::new());
        self
    }

    /// Makes this model resident at start (and installs it if needed).
    pub fn resident(mut self, name: &str) -> Self {
        self.resident = Some(name.to_owned());
        self
    }

    /// The text every generation answers (default [`DEFAULT_REPLY`]).
    pub fn reply(mut self, reply: &str) -> Self {
        self.reply = reply.to_owned();
        self
    }

    /// The thinking text sent when a request has `think: true` (default [`DEFAULT_THINKING`]).
    pub fn thinking(mut self, thinking: &str) -> Self {
        self.thinking = thinking.to_owned();
        self
    }

    /// Into how many content chunks a streamed reply is cut (default 4; fewer when the
    /// reply has fewer characters). The final `done` chunk comes on top.
    pub fn chunks(mut self, n: usize) -> Self {
        self.chunks = n.max(1);
        self
    }

    /// How long each generation takes before its response is sent (default none).
    pub fn generation_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every route (401 otherwise).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Starts the fake on a fresh port of `127.0.0.1`.
    pub async fn start(self) -> FakeOllama {
        let mut state = State {
            reply: self.reply,
            thinking: self.thinking,
            chunks: self.chunks,
            delay: self.delay,
            token: self.token,
            ..State::default()
        };
        let names = self
            .models
            .unwrap_or_else(|| DEFAULT_MODELS.iter().map(|m| (*m).to_owned()).collect());
        for name in names.iter().chain(&self.resident) {
            state.add_model(name);
        }
        state.resident = self.resident.map(|name| models::canonical(&name));
        let shared = Arc::new(Shared::new(state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let server = serve(listener, &shared).await;
        FakeOllama {
            inner: Arc::new(Inner {
                shared,
                addr,
                server: tokio::sync::Mutex::new(Some(server)),
            }),
        }
    }
}

async fn serve(listener: std::net::TcpListener, shared: &Arc<Shared>) -> MockServer {
    let server = MockServer::builder().listener(listener).start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Router {
            shared: Arc::clone(shared),
        })
        .mount(&server)
        .await;
    server
}

impl FakeOllama {
    /// A fake with the [`DEFAULT_MODELS`] installed and none resident.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let ollama = foreman_testkit::FakeOllama::start().await;
    /// let tags = reqwest::get(format!("{}/api/tags", ollama.url())).await.unwrap();
    /// assert!(tags.status().is_success());
    /// # }
    /// ```
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Sets up a fake with other models, reply, chunking or delay.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use std::time::Duration;
    /// let ollama = foreman_testkit::FakeOllama::builder()
    ///     .model("llama3.2")
    ///     .resident("llama3.2")
    ///     .reply("Hello from the fake")
    ///     .chunks(3)
    ///     .generation_delay(Duration::from_millis(50))
    ///     .start()
    ///     .await;
    /// # }
    /// ```
    pub fn builder() -> FakeOllamaBuilder {
        FakeOllamaBuilder {
            models: None,
            resident: None,
            reply: DEFAULT_REPLY.to_owned(),
            thinking: DEFAULT_THINKING.to_owned(),
            chunks: 4,
            delay: Duration::ZERO,
            token: None,
        }
    }

    /// `http://127.0.0.1:PORT`, the same across [`stop`](Self::stop) and
    /// [`restart`](Self::restart).
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.inner.addr
    }

    // --- behaviour -------------------------------------------------------------------

    /// The text generations answer with now.
    pub fn reply(&self) -> String {
        self.inner.shared.lock().reply.clone()
    }

    /// Changes the reply of later generations.
    pub fn set_reply(&self, reply: &str) {
        self.inner.shared.lock().reply = reply.to_owned();
    }

    /// Changes how many content chunks later streamed replies have.
    pub fn set_chunks(&self, n: usize) {
        self.inner.shared.lock().chunks = n.max(1);
    }

    /// Changes how long later generations take (wiremock's `set_delay` on the response).
    pub fn set_generation_delay(&self, delay: Duration) {
        self.inner.shared.lock().delay = delay;
    }

    /// Makes every later chat/generate answer `status` with `body`, until
    /// [`clear_failures`](Self::clear_failures).
    pub fn fail_generations(&self, status: u16, body: Value) {
        self.inner.shared.lock().failure = Some(Failure {
            status,
            body,
            remaining: None,
        });
    }

    /// Makes the next `n` chat/generate requests answer `status` with `body`.
    pub fn fail_next_generations(&self, n: usize, status: u16, body: Value) {
        self.inner.shared.lock().failure = (n > 0).then_some(Failure {
            status,
            body,
            remaining: Some(n),
        });
    }

    /// Stops injecting failures.
    pub fn clear_failures(&self) {
        self.inner.shared.lock().failure = None;
    }

    /// Installs a model (shown by `/api/tags` from now on).
    pub fn add_model(&self, name: &str) {
        self.inner.shared.lock().add_model(name);
    }

    /// The installed models' full names, in the order `/api/tags` lists them.
    pub fn models(&self) -> Vec<String> {
        let mut state = self.inner.shared.lock();
        state.settle_arrivals();
        state.models.iter().map(|m| m.name.clone()).collect()
    }

    /// Makes later pulls and creates take `delay`: the response comes after it, and the
    /// model appears in `/api/tags` only then, as when Ollama downloads it.
    pub fn set_pull_delay(&self, delay: Duration) {
        self.inner.shared.lock().pull_delay = delay;
    }

    /// Makes pulls of `name` fail as a name the registry lacks does: a `pulling
    /// manifest` line, then `{"error": "pull model manifest: file does not exist"}`.
    pub fn make_unpullable(&self, name: &str) {
        self.inner
            .shared
            .lock()
            .unpullable
            .insert(models::canonical(name));
    }

    /// The digests of the blobs uploaded so far (`sha256:...`), sorted.
    pub fn blobs(&self) -> Vec<String> {
        let mut blobs: Vec<String> = self.inner.shared.lock().blobs.iter().cloned().collect();
        blobs.sort();
        blobs
    }

    /// Uninstalls a model (unloading it if resident).
    pub fn remove_model(&self, name: &str) {
        let name = models::canonical(name);
        let mut state = self.inner.shared.lock();
        state.models.retain(|m| m.name != name);
        if state.resident.as_deref() == Some(name.as_str()) {
            state.resident = None;
        }
    }

    /// Makes this model the resident one (installing it if needed), or unloads all.
    pub fn set_resident(&self, name: Option<&str>) {
        let mut state = self.inner.shared.lock();
        if let Some(name) = name {
            state.add_model(name);
        }
        state.resident = name.map(models::canonical);
    }

    /// The resident model's full name, if any.
    pub fn resident(&self) -> Option<String> {
        self.inner.shared.lock().resident.clone()
    }

    /// Requires (or, with `None`, stops requiring) `Authorization: Bearer <token>`.
    pub fn require_token(&self, token: Option<&str>) {
        self.inner.shared.lock().token = token.map(str::to_owned);
    }

    /// Shuts the server down and waits until connections to it are refused, as when the
    /// target goes away. Requests in flight are cut. The state is kept. No-op if stopped.
    pub async fn stop(&self) {
        let mut server = self.inner.server.lock().await;
        let Some(running) = server.take() else {
            return;
        };
        drop(running);
        let addr = self.inner.addr;
        let refused = crate::wait::wait_until(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await;
        assert!(
            refused,
            "the fake Ollama at {addr} still accepts connections after stop"
        );
    }

    /// Listens again on the same address with the same state; stops first if running.
    pub async fn restart(&self) {
        self.stop().await;
        let mut server = self.inner.server.lock().await;
        if server.is_some() {
            return;
        }
        let addr = self.inner.addr;
        let mut listener = None;
        let bound = crate::wait::wait_until(Duration::from_secs(10), || {
            let result = std::net::TcpListener::bind(addr);
            let ok = result.is_ok();
            listener = result.ok();
            async move { ok }
        })
        .await;
        assert!(bound, "cannot listen on {addr} again");
        let listener = listener.expect("bound above");
        *server = Some(serve(listener, &self.inner.shared).await);
    }

    /// Whether it is listening (not [`stop`](Self::stop)ped).
    pub async fn is_running(&self) -> bool {
        self.inner.server.lock().await.is_some()
    }

    // --- observation -----------------------------------------------------------------

    /// Every request received, in arrival order, across restarts.
    pub fn received_requests(&self) -> Vec<wiremock::Request> {
        self.inner.shared.lock().requests.clone()
    }

    /// The JSON bodies of every generation request (`/api/chat`, `/api/generate`,
    /// `/v1/chat/completions`, `/v1/completions`, `/v1/responses`, `/v1/messages`), in
    /// arrival order
    /// (including those answered with an error).
    pub fn generation_requests(&self) -> Vec<Value> {
        self.inner.shared.lock().generations.clone()
    }

    /// The string at `pointer` (e.g. `"/model"`, `"/messages/0/content"`) in each
    /// generation request's body, in arrival order; panics where a body has none.
    pub fn generation_strings(&self, pointer: &str) -> Vec<String> {
        self.generation_requests()
            .iter()
            .map(|body| match body.pointer(pointer).and_then(Value::as_str) {
                Some(text) => text.to_owned(),
                None => panic!("no string at {pointer} in {body}"),
            })
            .collect()
    }

    /// How many requests went to `path` (e.g. `"/api/ps"`), any method.
    pub fn requests_to(&self, path: &str) -> usize {
        let state = self.inner.shared.lock();
        state
            .requests
            .iter()
            .filter(|r| r.url.path() == path)
            .count()
    }

    /// The largest number of generations that were in flight at once.
    ///
    /// wiremock responders are synchronous, so the fake cannot see when a response has
    /// been sent; it takes each generation (and each injected failure) to last
    /// `[arrival, arrival + generation delay)`. With a delay set, a caller that waits for
    /// each answer before the next request never overlaps (1), and one that sends in
    /// parallel does (more than 1). Without a delay intervals are empty and this says 1
    /// once any generation arrived. Unknown-model 404s and load-only requests are not
    /// counted. 0 when none arrived.
    pub fn max_concurrent_generations(&self) -> usize {
        self.inner.shared.lock().max_overlap()
    }

    /// Waits until at least `n` generation requests have arrived and returns their
    /// bodies; panics after `deadline` with what did arrive.
    pub async fn wait_for_generations(&self, n: usize, deadline: Duration) -> Vec<Value> {
        let shared = &self.inner.shared;
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let seen = shared.generation_seen.notified();
            tokio::pin!(seen);
            seen.as_mut().enable();
            let bodies = self.generation_requests();
            if bodies.len() >= n {
                return bodies;
            }
            if tokio::time::timeout_at(until, seen).await.is_err() {
                let bodies = self.generation_requests();
                assert!(
                    bodies.len() >= n,
                    "waited {deadline:?} for {n} generation requests, got {}: {bodies:?}",
                    bodies.len()
                );
                return bodies;
            }
        }
    }

    /// Forgets the recorded requests (not the behaviour), e.g. after a warm-up phase.
    pub fn clear_observations(&self) {
        let mut state = self.inner.shared.lock();
        state.requests.clear();
        state.generations.clear();
        state.intervals.clear();
    }
}
