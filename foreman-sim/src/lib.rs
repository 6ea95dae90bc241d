//! A simulated Ollama with realistic timing, so foreman can be tried end to end without a GPU
//! (`foreman serve --sim`, `foreman sim`), benchmarks can measure scheduling, and tests can
//! drive a stream token by token.
//!
//! The simulator speaks Ollama's wire format and behaves like one Ollama on one GPU:
//! generations (`/api/chat`, `/api/generate`, their OpenAI-compatible twins
//! `/v1/chat/completions` and `/v1/completions`, the Anthropic-compatible `/v1/messages` and
//! OpenAI's Responses `/v1/responses`) run one at a time, a model that is not resident costs
//! [`SimConfig::load_time`] and evicts the other generation model (embedding models stay
//! beside it), and answers stream token by token at [`SimConfig::tokens_per_second`], as
//! NDJSON or, on the `/v1` routes, as server-sent events (named events on `/v1/messages` and
//! `/v1/responses`). A client that disconnects stops its generation and frees the GPU, as
//! Ollama does.
//!
//! Models come and go as in Ollama: `/api/pull` downloads one of the pretend registry's
//! models ([`SimConfig::registry`]) layer by layer at
//! [`SimConfig::registry_bytes_per_second`], with Ollama's progress lines, and lists it once
//! done; `/api/push`, `/api/create`, `/api/copy`, `DELETE /api/delete`,
//! `HEAD|POST /api/blobs/{digest}` and `/api/status` answer as Ollama's do.
//!
//! Three starting points: [`SimConfig::default`] (realistic timing), [`SimConfig::instant`]
//! (every delay zero, for benchmarks of what sits in front), and [`SimConfig::manual`] (the
//! test releases each token of each [`Generation`] and each progress line of each [`Pull`],
//! cuts a stream, sees a client hang up).
//!
//! # Quick start
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use foreman_sim::SimConfig;
//!
//! let sim = foreman_sim::spawn(SimConfig::default()).await?;
//! println!("a simulated Ollama listens on {}", sim.url());
//! // ... point foreman (or any Ollama client) at sim.url() ...
//! println!("{} model loads so far", sim.stats().loads);
//! sim.stop().await
//! # }
//! ```
//!
//! To serve on a listener of your own until a token is cancelled, as `foreman sim` does,
//! use [`serve`].
//!
//! # Layout
//! - `config`: [`SimConfig`] and [`Release`], the settings.
//! - `state`: the GPU mutex, the installed and resident models, the registry, the blobs and
//!   the counters.
//! - `catalog`: a model's details and layers, and how `/api/tags`, `/api/ps` and `/api/show`
//!   describe it.
//! - `generation`: one generation on the GPU: wait, load, then tokens from the clock or
//!   from the test, as events both route families format.
//! - `manual`: [`Generation`], the test's handle on a generation released by hand;
//!   `manual_pull`: [`Pull`], the same for a pull.
//! - `generate`: `/api/chat` and `/api/generate`, as NDJSON or one JSON object.
//! - `embed`: `/api/embed` and `/api/embeddings`, concurrent and deterministic.
//! - `openai`: the OpenAI-compatible `/v1` routes: chat completions and completions on
//!   the same GPU (server-sent events when streamed), embeddings, the model list.
//! - `anthropic`: `/v1/messages`, Anthropic's shapes and named events, on the same GPU.
//! - `responses`: `/v1/responses`, OpenAI's Responses API and its named events, on the
//!   same GPU.
//! - `progress`: the progress lines of pull, push and create, streamed or the last alone.
//! - `pull`: `/api/pull` (timed, or released by hand) and `/api/push`.
//! - `create`: `/api/create`, from a model or from uploaded blobs.
//! - `manage`: `/api/copy`, `/api/delete`, `/api/blobs/{digest}` and `/api/status`.

mod anthropic;
mod catalog;
mod config;
mod create;
mod embed;
mod generate;
mod generation;
mod manage;
mod manual;
mod manual_pull;
mod openai;
mod progress;
mod pull;
mod responses;
mod state;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, head, post};
use axum::{Json, Router};
use bytes::Bytes;
use foreman_types::ErrorBody;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::catalog::Model;
pub use self::config::{Release, SimConfig};
pub use self::manual::Generation;
pub use self::manual_pull::{Pull, PullLayer};
use self::state::Sim;

/// Counters for benchmarks and tests, also served as JSON at `GET /sim/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Models loaded so far (generation and embedding models).
    pub loads: u64,
    /// Generations started so far (each counted when it gets the GPU).
    pub generations: u64,
    /// The most generation requests in flight at once, waiting for the GPU or generating: how
    /// many the client (foreman) sent concurrently.
    pub max_concurrent: u64,
    /// Generation requests in flight now.
    pub in_flight: u64,
    /// Answer tokens produced so far, over all generations.
    pub tokens: u64,
    /// Generations whose client hung up before their end.
    pub hung_up: u64,
}

/// A simulator started by [`spawn`]: its address, its counters, the generations released
/// by hand. Dropping it stops the simulator.
#[derive(Debug)]
pub struct SimHandle {
    url: String,
    sim: Arc<Sim>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.sim.stats()
    }

    /// With [`Release::Manual`]: the next generation to get the GPU and not yet taken,
    /// waiting up to `deadline` for one. When it returns, the generation's stream is open
    /// and waits for the handle's tokens. `None` by the deadline, or with [`Release::Timed`].
    pub async fn next_generation(&self, deadline: Duration) -> Option<Generation> {
        if self.sim.config.release != Release::Manual {
            return None;
        }
        self.sim.started.next(deadline).await
    }

    /// With [`Release::Manual`]: the next pull of a model the registry has, not yet taken,
    /// waiting up to `deadline` for one. When it returns, the pull's stream has sent
    /// `pulling manifest` and waits for the handle's lines. `None` by the deadline, or with
    /// [`Release::Timed`].
    pub async fn next_pull(&self, deadline: Duration) -> Option<Pull> {
        if self.sim.config.release != Release::Manual {
            return None;
        }
        self.sim.pulls.next(deadline).await
    }

    /// Stops the simulator, ending the generations in flight, and waits until it has.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.sim.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.sim.shutdown.cancel();
    }
}

