//! Printing for people: aligned tables, short ages, a live progress line.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::exit::Failure;

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| Failure::server(format!("cannot encode JSON: {err}")))?;
    println!("{text}");
    Ok(())
}

/// Prints rows under headers, each column as wide as its widest cell.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `42s`, `5m`, `3h`, `2d`.
pub(crate) fn short_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// How long ago `at` was.
pub(crate) fn age(at: DateTime<Utc>) -> String {
    let elapsed = (Utc::now() - at).to_std().unwrap_or_default();
    short_duration(elapsed)
}

/// Bytes as `1.9 GB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A status line on stderr: redrawn in place on a terminal, one line per change otherwise.
#[derive(Debug)]
pub(crate) struct Progress {
    terminal: bool,
    last: String,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }

    /// Shows `text`; `key` decides what counts as a change when not on a terminal.
    pub(crate) fn show(&mut self, key: &str, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
        } else if key != self.last {
            let _ = writeln!(err, "{text}");
        }
        self.last = key.to_owned();
    }

    /// Ends the line so later output starts on a fresh one.
    pub(crate) fn finish(&mut self) {
        if self.terminal && !self.last.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err);
        }
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short_and_rounded_down() {
        assert_eq!(short_duration(Duration::from_secs(5)), "5s");
        assert_eq!(short_duration(Duration::from_secs(125)), "2m");
        assert_eq!(short_duration(Duration::from_secs(7300)), "2h");
        assert_eq!(short_duration(Duration::from_secs(200_000)), "2d");
    }

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2_019_393_189), "2.0 GB");
    }
}
