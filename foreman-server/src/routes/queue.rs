//! `GET /queue`: what is waiting, what runs where, what each target has loaded.
//!
//! Counts are the whole queue's for every caller, so a key can tell how long it will
//! wait; a running job is shown in full only to its key and to admins, to others as its
//! model, state and target.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use crate::error::AppError;
use crate::state::App;

/// `GET /queue`.
pub(super) async fn queue(caller: Caller, State(app): State<App>) -> Result<Json<Value>, AppError> {
    let snapshot = app.store.queue_snapshot().await?;
    let running: Vec<Value> = snapshot
        .running
        .iter()
        .map(|job| {
            if caller.sees(job.key.as_deref().unwrap_or_default()) {
                json!(job)
            } else {
                json!({ "model": job.model, "state": job.state, "target": job.target })
            }
        })
        .collect();
    let depth: u64 = snapshot.depth_by_model.iter().map(|(_, n)| n).sum();
    let by_model: Vec<Value> = snapshot
        .depth_by_model
        .iter()
        .map(|(model, queued)| json!({ "model": model, "queued": queued }))
        .collect();
    let targets: Vec<Value> = app
        .targets
        .all()
        .iter()
        .map(|t| {
            let running = snapshot
                .running
                .iter()
                .filter(|job| job.target.as_deref() == Some(t.name.as_str()))
                .count();
            json!({
                "name": t.name,
                "url": t.url,
                "up": t.up(),
                "parallel": t.lane.parallel(),
                "running": running,
                "resident": t.inventory.loaded(),
                "pulling": t.inventory.pulling(),
                "model_swaps": t.lane.swaps(),
            })
        })
        .collect();
    let mut body = json!({
        "depth": depth,
        "by_model": by_model,
        // The oldest running job, as when one ran at a time; every one is in `running_jobs`.
        "running": running.first(),
        "running_jobs": running,
        "resident": app.targets.loaded(),
        "pulling": app.targets.pulling(),
        "model_swaps": app.targets.model_swaps(),
        "degraded": app.targets.degraded(),
        "targets": targets,
    });
    // Until the queue drains: every queued job plus the rest of the running one. Absent
    // until a job has run, as on `GET /jobs/{id}`.
    if let Some(wait) = app.run_times.wait_ms(depth) {
        body["estimated_wait_ms"] = json!(wait);
    }
    Ok(Json(body))
}
