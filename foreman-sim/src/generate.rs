//! `/api/chat` and `/api/generate`: one at a time on the simulated GPU, streamed as NDJSON
//! as the tokens come.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use foreman_types::{ChatRequest, GenerateRequest};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::catalog::{timestamp, Model};
use super::generation::{self, Done, Event, Whole};
use super::state::{KeepAlive, Sim};
use super::{model_request, streamed, Rejection, SimConfig};

/// What a thinking model "thinks" before it answers, one token each.
const THINKING: [&str; 6] = [
    "Reading",
    " the",
    " question",
    " and",
    " planning",
    " an answer.",
];

/// The words an answer is padded with after it quotes the prompt.
const FILLER: &str = "and the queue in front of this simulated GPU keeps every request in \
                      order while one model stays loaded and the tokens arrive at a steady pace";

/// Prompt words an answer quotes.
const QUOTED_WORDS: usize = 8;

/// `POST /api/chat`.
pub(super) async fn chat(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let (started, value, _) = model_request(body)?;
    let request =
        ChatRequest::deserialize(&value).map_err(|err| Rejection::bad_request(err.to_string()))?;
    let model = usable_model(&sim, &request.model, "chat")?;
    let messages = &request.messages;
    let prompt = messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .or(messages.last())
        .map(|message| message.content.clone())
        .unwrap_or_default();
    let words: usize = messages.iter().map(|m| word_count(&m.content)).sum();
    let generation = Request {
        reply: Reply {
            endpoint: Endpoint::Chat,
            name: request.model.clone(),
        },
        model,
        prompt,
        prompt_eval_count: (words + 4 * messages.len()).max(1) as u64,
        think: thinks(request.think.as_ref()),
        stream: request.stream.unwrap_or(true),
        num_predict: num_predict(request.options.as_ref()),
        keep_alive: KeepAlive::from_request(request.keep_alive.as_ref()),
        load_only: messages.is_empty(),
        started,
        body: value,
    };
    run(sim, generation).await
}

/// `POST /api/generate`.
pub(super) async fn generate(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let (started, value, _) = model_request(body)?;
    let request = GenerateRequest::deserialize(&value)
        .map_err(|err| Rejection::bad_request(err.to_string()))?;
    let model = usable_model(&sim, &request.model, "generate")?;
    let prompt = request.prompt.clone().unwrap_or_default();
    let system_words = request.system.as_deref().map_or(0, word_count);
    let has_images = request
        .images
        .as_ref()
        .is_some_and(|images| !images.is_empty());
    let generation = Request {
        reply: Reply {
            endpoint: Endpoint::Generate,
            name: request.model.clone(),
        },
        model,
        prompt_eval_count: (word_count(&prompt) + system_words + 4) as u64,
        load_only: prompt.is_empty() && !has_images,
        prompt,
        think: thinks(request.think.as_ref()),
        stream: request.stream.unwrap_or(true),
        num_predict: num_predict(request.options.as_ref()),
        keep_alive: KeepAlive::from_request(request.keep_alive.as_ref()),
        started,
        body: value,
    };
    run(sim, generation).await
}

/// The installed generation model `name`.
pub(super) fn usable_model(sim: &Sim, name: &str, endpoint: &str) -> Result<Model, Rejection> {
    let model = sim
        .find(name)
        .ok_or_else(|| Rejection::model_not_found(name))?;
    if model.embedding {
        let message = format!("\"{name}\" does not support {endpoint}");
        return Err(Rejection::bad_request(message));
    }
    Ok(model)
}

