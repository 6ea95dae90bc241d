//! Which targets a model-management request goes to: the one it names, with the `target`
//! query parameter (`/api/pull?target=gpu2`) or the `X-Foreman-Target` header (for
//! clients that cannot change the URL's query), else every target.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::state::App;
use crate::targets::Target;

/// The header naming a target.
pub(crate) const TARGET_HEADER: &str = "x-foreman-target";

/// The targets a request goes to, and whether the caller named one.
#[derive(Debug, Clone)]
pub(super) struct Chosen {
    pub(super) targets: Vec<Arc<Target>>,
    pub(super) named: bool,
}

impl FromRequestParts<App> for Chosen {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let from_query = parts.uri.query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "target")
                .map(|(_, value)| value.into_owned())
        });
        let from_header = || {
            parts
                .headers
                .get(TARGET_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        };
        let name = from_query.or_else(from_header).filter(|n| !n.is_empty());
        match app.targets.select(name.as_deref()) {
            Some(targets) => Ok(Chosen {
                targets,
                named: name.is_some(),
            }),
            None => Err(AppError::NotFound(format!(
                "no target is named {:?}",
                name.unwrap_or_default()
            ))),
        }
    }
}
