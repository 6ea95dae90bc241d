//! `foreman ps`, `foreman models`, `foreman health`.

use chrono::{DateTime, Utc};
use foreman_client::Client;
use serde_json::Value;

use crate::exit::Failure;
use crate::output::{print_json, print_table, short_duration, size};

pub(crate) async fn ps(client: &Client, json: bool) -> Result<(), Failure> {
    let (ps, queue) = tokio::try_join!(client.ps(), client.queue())?;
    if json {
        return print_json(&serde_json::json!({ "models": ps.models, "queue": queue }));
    }
    let targets = queue["targets"].as_array().cloned().unwrap_or_default();
    // With one target, the table looks as it always has; with several, each row says where.
    let several = targets.len() > 1;
    if ps.models.is_empty() {
        println!("no models loaded");
    } else {
        let rows: Vec<Vec<String>> = ps
            .models
            .iter()
            .map(|m| {
                let mut row = vec![
                    m.name.clone(),
                    size(m.size),
                    size(m.size_vram),
                    m.expires_at.as_deref().map(until).unwrap_or_default(),
                ];
                if several {
                    row.push(holders(m.extra.get("targets"), m.extra.get("target")));
                }
                row
            })
            .collect();
        let mut header = vec!["NAME", "SIZE", "VRAM", "UNTIL"];
        if several {
            header.push("TARGET");
        }
        print_table(&header, &rows);
    }
    println!();
    if several {
        let rows: Vec<Vec<String>> = targets
            .iter()
            .map(|t| {
                let text = |field: &str| t[field].as_str().unwrap_or("?").to_owned();
                let running = t["running"].as_u64().unwrap_or(0);
                vec![
                    text("name"),
                    if t["up"].as_bool() == Some(true) {
                        "up"
                    } else {
                        "DOWN"
                    }
                    .to_owned(),
                    format!("{running}/{}", t["parallel"].as_u64().unwrap_or(1)),
                    list(&t["resident"]),
                    text("url"),
                ]
            })
            .collect();
        print_table(&["TARGET", "STATE", "RUNNING", "RESIDENT", "URL"], &rows);
        println!();
    }
    let depth = queue["depth"].as_u64().unwrap_or(0);
    let swaps = queue["model_swaps"].as_u64().unwrap_or(0);
    println!("queue: {depth} waiting, {swaps} model swaps so far");
    let running: Vec<&Value> = match queue["running_jobs"].as_array() {
        Some(jobs) => jobs.iter().collect(),
        None => queue
            .get("running")
            .filter(|r| r.is_object())
            .into_iter()
            .collect(),
    };
    for job in running {
        let field = |name: &str| job.get(name).and_then(Value::as_str).unwrap_or("?");
        let on = match job.get("target").and_then(Value::as_str) {
            Some(target) if several => format!(" on {target}"),
            _ => String::new(),
        };
        println!(
            "running: {} {} ({}){on}",
            field("id"),
            field("model"),
            field("state"),
        );
    }
    if let Some(by_model) = queue["by_model"].as_array().filter(|m| !m.is_empty()) {
        let rows: Vec<Vec<String>> = by_model
            .iter()
            .map(|m| {
                vec![
                    m["model"].as_str().unwrap_or("?").to_owned(),
                    m["queued"].as_u64().unwrap_or(0).to_string(),
                ]
            })
            .collect();
        print_table(&["MODEL", "QUEUED"], &rows);
    }
    if queue["degraded"].as_bool() == Some(true) {
        let down: Vec<&str> = targets
            .iter()
            .filter(|t| t["up"].as_bool() == Some(false))
            .filter_map(|t| t["name"].as_str())
            .collect();
        if several && !down.is_empty() {
            println!(
                "warning: {} unreachable; the work only it can run waits for it",
                down.join(", ")
            );
        } else {
            println!("warning: the target is unreachable; work is kept until it returns");
        }
    }
    Ok(())
}

/// The targets holding a loaded model, from `/api/ps`'s `targets` (or `target`).
fn holders(targets: Option<&Value>, target: Option<&Value>) -> String {
    match (targets, target) {
        (Some(targets @ Value::Array(_)), _) => list(targets),
        (_, Some(Value::String(target))) => target.clone(),
        _ => String::new(),
    }
}

/// A JSON array of strings as `a, b`.
fn list(values: &Value) -> String {
    values
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `in 4m` for an expiry time, or the raw text if it does not parse.
fn until(expires_at: &str) -> String {
    match DateTime::parse_from_rfc3339(expires_at) {
        Ok(at) => {
            let left = at.with_timezone(&Utc) - Utc::now();
            match left.to_std() {
                Ok(left) if left.as_secs() > 10 * 365 * 86_400 => "forever".into(),
                Ok(left) => format!("in {}", short_duration(left)),
                Err(_) => "expiring".into(),
            }
        }
        Err(_) => expires_at.to_owned(),
    }
}

pub(crate) async fn models(client: &Client, json: bool) -> Result<(), Failure> {
    let tags = client.tags().await?;
    if json {
        return print_json(&tags);
    }
    let rows: Vec<Vec<String>> = tags
        .models
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                size(m.size),
                m.details.parameter_size.clone().unwrap_or_default(),
                m.details.quantization_level.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no models installed");
        return Ok(());
    }
    print_table(&["NAME", "SIZE", "PARAMETERS", "QUANTIZATION"], &rows);
    Ok(())
}

pub(crate) async fn health(client: &Client, json: bool) -> Result<(), Failure> {
    let health = client.health().await?;
    if json {
        return print_json(&health);
    }
    let down: Vec<&str> = health
        .targets
        .iter()
        .filter(|t| !t.up)
        .map(|t| t.name.as_str())
        .collect();
    if !health.degraded {
        println!("{}", health.status);
    } else if health.targets.len() > 1 && !down.is_empty() {
        println!(
            "{} (degraded: {} unreachable)",
            health.status,
            down.join(", ")
        );
    } else {
        println!("{} (degraded: the target is unreachable)", health.status);
    }
    Ok(())
}
