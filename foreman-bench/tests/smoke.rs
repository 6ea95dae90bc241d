//! The benchmark's quick code path, at tiny sizes, so it cannot rot. No timing is asserted.

use foreman_bench::{run, Options, Sizes, BENCHMARKS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_produces_figures_at_tiny_sizes() {
    let options = Options {
        sizes: Sizes::tiny(),
        explain: false,
        ..Options::full()
    };
    let rows = run(&options).await;
    for row in &rows {
        assert_ne!(row.verdict, "ERROR", "{}: {}", row.bench, row.figure);
    }
    for (index, _) in BENCHMARKS.iter().enumerate() {
        let prefix = format!("{} ", index + 1);
        assert!(
            rows.iter()
                .any(|row| row.bench.starts_with(&prefix) && row.value.is_some()),
            "benchmark {} gave no figure: {rows:#?}",
            index + 1
        );
    }
    // The baselines run where installed and say so where not; the bench never needs them.
    for (baseline, measured) in [("nginx", "nginx-added"), ("wrk", "by wrk")] {
        let missing = format!("{baseline} not installed (scripts/bench.sh installs it)");
        assert!(
            rows.iter()
                .any(|row| row.figure.contains(measured) && row.value.is_some())
                || rows
                    .iter()
                    .any(|row| row.verdict == "skipped" && row.figure.contains(&missing)),
            "no {baseline} figure and no row saying it is missing: {rows:#?}"
        );
    }
    let table = foreman_bench::report::table(&rows);
    assert!(table.starts_with("| benchmark | figure | goal | ratio/verdict |"));
}
