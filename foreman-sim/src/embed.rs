//! `/api/embed` and `/api/embeddings`: concurrent (never behind the GPU mutex) and
//! deterministic, so tests can compare vectors.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use bytes::Bytes;
use foreman_types::{EmbedInput, EmbeddingsRequest};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::catalog::Model;
use super::state::{KeepAlive, Sim};
use super::{model_request, request_body, required_model, Rejection};

/// Dimensions of every simulated vector.
const DIMENSIONS: usize = 8;

/// `POST /api/embed`: `input` is one text or several; no input only loads the model.
pub(super) async fn embed(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Rejection> {
    let (started, request, name) = model_request(body)?;
    let inputs = match request.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(input) => match serde_json::from_value::<EmbedInput>(input.clone()) {
            Ok(EmbedInput::One(text)) => vec![text],
            Ok(EmbedInput::Many(texts)) => texts,
            Err(_) => return Err(Rejection::bad_request("invalid input type")),
        },
    };
    let keep_alive = KeepAlive::from_request(request.get("keep_alive"));
    if inputs.is_empty() && keep_alive.unloads() {
        // Ollama's way to unload a model: nothing to embed and `keep_alive: 0`.
        let model = sim
            .find(&name)
            .ok_or_else(|| Rejection::model_not_found(&name))?;
        release(&sim, &model, &keep_alive);
        return Ok(Json(json!({ "model": name, "embeddings": [] })));
    }
    let (model, load_duration) = prepare(&sim, &name, &keep_alive).await?;
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|text| vector(text)).collect();
    let prompt_eval_count: usize = inputs
        .iter()
        .map(|text| text.split_whitespace().count())
        .sum();
    release(&sim, &model, &keep_alive);
    Ok(Json(json!({
        "model": name,
        "embeddings": embeddings,
        "total_duration": nanos(started.elapsed()),
        "load_duration": nanos(load_duration),
        "prompt_eval_count": prompt_eval_count,
    })))
}

/// `POST /api/embeddings`, the legacy form: one `prompt`, one `embedding`.
pub(super) async fn embeddings(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Rejection> {
    let value = request_body(body)?;
    required_model(&value)?;
    let request: EmbeddingsRequest =
        serde_json::from_value(value).map_err(|err| Rejection::bad_request(err.to_string()))?;
    let keep_alive = KeepAlive::from_request(request.extra.get("keep_alive"));
    let (model, _) = prepare(&sim, &request.model, &keep_alive).await?;
    release(&sim, &model, &keep_alive);
    let embedding = if request.prompt.is_empty() {
        Vec::new()
    } else {
        vector(&request.prompt)
    };
    Ok(Json(json!({ "embedding": embedding })))
}

/// Finds the model and makes an embedding model resident (paying its load time if it was
/// not). A generation model embeds too, as in Ollama, but without touching the GPU: the
/// simulator keeps the GPU for generations.
pub(super) async fn prepare(
    sim: &Sim,
    name: &str,
    keep_alive: &KeepAlive,
) -> Result<(Model, Duration), Rejection> {
    let model = sim
        .find(name)
        .ok_or_else(|| Rejection::model_not_found(name))?;
    if !model.embedding {
        return Ok((model, Duration::ZERO));
    }
    let load_duration = sim
        .load(&model, keep_alive)
        .await
        .ok_or_else(Rejection::shutting_down)?;
    Ok((model, load_duration))
}

/// Restarts an embedding model's keep-alive (or unloads it); generation models were never
/// touched.
pub(super) fn release(sim: &Sim, model: &Model, keep_alive: &KeepAlive) {
    if model.embedding {
        sim.release(model, keep_alive);
    }
}

/// A deterministic unit vector from a hash of `text`.
pub(super) fn vector(text: &str) -> Vec<f32> {
    let digest = Sha256::digest(text.as_bytes());
    let raw: Vec<f32> = digest
        .chunks_exact(2)
        .take(DIMENSIONS)
        .map(|pair| f32::from(i16::from_le_bytes([pair[0], pair[1]])) / 32768.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        raw.iter().map(|x| x / norm).collect()
    } else {
        raw
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
