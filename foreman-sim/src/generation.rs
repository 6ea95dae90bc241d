//! One generation on the simulated GPU: waiting for the GPU, loading the model, and
//! producing the tokens, timed by the clock or released by the test. The routes format the
//! [`Event`]s it yields their own way: NDJSON in `generate`, server-sent events in `openai`.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::generate::Request;
use super::manual::{Generation, Step, Steps};
use super::state::{InFlight, Sim};
use super::{Rejection, Release};

/// What a generation produces, in order: thinking and content tokens, then its end.
#[derive(Debug)]
pub(super) enum Event {
    Thinking(String),
    Content(String),
    /// The end by an error, as Ollama reports one mid-stream (released by hand only).
    Failed(String),
    Done(Done),
}

/// How a generation ended.
#[derive(Debug)]
pub(super) struct Done {
    /// `stop`, or `length` when `num_predict` cut it short.
    pub(super) reason: &'static str,
    pub(super) metrics: Metrics,
}

/// Ollama's timings of a generation, in nanoseconds on the wire.
#[derive(Debug)]
pub(super) struct Metrics {
    total_duration: Duration,
    load_duration: Duration,
    pub(super) prompt_eval_count: u64,
    prompt_eval_duration: Duration,
    pub(super) eval_count: u64,
    eval_duration: Duration,
}

impl Metrics {
    pub(super) fn write(&self, object: &mut Map<String, Value>) {
        let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let fields = [
            ("total_duration", nanos(self.total_duration)),
            ("load_duration", nanos(self.load_duration)),
            ("prompt_eval_count", self.prompt_eval_count),
            ("prompt_eval_duration", nanos(self.prompt_eval_duration)),
            ("eval_count", self.eval_count),
            ("eval_duration", nanos(self.eval_duration)),
        ];
        for (name, value) in fields {
            object.insert(name.to_owned(), value.into());
        }
    }

    /// A made-up `context` for `/api/generate`: one number per token.
    pub(super) fn context(&self) -> Vec<u64> {
        (1..=self.prompt_eval_count + self.eval_count)
            .map(|i| (i * 7919) % 128_000)
            .collect()
    }
}

/// Waits for the GPU, loads the model if it is not resident, and starts the generation:
/// its events, each `Err` breaking the connection off (released by hand only). In manual
/// release, the generation's handle goes to the test now.
pub(super) async fn start(
    sim: Arc<Sim>,
    mut request: Request,
) -> Result<impl Stream<Item = std::io::Result<Event>> + Send + 'static, Rejection> {
    let in_flight = sim.enter();
    let gpu = sim.lock_gpu().await.ok_or_else(Rejection::shutting_down)?;
    let load_duration = sim
        .load(&request.model, &request.keep_alive)
        .await
        .ok_or_else(Rejection::shutting_down)?;
    sim.count_generation();
    tracing::debug!(model = %request.model.key, "simulated generation started");
    // Only a test needs the body (which may carry images), and only now.
    let body = std::mem::take(&mut request.body);
    let pace = match sim.config.release {
        Release::Timed => Pace::Timed,
        Release::Manual => {
            let (generation, steps) = Generation::new(body);
            sim.started.push(generation);
            Pace::Manual(steps)
        }
    };
    Ok(produce(sim, request, gpu, in_flight, load_duration, pace))
}

/// Who releases the tokens.
enum Pace {
    Timed,
    Manual(Steps<Step>),
}

/// Where the next token comes from, once the prompt is evaluated.
enum Source {
    Clock {
        tokens: std::vec::IntoIter<Event>,
        reason: &'static str,
        interval: Duration,
        deadline: Instant,
    },
    Hand(tokio::sync::mpsc::UnboundedReceiver<Step>),
}

enum Next {
    Token(Event),
    End(&'static str),
    Failed(String),
    Cut,
    ShuttingDown,
}

impl Source {
    async fn next(&mut self, sim: &Sim) -> Next {
        match self {
            Self::Clock {
                tokens,
                reason,
                interval,
                deadline,
            } => {
                let Some(token) = tokens.next() else {
                    // The final chunk too leaves in a write of its own.
                    tokio::task::yield_now().await;
                    return Next::End(reason);
                };
                // Deadlines from the start, so that the rate holds however late each wake-up is.
                *deadline += *interval;
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    // Let the last token leave in a write of its own, as Ollama flushes each.
                    tokio::task::yield_now().await;
                }
                if sim.sleep(wait).await {
                    Next::Token(token)
                } else {
                    Next::ShuttingDown
                }
            }
            Self::Hand(steps) => {
                let step = tokio::select! {
                    step = steps.recv() => step,
                    () = sim.shutdown.cancelled() => return Next::ShuttingDown,
                };
                match step {
                    Some(Step::Token(text)) => Next::Token(Event::Content(text)),
                    Some(Step::Finish) => Next::End("stop"),
                    Some(Step::Fail(message)) => Next::Failed(message),
                    // The handle was dropped without an end: as good as cut.
                    Some(Step::Cut) | None => Next::Cut,
                }
            }
        }
    }
}

