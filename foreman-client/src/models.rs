//! Model management, Ollama's routes for what the target holds: pull, push, create,
//! copy, delete and blobs. Through foreman they need the admin token; against a plain
//! Ollama they work as they do there.

use foreman_types::{CopyRequest, CreateRequest, DeleteRequest, PullRequest, PushRequest};
use reqwest::{Method, StatusCode};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::stream::ProgressStream;

impl Client {
    /// `POST /api/pull`: downloads a model, its progress streamed line by line.
    ///
    /// Each [`ProgressResponse`](crate::ProgressResponse) says what is happening; while a
    /// layer downloads it carries the layer's `digest`, `total` and `completed` bytes. The
    /// stream ends after the `success` line; a failure (a name the registry lacks, a full
    /// disk) comes out as an [`Error::Stream`]. Through foreman, the model is listed by
    /// [`tags`](Client::tags) as soon as the stream has ended, and chats for it sent during
    /// the pull wait in the queue. Dropping the stream cancels the pull.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::PullRequest;
    /// use futures::StreamExt;
    ///
    /// let mut progress = client.pull(PullRequest::new("llama3.2")).await?;
    /// while let Some(line) = progress.next().await {
    ///     let line = line?;
    ///     match (line.completed, line.total) {
    ///         (Some(done), Some(total)) => println!("{}: {done}/{total}", line.status),
    ///         _ => println!("{}", line.status),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn pull(&self, request: PullRequest) -> Result<ProgressStream> {
        self.post_stream(&["api", "pull"], &request.stream(true))
            .await
    }

    /// `POST /api/push`: uploads a model (`namespace/model:tag`) to its registry, its
    /// progress streamed like [`pull`](Client::pull)'s.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::PushRequest;
    /// use futures::TryStreamExt;
    ///
    /// let lines: Vec<_> = client.push(PushRequest::new("me/mine:latest")).await?.try_collect().await?;
    /// assert!(lines.last().is_some_and(|l| l.is_success()));
    /// # Ok(()) }
    /// ```
    pub async fn push(&self, request: PushRequest) -> Result<ProgressStream> {
        self.post_stream(&["api", "push"], &request.stream(true))
            .await
    }

    /// `POST /api/create`: makes a model from another one (`from`) or from uploaded blobs
    /// (`files`, see [`upload_blob`](Client::upload_blob)), its progress streamed like
    /// [`pull`](Client::pull)'s.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::CreateRequest;
    /// use futures::TryStreamExt;
    ///
    /// let request = CreateRequest::new("mario").from("llama3.2").system("You are Mario.");
    /// let lines: Vec<_> = client.create(request).await?.try_collect().await?;
    /// println!("{}", lines.last().map(|l| l.status.as_str()).unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, request: CreateRequest) -> Result<ProgressStream> {
        self.post_stream(&["api", "create"], &request.stream(true))
            .await
    }

    /// `POST /api/copy`: the same model under a second name. An unknown source is
    /// [`Error::Api`] with status 404.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// client.copy(foreman_client::CopyRequest::new("llama3.2", "llama3.2-backup")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy(&self, request: CopyRequest) -> Result<()> {
        self.send_json(Method::POST, &["api", "copy"], &request)
            .await
    }

    /// `DELETE /api/delete`: removes a model and the layers nothing else uses. An unknown
    /// model is [`Error::Api`] with status 404.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// client.delete(foreman_client::DeleteRequest::new("llama3.2-backup")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.send_json(Method::DELETE, &["api", "delete"], &request)
            .await
    }

    /// `HEAD /api/blobs/{digest}`: whether the target has the blob `sha256:<hex>`.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// let digest = "sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2";
    /// if !client.blob_exists(digest).await? {
    ///     println!("upload it first");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn blob_exists(&self, digest: &str) -> Result<bool> {
        let response = self
            .request(Method::HEAD, &["api", "blobs", digest], false)
            .send()
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(Error::from_response(status.as_u16(), b"")),
        }
    }

    /// `POST /api/blobs/{digest}`: uploads a file (a GGUF, an adapter) for
    /// [`create`](Client::create) to use. `body` may be a stream, so a model file is
    /// never read into memory whole; foreman streams it on to the target. The target
    /// refuses a body whose sha256 is not `digest`.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// let weights = std::fs::read("model.gguf").expect("the file");
    /// let digest = "sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2";
    /// client.upload_blob(digest, weights).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_blob(&self, digest: &str, body: impl Into<reqwest::Body>) -> Result<()> {
        // An upload may rightly take longer than any request timeout.
        let request = self
            .request(Method::POST, &["api", "blobs", digest], true)
            .body(body);
        self.send(request).await?;
        Ok(())
    }
}
