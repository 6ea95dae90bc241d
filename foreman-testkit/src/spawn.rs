//! Spawning a real foreman in front of the fake Ollama: port 0, a fresh temporary
//! database, its own shutdown token, so any number fit in one test binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use foreman_server::config::TargetUrls;
use foreman_server::Config;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fake_ollama::FakeOllama;

/// A running foreman, the fake Ollama behind it, and a client for it.
#[derive(Debug)]
pub struct TestApp {
    /// Where foreman listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The fake Ollama foreman talks to (with several targets, the first fake).
    pub ollama: FakeOllama,
    /// With several targets ([`TestAppBuilder::target`]): each fake by its target's name.
    pub fakes: Vec<(String, FakeOllama)>,
    /// A typed client for this foreman (with the auth token, when one is set).
    pub client: foreman_client::Client,
    /// The configuration it runs with.
    pub config: Config,
    /// A plain HTTP client, for raw requests.
    pub http: reqwest::Client,
    dir: tempfile::TempDir,
    running: Running,
}

/// The server task; dropping it aborts the task, so a failed test leaves nothing behind.
#[derive(Debug)]
struct Running {
    shutdown: CancellationToken,
    handle: Option<JoinHandle<Result<(), foreman_server::Error>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// A change to the configuration, applied before start-up.
type Configure = Box<dyn FnOnce(&mut Config) + Send>;

/// Sets up a [`TestApp`].
pub struct TestAppBuilder {
    ollama: Option<FakeOllama>,
    generation_delay: Option<Duration>,
    targets: Vec<(String, Target)>,
    configure: Vec<Configure>,
}

/// A target added with [`TestAppBuilder::target`] or [`TestAppBuilder::target_at`].
enum Target {
    Fake(FakeOllama),
    Url(String),
}

impl std::fmt::Debug for TestAppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAppBuilder").finish_non_exhaustive()
    }
}

impl TestAppBuilder {
    /// Uses this fake instead of a default one.
    pub fn ollama(mut self, ollama: FakeOllama) -> Self {
        self.ollama = Some(ollama);
        self
    }

    /// Uses a default fake whose every generation takes `delay` (for tests that need a job
    /// to stay running or queued for a while).
    pub fn generation_delay(mut self, delay: Duration) -> Self {
        self.generation_delay = Some(delay);
        self
    }

    /// Changes the configuration before start-up.
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Points foreman at another target (the simulator, `foreman_sim`) instead of
    /// the fake; the fake is still started and kept, unused.
    pub fn target_url(self, url: &str) -> Self {
        let url: TargetUrls = url.parse().expect("a valid target URL");
        self.configure(move |c| c.target_url = url)
    }

    /// Adds a target called `name` served by `fake`: foreman fronts every target added
    /// this way (or with [`target_at`](Self::target_at)), in order, instead of one fake.
    /// [`TestApp::ollama`] is then the first of them, and [`TestApp::fake`] finds each.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use foreman_testkit::{FakeOllama, TestApp};
    /// let app = TestApp::builder()
    ///     .target("gpu1", FakeOllama::builder().model("llama3.2").start().await)
    ///     .target("gpu2", FakeOllama::builder().model("qwen2.5:0.5b").start().await)
    ///     .spawn()
    ///     .await;
    /// assert_eq!(app.fake("gpu2").models(), ["qwen2.5:0.5b"]);
    /// # }
    /// ```
    pub fn target(mut self, name: &str, fake: FakeOllama) -> Self {
        self.targets.push((name.to_owned(), Target::Fake(fake)));
        self
    }

    /// Adds a target called `name` at `url` (a simulator, say), beside those added with
    /// [`target`](Self::target).
    pub fn target_at(mut self, name: &str, url: &str) -> Self {
        self.targets
            .push((name.to_owned(), Target::Url(url.to_owned())));
        self
    }

    /// Requires this bearer token.
    pub fn auth_token(self, token: &str) -> Self {
        let token = token.to_owned();
        self.configure(move |c| c.auth_token = Some(foreman_server::Secret::new(token)))
    }

