//! The rows of the results table and how they print.

use std::fmt::Write as _;

/// One line of the results: a figure, the goal it is held to and how it compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Which benchmark produced it.
    pub bench: String,
    /// What was measured, with its value.
    pub figure: String,
    /// The goal, or `—` for a figure given for context.
    pub goal: String,
    /// `PASS`/`MISS` with the ratio to the goal, `info`, `skipped` or `ERROR`.
    pub verdict: String,
    /// The measured value, when there is one (for tests and tools).
    pub value: Option<f64>,
}

impl Row {
    fn new(
        bench: &str,
        figure: impl Into<String>,
        goal: impl Into<String>,
        verdict: impl Into<String>,
        value: Option<f64>,
    ) -> Self {
        Self {
            bench: bench.to_owned(),
            figure: figure.into(),
            goal: goal.into(),
            verdict: verdict.into(),
            value,
        }
    }

    /// A figure given for context, held to no goal.
    pub fn info(bench: &str, figure: impl Into<String>, value: Option<f64>) -> Self {
        Self::new(bench, figure, "—", "info", value)
    }

    /// A figure that must stay at or below `goal` (in the same unit).
    pub fn at_most(
        bench: &str,
        figure: impl Into<String>,
        value: f64,
        goal: f64,
        unit: &str,
    ) -> Self {
        Self::against(
            bench,
            figure,
            value,
            goal,
            value <= goal,
            format!("≤ {} {unit}", trim(goal)),
        )
    }

    /// A figure that must reach at least `goal` (in the same unit).
    pub fn at_least(
        bench: &str,
        figure: impl Into<String>,
        value: f64,
        goal: f64,
        unit: &str,
    ) -> Self {
        Self::against(
            bench,
            figure,
            value,
            goal,
            value >= goal,
            format!("≥ {} {unit}", trim(goal)),
        )
    }

    /// A figure held to a numeric goal: the verdict with the ratio of `value` to `goal`.
    fn against(
        bench: &str,
        figure: impl Into<String>,
        value: f64,
        goal: f64,
        met: bool,
        stated: String,
    ) -> Self {
        let ratio = value / goal;
        let verdict = if met { "PASS" } else { "MISS" };
        let verdict = format!("{verdict} ({ratio:.2}× goal)");
        Self::new(bench, figure, stated, verdict, Some(value))
    }

    /// A yes/no check with its goal in words.
    pub fn check(
        bench: &str,
        figure: impl Into<String>,
        goal: impl Into<String>,
        ok: bool,
    ) -> Self {
        let verdict = if ok { "PASS" } else { "MISS" };
        Self::new(
            bench,
            figure,
            goal,
            verdict,
            Some(if ok { 1.0 } else { 0.0 }),
        )
    }

    /// A benchmark that could not run here.
    pub fn skipped(bench: &str, why: impl Into<String>) -> Self {
        Self::new(bench, why, "—", "skipped", None)
    }

    /// A benchmark that failed.
    pub fn error(bench: &str, err: &anyhow::Error) -> Self {
        Self::new(bench, format!("failed: {err:#}"), "—", "ERROR", None)
    }
}

fn trim(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// The rows as one Markdown table: `| benchmark | figure | goal | ratio/verdict |`.
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| benchmark | figure | goal | ratio/verdict |\n|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.bench,
            row.figure.replace('|', "/"),
            row.goal,
            row.verdict
        );
    }
    out
}