/// Serves the simulator on `listener` until `shutdown` is cancelled.
///
/// Cancelling also ends the generations in flight, so shutting down does not wait for them.
/// There is no handle to take generations from: with [`Release::Manual`] each one is held
/// until shutdown. Tests use [`spawn`].
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_sim(listener, Arc::new(Sim::new(config, shutdown))).await
}

/// Binds `127.0.0.1:0` and serves the simulator there until the handle is dropped or
/// [stopped](SimHandle::stop).
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let sim = Arc::new(Sim::new(config, CancellationToken::new()));
    let task = tokio::spawn(serve_sim(listener, Arc::clone(&sim)));
    tracing::debug!(%url, "simulated Ollama started");
    Ok(SimHandle {
        url,
        sim,
        task: Some(task),
    })
}

async fn serve_sim(listener: TcpListener, sim: Arc<Sim>) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let shutdown = sim.shutdown.clone();
    // Token writes go out back to back; without TCP_NODELAY they wait on delayed ACKs
    // (Ollama, in Go, sets it by default).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(|| async { "Ollama is running" }))
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/show", post(show))
        .route("/api/chat", post(generate::chat))
        .route("/api/generate", post(generate::generate))
        .route("/api/embed", post(embed::embed))
        .route("/api/embeddings", post(embed::embeddings))
        .route("/api/pull", post(pull::pull))
        .route("/api/push", post(pull::push))
        .route("/api/create", post(create::create))
        .route("/api/copy", post(manage::copy))
        .route("/api/delete", delete(manage::delete))
        .route(
            "/api/blobs/{digest}",
            head(manage::has_blob).post(manage::upload_blob),
        )
        .route("/api/status", get(manage::status))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{*id}", get(openai::model))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/responses", post(responses::responses))
        .route("/sim/stats", get(stats))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .with_state(sim)
}

async fn version() -> Json<Value> {
    Json(json!({ "version": "0.0.0-sim" }))
}

async fn tags(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let models: Vec<Value> = sim.installed().iter().map(Model::tag_entry).collect();
    Json(json!({ "models": models }))
}

async fn ps(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({ "models": sim.resident_entries() }))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<SimStats> {
    Json(sim.stats())
}

async fn show(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Rejection> {
    let request = request_body(body)?;
    // Old clients send `name` instead of `model`.
    let name = ["model", "name"]
        .iter()
        .find_map(|field| request.get(*field).and_then(Value::as_str))
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| Rejection::bad_request("model is required"))?;
    let model = sim
        .find(name)
        .ok_or_else(|| Rejection::model_not_found(name))?;
    Ok(Json(model.show_body()))
}

/// The JSON object a request carries.
fn request_body(body: Result<Bytes, BytesRejection>) -> Result<Value, Rejection> {
    let body =
        body.map_err(|rejection| Rejection::new(rejection.status(), rejection.body_text()))?;
    if body.is_empty() {
        return Err(Rejection::bad_request("missing request body"));
    }
    let value: Value =
        serde_json::from_slice(&body).map_err(|err| Rejection::bad_request(err.to_string()))?;
    if !value.is_object() {
        return Err(Rejection::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// A request to a model as it arrives: when it arrived (for `total_duration`), its JSON
/// body, and the model it names (required).
fn model_request(
    body: Result<Bytes, BytesRejection>,
) -> Result<(tokio::time::Instant, Value, String), Rejection> {
    let started = tokio::time::Instant::now();
    let request = request_body(body)?;
    let name = required_model(&request)?;
    Ok((started, request, name))
}

/// The requested model's name, required as Ollama requires it.
fn required_model(request: &Value) -> Result<String, Rejection> {
    request
        .get("model")
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Rejection::bad_request("model is required"))
}

/// A streamed answer: `body`'s chunks as they come, as `content_type`.
fn streamed(
    body: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    content_type: &'static str,
) -> Response {
    let mut response = Response::new(axum::body::Body::from_stream(body));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    response
}

/// Appends one named server-sent event: `event: NAME`, its `data`, a blank line.
fn named_event(out: &mut String, name: &str, data: &Value) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

/// An error answer in Ollama's shape, `{"error": "..."}`.
#[derive(Debug)]
struct Rejection {
    status: StatusCode,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn model_not_found(name: &str) -> Self {
        let message = format!("model \"{name}\" not found, try pulling it first");
        Self::new(StatusCode::NOT_FOUND, message)
    }

    fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::new(self.message))).into_response()
    }
}

/// How an API beside Ollama's own (OpenAI's, Anthropic's) words an error body.
trait ErrorShape {
    fn body(status: StatusCode, message: &str) -> Value;
}

/// A [`Rejection`] answered in the error shape `S`, with the same status.
#[derive(Debug)]
struct Shaped<S>(Rejection, PhantomData<S>);

impl<S> From<Rejection> for Shaped<S> {
    fn from(rejection: Rejection) -> Self {
        Self(rejection, PhantomData)
    }
}

impl<S: ErrorShape> IntoResponse for Shaped<S> {
    fn into_response(self) -> Response {
        let Rejection { status, message } = self.0;
        (status, Json(S::body(status, &message))).into_response()
    }
}
