//! foreman's benchmarks: what foreman costs and what it buys, measured side by side in
//! one run and printed as one table of figures, goals and verdicts.
//!
//! ```sh
//! cargo run --release -p foreman-bench             # the full suite, a few minutes
//! cargo run --release -p foreman-bench -- --quick  # a seconds-long smoke version
//! cargo run --release -p foreman-bench -- --only overhead --only streaming
//! ```
//!
//! Results and their analysis are recorded in `docs/benchmarks.md`.
//!
//! # Layout
//! - `target`: the simulated Ollama (foreman-sim) in this process, set to answer at once,
//!   stream on a timer, or never answer, so what is measured is foreman rather than a GPU.
//! - `inproc`: foreman started in this process with `foreman_server::run`.
//! - `process`: the `foreman` binary as a child process, for resident memory and start-up.
//! - `nginx`, `wrk`: the baselines run beside foreman when installed (`scripts/bench.sh`
//!   installs both): nginx as a plain proxy hop (benchmarks 1 and 2), wrk as a second load
//!   generator (benchmarks 3 and 4).
//! - one module per benchmark: `overhead`, `streaming`, `enqueue`, `throughput`,
//!   `scheduling`, `scale`, `fairness`, `routing` (several targets).
//! - [`report`]: the rows and the final table.

mod cpu;
mod enqueue;
mod fairness;
mod http;
mod inproc;
mod nginx;
mod overhead;
mod process;
mod replicas;
pub mod report;
mod routing;
mod scale;
mod scheduling;
mod stats;
mod streaming;
mod target;
mod throughput;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

pub use report::Row;

/// The benchmarks, by the name `--only` takes, in the order they run.
pub const BENCHMARKS: [&str; 9] = [
    "overhead",
    "streaming",
    "enqueue",
    "throughput",
    "scheduling",
    "scale",
    "fairness",
    "targets",
    "replicas",
];

/// How big each benchmark is.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Sequential non-streaming chats, directly and through foreman, each.
    pub overhead_calls: usize,
    /// Streams, directly and through foreman, each.
    pub stream_runs: usize,
    /// Chunks per stream.
    pub stream_chunks: usize,
    /// Concurrent clients submitting `POST /jobs`.
    pub enqueue_clients: usize,
    /// How long the enqueue benchmark submits.
    pub enqueue_duration: Duration,
    /// Async jobs run from submission to `done`.
    pub throughput_jobs: usize,
    /// Jobs per model in the scheduling benchmark (three models, interleaved).
    pub schedule_jobs_per_model: usize,
    /// The simulated model-load time.
    pub schedule_load_time: Duration,
    /// Also run a variant with a short affinity window (1 s), between default and FIFO.
    pub schedule_short_window: bool,
    /// Queued jobs held by a foreman process while its memory is read.
    pub scale_queued: usize,
    /// Streaming clients waiting in the queue while its memory is read.
    pub scale_streams: usize,
    /// The small and the large table, in terminal jobs.
    pub scale_rows: (usize, usize),
    /// `GET /jobs/{id}` calls per table size.
    pub scale_reads: usize,
    /// Chats per model in the several-targets benchmark (four models, three boxes).
    pub targets_jobs_per_model: usize,
    /// Whether its simulated boxes keep the simulator's realistic timing (2 s loads), or
    /// run ten times faster.
    pub targets_realistic: bool,
}

impl Sizes {
    /// The full suite: the sizes the goals are stated for.
    pub fn full() -> Self {
        Self {
            overhead_calls: 2000,
            stream_runs: 10,
            stream_chunks: 200,
            enqueue_clients: 64,
            enqueue_duration: Duration::from_secs(5),
            throughput_jobs: 5000,
            schedule_jobs_per_model: 20,
            schedule_load_time: Duration::from_millis(200),
            schedule_short_window: true,
            scale_queued: 100_000,
            scale_streams: 10_000,
            scale_rows: (10_000, 1_000_000),
            scale_reads: 500,
            targets_jobs_per_model: 12,
            targets_realistic: true,
        }
    }

