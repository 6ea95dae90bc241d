//! The [`Client`], its [`ClientBuilder`], and the request plumbing both API halves share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{Error, Result};

/// Where [`Client::from_env`] connects when `FOREMAN_URL` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// How long [`Client::new`] waits for a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An async client for foreman, and for the Ollama API of foreman or of a plain Ollama.
///
/// Cloning is cheap (one reference count) and clones share one connection pool, so make one
/// client and clone it into tasks.
///
/// Methods are grouped by the half of the API they talk to: the Ollama half (`chat`,
/// `chat_stream`, `generate`, `embed`, `tags`, ...) and the foreman half (`submit`, `job`,
/// `wait`, `watch`, `artifact`, `cancel`, `health`, ...).
///
/// ```no_run
/// # async fn run() -> foreman_client::Result<()> {
/// let client = foreman_client::Client::builder()
///     .base_url("http://gpu-box:8080")
///     .token("s3cret")
///     .timeout(std::time::Duration::from_secs(120))
///     .build()?;
/// println!("{}", client.health().await?.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("token", &self.inner.auth.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl Client {
    /// A client for the server at `url` (`http://host:port`, optionally with a path prefix),
    /// without a token or a request timeout. A URL without a scheme gets `http://`, as
    /// `OLLAMA_HOST` does.
    ///
    /// ```no_run
    /// let client = foreman_client::Client::new("http://127.0.0.1:8080")?;
    /// # Ok::<(), foreman_client::Error>(())
    /// ```
    pub fn new(url: impl AsRef<str>) -> Result<Self> {
        Self::builder().base_url(url.as_ref()).build()
    }

    /// A builder, to set a token or timeouts.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured the way the `foreman` CLI is: `FOREMAN_URL` (default
    /// [`DEFAULT_URL`]) and, when set and not empty, the bearer token `FOREMAN_AUTH_TOKEN`.
    ///
    /// ```no_run
    /// let client = foreman_client::Client::from_env()?;
    /// # Ok::<(), foreman_client::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        let url = std::env::var("FOREMAN_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let mut builder = Self::builder().base_url(url);
        if let Some(token) = std::env::var("FOREMAN_AUTH_TOKEN")
            .ok()
            .filter(|token| !token.is_empty())
        {
            builder = builder.token(token);
        }
        builder.build()
    }

    /// The server's base URL, always ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The URL of the endpoint made of `segments`, each percent-encoded as one path segment.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        // The builder only accepts http(s) URLs, which always have path segments.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A request to `segments` with the token and, unless `streaming`, the request timeout.
    /// A streamed answer may rightly last longer than any timeout, so it gets none.
    pub(crate) fn request(
        &self,
        method: Method,
        segments: &[&str],
        streaming: bool,
    ) -> RequestBuilder {
        let mut request = self.inner.http.request(method, self.endpoint(segments));
        if let Some(auth) = &self.inner.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        match self.inner.timeout {
            Some(timeout) if !streaming => request.timeout(timeout),
            _ => request,
        }
    }

    /// Sends `request`; an error status becomes [`Error::Api`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(Error::from_response(status.as_u16(), &body));
        }
        Ok(response)
    }

    /// `POST segments` with a JSON body, its JSON answer decoded.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &impl serde::Serialize,
    ) -> Result<T> {
        self.json(self.request(Method::POST, segments, false).json(body))
            .await
    }

    /// `method segments` with a JSON body, for an answer whose status is all it says.
    pub(crate) async fn send_json(
        &self,
        method: Method,
        segments: &[&str],
        body: &impl serde::Serialize,
    ) -> Result<()> {
        self.send(self.request(method, segments, false).json(body))
            .await?;
        Ok(())
    }

    /// `POST segments` with a JSON body, its NDJSON answer read line by line as it comes.
    pub(crate) async fn post_stream<T: crate::stream::Chunk>(
        &self,
        segments: &[&str],
        body: &impl serde::Serialize,
    ) -> Result<std::pin::Pin<Box<dyn futures::Stream<Item = Result<T>> + Send>>> {
        let request = self.request(Method::POST, segments, true).json(body);
        let response = self.send(request).await?;
        Ok(crate::stream::ndjson(response.bytes_stream()))
    }

    /// Sends `request` and decodes its JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let body = self.send(request).await?.bytes().await?;
        serde_json::from_slice(&body).map_err(|err| Error::decode(err, &body))
    }
}

/// Sets up a [`Client`]; start from [`Client::builder`].
#[derive(Default)]
pub struct ClientBuilder {
    base_url: Option<String>,
    token: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The server to talk to (default [`DEFAULT_URL`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request; an empty token means none.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Fails any request whose whole answer takes longer than this (none by default).
    /// Streamed answers (`chat_stream`, `generate_stream`) are exempt, and a non-streamed
    /// `chat` or `generate` waits for its turn in foreman's queue, so set this generously.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long to wait for a connection (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Uses this `reqwest` client (for proxies, custom TLS roots...). Its own settings then
    /// replace `connect_timeout`.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client, or [`Error::InvalidUrl`] for a base URL that is not `http(s)`, or
    /// [`Error::InvalidToken`] for a token that cannot be a header value.
    pub fn build(self) -> Result<Client> {
        let base = parse_base(self.base_url.as_deref().unwrap_or(DEFAULT_URL))?;
        // An empty token (an exported but empty variable) means none, not `Bearer `.
        let auth = match self.token.filter(|token| !token.trim().is_empty()) {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| Error::InvalidToken)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                .user_agent(concat!("foreman-client/", env!("CARGO_PKG_VERSION")))
                .build()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                timeout: self.timeout,
            }),
        })
    }
}

/// Parses a base URL: `http(s)` only, no query or fragment, path ending in `/`.
fn parse_base(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let mut url =
        Url::parse(&with_scheme).map_err(|err| Error::InvalidUrl(format!("{raw:?}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::InvalidUrl(format!("{raw:?}: not an http(s) URL")));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_path_and_encode_each_segment() {
        let client = Client::new("http://host:8080/foreman").unwrap();
        assert_eq!(client.base_url().as_str(), "http://host:8080/foreman/");
        let url = client.endpoint(&["jobs", "01J", "artifacts", "a b/../c?d"]);
        assert_eq!(
            url.as_str(),
            "http://host:8080/foreman/jobs/01J/artifacts/a%20b%2F..%2Fc%3Fd"
        );
        let root = Client::new("127.0.0.1:11434").unwrap();
        assert_eq!(
            root.endpoint(&["api", "chat"]).as_str(),
            "http://127.0.0.1:11434/api/chat"
        );
    }

    #[test]
    fn bad_base_urls_are_rejected() {
        for bad in [
            "ftp://host",
            "http://",
            "not a url at all",
            "http://exa mple.com",
        ] {
            assert!(
                matches!(Client::new(bad), Err(Error::InvalidUrl(_))),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = Client::builder().token("hunter2").build().unwrap();
        let builder = Client::builder().token("hunter2");
        for shown in [format!("{client:?}"), format!("{builder:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
    }
}
