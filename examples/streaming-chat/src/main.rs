//! Stream a chat token by token, through foreman or straight from Ollama: the SDK's
//! Ollama half speaks Ollama's own API.
//!
//! ```sh
//! cargo run -p foreman-cli -- serve --sim &
//! cargo run -p example-streaming-chat -- "Tell me about GPUs"
//! FOREMAN_URL=http://127.0.0.1:11434 cargo run -p example-streaming-chat   # plain Ollama
//! ```

use std::io::Write;

use foreman_client::{ChatMessage, ChatRequest, Client};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Why is the sky blue?".into());
    let client = Client::from_env()?;
    let request = ChatRequest::new("llama3.2", vec![ChatMessage::user(prompt)]);
    let mut stream = client.chat_stream(request).await?;
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        write!(out, "{}", chunk.message.content)?;
        out.flush()?;
        if chunk.done {
            writeln!(out)?;
            if let Some(tokens) = chunk.metrics.eval_count {
                eprintln!("{tokens} tokens");
            }
        }
    }
    Ok(())
}
