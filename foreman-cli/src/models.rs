//! The model commands: pull, rm, cp, show. Through foreman the first three need the admin
//! token, as they change what the GPU box holds.

use std::io::IsTerminal;

use clap::Args;
use foreman_client::{Client, CopyRequest, DeleteRequest, PullRequest, ShowRequest, ShowResponse};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::exit::Failure;
use crate::output::print_json;
use crate::pull_progress::{Bars, Lines, PullView};

/// `foreman pull`.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// The model to pull, e.g. llama3.2 or hf.co/org/repo:Q4_K_M
    model: String,
    /// Allow a registry without TLS
    #[arg(long)]
    insecure: bool,
}

/// `foreman rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The models to delete
    #[arg(required = true)]
    models: Vec<String>,
}

/// `foreman cp`.
#[derive(Debug, Args)]
pub(crate) struct CpArgs {
    /// The model to copy
    source: String,
    /// The new name
    destination: String,
}

/// `foreman show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The model to describe
    model: String,
    /// Print the Modelfile instead
    #[arg(long)]
    modelfile: bool,
}

fn write_failed(err: std::io::Error) -> Failure {
    Failure::server(format!("cannot write to stdout: {err}"))
}

pub(crate) async fn pull(client: &Client, args: PullArgs, json: bool) -> Result<(), Failure> {
    let mut request = PullRequest::new(args.model);
    if args.insecure {
        request = request.insecure(true);
    }
    let mut progress = client.pull(request).await?;
    let stdout = std::io::stdout();
    let mut view = if json {
        PullView::Json(stdout.lock())
    } else if stdout.is_terminal() {
        PullView::Bars(Bars::new())
    } else {
        PullView::Lines(Lines::new(stdout.lock()))
    };
    while let Some(line) = progress.next().await {
        match line {
            Ok(line) => view.show(&line).map_err(write_failed)?,
            Err(err) => {
                view.finish();
                return Err(err.into());
            }
        }
    }
    view.finish();
    Ok(())
}

pub(crate) async fn rm(client: &Client, args: RmArgs, json: bool) -> Result<(), Failure> {
    let mut deleted = Vec::new();
    for model in args.models {
        client.delete(DeleteRequest::new(model.clone())).await?;
        if !json {
            println!("deleted '{model}'");
        }
        deleted.push(model);
    }
    if json {
        return print_json(&json!({ "deleted": deleted }));
    }
    Ok(())
}

pub(crate) async fn cp(client: &Client, args: CpArgs, json: bool) -> Result<(), Failure> {
    let request = CopyRequest::new(args.source.clone(), args.destination.clone());
    client.copy(request).await?;
    if json {
        return print_json(&json!({ "source": args.source, "destination": args.destination }));
    }
    println!("copied '{}' to '{}'", args.source, args.destination);
    Ok(())
}

pub(crate) async fn show(client: &Client, args: ShowArgs, json: bool) -> Result<(), Failure> {
    let shown = client.show(ShowRequest::new(args.model)).await?;
    if json {
        return print_json(&shown);
    }
    if args.modelfile {
        print!("{}", shown.modelfile.unwrap_or_default());
        return Ok(());
    }
    for (title, rows) in sections(&shown) {
        if rows.is_empty() {
            continue;
        }
        println!("  {title}");
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in rows {
            if value.is_empty() {
                println!("    {key}");
            } else {
                println!("    {key:<width$}    {value}");
            }
        }
        println!();
    }
    Ok(())
}

/// What `ollama show` prints: the model's shape, its capabilities, its parameters and
/// the start of its licence.
fn sections(shown: &ShowResponse) -> Vec<(&'static str, Vec<(String, String)>)> {
    let info = shown.extra.get("model_info").and_then(Value::as_object);
    let info_ending = |suffix: &str| {
        info.and_then(|info| {
            info.iter()
                .find(|(key, _)| key.ends_with(suffix))
                .map(|(_, value)| value.to_string())
        })
    };
    let details = &shown.details;
    let mut model = Vec::new();
    let mut push = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            model.push((key.to_owned(), value));
        }
    };
    push("architecture", details.family.clone());
    push("parameters", details.parameter_size.clone());
    push("context length", info_ending(".context_length"));
    push("embedding length", info_ending(".embedding_length"));
    push("quantization", details.quantization_level.clone());

    let capabilities = shown
        .capabilities
        .iter()
        .flatten()
        .map(|c| (c.clone(), String::new()))
        .collect();
    let parameters = shown
        .parameters
        .iter()
        .flat_map(|p| p.lines())
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(char::is_whitespace)?;
            Some((key.to_owned(), value.trim().to_owned()))
        })
        .collect();
    let license = shown
        .license
        .iter()
        .flat_map(|l| l.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .take(2)
        .map(|line| (line.to_owned(), String::new()))
        .collect();
    vec![
        ("Model", model),
        ("Capabilities", capabilities),
        ("Parameters", parameters),
        ("License", license),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_lists_what_ollama_show_lists() {
        let shown: ShowResponse = serde_json::from_value(json!({
            "details": {"family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
            "model_info": {"llama.context_length": 131072, "llama.embedding_length": 3072},
            "capabilities": ["completion", "tools"],
            "parameters": "stop                           \"<|eot_id|>\"\nnum_ctx 4096",
            "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: September 25, 2024\nmore",
        }))
        .unwrap();
        let sections = sections(&shown);
        let model: Vec<(&str, &str)> = sections[0]
            .1
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            model,
            [
                ("architecture", "llama"),
                ("parameters", "3.2B"),
                ("context length", "131072"),
                ("embedding length", "3072"),
                ("quantization", "Q4_K_M")
            ]
        );
        assert_eq!(sections[1].1.len(), 2);
        assert_eq!(sections[2].1[0], ("stop".into(), "\"<|eot_id|>\"".into()));
        assert_eq!(sections[3].1.len(), 2, "the licence's first two lines");
    }
}
