//! Splitting a byte stream into NDJSON lines.

use bytes::BytesMut;

/// Collects bytes and yields complete lines (without the newline).
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pending: BytesMut,
}

impl Lines {
    /// Adds bytes; returns the lines they completed, blank lines skipped.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<BytesMut> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let mut line = self.pending.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line);
            }
        }
        lines
    }

    /// The last line, if the stream did not end with a newline.
    pub(crate) fn finish(&mut self) -> Option<BytesMut> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }

    /// Bytes held waiting for a newline.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut lines = Lines::default();
        assert!(lines.push(b"{\"a\":").is_empty());
        let done = lines.push(b"1}\n{\"b\":2}\n\n{\"c\"");
        assert_eq!(done, vec![&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
        assert_eq!(lines.pending(), 4);
        assert_eq!(lines.finish().as_deref(), Some(&b"{\"c\""[..]));
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn crlf_line_endings_are_trimmed() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"x\r\ny\n"), vec![&b"x"[..], &b"y"[..]]);
    }
}
