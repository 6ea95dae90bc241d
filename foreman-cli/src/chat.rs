//! `foreman chat`: stream a chat's tokens as they are generated.

use std::io::Write;

use clap::Args;
use foreman_client::{ChatMessage, ChatRequest, Client};
use futures::StreamExt;

use crate::exit::Failure;

/// `foreman chat`.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The model to chat with
    #[arg(long, short)]
    model: String,
    /// A system prompt
    #[arg(long)]
    system: Option<String>,
    /// Show the model's thinking (on stderr) for models that think
    #[arg(long)]
    think: bool,
    /// The prompt
    prompt: String,
}

pub(crate) async fn chat(client: &Client, args: ChatArgs, json: bool) -> Result<(), Failure> {
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::system(system));
    }
    messages.push(ChatMessage::user(args.prompt));
    let mut request = ChatRequest::new(args.model, messages);
    if args.think {
        request = request.think(true);
    }
    let mut stream = client.chat_stream(request).await?;
    let mut out = std::io::stdout().lock();
    let write_failed =
        |err: std::io::Error| Failure::server(format!("cannot write to stdout: {err}"));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if json {
            let line = serde_json::to_string(&chunk)
                .map_err(|err| Failure::server(format!("cannot encode JSON: {err}")))?;
            writeln!(out, "{line}").map_err(write_failed)?;
            continue;
        }
        if let Some(thinking) = chunk.message.thinking.as_deref().filter(|t| !t.is_empty()) {
            eprint!("{thinking}");
        }
        write!(out, "{}", chunk.message.content).map_err(write_failed)?;
        out.flush().map_err(write_failed)?;
        if chunk.done && !chunk.message.content.ends_with('\n') {
            writeln!(out).map_err(write_failed)?;
        }
    }
    Ok(())
}