    /// `--quick`: every code path in seconds; figures are indicative only.
    pub fn quick() -> Self {
        Self {
            overhead_calls: 200,
            stream_runs: 3,
            stream_chunks: 200,
            enqueue_clients: 64,
            enqueue_duration: Duration::from_secs(1),
            throughput_jobs: 300,
            schedule_jobs_per_model: 4,
            schedule_load_time: Duration::from_millis(50),
            schedule_short_window: false,
            scale_queued: 2000,
            scale_streams: 1000,
            scale_rows: (10_000, 50_000),
            scale_reads: 100,
            targets_jobs_per_model: 6,
            targets_realistic: false,
        }
    }

    /// The smallest sizes that still exercise everything, for the smoke test.
    pub fn tiny() -> Self {
        Self {
            overhead_calls: 10,
            stream_runs: 1,
            stream_chunks: 10,
            enqueue_clients: 4,
            enqueue_duration: Duration::from_millis(200),
            throughput_jobs: 20,
            schedule_jobs_per_model: 2,
            schedule_load_time: Duration::from_millis(20),
            schedule_short_window: false,
            scale_queued: 100,
            scale_streams: 10,
            scale_rows: (500, 2000),
            scale_reads: 10,
            targets_jobs_per_model: 2,
            targets_realistic: false,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sizes.
    pub sizes: Sizes,
    /// Only these benchmarks (names from [`BENCHMARKS`]); empty means all.
    pub only: Vec<String>,
    /// The `foreman` binary for the process benchmarks; found next to this one (or in the
    /// workspace's `target/`) when not given. Those benchmarks are skipped without it.
    pub foreman_bin: Option<PathBuf>,
    /// Print `EXPLAIN QUERY PLAN` of the claim queries.
    pub explain: bool,
    /// Where the in-process benchmarks (1 to 5) keep their databases; the system's
    /// temporary directory when not given. `/dev/shm` takes the disk's fsync out of the
    /// figures, to see foreman's own cost.
    pub db_dir: Option<PathBuf>,
    /// Give the in-process foreman's sockets TCP_NODELAY (an experiment: foreman itself
    /// does not set it), to see what Nagle's algorithm costs its callers.
    pub foreman_nodelay: bool,
}

impl Options {
    /// The full suite.
    pub fn full() -> Self {
        Self {
            sizes: Sizes::full(),
            only: Vec::new(),
            foreman_bin: None,
            explain: true,
            db_dir: None,
            foreman_nodelay: false,
        }
    }

    /// Where and how the in-process foreman runs: its database directory and TCP_NODELAY.
    fn placement(&self) -> (Option<&std::path::Path>, bool) {
        (self.db_dir.as_deref(), self.foreman_nodelay)
    }

    /// Whether benchmark `name` is selected.
    pub fn selected(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|only| only == name)
    }
}

/// Runs the selected benchmarks, printing progress to stderr, and returns their rows. A
/// benchmark that fails gives an `ERROR` row rather than stopping the others.
pub async fn run(options: &Options) -> Vec<Row> {
    let mut rows = Vec::new();
    for name in BENCHMARKS {
        if !options.selected(name) {
            continue;
        }
        eprintln!("== {name}");
        let started = std::time::Instant::now();
        let outcome = match name {
            "overhead" => overhead::run(options).await,
            "streaming" => streaming::run(options).await,
            "enqueue" => enqueue::run(options).await,
            "throughput" => throughput::run(options).await,
            "scheduling" => scheduling::run(options).await,
            "scale" => scale::run(options).await,
            "fairness" => fairness::run(options).await,
            "targets" => routing::run(options).await,
            "replicas" => replicas::run(options).await,
            _ => unreachable!("every name in BENCHMARKS has a module"),
        };
        match outcome {
            Ok(mut more) => {
                for row in &more {
                    eprintln!("   {}: {} [{}]", row.figure, row.goal, row.verdict);
                }
                rows.append(&mut more);
            }
            Err(err) => {
                eprintln!("   failed: {err:#}");
                rows.push(Row::error(name, &err));
            }
        }
        eprintln!("   ({:.1} s)", started.elapsed().as_secs_f64());
    }
    rows
}
