//! Manual release ([`Release::Manual`](crate::Release::Manual)): the test, not the clock,
//! decides when each token of a generation leaves, when the generation ends and how; and
//! likewise for each line of a pull's progress ([`Pull`]).

use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

/// What the test sends down a generation's stream.
#[derive(Debug)]
pub(crate) enum Step {
    Token(String),
    Fail(String),
    Finish,
    Cut,
}

/// The receiving end of one manual stream's steps ([`Step`] for a generation,
/// [`PullStep`](crate::manual_pull::PullStep) for a pull), and how it tells its handle
/// that the client hung up.
#[derive(Debug)]
pub(crate) struct Steps<S> {
    pub(crate) receiver: mpsc::UnboundedReceiver<S>,
    pub(crate) hung_up: CancellationToken,
}

/// The test's end of one manual stream: where its steps go, and the signal that the
/// client hung up. Both [`Generation`] and [`Pull`](crate::Pull) hold one.
#[derive(Debug)]
pub(crate) struct Stepper<S> {
    steps: mpsc::UnboundedSender<S>,
    hung_up: CancellationToken,
}

impl<S> Stepper<S> {
    /// A handle's end and the receiving end its stream reads.
    pub(crate) fn new() -> (Self, Steps<S>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let hung_up = CancellationToken::new();
        let steps = Steps {
            receiver,
            hung_up: hung_up.clone(),
        };
        let stepper = Self {
            steps: sender,
            hung_up,
        };
        (stepper, steps)
    }

    pub(crate) fn send(&self, step: S) {
        // A send error means the stream is gone (the client left): nowhere to go.
        let _ = self.steps.send(step);
    }

    pub(crate) async fn hung_up(&self) {
        self.hung_up.cancelled().await;
    }
}

/// One generation on the simulated GPU, released by hand.
///
/// It answers in the format of the route it came in on: NDJSON chunks for `/api/chat` and
/// `/api/generate`; server-sent events for `/v1/chat/completions` and `/v1/completions`;
/// Anthropic's named events for `/v1/messages` (the first token also opens the message,
/// each token is a `content_block_delta`); the Responses API's named events for
/// `/v1/responses` (each token a `response.output_text.delta`); one JSON object once
/// finished when the request did not stream.
///
/// The stream stays open, holding the GPU, while this handle lives; dropping the handle
/// without [`finish`](Self::finish) or [`fail`](Self::fail) cuts the stream, as if Ollama
/// crashed.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use std::time::Duration;
/// use foreman_sim::SimConfig;
///
/// let sim = foreman_sim::spawn(SimConfig::manual()).await?;
/// // ... start a streaming chat against sim.url(), directly or through a proxy ...
/// let generation = sim
///     .next_generation(Duration::from_secs(5))
///     .await
///     .expect("a generation");
/// assert_eq!(generation.request()["model"], "llama3.2");
/// generation.token("Hel");
/// generation.token("lo");
/// generation.finish();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Generation {
    request: Value,
    steps: Stepper<Step>,
}

impl Generation {
    /// A handle and the receiving end its stream reads.
    pub(crate) fn new(request: Value) -> (Self, Steps<Step>) {
        let (steps, receiving) = Stepper::new();
        (Self { request, steps }, receiving)
    }

    /// The request's JSON body, as the client sent it.
    pub fn request(&self) -> &Value {
        &self.request
    }

    /// Sends one answer token: one chunk of the stream (for `stream: false`, a piece of
    /// the answer to come). Nothing happens once the client has hung up.
    pub fn token(&self, text: &str) {
        self.steps.send(Step::Token(text.to_owned()));
    }

    /// Ends the generation as Ollama ends one: the final chunk with `done_reason: "stop"`
    /// and its metrics (`data: [DONE]` on the OpenAI routes, `message_delta` and
    /// `message_stop` on `/v1/messages`, `response.completed` on `/v1/responses`), or the
    /// whole answer.
    pub fn finish(self) {
        self.steps.send(Step::Finish);
    }

    /// Ends the generation with an error, as Ollama reports one mid-stream (out of memory,
    /// a crashed runner): the line `{"error": message}` (an OpenAI-shaped error event on
    /// the `/v1` routes, an `event: error` in each API's shape on `/v1/messages` and
    /// `/v1/responses`), or, when the request did not stream, a 500 with that message.
    pub fn fail(self, message: &str) {
        self.steps.send(Step::Fail(message.to_owned()));
    }

    /// Breaks the connection off without the response's proper end, as when the target
    /// crashes. Before the first token, the client sees the connection fail.
    pub fn cut(self) {
        self.steps.send(Step::Cut);
    }

    /// Resolves once the client has hung up before the generation ended; never otherwise,
    /// so wrap it in a timeout.
    pub async fn hung_up(&self) {
        self.steps.hung_up().await;
    }
}

/// The generations (or pulls) started in manual mode, in the order they started, until the
/// test takes them.
#[derive(Debug)]
pub(crate) struct Started<T> {
    sender: mpsc::UnboundedSender<T>,
    receiver: Mutex<mpsc::UnboundedReceiver<T>>,
}

impl<T> Started<T> {
    pub(crate) fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Mutex::new(receiver),
        }
    }

    pub(crate) fn push(&self, handle: T) {
        // The receiver lives as long as the sender, in the same value.
        let _ = self.sender.send(handle);
    }

    pub(crate) async fn next(&self, deadline: Duration) -> Option<T> {
        let mut receiver = self.receiver.lock().await;
        tokio::time::timeout(deadline, receiver.recv())
            .await
            .ok()
            .flatten()
    }
}
