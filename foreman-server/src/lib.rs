//! foreman's server as a library: a durable queue and Ollama-compatible proxy in front of
//! one Ollama server, or several.
//!
//! Every Ollama client keeps working when pointed at foreman: `/api/chat` and
//! `/api/generate` wait their turn in a queue that survives restarts and run one at a time
//! on the target (or N at a time on each of several targets), jobs going to the target
//! that has their model loaded; `/api/embed` and the metadata routes pass straight through. Ollama's OpenAI- and Anthropic-compatible `/v1` routes are
//! queued like their native twins; model management (pull, create, copy, delete, blobs)
//! passes through for admins and keeps the model list current. `POST /jobs` adds async jobs
//! with stored results, artifacts and signed webhooks.
//!
//! ```no_run
//! use foreman_server::{run, Config};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_env()?;
//! let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
//! let shutdown = CancellationToken::new();
//! run(config, listener, shutdown).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: the `FOREMAN_*` settings, checked before anything starts.
//! - `http`: serves the router with header and body timeouts and graceful shutdown.
//! - `routes`: the HTTP surface, one file per route group; auth (the `Caller` of a request,
//!   and the extractors that carry the rules: `Admin`, `OwnJob`, `Submitter` for a key's
//!   `rpm`), `/admin/keys`, `/usage`, and JSON errors in each API's shape. `request_log`
//!   writes one line per request once it is answered.
//! - `keys`: API key secrets, their SHA-256 digests, and the in-memory set authentication
//!   reads; `rate`: each tenant's requests in the last minute.
//! - `scheduler`: which queued job runs next and where, one pure function over a snapshot:
//!   routing across targets, strict priority, fair share between tenants, drain by model
//!   per target bounded by the affinity window. Unit- and property-tested by feeding it
//!   job sets.
//! - `store`: the queue behind one narrow interface of queue operations (`Queue`), on
//!   SQLite (one writer thread with group commit, a pool of readers) or on PostgreSQL
//!   shared by several replicas (target slots leased in the database, ADR 23). It
//!   supplies the scheduler's snapshot (the head of each group of queued jobs, the
//!   tenants' service) and commits its choice compare-and-set.
//! - `worker`: claims the next job and the target it runs on (the scheduler's choice),
//!   while any target has a free slot, and runs each in that target's lane: sync jobs
//!   stream to their waiting caller through `live`, async jobs are stored with their
//!   artifacts; what the target reports (tokens, GPU time) is read on the way for usage.
//! - `targets`: the pool of Ollama hosts, one value per host: its HTTP client, its
//!   inventory (the poller's cache of `/api/tags` and `/api/ps`, whether it answers, the
//!   models being pulled onto it), its lane (N generations at once); and the union views.
//! - `ui`: the status page at `/ui` (assets embedded, routes in `routes/ui.rs`), its
//!   browser sessions, the hour of queue samples its plots draw (saved in the store across
//!   restarts) and the change signal that makes its stream push at once; `progress`: how
//!   far each running job has streamed, for its tokens per second.
//! - `webhooks`: the outbox dispatcher; `webhook_url` decides which URLs may be called.
//! - `pruner`: deletes finished jobs past their TTL.
//! - `metrics`: the counters and histograms behind `GET /metrics`; `estimate`: the recent
//!   mean run time behind `estimated_wait_ms`; `lock`: the in-memory locks, which
//!   outlive a panic.
//!
//! A request flows: route → `worker::enqueue` (committed; when a target is free, the same
//! transaction claims the scheduler's next job, else the `worker`'s dispatcher claims it
//! later, ADR 26; a sync job alone in the queue starts first and is committed meanwhile,
//! ADR 30) → that target's client → chunks back through `live` to the caller (sync) or
//! into the store and the webhook outbox (async) → `webhooks` delivers.

pub mod config;
mod error;
mod estimate;
mod http;
mod keys;
mod live;
mod lock;
mod metrics;
mod progress;
mod pruner;
mod rate;
mod replica;
mod request_log;
mod routes;
mod scheduler;
mod state;
mod store;
mod targets;
mod ui;
mod webhook_url;
mod webhooks;
mod worker;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, LogFormat, Secret};
pub use store::StoreError;

/// Brings the SQLite database on `conn` to foreman's schema, as `foreman serve` does at
/// start-up. For the benchmark that fills a database directly, so it never keeps a copy
/// of the migration list.
#[doc(hidden)]
pub fn migrate_sqlite(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    store::sqlite::migrate(conn)
}

