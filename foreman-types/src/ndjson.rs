//! Splitting NDJSON (Ollama's streamed answers: one JSON value a line) into lines as the
//! bytes arrive, with a cap on the length of a line.
//!
//! The server's worker, the SDK's streams and the benchmark all read NDJSON off a socket;
//! this is the one splitter they share. It does no I/O: callers push the bytes they read
//! and get back the lines those bytes completed.
//!
//! ```
//! use foreman_types::ndjson::LineSplitter;
//!
//! let mut lines = LineSplitter::new();
//! assert!(lines.push(b"{\"a\":").unwrap().is_empty());
//! let complete = lines.push(b"1}\r\n\n{\"b\":2}\n{\"c\"").unwrap();
//! assert_eq!(complete, [&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
//! assert_eq!(lines.finish().as_deref(), Some(&b"{\"c\""[..]));
//! ```

use bytes::{Bytes, BytesMut};

/// The longest line accepted by default: 16 MiB. A chunk of Ollama's stream is a few
/// hundred bytes and a whole non-streamed answer rarely a few MiB, so a line past this is
/// a peer that is not speaking NDJSON (or never ends its line), not a big answer.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// A line longer than the splitter's cap: the peer is not speaking NDJSON. Stop reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a line is longer than {}", size(*max))]
pub struct LineTooLong {
    /// The cap that was passed, in bytes.
    pub max: usize,
}

/// `16 MiB` for whole mebibytes, else `N bytes`.
fn size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Collects bytes and yields complete lines, without their `\n` or `\r\n`; blank lines
/// are skipped. Each byte is scanned once, however many reads a line spans.
#[derive(Debug)]
pub struct LineSplitter {
    pending: BytesMut,
    /// How much of `pending` is known to hold no newline.
    scanned: usize,
    max: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSplitter {
    /// A splitter capping lines at [`MAX_LINE`].
    pub fn new() -> Self {
        Self::with_max_line(MAX_LINE)
    }

    /// A splitter capping lines at `max` bytes (newline not counted).
    pub fn with_max_line(max: usize) -> Self {
        Self {
            pending: BytesMut::new(),
            scanned: 0,
            max,
        }
    }

    /// Adds bytes; returns the lines they completed, in order.
    ///
    /// # Errors
    /// [`LineTooLong`] once a line, finished or not, is longer than the cap. The splitter
    /// is of no further use then: drop it and the connection it reads.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Bytes>, LineTooLong> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(offset) = self.pending[self.scanned..]
            .iter()
            .position(|b| *b == b'\n')
        {
            let end = self.scanned + offset;
            self.scanned = 0;
            let mut line = self.pending.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if line.len() > self.max {
                return Err(LineTooLong { max: self.max });
            }
            if !is_blank(&line) {
                lines.push(line.freeze());
            }
        }
        self.scanned = self.pending.len();
        if self.pending.len() > self.max {
            return Err(LineTooLong { max: self.max });
        }
        Ok(lines)
    }

    /// The last line, if the bytes did not end with a newline (and it is not blank).
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        let rest = std::mem::take(&mut self.pending);
        (!is_blank(&rest)).then(|| rest.freeze())
    }

    /// Bytes held waiting for a newline.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}
