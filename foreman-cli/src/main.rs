//! `foreman`: run the server, or talk to one.
//!
//! `foreman serve` runs foreman in front of an Ollama server; every other command is a
//! client of a running foreman, found at `FOREMAN_URL` with `FOREMAN_AUTH_TOKEN` (the
//! admin token or an API key). Exit
//! codes: 0 success, 1 the job or the server failed, 2 usage or configuration error.

mod chat;
mod exit;
mod jobs;
mod keys;
mod models;
mod output;
mod pull_progress;
mod serve;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use foreman_client::Client;
use foreman_server::LogFormat;

use crate::exit::Failure;

/// jemalloc rather than the system's allocator: less CPU per request and less memory
/// per waiting connection (ADR 31). MSVC builds keep the system's.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Share one Ollama server safely: a durable queue, one generation at a time, async jobs
/// with webhooks.
#[derive(Debug, Parser)]
#[command(name = "foreman", version, propagate_version = true)]
#[command(
    after_help = "Client commands talk to the foreman at --url (FOREMAN_URL).\n\
Exit codes: 0 success, 1 the job or the server failed, 2 usage or configuration error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The foreman to talk to
    #[arg(long, global = true, env = "FOREMAN_URL", default_value = foreman_client::DEFAULT_URL)]
    url: String,
    /// Bearer token for foreman: FOREMAN_AUTH_TOKEN or an API key
    #[arg(
        long,
        global = true,
        env = "FOREMAN_AUTH_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run foreman in front of an Ollama server
    Serve(Box<serve::ServeArgs>),
    /// Submit an async chat job; prints its id, or its answer with --wait
    Submit(jobs::SubmitArgs),
    /// List recent jobs, newest first
    Jobs(jobs::ListArgs),
    /// Show one job
    Job(jobs::IdArg),
    /// Wait for a job to finish, showing its progress, then print its answer
    Wait(jobs::WaitArgs),
    /// Fetch a job's artifact (for example `completion`)
    Artifact(jobs::ArtifactArgs),
    /// Cancel a queued or running job
    Cancel(jobs::IdArg),
    /// Chat with a model, streaming the answer as it is generated
    Chat(chat::ChatArgs),
    /// Models loaded on the target, and the queue
    Ps,
    /// Models installed on the target
    Models,
    /// Download a model to the target, showing each layer's progress (admin)
    Pull(models::PullArgs),
    /// Delete models from the target (admin)
    Rm(models::RmArgs),
    /// Copy a model to a new name on the target (admin)
    Cp(models::CpArgs),
    /// Show a model's details, capabilities and parameters
    Show(models::ShowArgs),
    /// Whether foreman is up and its target reachable
    Health,
    /// Create, list and revoke API keys (admin)
    Keys(keys::KeysArgs),
    /// Requests, tokens and GPU time per key, end user and model
    Usage(keys::UsageArgs),
    /// Run the simulated Ollama on its own (no GPU needed), for trying clients and benchmarks
    Sim(serve::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_) | Command::Sim(_));
    let format = match &cli.command {
        Command::Serve(args) => args.log_format(),
        _ => LogFormat::Text,
    };
    init_logging(serving, format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("foreman: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("foreman: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => return serve::serve(*args).await,
        Command::Sim(args) => return serve::simulate(args).await,
        _ => {}
    }
    let client = client(&cli)?;
    let json = cli.json;
    match cli.command {
        Command::Serve(_) | Command::Sim(_) => Ok(()),
        Command::Submit(args) => jobs::submit(&client, args, json).await,
        Command::Jobs(args) => jobs::list(&client, args, json).await,
        Command::Job(args) => jobs::show(&client, args, json).await,
        Command::Wait(args) => jobs::wait(&client, args, json).await,
        Command::Artifact(args) => jobs::artifact(&client, args).await,
        Command::Cancel(args) => jobs::cancel(&client, args, json).await,
        Command::Chat(args) => chat::chat(&client, args, json).await,
        Command::Ps => status::ps(&client, json).await,
        Command::Models => status::models(&client, json).await,
        Command::Pull(args) => models::pull(&client, args, json).await,
        Command::Rm(args) => models::rm(&client, args, json).await,
        Command::Cp(args) => models::cp(&client, args, json).await,
        Command::Show(args) => models::show(&client, args, json).await,
        Command::Health => status::health(&client, json).await,
        Command::Keys(args) => keys::keys(&client, args, json).await,
        Command::Usage(args) => keys::usage(&client, args, json).await,
    }
}

fn client(cli: &Cli) -> Result<Client, Failure> {
    let mut builder = Client::builder().base_url(&cli.url);
    if let Some(token) = cli.token.as_deref().filter(|t| !t.is_empty()) {
        builder = builder.token(token);
    }
    builder
        .build()
        .map_err(|err| Failure::usage(format!("FOREMAN_URL: {err}")))
}

/// Logs go to stderr: `info` for the server, warnings only for client commands.
/// `RUST_LOG` overrides both. `json` writes one object a line: `timestamp`, `level`,
/// `target` and the event's `fields` (with its `message`). The fields stay nested: some
/// are named `target` themselves, and flattened they would collide with it.
fn init_logging(serving: bool, format: LogFormat) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => logs.json().try_init(),
        _ => logs.try_init(),
    };
}