/// One request for the GPU.
#[derive(Debug)]
pub(super) struct Request {
    /// The JSON body, for a generation released by hand to show the test.
    pub(super) body: Value,
    pub(super) reply: Reply,
    pub(super) model: Model,
    /// The text the answer quotes: the last user message, or the prompt.
    pub(super) prompt: String,
    pub(super) prompt_eval_count: u64,
    pub(super) think: bool,
    pub(super) stream: bool,
    /// `options.num_predict`: at most this many answer tokens.
    pub(super) num_predict: Option<usize>,
    pub(super) keep_alive: KeepAlive,
    /// Nothing to answer: the request only loads (or, with `keep_alive: 0`, unloads) the
    /// model, and gets one JSON object with `done_reason` `load` (or `unload`), as in Ollama.
    pub(super) load_only: bool,
    /// When the request arrived, for `total_duration`.
    pub(super) started: Instant,
}

impl Request {
    /// A chat generation for one of the compatible routes (`/v1/...`): streamed only when
    /// the body asks, with the default keep-alive, never a bare load. The route sets what
    /// it reads from the body its own way (prompt, counts, limit, thinking).
    pub(super) fn compatible(body: Value, name: &str, model: Model, started: Instant) -> Self {
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        Self {
            body,
            reply: Reply {
                endpoint: Endpoint::Chat,
                name: name.to_owned(),
            },
            model,
            prompt: String::new(),
            prompt_eval_count: 1,
            think: false,
            stream,
            num_predict: None,
            keep_alive: KeepAlive::from_request(None),
            load_only: false,
            started,
        }
    }

    /// The tokens to produce, and the `done_reason` once they are.
    pub(super) fn plan(&self, config: &SimConfig) -> (Vec<Event>, &'static str) {
        let mut events = Vec::new();
        if self.think {
            events.extend(
                THINKING
                    .iter()
                    .map(|token| Event::Thinking((*token).to_owned())),
            );
        }
        let (count, reason) = match self.num_predict {
            Some(limit) if limit < config.reply_tokens => (limit, "length"),
            _ => (config.reply_tokens, "stop"),
        };
        events.extend(
            answer_tokens(&self.reply.name, &self.prompt, count)
                .into_iter()
                .map(Event::Content),
        );
        (events, reason)
    }
}

