//! `cargo run --release -p foreman-bench [-- --quick] [--only NAME]...`: runs foreman's
//! benchmarks and prints a table of figures, goals and verdicts (see `docs/benchmarks.md`).

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use foreman_bench::{report, Options, Sizes, BENCHMARKS};

/// The allocator the `foreman` binary ships with (ADR 31), so the in-process benchmarks
/// measure foreman as it runs.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// foreman's benchmarks: overhead, streaming, enqueue, throughput, scheduling, scale,
/// fairness, targets, replicas.
#[derive(Debug, Parser)]
#[command(name = "foreman-bench")]
struct Args {
    /// A seconds-long smoke version with small sizes (figures are indicative only)
    #[arg(long)]
    quick: bool,
    /// Run only this benchmark (repeatable): overhead, streaming, enqueue, throughput,
    /// scheduling, scale, fairness, targets, replicas
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(BENCHMARKS))]
    only: Vec<String>,
    /// The foreman binary for the process benchmarks [default: built with cargo and found
    /// in target/release]
    #[arg(long, value_name = "PATH")]
    foreman_bin: Option<PathBuf>,
    /// Keep the in-process benchmarks' databases under this directory (e.g. /dev/shm, to
    /// take the disk's fsync out of the figures) [default: the system's temp directory]
    #[arg(long, value_name = "DIR")]
    db_dir: Option<PathBuf>,
    /// Experiment: give the in-process foreman's sockets TCP_NODELAY, which foreman itself
    /// does not set
    #[arg(long)]
    foreman_nodelay: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut options = Options::full();
    if args.quick {
        options.sizes = Sizes::quick();
    }
    options.only = args.only;
    options.foreman_bin = args.foreman_bin;
    options.db_dir = args.db_dir;
    options.foreman_nodelay = args.foreman_nodelay;
    if options.foreman_bin.is_none() && options.selected("scale") || options.selected("replicas") {
        build_foreman();
    }
    let started = std::time::Instant::now();
    let rows = foreman_bench::run(&options).await;
    println!();
    print!("{}", report::table(&rows));
    println!(
        "\n{} benchmark(s) in {:.1} s{}",
        BENCHMARKS.iter().filter(|b| options.selected(b)).count(),
        started.elapsed().as_secs_f64(),
        if args.quick {
            " (--quick: small sizes, figures indicative only)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Builds the `foreman` binary in release mode, so the process benchmarks never measure a
/// stale one. Needs cargo (as under `cargo run`); without it, an existing binary is used.
fn build_foreman() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    eprintln!("building foreman (cargo build --release -p foreman-cli)");
    let built = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "foreman-cli"])
        .current_dir(workspace)
        .status();
    match built {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("building foreman failed ({status}); using what is there"),
        Err(err) => eprintln!("cannot run cargo ({err}); using what is there"),
    }
}
