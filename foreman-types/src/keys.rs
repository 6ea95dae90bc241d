//! API keys and usage: the bodies of `/admin/keys` and `GET /usage`.
//!
//! A key's secret is shown once, in the answer to its creation ([`CreatedKey`]); foreman
//! keeps only its SHA-256 digest, so a lost secret is replaced, never recovered.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The largest weight a key may have.
pub const MAX_WEIGHT: u32 = 1000;

/// `POST /admin/keys`: a key to create. Only `name` is required.
///
/// ```
/// use foreman_types::NewKey;
/// let key = NewKey::new("batch").weight(2).max_queued(20).rpm(60);
/// assert_eq!(serde_json::to_value(&key).unwrap()["weight"], 2);
/// ```
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    /// Unique; letters, digits, `.`, `_` and `-`, up to 64 characters. `admin` is
    /// reserved for `FOREMAN_AUTH_TOKEN`.
    pub name: String,
    /// Whether the key may manage keys and models and see every key's jobs and usage.
    #[serde(default)]
    pub admin: bool,
    /// Its share of the GPU against other keys (1 to [`MAX_WEIGHT`], default 1).
    pub weight: Option<u32>,
    /// Most jobs it (each of its end users) may have queued at once; beyond, 429.
    pub max_queued: Option<u32>,
    /// Most requests that queue work it (each of its end users) may make per minute;
    /// beyond, 429.
    pub rpm: Option<u32>,
    /// Whether its requests may name an end user with `X-OpenWebUI-User-Id` or
    /// `X-User-Id`; fair share, limits and usage then apply per end user.
    #[serde(default)]
    pub trust_user_header: bool,
}

impl NewKey {
    /// A non-admin key of weight 1 without limits.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            admin: false,
            weight: None,
            max_queued: None,
            rpm: None,
            trust_user_header: false,
        }
    }

    /// Makes it an admin key.
    pub fn admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    setters! {
        weight: u32,
        max_queued: u32,
        rpm: u32,
    }

    /// Lets it name end users in a header.
    pub fn trust_user_header(mut self, trust: bool) -> Self {
        self.trust_user_header = trust;
        self
    }
}

/// A key as `GET /admin/keys` lists it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Its unique name; jobs and usage are recorded under it.
    pub name: String,
    /// Whether it is an admin key.
    pub admin: bool,
    /// Its fair-share weight.
    pub weight: u32,
    /// Its queued-jobs limit, if any.
    #[serde(default)]
    pub max_queued: Option<u32>,
    /// Its requests-per-minute limit, if any.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Whether it may name end users in a header.
    #[serde(default)]
    pub trust_user_header: bool,
    /// The first characters of its secret (`fm_` and four more), to tell keys apart.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// `201 Created` from `POST /admin/keys`: the key and, this once, its secret.
///
/// `Debug` shows the secret as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    /// The key's fields.
    #[serde(flatten)]
    pub info: ApiKey,
    /// The secret to send as `Authorization: Bearer <key>`; foreman cannot show it again.
    pub key: String,
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("info", &self.info)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// `GET /admin/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    /// Every key, by name.
    pub keys: Vec<ApiKey>,
}

/// One line of `GET /usage`: what one end user of one key used of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The key's name (`admin` for `FOREMAN_AUTH_TOKEN`; empty on an open foreman).
    pub key: String,
    /// The end user the key named, or empty.
    pub user: String,
    /// The model, normalised (`name:tag`).
    pub model: String,
    /// Jobs that ran on the target and ended.
    pub requests: u64,
    /// Prompt tokens, as the target reported them.
    pub prompt_tokens: u64,
    /// Output tokens, as the target reported them.
    pub output_tokens: u64,
    /// GPU time in milliseconds: the target's `total_duration` where it reports one, else
    /// the time the job held the target.
    pub gpu_ms: u64,
}

/// `GET /usage`: usage per key, user and model, within `since` and `until`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The rows, by key, user and model.
    pub usage: Vec<UsageRow>,
    /// The start of the window, as asked (usage is kept by the hour).
    pub since: Option<DateTime<Utc>>,
    /// The end of the window, as asked.
    pub until: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_flattens_its_fields_and_hides_its_secret_from_debug() {
        let created = CreatedKey {
            info: ApiKey {
                name: "alice".into(),
                admin: false,
                weight: 1,
                max_queued: None,
                rpm: Some(10),
                trust_user_header: false,
                prefix: "fm_abcd".into(),
                created_at: DateTime::from_timestamp_millis(0).unwrap(),
            },
            key: "fm_abcdefgh".into(),
        };
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["name"], "alice");
        assert_eq!(json["key"], "fm_abcdefgh");
        assert_eq!(json["rpm"], 10);
        let back: CreatedKey = serde_json::from_value(json).unwrap();
        assert_eq!(back, created);
        let shown = format!("{created:?}");
        assert!(!shown.contains("fm_abcdefgh"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