async fn run(sim: Arc<Sim>, request: Request) -> Result<Response, Rejection> {
    if request.load_only && request.keep_alive.unloads() {
        sim.release(&request.model, &request.keep_alive);
        return Ok(Json(request.reply.load_answer("unload")).into_response());
    }
    if request.load_only {
        let _in_flight = sim.enter();
        let _gpu = sim.lock_gpu().await.ok_or_else(Rejection::shutting_down)?;
        sim.load(&request.model, &request.keep_alive)
            .await
            .ok_or_else(Rejection::shutting_down)?;
        return Ok(Json(request.reply.load_answer("load")).into_response());
    }
    let reply = request.reply.clone();
    let stream = request.stream;
    let events = generation::start(sim, request).await?;
    if stream {
        let lines = events.map(move |event| event.map(|event| reply.line(&event)));
        return Ok(streamed(lines, "application/x-ndjson"));
    }
    match generation::whole(events).await {
        Ok(whole) => Ok(Json(reply.whole(whole)).into_response()),
        Err(unfinished) => Ok(unfinished.answer(IntoResponse::into_response)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Chat,
    Generate,
}

/// How answers of one endpoint look; they echo the model's name as requested.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) endpoint: Endpoint,
    pub(super) name: String,
}

impl Reply {
    /// The start of every chunk: model, time, and the (empty) text.
    fn chunk(&self, content: &str, thinking: Option<&str>, done: bool) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("model".to_owned(), self.name.clone().into());
        object.insert("created_at".to_owned(), timestamp(Utc::now()).into());
        match self.endpoint {
            Endpoint::Chat => {
                let mut message = json!({ "role": "assistant", "content": content });
                if let Some(thinking) = thinking {
                    message["thinking"] = thinking.into();
                }
                object.insert("message".to_owned(), message);
            }
            Endpoint::Generate => {
                object.insert("response".to_owned(), content.into());
                if let Some(thinking) = thinking {
                    object.insert("thinking".to_owned(), thinking.into());
                }
            }
        }
        object.insert("done".to_owned(), done.into());
        object
    }

    fn finish(&self, mut object: Map<String, Value>, done: &Done) -> Value {
        object.insert("done_reason".to_owned(), done.reason.into());
        if self.endpoint == Endpoint::Generate {
            object.insert("context".to_owned(), done.metrics.context().into());
        }
        done.metrics.write(&mut object);
        Value::Object(object)
    }

    /// One NDJSON line of a streamed answer.
    fn line(&self, event: &Event) -> Bytes {
        let chunk = match event {
            Event::Thinking(token) => Value::Object(self.chunk("", Some(token), false)),
            Event::Content(token) => Value::Object(self.chunk(token, None, false)),
            Event::Failed(message) => json!({ "error": message }),
            Event::Done(done) => self.finish(self.chunk("", None, true), done),
        };
        let mut line = serde_json::to_vec(&chunk).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    /// The answer to a request with `stream: false`.
    fn whole(&self, whole: Whole) -> Value {
        let thinking = (!whole.thinking.is_empty()).then_some(whole.thinking.as_str());
        self.finish(self.chunk(&whole.content, thinking, true), &whole.done)
    }

    /// The answer to a request that only loads or unloads the model.
    fn load_answer(&self, reason: &str) -> Value {
        let mut object = self.chunk("", None, true);
        object.insert("done_reason".to_owned(), reason.into());
        Value::Object(object)
    }
}

/// `count` tokens of a deterministic answer that quotes the prompt, so that a person sees
/// which request it answers: `Simulated answer from llama3.2 to: "Why is the sky..." and ...`.
pub(super) fn answer_tokens(model: &str, prompt: &str, count: usize) -> Vec<String> {
    let mut words: Vec<String> = ["Simulated", "answer", "from", model, "to:"]
        .iter()
        .map(|word| (*word).to_owned())
        .collect();
    let prompt_words: Vec<&str> = prompt.split_whitespace().take(QUOTED_WORDS + 1).collect();
    // Where the quote of the prompt starts and ends, to close it when the answer stops inside.
    let mut quote = None;
    if prompt_words.is_empty() {
        words.push("nothing.".to_owned());
    } else {
        let quoted = &prompt_words[..prompt_words.len().min(QUOTED_WORDS)];
        let start = words.len();
        words.extend(quoted.iter().map(|word| (*word).to_owned()));
        words[start].insert(0, '"');
        let end = if prompt_words.len() > QUOTED_WORDS {
            "...\""
        } else {
            "\""
        };
        if let Some(last) = words.last_mut() {
            last.push_str(end);
        }
        quote = Some(start..words.len() - 1);
    }
    let filler = FILLER.split_whitespace().cycle();
    let missing = count.saturating_sub(words.len());
    words.extend(filler.take(missing).map(str::to_owned));
    words.truncate(count);
    let cut_inside_quote = quote.is_some_and(|quote| quote.contains(&(count.wrapping_sub(1))));
    if let Some(last) = words.last_mut() {
        if cut_inside_quote {
            last.push_str("...\"");
        } else if !last.ends_with(['.', '?', '!', '"', ':']) {
            last.push('.');
        }
    }
    words
        .into_iter()
        .enumerate()
        .map(|(i, word)| if i == 0 { word } else { format!(" {word}") })
        .collect()
}

pub(super) fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Whether `think` asks for thinking: `true`, or a level such as `"high"`.
fn thinks(think: Option<&Value>) -> bool {
    match think {
        Some(Value::Bool(think)) => *think,
        Some(Value::String(level)) => !level.is_empty() && level != "false",
        _ => false,
    }
}

/// `options.num_predict` when it limits the answer (negative means no limit).
fn num_predict(options: Option<&Value>) -> Option<usize> {
    let limit = options?.get("num_predict")?.as_i64()?;
    usize::try_from(limit).ok()
}
