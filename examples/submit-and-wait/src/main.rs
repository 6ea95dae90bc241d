//! Submit an async job, follow it to the end, print the answer.
//!
//! ```sh
//! cargo run -p foreman-cli -- serve --sim &
//! cargo run -p example-submit-and-wait -- "Write a haiku about queues"
//! ```
//!
//! Reads `FOREMAN_URL` and `FOREMAN_AUTH_TOKEN` like the CLI.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, Client, JobState, SubmitRequest};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Why is the sky blue?".into());
    let client = Client::from_env()?;
    let chat = ChatRequest::new("llama3.2", vec![ChatMessage::user(prompt)]);
    let id = client.submit(SubmitRequest::new(chat)).await?;
    println!("submitted {id}");

    // Each change of state, as it happens.
    let mut updates = client.watch(id);
    while let Some(job) = updates.next().await {
        let job = job?;
        match job.queue_position {
            Some(ahead) => println!("{} ({ahead} ahead)", job.state),
            None => println!("{}", job.state),
        }
    }

    let job = client.wait(id, Duration::from_secs(600)).await?;
    if job.state != JobState::Done {
        return Err(format!("job {}: {}", job.state, job.error.unwrap_or_default()).into());
    }
    let answer = client.artifact(id, "completion").await?;
    println!("{}", answer.text().unwrap_or("(not text)"));
    Ok(())
}