    /// Starts the fake (unless given) and foreman, and waits until foreman answers.
    pub async fn spawn(self) -> TestApp {
        let mut fakes = Vec::new();
        let mut urls = Vec::new();
        for (name, target) in self.targets {
            let url = match target {
                Target::Fake(fake) => {
                    let url = fake.url();
                    fakes.push((name.clone(), fake));
                    url
                }
                Target::Url(url) => url,
            };
            urls.push(format!("{name}={url}"));
        }
        let ollama = match (self.ollama, fakes.first(), self.generation_delay) {
            (Some(ollama), _, _) => ollama,
            (None, Some((_, first)), _) => first.clone(),
            (None, None, Some(delay)) => {
                FakeOllama::builder().generation_delay(delay).start().await
            }
            (None, None, None) => FakeOllama::start().await,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let target = ollama.url().parse().expect("the fake's URL parses");
        let mut config = Config::new(target, dir.path().join("foreman.db"));
        if !urls.is_empty() {
            config.target_url = urls.join(",").parse().expect("valid target URLs");
        }
        config.poll_interval = Duration::from_millis(200);
        config.retry_backoff = Duration::from_millis(10);
        config.webhook_retry_wait = Duration::from_millis(20);
        config.webhook_allow_private = true;
        for f in self.configure {
            f(&mut config);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        start(config, listener, ollama, fakes, dir).await
    }
}

async fn start(
    mut config: Config,
    listener: TcpListener,
    ollama: FakeOllama,
    fakes: Vec<(String, FakeOllama)>,
    dir: tempfile::TempDir,
) -> TestApp {
    let addr = listener.local_addr().expect("local addr");
    config.listen_addr = addr;
    let url = format!("http://{addr}");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(foreman_server::run(
        config.clone(),
        listener,
        shutdown.clone(),
    ));
    let mut client = foreman_client::Client::builder().base_url(&url);
    if let Some(token) = &config.auth_token {
        client = client.token(token.expose());
    }
    let client = client.build().expect("client builds");
    let http = reqwest::Client::new();
    let healthz = format!("{url}/healthz");
    let up = crate::wait::wait_until(Duration::from_secs(10), || {
        let http = http.clone();
        let healthz = healthz.clone();
        async move { http.get(&healthz).send().await.is_ok() }
    })
    .await;
    assert!(up, "foreman did not start answering within 10 s");
    TestApp {
        addr,
        url,
        ollama,
        fakes,
        client,
        config,
        http,
        dir,
        running: Running {
            shutdown,
            handle: Some(handle),
        },
    }
}

impl TestApp {
    /// A foreman in front of a default fake Ollama.
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    /// A foreman in front of a fake whose generations each take `delay`: the worker is
    /// busy for that long, so later requests queue up behind the first.
    pub async fn with_generation_delay(delay: Duration) -> Self {
        Self::builder().generation_delay(delay).spawn().await
    }

    /// A foreman in front of a default fake, its configuration changed by `configure`
    /// before start-up.
    pub async fn with_config(configure: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        Self::builder().configure(configure).spawn().await
    }

    /// Sets up a foreman with a custom fake or configuration.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            ollama: None,
            generation_delay: None,
            targets: Vec::new(),
            configure: Vec::new(),
        }
    }

    /// A typed client for this foreman that authenticates with `token`: an API key's
    /// secret (from [`create_key`](foreman_client::Client::create_key)) or another token.
    pub fn client_with(&self, token: &str) -> foreman_client::Client {
        foreman_client::Client::builder()
            .base_url(&self.url)
            .token(token)
            .build()
            .expect("client builds")
    }

    /// `url` joined with `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `POST path` with a JSON body; the response, whatever its status.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        answer(self.http.post(self.at(path)).json(body)).await
    }

    /// `POST path` with a JSON body and `token` as the bearer; the response, whatever its
    /// status.
    pub async fn post_as(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        answer(self.http.post(self.at(path)).bearer_auth(token).json(body)).await
    }

    /// `GET path` with `token` as the bearer; the response, whatever its status.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        answer(self.http.get(self.at(path)).bearer_auth(token)).await
    }

    /// Starts `POST path` in the background, for a caller that waits (in the queue, or on
    /// a stream) while the test goes on.
    pub fn spawn_post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let request = self.http.post(self.at(path)).json(&body);
        tokio::spawn(request.send())
    }

    /// `DELETE path`; the response, whatever its status.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        answer(self.http.delete(self.at(path))).await
    }

    /// `GET path`; the response, whatever its status.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        answer(self.http.get(self.at(path))).await
    }

    /// `GET path`, parsed as JSON (panics if the answer is not JSON).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("a JSON answer")
    }

    /// The jobs `GET /jobs?QUERY` lists, newest first, as JSON.
    pub async fn jobs_json(&self, query: &str) -> Vec<serde_json::Value> {
        let list = self.get_json(&format!("/jobs?{query}")).await;
        list["jobs"].as_array().cloned().unwrap_or_default()
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.config.db_path.clone()
    }

    /// Shuts foreman down gracefully and waits for it; panics if it returned an error.
    pub async fn stop(&mut self) {
        self.running.shutdown.cancel();
        if let Some(handle) = self.running.handle.take() {
            let ended = tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("foreman stops within 30 s")
                .expect("foreman's task did not panic");
            ended.expect("foreman stopped cleanly");
        }
    }

    /// Stops foreman without letting it tidy up, as a crash would leave it: the task is
    /// aborted mid-flight. The database keeps whatever was committed.
    pub async fn crash(&mut self) {
        if let Some(handle) = self.running.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
        self.running.shutdown.cancel();
    }

    /// Starts foreman again on the same database, fake and address.
    pub async fn restart(mut self) -> Self {
        if self.running.handle.is_some() {
            self.stop().await;
        }
        let listener = bind_again(self.addr).await;
        let TestApp {
            config,
            ollama,
            fakes,
            dir,
            ..
        } = self;
        start(config, listener, ollama, fakes, dir).await
    }

    /// The fake serving the target called `name` (added with [`TestAppBuilder::target`]).
    ///
    /// # Panics
    /// When no fake target has that name.
    pub fn fake(&self, name: &str) -> &FakeOllama {
        self.fakes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, fake)| fake)
            .unwrap_or_else(|| panic!("no fake target is named {name:?}"))
    }

    /// The temporary directory holding the database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Binds `addr` again; a just-closed port may take a moment to be free.
async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(err) if tokio::time::Instant::now() > deadline => {
                panic!("cannot bind {addr} again: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Sends `request` to foreman; its response, whatever its status.
async fn answer(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("foreman answers")
}
