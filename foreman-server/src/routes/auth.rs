//! Who is calling: the [`Caller`] the auth middleware puts in every request it lets
//! through, and the [`Admin`] extractor that model management takes as an argument.
//!
//! Today the only credential is `FOREMAN_AUTH_TOKEN`, and it is an admin's; with no token
//! configured foreman is open and every caller counts as an admin, as before auth existed.
//! It is read from `Authorization: Bearer`, or from `x-api-key`, where Anthropic's SDKs put
//! their key.
//! When per-user keys arrive, `identify` learns them and non-admin keys get 403 from
//! [`Admin`], with no handler changed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::AppError;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// Whether the caller may change what the target holds (pull, create, delete...).
    pub(crate) admin: bool,
}

impl Caller {
    /// The caller the request's credentials name, or `None` when they name nobody (no or
    /// a wrong bearer token while a token is configured).
    pub(crate) fn identify(config: &Config, headers: &HeaderMap) -> Option<Caller> {
        match &config.auth_token {
            None => Some(Caller { admin: true }),
            Some(token)
                if super::bearer_matches(headers, token.expose())
                    || api_key_matches(headers, token.expose()) =>
            {
                Some(Caller { admin: true })
            }
            Some(_) => None,
        }
    }
}

/// Whether `x-api-key` carries the token, compared as digests in constant time like the
/// bearer token.
fn api_key_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let given = Sha256::digest(given.trim().as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    given.ct_eq(&expected).into()
}

/// A handler argument that only an admin gets past: 401 when the request names no
/// caller, 403 when the caller is not an admin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(Caller { admin: true }) => Ok(Admin),
            Some(_) => Err(AppError::Forbidden(
                "model management needs an admin credential".into(),
            )),
            None => Err(AppError::Unauthorized),
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

    #[tokio::test]
    async fn only_an_admin_caller_passes() {
        assert!(admin_of(Some(Caller { admin: true })).await.is_ok());
        let refused = admin_of(Some(Caller { admin: false })).await.unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::FORBIDDEN);
        let anonymous = admin_of(None).await.unwrap_err();
        assert_eq!(anonymous.status(), axum::http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn without_a_configured_token_everyone_is_an_admin() {
        let mut config = Config::new("http://127.0.0.1:11434".parse().unwrap(), "x.db");
        let headers = HeaderMap::new();
        assert_eq!(
            Caller::identify(&config, &headers),
            Some(Caller { admin: true })
        );
        config.auth_token = Some(crate::config::Secret::new("t"));
        assert_eq!(Caller::identify(&config, &headers), None);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        assert_eq!(
            Caller::identify(&config, &headers),
            Some(Caller { admin: true })
        );
        let mut anthropic = HeaderMap::new();
        anthropic.insert("x-api-key", "t".parse().unwrap());
        assert_eq!(
            Caller::identify(&config, &anthropic),
            Some(Caller { admin: true }),
            "Anthropic's SDKs send the key as x-api-key"
        );
        anthropic.insert("x-api-key", "wrong".parse().unwrap());
        assert_eq!(Caller::identify(&config, &anthropic), None);
    }
}
