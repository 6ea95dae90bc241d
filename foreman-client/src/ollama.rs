//! The Ollama half of the API: what foreman serves under `/api/*`, exactly as Ollama does, so
//! these methods work against a plain Ollama too.

use foreman_types::{
    ChatChunk, ChatRequest, EmbedRequest, EmbedResponse, EmbeddingsRequest, EmbeddingsResponse,
    GenerateChunk, GenerateRequest, PsResponse, ShowRequest, ShowResponse, TagsResponse,
    VersionResponse,
};
use reqwest::Method;

use crate::client::Client;
use crate::error::Result;
use crate::stream::{ChatStream, GenerateStream};

impl Client {
    /// `POST /api/chat` with `stream: false`: the whole answer as one chunk.
    ///
    /// Through foreman the request waits for its turn in the queue, so this returns when the
    /// generation is finished; an unknown model gives [`Error::Api`](crate::Error::Api) with
    /// status 404.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::{ChatMessage, ChatRequest};
    /// let request = ChatRequest::new("llama3.2", vec![ChatMessage::user("Why is the sky blue?")]);
    /// let answer = client.chat(request).await?;
    /// println!("{}", answer.message.content);
    /// # Ok(()) }
    /// ```
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatChunk> {
        let request = request.stream(false);
        self.post_json(&["api", "chat"], &request).await
    }

    /// `POST /api/chat` with `stream: true`: the answer chunk by chunk, as the model writes it.
    ///
    /// Errors before the answer starts (an unknown model, a full queue, a bad token) are
    /// returned here; errors after it started come out of the [`ChatStream`]. Dropping the
    /// stream stops the generation.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::{ChatMessage, ChatRequest};
    /// use futures::StreamExt;
    ///
    /// let request = ChatRequest::new("llama3.2", vec![ChatMessage::user("Tell me a story")]);
    /// let mut stream = client.chat_stream(request).await?;
    /// while let Some(chunk) = stream.next().await {
    ///     print!("{}", chunk?.message.content);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let request = request.stream(true);
        self.post_stream(&["api", "chat"], &request).await
    }

    /// `POST /api/generate` with `stream: false`: the whole completion as one chunk.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::GenerateRequest;
    /// let answer = client.generate(GenerateRequest::new("llama3.2", "Say hi")).await?;
    /// println!("{}", answer.response);
    /// # Ok(()) }
    /// ```
    pub async fn generate(&self, request: GenerateRequest) -> Result<GenerateChunk> {
        let request = request.stream(false);
        self.post_json(&["api", "generate"], &request).await
    }

    /// `POST /api/generate` with `stream: true`; it behaves like
    /// [`chat_stream`](Client::chat_stream).
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::GenerateRequest;
    /// use futures::TryStreamExt;
    ///
    /// let stream = client.generate_stream(GenerateRequest::new("llama3.2", "Count to 5")).await?;
    /// let text: String = stream.map_ok(|chunk| chunk.response).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn generate_stream(&self, request: GenerateRequest) -> Result<GenerateStream> {
        let request = request.stream(true);
        self.post_stream(&["api", "generate"], &request).await
    }

    /// `POST /api/embed`: one vector per input. foreman passes embeddings straight to the
    /// target, never through the queue.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::EmbedRequest;
    /// let texts = vec!["first".to_owned(), "second".to_owned()];
    /// let answer = client.embed(EmbedRequest::new("all-minilm", texts)).await?;
    /// assert_eq!(answer.embeddings.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn embed(&self, request: EmbedRequest) -> Result<EmbedResponse> {
        self.post_json(&["api", "embed"], &request).await
    }

    /// `POST /api/embeddings`, Ollama's legacy single-prompt form.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// let request = foreman_client::EmbeddingsRequest {
    ///     model: "all-minilm".into(),
    ///     prompt: "Here is an article".into(),
    ///     extra: Default::default(),
    /// };
    /// let answer = client.embeddings(request).await?;
    /// println!("{} dimensions", answer.embedding.len());
    /// # Ok(()) }
    /// ```
    pub async fn embeddings(&self, request: EmbeddingsRequest) -> Result<EmbeddingsResponse> {
        self.post_json(&["api", "embeddings"], &request).await
    }

    /// `GET /api/tags`: the models installed on the target (through foreman, as last polled).
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// for model in client.tags().await?.models {
    ///     println!("{} ({} bytes)", model.name, model.size);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn tags(&self) -> Result<TagsResponse> {
        self.json(self.request(Method::GET, &["api", "tags"], false))
            .await
    }

    /// `GET /api/ps`: the models loaded in memory on the target.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// for model in client.ps().await?.models {
    ///     println!("{} uses {} bytes of VRAM", model.name, model.size_vram);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ps(&self) -> Result<PsResponse> {
        self.json(self.request(Method::GET, &["api", "ps"], false))
            .await
    }

    /// `POST /api/show`: a model's details, template and capabilities.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// use foreman_client::ShowRequest;
    /// let shown = client.show(ShowRequest::new("llama3.2")).await?;
    /// println!("{:?}", shown.capabilities);
    /// # Ok(()) }
    /// ```
    pub async fn show(&self, request: ShowRequest) -> Result<ShowResponse> {
        self.post_json(&["api", "show"], &request).await
    }

    /// `GET /api/version`: the target's Ollama version.
    ///
    /// ```no_run
    /// # async fn run(client: foreman_client::Client) -> foreman_client::Result<()> {
    /// println!("Ollama {}", client.version().await?.version);
    /// # Ok(()) }
    /// ```
    pub async fn version(&self) -> Result<VersionResponse> {
        self.json(self.request(Method::GET, &["api", "version"], false))
            .await
    }
}
