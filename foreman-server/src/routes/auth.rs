//! Who is calling: the [`Caller`] the auth middleware puts in every request it lets
//! through, and the extractors that carry the rules, so no handler re-checks them:
//! [`Caller`] itself (the tenant a job is queued for, and whose jobs a list shows),
//! [`Admin`] (admin-only routes: 403 for other keys) and [`OwnJob`] (a job path that
//! answers 404 unless the job is the caller's, or the caller an admin).
//!
//! Credentials are read from `Authorization: Bearer`, or from `x-api-key`, where
//! Anthropic's SDKs put their key. `FOREMAN_AUTH_TOKEN` is an admin key named
//! [`TOKEN_KEY_NAME`]; API keys are looked up by digest in memory ([`crate::keys`]). With
//! no token and no key, foreman is open and every caller is an admin of the open tenant,
//! as before auth existed.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use foreman_types::JobId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::AppError;
use crate::keys::{KeyRecord, Keys, TOKEN_KEY_NAME};
use crate::scheduler::Tenant;
use crate::state::App;

/// The headers a trusted key names its end user with, in the order they are read: Open
/// WebUI's (with `ENABLE_FORWARD_USER_INFO_HEADERS`), then a generic one.
const USER_HEADERS: [&str; 2] = ["x-openwebui-user-id", "x-user-id"];

/// The longest end user name accepted.
const MAX_USER: usize = 256;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The key's name: [`TOKEN_KEY_NAME`] for `FOREMAN_AUTH_TOKEN`, empty when open.
    pub(crate) key: String,
    /// The end user the key named, when it is trusted to; else empty.
    pub(crate) user: String,
    /// Whether the caller may manage keys and models and see every key's jobs.
    pub(crate) admin: bool,
    /// Fair-share weight, at least 1.
    pub(crate) weight: u32,
    /// Most jobs the tenant may have queued.
    pub(crate) max_queued: Option<u32>,
    /// Most requests that queue work per minute, per tenant.
    pub(crate) rpm: Option<u32>,
}

impl Caller {
    /// Anyone, on a foreman with no token and no keys.
    pub(crate) fn open() -> Self {
        Self::admin_named("")
    }

    /// The holder of `FOREMAN_AUTH_TOKEN`.
    fn token() -> Self {
        Self::admin_named(TOKEN_KEY_NAME)
    }

    fn admin_named(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            user: String::new(),
            admin: true,
            weight: 1,
            max_queued: None,
            rpm: None,
        }
    }

    /// The holder of `key`, speaking for `user`.
    fn of(key: &KeyRecord, user: String) -> Self {
        Self {
            key: key.name.clone(),
            user,
            admin: key.admin,
            weight: key.weight.max(1),
            max_queued: key.max_queued,
            rpm: key.rpm,
        }
    }

    /// Whom the caller's jobs, limits and usage are accounted to.
    pub(crate) fn tenant(&self) -> Tenant {
        Tenant::new(self.key.clone(), self.user.clone())
    }

    /// The key whose jobs the caller may see, or `None` for all of them (an admin).
    /// Jobs belong to a key, not to an end user: a key's users share its view.
    pub(crate) fn scope(&self) -> Option<&str> {
        (!self.admin).then_some(self.key.as_str())
    }

    /// Whether a job submitted by `owner` is visible to the caller.
    pub(crate) fn sees(&self, owner: &str) -> bool {
        self.scope().is_none_or(|key| key == owner)
    }

    /// The caller the request's credentials name; `Ok(None)` when they name nobody while
    /// a credential is required. A trusted key's malformed end user header is a 400.
    pub(crate) fn identify(
        config: &Config,
        keys: &Keys,
        headers: &HeaderMap,
    ) -> Result<Option<Caller>, AppError> {
        for given in presented(headers) {
            if let Some(token) = &config.auth_token {
                if same_secret(given, token.expose()) {
                    return Ok(Some(Caller::token()));
                }
            }
            if let Some(key) = keys.find(given) {
                let user = if key.trust_user_header {
                    end_user(headers)?
                } else {
                    String::new()
                };
                return Ok(Some(Caller::of(&key, user)));
            }
        }
        if config.auth_token.is_none() && keys.is_empty() {
            return Ok(Some(Caller::open()));
        }
        Ok(None)
    }
}

/// The credentials a request carries: a bearer token (any case of the scheme), and
/// `x-api-key`. Either may name the caller, as clients send one or the other (or both).
fn presented(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
        });
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    bearer
        .into_iter()
        .chain(api_key)
        .filter(|given| !given.is_empty())
}

/// Compares digests in constant time, so neither the token's content nor its length
/// leaks through timing.
fn same_secret(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

/// The end user named by the first of [`USER_HEADERS`] present; empty when none is.
fn end_user(headers: &HeaderMap) -> Result<String, AppError> {
    let Some((name, value)) = USER_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).map(|value| (*name, value)))
    else {
        return Ok(String::new());
    };
    match value.to_str().map(str::trim) {
        Ok(user) if user.len() <= MAX_USER => Ok(user.to_owned()),
        _ => Err(AppError::BadRequest(format!(
            "{name} must be at most {MAX_USER} visible ASCII characters"
        ))),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(AppError::Unauthorized)
    }
}

/// A handler argument that only an admin gets past: 401 when the request names no
/// caller, 403 when the caller is not an admin.
#[derive(Debug, Clone)]
pub(crate) struct Admin(pub(crate) Caller);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.admin {
            Ok(Admin(caller))
        } else {
            Err(AppError::Forbidden("this needs an admin key".into()))
        }
    }
}

