//! `/admin/keys`: create, list and revoke API keys (admins only).
//!
//! The secret is made here, answered once, and forgotten: the database and the in-memory
//! set keep its digest. The in-memory set changes right after the database commits and
//! before the answer, so a revoked key is refused from the next request on.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use foreman_types::{CreatedKey, KeyList, NewKey, MAX_WEIGHT};

use super::auth::Admin;
use super::body;
use crate::error::AppError;
use crate::keys::{self, KeyRecord};
use crate::state::App;

/// `POST /admin/keys`: `201` with the key and its secret.
pub(super) async fn create(
    Admin(by): Admin,
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = body::bytes(body, app.config.max_body_bytes)?;
    let new: NewKey = body::json(&body)?;
    keys::check_name(&new.name).map_err(AppError::BadRequest)?;
    let weight = new.weight.unwrap_or(1);
    if !(1..=MAX_WEIGHT).contains(&weight) {
        return Err(AppError::BadRequest(format!(
            "weight must be 1 to {MAX_WEIGHT} (got {weight})"
        )));
    }
    for (field, limit) in [("max_queued", new.max_queued), ("rpm", new.rpm)] {
        if limit == Some(0) {
            return Err(AppError::BadRequest(format!(
                "{field} must be at least 1 (leave it out for no limit)"
            )));
        }
    }
    let (secret, hash, prefix) = keys::new_secret()
        .map_err(|err| AppError::Internal(format!("no randomness for a key secret: {err}")))?;
    let record = KeyRecord {
        name: new.name,
        hash,
        prefix,
        admin: new.admin,
        weight,
        max_queued: new.max_queued,
        rpm: new.rpm,
        trust_user_header: new.trust_user_header,
        created_at: crate::store::now_ms(),
    };
    app.store
        .create_key(record.clone(), app.config.auth_token.is_none())
        .await?;
    tracing::info!(key = %record.name, admin = record.admin, by = %by.key, "API key created");
    let created = CreatedKey {
        info: record.view(),
        key: secret,
    };
    app.keys.insert(record);
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// `GET /admin/keys`: every key, by name, without secrets.
pub(super) async fn list(_: Admin, State(app): State<App>) -> Result<Json<KeyList>, AppError> {
    let keys = app.store.keys().await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(KeyRecord::view).collect(),
    }))
}

/// `DELETE /admin/keys/{name}`: `204`, and the key is refused from now on.
pub(super) async fn revoke(
    Admin(by): Admin,
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    let revoked = app
        .store
        .revoke_key(name.clone(), app.config.auth_token.is_none())
        .await?;
    if !revoked {
        return Err(AppError::NotFound(format!("no key named {name:?}")));
    }
    app.keys.remove(&name);
    app.ui_sessions.close_key(&name);
    tracing::info!(key = %name, by = %by.key, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
