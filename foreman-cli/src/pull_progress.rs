//! Showing a pull's progress as `ollama pull` does: on a terminal one bar per layer with
//! its bytes, rate and time left, and a spinner for the steps between layers; otherwise
//! (a pipe, a log, CI) plain lines, one when a step or a layer starts and one when a layer
//! is done, so a log stays short however many progress lines the server sends.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use foreman_client::ProgressResponse;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::size;

/// Where the progress goes.
#[derive(Debug)]
pub(crate) enum PullView<W: Write> {
    /// Bars redrawn in place on the terminal.
    Bars(Bars),
    /// Plain lines.
    Lines(Lines<W>),
    /// Each progress line as JSON (`--json`).
    Json(W),
}

impl<W: Write> PullView<W> {
    /// Shows one progress line.
    pub(crate) fn show(&mut self, line: &ProgressResponse) -> std::io::Result<()> {
        match self {
            PullView::Bars(bars) => {
                bars.show(&per_target(line));
                Ok(())
            }
            PullView::Lines(lines) => lines.show(&per_target(line)),
            PullView::Json(out) => {
                let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
                writeln!(out, "{text}")
            }
        }
    }

    /// Stops drawing, leaving what was drawn on the screen.
    pub(crate) fn finish(&mut self) {
        if let PullView::Bars(bars) = self {
            bars.finish();
        }
    }
}

/// A line about one of several targets (foreman pulling onto every GPU box adds its
/// `target`), with the target in its status and its layer, so each target's layers get
/// their own bar; other lines as they are.
fn per_target(line: &ProgressResponse) -> std::borrow::Cow<'_, ProgressResponse> {
    let Some(target) = line.extra.get("target").and_then(serde_json::Value::as_str) else {
        return std::borrow::Cow::Borrowed(line);
    };
    let mut line = line.clone();
    line.status = format!("{target}: {}", line.status);
    line.digest = line.digest.map(|digest| format!("{target}/{digest}"));
    std::borrow::Cow::Owned(line)
}

/// Per-layer bars and a spinner for the current step.
#[derive(Debug)]
pub(crate) struct Bars {
    multi: MultiProgress,
    layers: HashMap<String, ProgressBar>,
    step: Option<ProgressBar>,
}

impl Bars {
    /// Bars drawn on stdout.
    pub(crate) fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            layers: HashMap::new(),
            step: None,
        }
    }

    fn show(&mut self, line: &ProgressResponse) {
        let (Some(digest), Some(total)) = (&line.digest, line.total) else {
            if self
                .step
                .as_ref()
                .is_some_and(|step| step.message() == line.status)
            {
                return;
            }
            self.end_step();
            let step = self.multi.add(ProgressBar::new_spinner());
            step.set_style(
                ProgressStyle::with_template("{msg} {spinner}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            step.set_message(line.status.clone());
            step.enable_steady_tick(Duration::from_millis(100));
            self.step = Some(step);
            return;
        };
        if !self.layers.contains_key(digest) {
            self.end_step();
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(layer_style());
            bar.set_message(line.status.clone());
            self.layers.insert(digest.clone(), bar);
        }
        if let Some(bar) = self.layers.get(digest) {
            bar.set_length(total);
            bar.set_position(line.completed.unwrap_or(0).min(total));
            if line.completed.unwrap_or(0) >= total {
                bar.finish();
            }
        }
    }

    /// The step spinner stops, showing the step as done.
    fn end_step(&mut self) {
        if let Some(step) = self.step.take() {
            step.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            step.finish();
        }
    }

    fn finish(&mut self) {
        self.end_step();
        for bar in self.layers.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// `pulling dde5aa3fc5ff:  42% ▕██████          ▏ 847 MB/2.0 GB  31 MB/s  37s`.
fn layer_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg}: {percent:>3}% ▕{bar:25}▏ {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec:>10} {eta:>4}",
    )
    .map(|style| style.progress_chars("█▌ "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Plain lines: each step once, each layer when it starts and when it is done.
#[derive(Debug)]
pub(crate) struct Lines<W: Write> {
    out: W,
    last_step: String,
    started: HashSet<String>,
    done: HashSet<String>,
}

impl<W: Write> Lines<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            last_step: String::new(),
            started: HashSet::new(),
            done: HashSet::new(),
        }
    }

    fn show(&mut self, line: &ProgressResponse) -> std::io::Result<()> {
        let (Some(digest), Some(total)) = (&line.digest, line.total) else {
            if line.status != self.last_step {
                self.last_step.clone_from(&line.status);
                writeln!(self.out, "{}", line.status)?;
            }
            return Ok(());
        };
        self.last_step.clear();
        if self.started.insert(digest.clone()) {
            writeln!(self.out, "{}: {}", line.status, size(total))?;
        }
        if line.completed.unwrap_or(0) >= total && self.done.insert(digest.clone()) {
            writeln!(self.out, "{}: 100% {}", line.status, size(total))?;
        }
        self.out.flush()
    }

    /// What was written (for tests).
    #[cfg(test)]
    fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(completed: Option<u64>) -> ProgressResponse {
        let mut line = ProgressResponse::new("pulling dde5aa3fc5ff");
        line.digest = Some("sha256:dde5aa3fc5ff".into());
        line.total = Some(2_019_377_376);
        line.completed = completed;
        line
    }

    #[test]
    fn plain_lines_name_each_step_once_and_each_layer_twice() {
        let mut lines = Lines::new(Vec::new());
        let progress = [
            ProgressResponse::new("pulling manifest"),
            layer(None),
            layer(Some(1_000)),
            layer(Some(2_019_377_376)),
            layer(Some(2_019_377_376)),
            ProgressResponse::new("verifying sha256 digest"),
            ProgressResponse::new("writing manifest"),
            ProgressResponse::new("success"),
        ];
        for line in &progress {
            lines.show(line).unwrap();
        }
        let text = String::from_utf8(lines.into_inner()).unwrap();
        assert_eq!(
            text,
            "pulling manifest\n\
             pulling dde5aa3fc5ff: 2.0 GB\n\
             pulling dde5aa3fc5ff: 100% 2.0 GB\n\
             verifying sha256 digest\n\
             writing manifest\n\
             success\n"
        );
    }

    #[test]
    fn each_targets_layers_are_shown_apart() {
        let mut lines = Lines::new(Vec::new());
        for target in ["gpu1", "gpu2"] {
            let mut line = layer(None);
            line.extra
                .insert("target".into(), serde_json::Value::from(target));
            lines.show(&per_target(&line)).unwrap();
        }
        let text = String::from_utf8(lines.into_inner()).unwrap();
        assert_eq!(
            text,
            "gpu1: pulling dde5aa3fc5ff: 2.0 GB\ngpu2: pulling dde5aa3fc5ff: 2.0 GB\n"
        );
    }

    #[test]
    fn bars_follow_layers_without_a_terminal_to_draw_on() {
        let mut bars = Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            layers: HashMap::new(),
            step: None,
        };
        bars.show(&ProgressResponse::new("pulling manifest"));
        bars.show(&layer(Some(1_000)));
        let bar = &bars.layers["sha256:dde5aa3fc5ff"];
        assert_eq!(bar.position(), 1_000);
        assert!(bars.step.is_none(), "the step ended when the layer began");
        bars.show(&layer(Some(2_019_377_376)));
        assert!(bars.layers["sha256:dde5aa3fc5ff"].is_finished());
        bars.finish();
    }
}
