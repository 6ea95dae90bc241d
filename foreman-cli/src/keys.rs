//! `foreman keys create|list|revoke` (with an admin key or FOREMAN_AUTH_TOKEN) and
//! `foreman usage` (any key: its own; an admin: everyone's).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use foreman_client::{Client, NewKey, UsageQuery};
use serde_json::json;

use crate::exit::Failure;
use crate::output::{age, print_json, print_table};

/// `foreman keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print its secret (shown this once)
    Create(CreateArgs),
    /// List the keys (never their secrets)
    List,
    /// Revoke a key: its next request is refused
    Revoke(RevokeArgs),
}

/// `foreman keys create`.
#[derive(Debug, Args)]
struct CreateArgs {
    /// The key's name: letters, digits, '.', '_', '-'
    name: String,
    /// May manage keys and models, and see every key's jobs and usage
    #[arg(long)]
    admin: bool,
    /// Its share of the GPU against other keys (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = 1)]
    weight: u32,
    /// Most jobs it (each of its end users) may have queued; beyond, 429
    #[arg(long, value_name = "N")]
    max_queued: Option<u32>,
    /// Most requests that queue work per minute (each end user); beyond, 429
    #[arg(long, value_name = "N")]
    rpm: Option<u32>,
    /// Let it name end users with X-OpenWebUI-User-Id or X-User-Id
    #[arg(long)]
    trust_user_header: bool,
}

/// `foreman keys revoke`.
#[derive(Debug, Args)]
struct RevokeArgs {
    /// The key to revoke
    name: String,
}

/// `foreman usage`.
#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// From this time: RFC 3339, Unix milliseconds, or a duration ago (24h, 7d)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Before this time, written like --since
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Only this key's usage (admins)
    #[arg(long)]
    key: Option<String>,
}

/// A time as RFC 3339, Unix milliseconds, or a duration before now.
fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("{ms} is out of range"));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc));
    }
    let ago: Duration = humantime::parse_duration(raw).map_err(|_| {
        format!("{raw:?} is not a time (RFC 3339, Unix milliseconds, or a duration such as 24h)")
    })?;
    let ago = chrono::Duration::from_std(ago).map_err(|err| err.to_string())?;
    Ok(Utc::now() - ago)
}

pub(crate) async fn keys(client: &Client, args: KeysArgs, json: bool) -> Result<(), Failure> {
    match args.command {
        KeysCommand::Create(args) => create(client, args, json).await,
        KeysCommand::List => list(client, json).await,
        KeysCommand::Revoke(args) => revoke(client, args, json).await,
    }
}

async fn create(client: &Client, args: CreateArgs, json: bool) -> Result<(), Failure> {
    let mut key = NewKey::new(&args.name)
        .admin(args.admin)
        .weight(args.weight)
        .trust_user_header(args.trust_user_header);
    key.max_queued = args.max_queued;
    key.rpm = args.rpm;
    let created = client.create_key(key).await?;
    if json {
        return print_json(&created);
    }
    // The secret alone on stdout, so `KEY=$(foreman keys create NAME)` works; the
    // reminder on stderr.
    println!("{}", created.key);
    eprintln!(
        "created key '{}'; its secret is shown only this once: send it as `Authorization: Bearer <key>`",
        created.info.name
    );
    Ok(())
}

async fn list(client: &Client, json: bool) -> Result<(), Failure> {
    let keys = client.keys().await?;
    if json {
        return print_json(&json!({ "keys": keys }));
    }
    let limit = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            vec![
                key.name.clone(),
                key.prefix.clone(),
                if key.admin { "yes" } else { "no" }.to_owned(),
                key.weight.to_string(),
                limit(key.max_queued),
                limit(key.rpm),
                if key.trust_user_header { "yes" } else { "no" }.to_owned(),
                age(key.created_at),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "PREFIX",
            "ADMIN",
            "WEIGHT",
            "MAX QUEUED",
            "RPM",
            "USER HEADER",
            "AGE",
        ],
        &rows,
    );
    Ok(())
}

async fn revoke(client: &Client, args: RevokeArgs, json: bool) -> Result<(), Failure> {
    client.revoke_key(&args.name).await?;
    if json {
        return print_json(&json!({ "revoked": args.name }));
    }
    println!("revoked key '{}'", args.name);
    Ok(())
}

pub(crate) async fn usage(client: &Client, args: UsageArgs, json: bool) -> Result<(), Failure> {
    let query = UsageQuery {
        since: args.since,
        until: args.until,
        key: args.key,
    };
    let report = client.usage(&query).await?;
    if json {
        return print_json(&report);
    }
    let named = |s: &str, none: &str| {
        if s.is_empty() {
            none.to_owned()
        } else {
            s.to_owned()
        }
    };
    let rows: Vec<Vec<String>> = report
        .usage
        .iter()
        .map(|row| {
            vec![
                named(&row.key, "(open)"),
                named(&row.user, "-"),
                row.model.clone(),
                row.requests.to_string(),
                row.prompt_tokens.to_string(),
                row.output_tokens.to_string(),
                format!("{:.1}s", row.gpu_ms as f64 / 1000.0),
            ]
        })
        .collect();
    print_table(
        &[
            "KEY", "USER", "MODEL", "REQUESTS", "PROMPT", "OUTPUT", "GPU",
        ],
        &rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_unix_milliseconds_or_a_duration_ago() {
        assert_eq!(parse_time("0").unwrap().timestamp_millis(), 0);
        assert_eq!(
            parse_time("2025-11-26T18:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2025-11-26T17:00:00+00:00"
        );
        let day_ago = parse_time("24h").unwrap();
        let expected = Utc::now() - chrono::Duration::hours(24);
        assert!((day_ago - expected).num_seconds().abs() < 5);
        assert!(parse_time("yesterday").is_err());
    }
}