/// The job named by the path's `{id}`, when the caller may see it. Another key's job
/// answers 404 exactly as a job that does not exist, so ids leak nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnJob(pub(crate) JobId);

impl FromRequestParts<App> for OwnJob {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .map_err(|err| AppError::BadRequest(err.body_text()))?;
        let raw = params.get("id").map(String::as_str).unwrap_or_default();
        let id: JobId = raw
            .parse()
            .map_err(|err: foreman_types::ParseIdError| AppError::BadRequest(err.to_string()))?;
        crate::request_log::note_job(id);
        // A sync job's caller may have its id before its row is committed (ADR 30).
        app.unrecorded.settled(id).await;
        match app.store.job_owner(id).await? {
            Some(owner) if caller.sees(&owner) => Ok(OwnJob(id)),
            _ => Err(AppError::NotFound(format!("job {id} not found"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    async fn admin_of(caller: Option<Caller>) -> Result<Admin, AppError> {
        let mut request = Request::new(());
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        let (mut parts, ()) = request.into_parts();
        Admin::from_request_parts(&mut parts, &()).await
    }

    fn key(name: &str, secret: &str, admin: bool, trust: bool) -> KeyRecord {
        KeyRecord {
            name: name.into(),
            hash: crate::keys::digest(secret),
            prefix: "fm_xxxx".into(),
            admin,
            weight: 3,
            max_queued: Some(5),
            rpm: None,
            trust_user_header: trust,
            created_at: 0,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[tokio::test]
    async fn only_an_admin_caller_passes() {
        assert!(admin_of(Some(Caller::open())).await.is_ok());
        let alice = Caller::of(&key("alice", "fm_a", false, false), String::new());
        let refused = admin_of(Some(alice)).await.unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::FORBIDDEN);
        let anonymous = admin_of(None).await.unwrap_err();
        assert_eq!(anonymous.status(), axum::http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn without_a_token_or_keys_everyone_is_an_admin_and_with_either_nobody_is() {
        let mut config = Config::new("http://127.0.0.1:11434".parse().unwrap(), "x.db");
        let none = Keys::default();
        let anonymous = HeaderMap::new();
        assert_eq!(
            Caller::identify(&config, &none, &anonymous).unwrap(),
            Some(Caller::open())
        );
        let keys = Keys::new(vec![key("alice", "fm_a", false, false)]);
        assert_eq!(Caller::identify(&config, &keys, &anonymous).unwrap(), None);

        config.auth_token = Some(crate::config::Secret::new("t"));
        assert_eq!(Caller::identify(&config, &none, &anonymous).unwrap(), None);
        let bearer = headers(&[("authorization", "bearer  t ")]);
        assert_eq!(
            Caller::identify(&config, &none, &bearer).unwrap(),
            Some(Caller::token())
        );
        let anthropic = headers(&[("x-api-key", "t")]);
        assert_eq!(
            Caller::identify(&config, &none, &anthropic).unwrap(),
            Some(Caller::token()),
            "Anthropic's SDKs send the key as x-api-key"
        );
        let wrong = headers(&[("x-api-key", "wrong")]);
        assert_eq!(Caller::identify(&config, &none, &wrong).unwrap(), None);
        let both = headers(&[("authorization", "Bearer stale"), ("x-api-key", "t")]);
        assert_eq!(
            Caller::identify(&config, &none, &both).unwrap(),
            Some(Caller::token()),
            "either header may carry the credential"
        );
    }

    #[test]
    fn a_key_is_found_by_its_secret_and_names_an_end_user_only_when_trusted() {
        let config = Config::new("http://127.0.0.1:11434".parse().unwrap(), "x.db");
        let keys = Keys::new(vec![
            key("plain", "fm_plain", false, false),
            key("webui", "fm_webui", false, true),
        ]);
        let with_user = |secret: &str| {
            headers(&[
                ("authorization", &format!("Bearer {secret}")),
                ("x-openwebui-user-id", "u-1"),
                ("x-user-id", "u-2"),
            ])
        };
        let plain = Caller::identify(&config, &keys, &with_user("fm_plain"))
            .unwrap()
            .unwrap();
        assert_eq!(plain.tenant(), Tenant::new("plain", ""));
        assert_eq!((plain.weight, plain.max_queued), (3, Some(5)));
        let webui = Caller::identify(&config, &keys, &with_user("fm_webui"))
            .unwrap()
            .unwrap();
        assert_eq!(webui.tenant(), Tenant::new("webui", "u-1"));
        let generic = headers(&[("x-api-key", "fm_webui"), ("x-user-id", "bob")]);
        let generic = Caller::identify(&config, &keys, &generic).unwrap().unwrap();
        assert_eq!(generic.user, "bob");

        let long = "x".repeat(MAX_USER + 1);
        let bad = headers(&[("x-api-key", "fm_webui"), ("x-user-id", &long)]);
        let err = Caller::identify(&config, &keys, &bad).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_key_sees_its_own_jobs_and_an_admin_sees_all() {
        let alice = Caller::of(&key("alice", "fm_a", false, false), "u".into());
        assert!(alice.sees("alice"));
        assert!(!alice.sees("bob"));
        assert!(!alice.sees(""));
        assert_eq!(alice.scope(), Some("alice"));
        let admin = Caller::token();
        assert!(admin.sees("bob") && admin.sees(""));
        assert_eq!(admin.scope(), None);
    }
}
