//! API keys and usage: `/admin/keys` (with an admin key) and `/usage` (any key: its own;
//! an admin: everyone's).

use chrono::{DateTime, Utc};
use foreman_types::{ApiKey, CreatedKey, KeyList, NewKey, UsageReport};
use reqwest::Method;

use crate::client::Client;
use crate::error::Result;

/// The window and key of [`Client::usage`]; every field is optional.
///
/// ```
/// use foreman_client::UsageQuery;
/// let since = chrono::Utc::now() - chrono::Duration::hours(24);
/// let query = UsageQuery::new().since(since).key("alice");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Usage from this time on (kept by the hour: the hour it falls in counts).
    pub since: Option<DateTime<Utc>>,
    /// Usage before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only this key's (admins only; any other key always gets its own).
    pub key: Option<String>,
}

impl UsageQuery {
    /// All usage there is.
    pub fn new() -> Self {
        Self::default()
    }

    /// From `since` on.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Only `key`'s.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut pairs = Vec::new();
        if let Some(since) = &self.since {
            pairs.push(("since", time(since)));
        }
        if let Some(until) = &self.until {
            pairs.push(("until", time(until)));
        }
        if let Some(key) = &self.key {
            pairs.push(("key", key.clone()));
        }
        pairs
    }
}

impl Client {
    /// `POST /admin/keys`: creates a key and returns it with its secret, which foreman
    /// shows this once. Needs an admin key; a name in use gives [`Error::Api`](crate::Error::Api)
    /// with status 409.
    ///
    /// ```no_run
    /// # async fn run(admin: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::NewKey;
    /// let created = admin.create_key(NewKey::new("batch").weight(2).rpm(60)).await?;
    /// // Hand `created.key` to its user: `Authorization: Bearer <key>`.
    /// let batch = foreman_client::Client::builder().token(created.key).build()?;
    /// # Ok(()) }
    /// ```
    pub async fn create_key(&self, key: NewKey) -> Result<CreatedKey> {
        self.post_json(&["admin", "keys"], &key).await
    }

    /// `GET /admin/keys`: every key, by name, without secrets. Needs an admin key.
    ///
    /// ```no_run
    /// # async fn run(admin: foreman_client::Client) -> foreman_client::Result<()> {
    /// for key in admin.keys().await? {
    ///     println!("{} {} weight {}", key.name, key.prefix, key.weight);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn keys(&self) -> Result<Vec<ApiKey>> {
        let list: KeyList = self
            .json(self.request(Method::GET, &["admin", "keys"], false))
            .await?;
        Ok(list.keys)
    }

    /// `DELETE /admin/keys/{name}`: revokes a key; its next request gets 401. An unknown
    /// name gives an error for which [`Error::is_not_found`](crate::Error::is_not_found)
    /// is true. Needs an admin key.
    ///
    /// ```no_run
    /// # async fn run(admin: foreman_client::Client) -> foreman_client::Result<()> {
    /// admin.revoke_key("batch").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_key(&self, name: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &["admin", "keys", name], false))
            .await?;
        Ok(())
    }

    /// `GET /usage`: requests, tokens and GPU time per key, end user and model, as the
    /// target reported them. A key sees its own; an admin everyone's.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::UsageQuery;
    /// let report = client.usage(&UsageQuery::new()).await?;
    /// for row in &report.usage {
    ///     println!("{} {} {}: {} tokens out", row.key, row.user, row.model, row.output_tokens);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn usage(&self, query: &UsageQuery) -> Result<UsageReport> {
        let request = self
            .request(Method::GET, &["usage"], false)
            .query(&query.pairs());
        self.json(request).await
    }
}
