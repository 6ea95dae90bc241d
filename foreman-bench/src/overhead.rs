//! 1. Proxy overhead: sequential non-streaming `/api/chat` calls to an instant target,
//!    directly, through foreman's queue and through nginx (a plain proxy hop, the floor of
//!    any proxy), interleaved; what foreman and nginx add at p50 and p99, and their ratio.
//!
//! For attributing the time, it also measures what one durable SQLite commit costs on
//! this disk (WAL, `synchronous=FULL`, as foreman's store), since a sync request makes
//! several (enqueue, claim, finish).

use std::time::Instant;

use anyhow::{bail, Result};

use crate::http::{chat_body, client, MODEL};
use crate::inproc::Foreman;
use crate::nginx::{self, Nginx};
use crate::report::Row;
use crate::stats::{ms, percentile};
use crate::target::{self, arrived_ns, made_ns, now_ns};
use crate::Options;

const BENCH: &str = "1 overhead";

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let target = target::instant().await?;
    let foreman = Foreman::start(options.placement(), target.url(), |_| {}).await?;
    let nginx = Nginx::start(target.url()).await?;
    let client = client();
    let body = chat_body(MODEL, false);
    // Each call: (total, request sent → at the target, target answered → body received), ms.
    let call = |base: String| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let started = Instant::now();
            let sent_ns = now_ns();
            let response = client
                .post(format!("{base}/api/chat"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            let received_ns = now_ns();
            if !status.is_success() || bytes.is_empty() {
                bail!("{base}/api/chat answered {status}");
            }
            let answered_ns = made_ns(&bytes).unwrap_or(received_ns);
            let inbound = arrived_ns(&bytes)
                .unwrap_or(sent_ns)
                .saturating_sub(sent_ns) as f64
                / 1e6;
            let outbound = received_ns.saturating_sub(answered_ns) as f64 / 1e6;
            Ok((ms(started.elapsed()), inbound, outbound))
        }
    };
    let nginx_url = nginx.as_ref().map(|n| n.url.clone());
    for _ in 0..20.min(sizes.overhead_calls) {
        call(target.url().to_owned()).await?;
        call(foreman.url.clone()).await?;
        if let Some(url) = &nginx_url {
            call(url.clone()).await?;
        }
    }
    let mut direct = Vec::with_capacity(sizes.overhead_calls);
    let mut via = Vec::with_capacity(sizes.overhead_calls);
    let mut via_nginx = Vec::with_capacity(sizes.overhead_calls);
    let (mut direct_in, mut direct_out, mut via_in, mut via_out) = (vec![], vec![], vec![], vec![]);
    // Interleaved, so drift in the machine's load touches all three alike.
    for _ in 0..sizes.overhead_calls {
        let (total, inbound, outbound) = call(target.url().to_owned()).await?;
        direct.push(total);
        direct_in.push(inbound);
        direct_out.push(outbound);
        let (total, inbound, outbound) = call(foreman.url.clone()).await?;
        via.push(total);
        via_in.push(inbound);
        via_out.push(outbound);
        if let Some(url) = &nginx_url {
            via_nginx.push(call(url.clone()).await?.0);
        }
    }
    foreman.stop().await?;
    if let Some(nginx) = nginx {
        nginx.stop().await?;
    }
    let commit = commit_latency(200.min(sizes.overhead_calls * 4))?;

    let (d50, d99) = (percentile(&direct, 50.0), percentile(&direct, 99.0));
    let (f50, f99) = (percentile(&via, 50.0), percentile(&via, 99.0));
    let n = sizes.overhead_calls;
    let nginx_row = if via_nginx.is_empty() {
        Row::skipped(BENCH, nginx::MISSING)
    } else {
        let (n50, n99) = (percentile(&via_nginx, 50.0), percentile(&via_nginx, 99.0));
        let (added50, added99) = (n50 - d50, n99 - d99);
        let ratio50 = (f50 - d50) / added50;
        Row::info(
            BENCH,
            format!(
                "foreman-added / nginx-added: {ratio50:.1}× at p50, {:.1}× at p99 (nginx adds p50 {added50:.3} ms, p99 {added99:.3} ms; via nginx {n50:.3} / {n99:.3})",
                (f99 - d99) / added99
            ),
            Some(ratio50),
        )
    };
    Ok(vec![
        Row::at_most(
            BENCH,
            format!("p50 added by foreman: {:.3} ms (direct {d50:.3}, via foreman {f50:.3}; {n} calls)", f50 - d50),
            f50 - d50,
            0.3,
            "ms",
        ),
        Row::at_most(
            BENCH,
            format!("p99 added by foreman: {:.3} ms (direct {d99:.3}, via foreman {f99:.3})", f99 - d99),
            f99 - d99,
            1.0,
            "ms",
        ),
        nginx_row,
        Row::info(
            BENCH,
            format!(
                "where it goes, p50 (p99): request → target {:.3} ({:.3}) ms via foreman vs {:.3} ({:.3}) direct; target's answer → caller {:.3} ({:.3}) ms via foreman vs {:.3} ({:.3}) direct",
                percentile(&via_in, 50.0),
                percentile(&via_in, 99.0),
                percentile(&direct_in, 50.0),
                percentile(&direct_in, 99.0),
                percentile(&via_out, 50.0),
                percentile(&via_out, 99.0),
                percentile(&direct_out, 50.0),
                percentile(&direct_out, 99.0)
            ),
            Some(percentile(&via_in, 50.0)),
        ),
        Row::info(
            BENCH,
            format!(
                "one SQLite commit (WAL, synchronous=FULL) on this disk: p50 {:.3} ms, p99 {:.3} ms",
                percentile(&commit, 50.0),
                percentile(&commit, 99.0)
            ),
            Some(percentile(&commit, 50.0)),
        ),
    ])
}

/// Milliseconds per single-row committed transaction, as foreman's writer pays it when
/// nothing else is in the batch.
fn commit_latency(commits: usize) -> Result<Vec<f64>> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("commit.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")?;
    let mut out = Vec::with_capacity(commits);
    for i in 0..commits {
        let started = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        conn.execute("INSERT INTO t (id, v) VALUES (?1, x'00')", [i as i64])?;
        conn.execute_batch("COMMIT")?;
        out.push(ms(started.elapsed()));
    }
    Ok(out)
}
