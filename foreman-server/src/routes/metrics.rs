//! `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! Admin-only: the counters name every API key and its usage, which other keys may not see.
//! A Prometheus scrape job sends the admin token (or an admin key) with
//! `authorization: { credentials: ... }` (or `bearer_token_file`).

use axum::extract::State;
use axum::http::{header::CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::auth::Admin;
use crate::error::AppError;
use crate::metrics::{Scrape, TargetScrape, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use crate::state::App;

/// `GET /metrics`.
pub(super) async fn metrics(_: Admin, State(app): State<App>) -> Result<Response, AppError> {
    let (jobs_by_state, queued_by_model, usage) = tokio::try_join!(
        app.store.counts_by_state(),
        app.store.queued_by_model(),
        app.store.usage_totals()
    )?;
    let scrape = Scrape {
        jobs_by_state,
        queued_by_model,
        model_swaps: app.targets.model_swaps(),
        targets: app
            .targets
            .all()
            .iter()
            .map(|t| TargetScrape {
                name: t.name.clone(),
                up: t.up(),
                running: u64::from(t.lane.running()),
                slots: u64::from(t.lane.parallel()),
                model_swaps: t.lane.swaps(),
            })
            .collect(),
        usage,
    };
    let body = app
        .metrics
        .render(&scrape)
        .map_err(|err| AppError::Internal(format!("cannot encode the metrics: {err}")))?;
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE))],
        body,
    )
        .into_response())
}
