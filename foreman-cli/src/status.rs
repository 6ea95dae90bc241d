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
    if ps.models.is_empty() {
        println!("no models loaded");
    } else {
        let rows: Vec<Vec<String>> = ps
            .models
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    size(m.size),
                    size(m.size_vram),
                    m.expires_at.as_deref().map(until).unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["NAME", "SIZE", "VRAM", "UNTIL"], &rows);
    }
    println!();
    let depth = queue["depth"].as_u64().unwrap_or(0);
    let swaps = queue["model_swaps"].as_u64().unwrap_or(0);
    println!("queue: {depth} waiting, {swaps} model swaps so far");
    if let Some(running) = queue["running"].as_object() {
        println!(
            "running: {} {} ({})",
            running.get("id").and_then(Value::as_str).unwrap_or("?"),
            running.get("model").and_then(Value::as_str).unwrap_or("?"),
            running.get("state").and_then(Value::as_str).unwrap_or("?"),
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
        println!("warning: the target is unreachable; work is kept until it returns");
    }
    Ok(())
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
    if health.degraded {
        println!("{} (degraded: the target is unreachable)", health.status);
    } else {
        println!("{}", health.status);
    }
    Ok(())
}
