//! `GET /usage`: tokens and GPU time per key, end user and model, as the target reported
//! them. An admin sees every key's (or one key's, with `key`); any other key its own.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use foreman_types::UsageReport;
use serde::Deserialize;

use super::auth::Caller;
use crate::error::AppError;
use crate::state::App;
use crate::store::UsageFilter;

/// Query of `GET /usage`.
#[derive(Debug, Deserialize)]
pub(super) struct UsageQuery {
    since: Option<String>,
    until: Option<String>,
    key: Option<String>,
}

/// A time given as RFC 3339 (`2025-11-26T18:00:00Z`) or as Unix milliseconds.
fn instant(field: &str, raw: &str) -> Result<DateTime<Utc>, AppError> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| AppError::BadRequest(format!("{field}: {ms} is out of range")));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| {
            AppError::BadRequest(format!(
                "{field} must be RFC 3339 or Unix milliseconds ({raw:?}: {err})"
            ))
        })
}

/// `GET /usage`.
pub(super) async fn usage(
    caller: Caller,
    State(app): State<App>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<UsageReport>, AppError> {
    let Query(query) = query.map_err(|err| AppError::BadRequest(err.body_text()))?;
    let since = query
        .since
        .as_deref()
        .map(|s| instant("since", s))
        .transpose()?;
    let until = query
        .until
        .as_deref()
        .map(|s| instant("until", s))
        .transpose()?;
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(AppError::BadRequest("since is after until".into()));
        }
    }
    let key = match caller.scope() {
        Some(own) => Some(own.to_owned()),
        None => query.key.filter(|k| !k.is_empty()),
    };
    let usage = app
        .store
        .usage(UsageFilter {
            key,
            since_ms: since.map(|t| t.timestamp_millis()),
            until_ms: until.map(|t| t.timestamp_millis()),
        })
        .await?;
    Ok(Json(UsageReport {
        usage,
        since,
        until,
    }))
}
