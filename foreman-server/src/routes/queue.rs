//! `GET /queue`: what is waiting, what runs, what the target has loaded.
//!
//! Counts are the whole queue's for every caller, so a key can tell how long it will
//! wait; the running job is shown in full only to its key and to admins, to others as its
//! model and state.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use crate::error::AppError;
use crate::state::App;

/// `GET /queue`.
pub(super) async fn queue(caller: Caller, State(app): State<App>) -> Result<Json<Value>, AppError> {
    let snapshot = app.store.queue_snapshot().await?;
    let running = snapshot.running.map(|job| {
        if caller.sees(job.key.as_deref().unwrap_or_default()) {
            json!(job)
        } else {
            json!({ "model": job.model, "state": job.state })
        }
    });
    let depth: u64 = snapshot.depth_by_model.iter().map(|(_, n)| n).sum();
    let by_model: Vec<Value> = snapshot
        .depth_by_model
        .iter()
        .map(|(model, queued)| json!({ "model": model, "queued": queued }))
        .collect();
    let mut body = json!({
        "depth": depth,
        "by_model": by_model,
        "running": running,
        "resident": app.inventory.loaded(),
        "pulling": app.inventory.pulling(),
        "model_swaps": app.model_swaps.load(Ordering::Relaxed),
        "degraded": app.inventory.degraded(),
    });
    // Until the queue drains: every queued job plus the rest of the running one. Absent
    // until a job has run, as on `GET /jobs/{id}`.
    if let Some(wait) = app.run_times.wait_ms(depth) {
        body["estimated_wait_ms"] = json!(wait);
    }
    Ok(Json(body))
}