/// The events of one generation, produced while holding the GPU. Dropping the stream (the
/// client went away) drops the GPU guard, so the next request can start.
fn produce(
    sim: Arc<Sim>,
    request: Request,
    gpu: OwnedMutexGuard<()>,
    in_flight: InFlight,
    load_duration: Duration,
    pace: Pace,
) -> impl Stream<Item = std::io::Result<Event>> + Send + 'static {
    async_stream::stream! {
        let _gpu = gpu;
        let _in_flight = in_flight;
        let (pace, hung_up) = match pace {
            Pace::Timed => (None, None),
            Pace::Manual(steps) => (Some(steps.receiver), Some(steps.hung_up)),
        };
        let mut watch = HangUpWatch { sim: Arc::clone(&sim), hung_up, ended: false };
        let prompt_started = Instant::now();
        if !sim.sleep(sim.config.first_token_latency).await {
            return;
        }
        let prompt_eval_duration = prompt_started.elapsed();
        let eval_started = Instant::now();
        let mut source = match pace {
            None => {
                let (tokens, reason) = request.plan(&sim.config);
                Source::Clock {
                    tokens: tokens.into_iter(),
                    reason,
                    interval: sim.config.token_interval(),
                    deadline: eval_started,
                }
            }
            Some(steps) => Source::Hand(steps),
        };
        let mut eval_count = 0;
        let reason = loop {
            match source.next(&sim).await {
                Next::Token(token) => {
                    sim.count_token();
                    eval_count += 1;
                    yield Ok(token);
                }
                Next::End(reason) => break reason,
                Next::Failed(message) => {
                    watch.ended = true;
                    sim.release(&request.model, &request.keep_alive);
                    yield Ok(Event::Failed(message));
                    return;
                }
                Next::Cut => {
                    watch.ended = true;
                    yield Err(broken_off_error());
                    return;
                }
                Next::ShuttingDown => return,
            }
        };
        let eval_duration = eval_started.elapsed();
        sim.release(&request.model, &request.keep_alive);
        // Before the last event: a client may hang up as soon as it has it.
        watch.ended = true;
        yield Ok(Event::Done(Done {
            reason,
            metrics: Metrics {
                total_duration: request.started.elapsed(),
                load_duration,
                prompt_eval_count: request.prompt_eval_count,
                prompt_eval_duration,
                eval_count,
                eval_duration,
            },
        }));
    }
}

/// Notes a generation dropped before its end while the simulator runs: its client hung up.
struct HangUpWatch {
    sim: Arc<Sim>,
    /// Tells a generation released by hand.
    hung_up: Option<CancellationToken>,
    ended: bool,
}

impl Drop for HangUpWatch {
    fn drop(&mut self) {
        if self.ended || self.sim.shutdown.is_cancelled() {
            return;
        }
        self.sim.count_hang_up();
        if let Some(hung_up) = &self.hung_up {
            hung_up.cancel();
        }
        tracing::debug!("the client of a simulated generation hung up");
    }
}

/// A generation's whole answer, for a request with `stream: false`.
#[derive(Debug)]
pub(super) struct Whole {
    pub(super) content: String,
    pub(super) thinking: String,
    pub(super) done: Done,
}

/// Why a generation gave no whole answer.
#[derive(Debug)]
pub(super) enum Unfinished {
    Failed(String),
    Cut,
    ShuttingDown,
}

impl Unfinished {
    /// The answer to the `stream: false` request; `render` shapes its errors for the route.
    pub(super) fn answer(self, render: impl FnOnce(Rejection) -> Response) -> Response {
        match self {
            Self::Failed(message) => {
                render(Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, message))
            }
            Self::ShuttingDown => render(Rejection::shutting_down()),
            Self::Cut => {
                let body = futures::stream::once(async { Err::<Bytes, _>(broken_off_error()) });
                Response::new(Body::from_stream(body))
            }
        }
    }
}

/// Waits for the whole answer: the same wait as a stream, then everything at once.
pub(super) async fn whole(
    events: impl Stream<Item = std::io::Result<Event>>,
) -> Result<Whole, Unfinished> {
    let mut events = pin!(events);
    let (mut content, mut thinking) = (String::new(), String::new());
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Thinking(token)) => thinking.push_str(&token),
            Ok(Event::Content(token)) => content.push_str(&token),
            Ok(Event::Failed(message)) => return Err(Unfinished::Failed(message)),
            Ok(Event::Done(done)) => {
                return Ok(Whole {
                    content,
                    thinking,
                    done,
                })
            }
            Err(_) => return Err(Unfinished::Cut),
        }
    }
    Err(Unfinished::ShuttingDown)
}

fn broken_off_error() -> std::io::Error {
    std::io::Error::other("the simulated Ollama broke the generation off")
}
