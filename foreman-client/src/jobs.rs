//! The foreman half of the API: async jobs, their artifacts, health and the queue.

use bytes::Bytes;
use foreman_types::{Accepted, Job, JobId, JobList, JobState, SubmitRequest};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// `ok` while foreman serves requests.
    pub status: String,
    /// True while a target Ollama is unreachable; foreman still accepts and keeps work.
    #[serde(default)]
    pub degraded: bool,
    /// Each Ollama server foreman fronts (one, unless it fronts several GPU boxes).
    #[serde(default)]
    pub targets: Vec<TargetHealth>,
}

/// One target in `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetHealth {
    /// Its name (`default` when foreman fronts one unnamed target).
    pub name: String,
    /// Its URL, without credentials.
    #[serde(default)]
    pub url: String,
    /// Whether it answers.
    #[serde(default)]
    pub up: bool,
    /// The models it holds in memory, the most recently used first.
    #[serde(default)]
    pub resident: Vec<String>,
}

/// Filters and paging for [`Client::jobs`]; every field is optional.
///
/// ```
/// use foreman_client::{JobQuery, JobState};
/// let query = JobQuery::new().state(JobState::Failed).model("llama3.2").limit(20);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs for this model (`llama3.2` and `llama3.2:latest` are the same).
    pub model: Option<String>,
    /// At most this many jobs (the server's default is 50, its maximum 500).
    pub limit: Option<u32>,
    /// Only jobs older than this cursor: a previous page's `next_cursor`.
    pub before: Option<String>,
}

impl JobQuery {
    /// Every job, newest first, one default-sized page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only jobs in `state`.
    pub fn state(mut self, state: JobState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only jobs for `model`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// At most `limit` jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The page after the one whose `next_cursor` this is.
    pub fn before(mut self, cursor: impl Into<String>) -> Self {
        self.before = Some(cursor.into());
        self
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(state) = self.state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        if let Some(model) = &self.model {
            pairs.push(("model", model.clone()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(before) = &self.before {
            pairs.push(("before", before.clone()));
        }
        pairs
    }
}

/// An artifact's raw content, from [`Client::artifact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactContent {
    /// The stored media type (`application/octet-stream` if the server sent none).
    pub content_type: String,
    /// The bytes.
    pub data: Bytes,
}

impl ArtifactContent {
    /// The content as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

impl Client {
    /// `GET /healthz`: whether foreman is up, and whether its targets are reachable.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// let health = client.health().await?;
    /// for target in health.targets.iter().filter(|t| !t.up) {
    ///     eprintln!("foreman is up but cannot reach {} ({})", target.name, target.url);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn health(&self) -> Result<Health> {
        self.json(self.request(Method::GET, &["healthz"], false))
            .await
    }

    /// `POST /jobs`: queues a chat to run in the background and returns its id once foreman
    /// has committed it to disk.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::{ChatMessage, ChatRequest, SubmitRequest};
    /// let chat = ChatRequest::new("llama3.2", vec![ChatMessage::user("Summarise this...")]);
    /// let id = client
    ///     .submit(SubmitRequest::new(chat).webhook("https://example.com/hooks/foreman"))
    ///     .await?;
    /// println!("queued {id}");
    /// # Ok(()) }
    /// ```
    pub async fn submit(&self, request: SubmitRequest) -> Result<JobId> {
        let accepted: Accepted = self.post_json(&["jobs"], &request).await?;
        Ok(accepted.job_id)
    }

    /// Like [`submit`](Client::submit), with an `Idempotency-Key`: submitting the same body
    /// again with the same key returns the first job's id instead of queueing a second job,
    /// so a submit can be retried safely after a network error.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client, request: foreman_client::SubmitRequest)
    /// # -> foreman_client::Result<()> {
    /// let first = client.submit_with_key(request.clone(), "invoice-42").await?;
    /// let again = client.submit_with_key(request, "invoice-42").await?;
    /// assert_eq!(first, again);
    /// # Ok(()) }
    /// ```
    pub async fn submit_with_key(
        &self,
        request: SubmitRequest,
        idempotency_key: impl AsRef<str>,
    ) -> Result<JobId> {
        let request = self
            .request(Method::POST, &["jobs"], false)
            .header("Idempotency-Key", idempotency_key.as_ref())
            .json(&request);
        let accepted: Accepted = self.json(request).await?;
        Ok(accepted.job_id)
    }

    /// `GET /jobs/{id}`: the job as it is now. An unknown (or pruned) id gives an error for
    /// which [`Error::is_not_found`](crate::Error::is_not_found) is true.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client, id: foreman_client::JobId)
    /// # -> foreman_client::Result<()> {
    /// let job = client.job(id).await?;
    /// println!("{} is {} after {} attempts", job.id, job.state, job.attempts);
    /// # Ok(()) }
    /// ```
    pub async fn job(&self, id: JobId) -> Result<Job> {
        self.json(self.request(Method::GET, &["jobs", &id.to_string()], false))
            .await
    }

    /// `GET /jobs`: a page of jobs, newest first. Pass the page's `next_cursor` to
    /// [`JobQuery::before`] for the next one.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::{JobQuery, JobState};
    /// let page = client.jobs(&JobQuery::new().state(JobState::Queued)).await?;
    /// for job in &page.jobs {
    ///     println!("{} {}", job.id, job.model);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn jobs(&self, query: &JobQuery) -> Result<JobList> {
        let request = self
            .request(Method::GET, &["jobs"], false)
            .query(&query.pairs());
        self.json(request).await
    }

    /// `GET /jobs/{id}/artifacts/{name}`: an artifact's raw bytes and media type. A finished
    /// chat job has at least `completion`, the answer as `text/plain; charset=utf-8`.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client, id: foreman_client::JobId)
    /// # -> foreman_client::Result<()> {
    /// let completion = client.artifact(id, "completion").await?;
    /// println!("{}", completion.text().unwrap_or("<binary>"));
    /// # Ok(()) }
    /// ```
    pub async fn artifact(&self, id: JobId, name: &str) -> Result<ArtifactContent> {
        let id = id.to_string();
        let request = self.request(Method::GET, &["jobs", &id, "artifacts", name], false);
        let response = self.send(request).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let data = response.bytes().await?;
        Ok(ArtifactContent { content_type, data })
    }

    /// `DELETE /jobs/{id}`: cancels a queued or running job (a running one stops
    /// generating) and returns it. A job that already ended gives [`Error::Api`](crate::Error::Api) with
    /// status 409.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client, id: foreman_client::JobId)
    /// # -> foreman_client::Result<()> {
    /// let job = client.cancel(id).await?;
    /// assert_eq!(job.state, foreman_client::JobState::Cancelled);
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        self.json(self.request(Method::DELETE, &["jobs", &id.to_string()], false))
            .await
    }

    /// `GET /queue`: what is waiting, what runs, and which models the target has loaded.
    /// Its shape is not settled yet, so it comes as raw JSON.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// let queue = client.queue().await?;
    /// println!("{} jobs waiting", queue["depth"]);
    /// # Ok(()) }
    /// ```
    pub async fn queue(&self) -> Result<serde_json::Value> {
        self.json(self.request(Method::GET, &["queue"], false))
            .await
    }
}
