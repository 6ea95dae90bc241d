//! 2. Streaming: time to first chunk and per-chunk delay for a target streaming
//!    `stream_chunks` chunks 1 ms apart, directly and through foreman; and whether foreman
//!    passes chunks on one by one (a read per chunk) or batches them.
//!
//! The first chunk is also timed through nginx (a plain proxy hop, unbuffered), for the
//! floor of what any proxy adds to it.
//!
//! Each chunk carries the time the target made it (`created_at`), so its delay is measured
//! exactly: arrival minus sending, on one clock in one process. The final chunk also says
//! when the request reached the target (its `created_at` less its `total_duration`), so the
//! first chunk's time splits into the way there, the target's own wait before its first
//! token (on a 1 ms timer, so up to a millisecond that differs from call to call), and the
//! way back. What foreman adds to the first chunk is judged on the two ways, which leave
//! out that timer's noise; the plain difference of the totals is printed beside it.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use foreman_types::LineSplitter;

use crate::http::{client, stream_chat, MODEL};
use crate::inproc::Foreman;
use crate::nginx::{self, Nginx};
use crate::report::Row;
use crate::stats::{ms, percentile};
use crate::target::{self, arrived_ns, made_ns, now_ns};
use crate::Options;

const BENCH: &str = "2 streaming";

#[derive(Debug, Default)]
struct Streams {
    /// Request sent → first bytes of the body, ms.
    first_chunk: Vec<f64>,
    /// Of that, the ways there and back: request sent → at the target, plus first chunk
    /// made → its bytes read, ms (the target's wait in between left out).
    first_chunk_ways: Vec<f64>,
    /// Per chunk: received − sent, ms.
    delay: Vec<f64>,
    /// Gaps between successive reads, ms.
    gaps: Vec<f64>,
    reads: usize,
    chunks: usize,
    /// The most chunks that arrived in one read.
    most_per_read: usize,
}

async fn stream(client: &reqwest::Client, base: &str, into: &mut Streams) -> Result<()> {
    let started = Instant::now();
    let sent_ns = now_ns();
    let mut response = stream_chat(client, base, MODEL).await?;
    let mut lines = LineSplitter::new();
    let mut last_read: Option<u64> = None;
    // The first chunk: when it was read, and when the target made it.
    let mut first: Option<(u64, u64)> = None;
    // The final chunk, which says when the request reached the target.
    let mut last_line = Default::default();
    while let Some(bytes) = response.chunk().await? {
        let now = now_ns();
        if last_read.is_none() {
            into.first_chunk.push(ms(started.elapsed()));
        }
        if let Some(last) = last_read {
            into.gaps.push((now - last) as f64 / 1e6);
        }
        last_read = Some(now);
        into.reads += 1;
        let mut in_this_read = 0;
        for line in lines.push(&bytes)? {
            if let Some(made) = made_ns(&line) {
                into.delay.push(now.saturating_sub(made) as f64 / 1e6);
                into.chunks += 1;
                in_this_read += 1;
                first.get_or_insert((now, made));
            }
            last_line = line;
        }
        into.most_per_read = into.most_per_read.max(in_this_read);
    }
    if let (Some((read, made)), Some(arrived)) = (first, arrived_ns(&last_line)) {
        let there = arrived.saturating_sub(sent_ns);
        let back = read.saturating_sub(made);
        into.first_chunk_ways.push((there + back) as f64 / 1e6);
    }
    Ok(())
}

