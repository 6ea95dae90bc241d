//! `POST /api/create`: a model made from another (`from`, pulled first if only the
//! registry has it) or from uploaded GGUF blobs (`files`), with Ollama's status lines,
//! listed once the stream says `success`.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::catalog::{Layer, Model};
use super::manage::valid_digest;
use super::progress::{self, NOT_IN_REGISTRY};
use super::pull;
use super::state::Sim;
use super::Rejection;

/// The fields of a create request that become layers of their own.
const LAYER_FIELDS: [&str; 5] = ["template", "system", "license", "parameters", "messages"];

/// What the new model is made of.
enum Source {
    Model(String),
    /// File names and blob digests.
    Files(Vec<(String, String)>),
}

/// `POST /api/create`.
pub(super) async fn create(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let (request, name, stream) = progress::request(body)?;
    let from = request
        .get("from")
        .and_then(Value::as_str)
        .filter(|from| !from.trim().is_empty());
    let files = request
        .get("files")
        .and_then(Value::as_object)
        .filter(|files| !files.is_empty());
    let source = match (from, files) {
        (Some(from), _) => Source::Model(from.to_owned()),
        (None, Some(files)) => Source::Files(blob_digests(files)?),
        // Ollama answers this before it writes any progress, so with its status.
        _ => {
            return Err(Rejection::bad_request(
                "neither 'from' or 'files' was specified",
            ))
        }
    };
    let extra = new_layers(&request);
    let lines = async_stream::stream! {
        let made = match source {
            Source::Model(from) => {
                let base = match sim.find(&from) {
                    Some(base) => base,
                    None => {
                        // Not installed: Ollama pulls it, progress and all.
                        yield Ok(progress::status("pulling manifest"));
                        let Some(base) = sim.in_registry(&from) else {
                            yield Ok(progress::error(NOT_IN_REGISTRY));
                            return;
                        };
                        for await line in pull::download(Arc::clone(&sim), base.clone()) {
                            yield Ok(line);
                        }
                        base
                    }
                };
                // The base's config gives way to the new model's own.
                for layer in &base.layers[..base.layers.len().saturating_sub(1)] {
                    yield Ok(progress::status(&format!("using existing layer {}", layer.digest)));
                }
                base.derived(&name, extra.clone())
            }
            Source::Files(files) => {
                yield Ok(progress::status("parsing GGUF"));
                let mut blobs = Vec::new();
                for (_, digest) in files {
                    let Some(size) = sim.blob(&digest) else {
                        let path = digest.replace(':', "-");
                        let message = format!("open /sim/models/blobs/{path}: no such file or directory");
                        yield Ok(progress::error(&message));
                        return;
                    };
                    yield Ok(progress::status(&format!("using existing layer {digest}")));
                    blobs.push(Layer { digest, size });
                }
                blobs.extend(extra.iter().cloned());
                Model::from_blobs(&name, blobs)
            }
        };
        for layer in &extra {
            yield Ok(progress::status(&format!("creating new layer {}", layer.digest)));
        }
        yield Ok(progress::status("writing manifest"));
        sim.install(made);
        yield Ok(progress::status("success"));
    };
    Ok(progress::answer(lines, stream).await)
}

/// The `files` of a request, each a well-formed digest (Ollama checks before it starts).
fn blob_digests(files: &Map<String, Value>) -> Result<Vec<(String, String)>, Rejection> {
    files
        .iter()
        .map(|(file, digest)| match digest.as_str() {
            Some(digest) if valid_digest(digest) => Ok((file.clone(), digest.replace('-', ":"))),
            _ => Err(Rejection::bad_request("invalid digest format")),
        })
        .collect()
}

/// The layers the request's own fields make (a system prompt, a template...), each with
/// the digest of its content.
fn new_layers(request: &Value) -> Vec<Layer> {
    LAYER_FIELDS
        .iter()
        .filter_map(|field| {
            let content = match request.get(*field)? {
                Value::Null => return None,
                Value::String(text) if text.is_empty() => return None,
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Some(Layer::of(&content, content.len() as u64))
        })
        .collect()
}