use state::App;
use store::{Store, StoreOptions};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings do not fit together (a per-target value for no target, say).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The database could not be opened, migrated or recovered.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Serving HTTP failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// An HTTP client (to the target, or for webhooks) could not be built. foreman does
    /// not start without one rather than run with a default client that lacks its
    /// timeouts, its refusal of redirects and its guard against private addresses.
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Runs foreman on `listener` until `shutdown` is cancelled, then stops taking requests,
/// puts a running async job back in the queue, and returns once every task has ended.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if let Ok(addr) = listener.local_addr() {
        config.listen_addr = addr;
    }
    let targets = config.targets()?;
    let webhook_http = webhooks::client(&config)?;
    let store = Store::open(
        config.db_url.as_ref().map(Secret::expose),
        &config.db_path,
        StoreOptions {
            public_url: config.public_url(),
            max_queue: config.max_queue,
            lease: config.lease,
            webhook_timeout: config.webhook_timeout,
        },
    )
    .await?;
    let recovered = store.recover(config.max_attempts).await?;
    if recovered != store::Recovered::default() {
        tracing::info!(
            requeued = recovered.requeued,
            failed = recovered.failed,
            cancelled = recovered.cancelled,
            "recovered jobs interrupted by the last shutdown"
        );
    }
    let keys = store.keys().await?;
    let app = App::new(config, &targets, store, keys)?;
    ui::history::load(&app).await;
    let tasks_stop = app.stopping.clone();
    // Know the targets' models before the first request, but never wait long for them.
    let _ = tokio::time::timeout(Duration::from_secs(2), app.targets.refresh_all()).await;

    let mut tasks = tokio::task::JoinSet::new();
    for target in app.targets.all() {
        tasks.spawn(
            target
                .inventory
                .clone()
                .poll_loop(app.config.poll_interval, tasks_stop.clone()),
        );
        tasks.spawn(ui::changes::watch_health(
            app.clone(),
            target.clone(),
            tasks_stop.clone(),
        ));
    }
    tasks.spawn(worker::run(app.clone(), tasks_stop.clone()));
    tasks.spawn(webhooks::run(app.clone(), webhook_http, tasks_stop.clone()));
    tasks.spawn(pruner::run(app.clone(), tasks_stop.clone()));
    tasks.spawn(ui::history::run(app.clone(), tasks_stop.clone()));
    if app.store.is_shared() {
        let (cancelled, cancels) = tokio::sync::mpsc::unbounded_channel();
        let wakers = store::Wakers {
            work: app.work.clone(),
            keys: std::sync::Arc::new(tokio::sync::Notify::new()),
            cancelled,
        };
        app.store.watch(wakers.clone(), tasks_stop.clone());
        tasks.spawn(replica::stop_cancelled(
            app.clone(),
            cancels,
            tasks_stop.clone(),
        ));
        tasks.spawn(replica::keep_alive(app.clone(), tasks_stop.clone()));
        tasks.spawn(replica::follow_keys(
            app.clone(),
            wakers.keys,
            tasks_stop.clone(),
        ));
    }
    if let Some(model) = app.config.embed_model.clone() {
        let model = foreman_types::model_key(&model);
        for target in app.targets.for_model(&model) {
            tasks.spawn(warm_embed_model(target, model.clone(), tasks_stop.clone()));
        }
    }
    app.wake();

    tracing::info!(
        addr = %app.config.listen_addr,
        targets = %app.config.target_url,
        "foreman is listening"
    );
    let router = routes::router(app.clone());
    // Stop the worker first: a streaming caller then gets its final line, and graceful
    // shutdown of the HTTP server does not wait on a generation.
    let stop_tasks = tasks_stop.clone();
    let timeouts = http::Timeouts {
        header: app.config.header_timeout,
        body: app.config.body_timeout,
    };
    let served = http::serve(listener, router, timeouts, async move {
        shutdown.cancelled().await;
        stop_tasks.cancel();
    })
    .await;
    tasks_stop.cancel();
    while tasks.join_next().await.is_some() {}
    served?;
    Ok(())
}

/// Loads the embedding model on `target` with `keep_alive: -1` so it stays resident
/// beside the chat models; retries until the target answers.
async fn warm_embed_model(
    target: std::sync::Arc<targets::Target>,
    model: String,
    shutdown: CancellationToken,
) {
    let body = serde_json::json!({ "model": model, "input": "", "keep_alive": -1 });
    let body = bytes::Bytes::from(body.to_string());
    let mut backoff = foreman_types::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let answer = target
            .client
            .forward(
                reqwest::Method::POST,
                "/api/embed",
                Some(body.clone()),
                Duration::from_secs(300),
            )
            .await;
        match answer {
            Ok(answer) if answer.status.is_success() => {
                tracing::info!(model = %model, target_name = %target.name, "embedding model loaded and pinned");
                return;
            }
            Ok(answer) => {
                tracing::warn!(model = %model, target_name = %target.name, status = %answer.status, "cannot warm the embedding model");
                return;
            }
            Err(err) => tracing::debug!(model = %model, error = %err, "target not ready to warm"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_client_that_cannot_be_built_is_a_start_up_error() {
        // Contradictory TLS bounds: one way to make reqwest's builder fail.
        let failed = reqwest::Client::builder()
            .min_tls_version(reqwest::tls::Version::TLS_1_3)
            .max_tls_version(reqwest::tls::Version::TLS_1_2)
            .build()
            .unwrap_err();
        let err = Error::from(failed);
        assert!(matches!(err, Error::HttpClient(_)));
        assert!(
            err.to_string().starts_with("cannot build an HTTP client"),
            "{err}"
        );
    }

    #[test]
    fn the_target_and_webhook_clients_build_from_the_default_settings() {
        let config = Config::default();
        assert!(webhooks::client(&config).is_ok());
        let targets = config.targets().unwrap();
        let pool = targets::Pool::new(
            &targets,
            config.retry_backoff,
            &std::sync::Arc::new(tokio::sync::Notify::new()),
        );
        assert!(pool.is_ok());
    }
}