pub(crate) async fn run(options: &Options) -> Result<Vec<Row>> {
    let sizes = &options.sizes;
    let target = target::streaming(sizes.stream_chunks, Duration::from_millis(1)).await?;
    let foreman = Foreman::start(options.placement(), target.url(), |_| {}).await?;
    let nginx = Nginx::start(target.url()).await?;
    let client = client();
    // Warm the connections and the code paths.
    stream(&client, target.url(), &mut Streams::default()).await?;
    stream(&client, &foreman.url, &mut Streams::default()).await?;
    if let Some(nginx) = &nginx {
        stream(&client, &nginx.url, &mut Streams::default()).await?;
    }
    let mut direct = Streams::default();
    let mut via = Streams::default();
    let mut via_nginx = Streams::default();
    for _ in 0..sizes.stream_runs {
        stream(&client, target.url(), &mut direct).await?;
        stream(&client, &foreman.url, &mut via).await?;
        if let Some(nginx) = &nginx {
            stream(&client, &nginx.url, &mut via_nginx).await?;
        }
    }
    foreman.stop().await?;
    if let Some(nginx) = nginx {
        nginx.stop().await?;
    }

    let expected = sizes.stream_runs * sizes.stream_chunks;
    if via.chunks != expected || direct.chunks != expected {
        bail!(
            "expected {expected} chunks each way, got {} direct and {} via foreman",
            direct.chunks,
            via.chunks
        );
    }
    let first = |s: &Streams| percentile(&s.first_chunk, 50.0);
    let ways = |s: &Streams| percentile(&s.first_chunk_ways, 50.0);
    if via.first_chunk_ways.len() != sizes.stream_runs
        || direct.first_chunk_ways.len() != sizes.stream_runs
    {
        bail!("a stream's final chunk did not say when the request reached the target");
    }
    let added_first = ways(&via) - ways(&direct);
    let added_total = first(&via) - first(&direct);
    let d50 = percentile(&via.delay, 50.0) - percentile(&direct.delay, 50.0);
    let d99 = percentile(&via.delay, 99.0) - percentile(&direct.delay, 99.0);
    let reads_per_chunk = |s: &Streams| s.reads as f64 / s.chunks as f64;
    let nginx_row = if via_nginx.first_chunk.is_empty() {
        Row::skipped(BENCH, nginx::MISSING)
    } else {
        let by_nginx = ways(&via_nginx) - ways(&direct);
        Row::info(
            BENCH,
            format!(
                "time to first chunk, foreman-added / nginx-added: {:.1}× (nginx adds {by_nginx:.3} ms to the ways there and back; p50 via nginx {:.3}; {} chunks through it)",
                added_first / by_nginx,
                ways(&via_nginx),
                via_nginx.chunks
            ),
            Some(added_first / by_nginx),
        )
    };
    Ok(vec![
        Row::at_most(
            BENCH,
            format!(
                "time to first chunk added: {added_first:.3} ms (the ways there and back, p50 direct {:.3}, via foreman {:.3}; {} streams)",
                ways(&direct),
                ways(&via),
                sizes.stream_runs
            ),
            added_first,
            0.5,
            "ms",
        ),
        Row::info(
            BENCH,
            format!(
                "time to first chunk, whole: {added_total:+.3} ms via foreman (p50 direct {:.3}, via foreman {:.3}; the target's own wait before its first token, on a 1 ms timer, included)",
                first(&direct),
                first(&via),
            ),
            Some(added_total),
        ),
        nginx_row,
        Row::at_most(
            BENCH,
            format!(
                "per-chunk delay added: p50 {d50:.3} ms, p99 {d99:.3} ms (direct p50 {:.3}, via foreman p50 {:.3} / p99 {:.3})",
                percentile(&direct.delay, 50.0),
                percentile(&via.delay, 50.0),
                percentile(&via.delay, 99.0),
            ),
            d50,
            1.0,
            "ms",
        ),
        Row::check(
            BENCH,
            format!(
                "reads per chunk via foreman {:.3} (direct {:.3}); at most {} chunks in one read (direct {})",
                reads_per_chunk(&via),
                reads_per_chunk(&direct),
                via.most_per_read,
                direct.most_per_read
            ),
            "not batched: ≥ 0.95 reads per chunk",
            reads_per_chunk(&via) >= 0.95,
        ),
        Row::info(
            BENCH,
            format!(
                "gap between reads via foreman: p50 {:.3} ms, p99 {:.3} ms (direct p50 {:.3}, p99 {:.3}; target sends every 1 ms)",
                percentile(&via.gaps, 50.0),
                percentile(&via.gaps, 99.0),
                percentile(&direct.gaps, 50.0),
                percentile(&direct.gaps, 99.0)
            ),
            Some(percentile(&via.gaps, 50.0)),
        ),
    ])
}
