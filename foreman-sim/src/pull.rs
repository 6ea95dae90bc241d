//! `POST /api/pull` and `POST /api/push`: models move between the pretend registry and the
//! installed models, layer by layer at [`SimConfig::registry_bytes_per_second`], with
//! Ollama's progress lines. A pulled model is listed once its pull says `success`, not
//! before; a client that hangs up abandons the pull, as Ollama does.
//!
//! [`SimConfig::registry_bytes_per_second`]: crate::SimConfig::registry_bytes_per_second

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures::Stream;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::catalog::Model;
use super::manual::Steps;
use super::manual_pull::{Pull, PullStep};
use super::progress::{self, Line, NOT_IN_REGISTRY};
use super::state::Sim;
use super::{request_body, Rejection, Release};

/// How long fetching a manifest from the registry takes, unless transfers take no time.
const MANIFEST_FETCH: Duration = Duration::from_millis(100);

/// `POST /api/pull`.
pub(super) async fn pull(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let (request, name, stream) = progress::request(body)?;
    let manual = sim.config.release == Release::Manual;
    let lines = async_stream::stream! {
        yield Ok(progress::status("pulling manifest"));
        if !fetch_manifest(&sim).await {
            return;
        }
        let Some(model) = sim.in_registry(&name) else {
            yield Ok(progress::error(NOT_IN_REGISTRY));
            return;
        };
        if manual {
            for await line in by_hand(Arc::clone(&sim), model, request) {
                yield line;
            }
        } else {
            for await line in download(Arc::clone(&sim), model) {
                yield Ok(line);
            }
        }
    };
    Ok(progress::answer(lines, stream).await)
}

/// The time a manifest takes to arrive; false if the server shut down meanwhile.
async fn fetch_manifest(sim: &Sim) -> bool {
    if sim.config.transfers_instantly() {
        return !sim.shutdown.is_cancelled();
    }
    sim.sleep(MANIFEST_FETCH).await
}

/// A timed pull of `model` once its manifest is in: its layers (those already on disk done
/// at once), the checks, and the model installed before `success`.
pub(super) fn download(sim: Arc<Sim>, model: Model) -> impl Stream<Item = Value> + Send {
    async_stream::stream! {
        for layer in model.layers.clone() {
            let cached = sim.blob(&layer.digest).is_some();
            for await line in progress::transfer(Arc::clone(&sim), "pulling", layer, cached) {
                yield line;
            }
        }
        if sim.shutdown.is_cancelled() {
            return;
        }
        yield progress::status("verifying sha256 digest");
        yield progress::status("writing manifest");
        sim.install(model.renamed(&model.key));
        yield progress::status("success");
    }
}

/// A pull released by the test: the handle goes to it, then its steps become the lines.
fn by_hand(sim: Arc<Sim>, model: Model, request: Value) -> impl Stream<Item = Line> + Send {
    let (pull, steps) = Pull::new(request, &model.layers);
    sim.pulls.push(pull);
    let Steps {
        mut receiver,
        hung_up,
    } = steps;
    async_stream::stream! {
        let mut watch = HangUp { token: hung_up, ended: false, shutdown: sim.shutdown.clone() };
        loop {
            let step = tokio::select! {
                step = receiver.recv() => step,
                () = sim.shutdown.cancelled() => return,
            };
            match step {
                Some(PullStep::Progress { layer, completed }) => {
                    yield Ok(progress::layer("pulling", &model.layers[layer], completed));
                }
                Some(PullStep::Finish) => {
                    yield Ok(progress::status("verifying sha256 digest"));
                    yield Ok(progress::status("writing manifest"));
                    sim.install(model.renamed(&model.key));
                    watch.ended = true;
                    yield Ok(progress::status("success"));
                    return;
                }
                Some(PullStep::Fail(message)) => {
                    watch.ended = true;
                    yield Ok(progress::error(&message));
                    return;
                }
                Some(PullStep::Cut) | None => {
                    watch.ended = true;
                    yield Err(progress::broken_off());
                    return;
                }
            }
        }
    }
}

/// Tells a pull's handle that its client hung up, when the stream is dropped before its
/// end while the simulator runs.
struct HangUp {
    token: CancellationToken,
    ended: bool,
    shutdown: CancellationToken,
}

impl Drop for HangUp {
    fn drop(&mut self) {
        if !self.ended && !self.shutdown.is_cancelled() {
            self.token.cancel();
        }
    }
}

/// `POST /api/push`: the layers the registry lacks are uploaded, the others reported done
/// at once; then the registry has the model, so it can be pulled.
pub(super) async fn push(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let request = request_body(body)?;
    let name =
        progress::model_name(&request).map_err(|_| Rejection::bad_request("model is required"))?;
    let stream = progress::streams(&request);
    let lines = async_stream::stream! {
        yield Ok(progress::status("retrieving manifest"));
        let Some(model) = sim.find(&name) else {
            yield Ok(progress::status("couldn't retrieve manifest"));
            let path = format!("/sim/models/manifests/registry.ollama.ai/{}", manifest_path(&name));
            yield Ok(progress::error(&format!("open {path}: no such file or directory")));
            return;
        };
        for layer in model.layers.clone() {
            let cached = sim.registry_has_blob(&layer.digest);
            for await line in progress::transfer(Arc::clone(&sim), "pushing", layer, cached) {
                yield Ok(line);
            }
        }
        if sim.shutdown.is_cancelled() {
            return;
        }
        yield Ok(progress::status("pushing manifest"));
        sim.publish(model);
        yield Ok(progress::status("success"));
    };
    Ok(progress::answer(lines, stream).await)
}

/// `library/llama3.2/latest` for `llama3.2`, as Ollama lays manifests out on disk.
fn manifest_path(name: &str) -> String {
    let key = foreman_types::model_key(name);
    let (path, tag) = key.rsplit_once(':').unwrap_or((key.as_str(), "latest"));
    if path.contains('/') {
        format!("{path}/{tag}")
    } else {
        format!("library/{path}/{tag}")
    }
}
