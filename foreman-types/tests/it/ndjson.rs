//! The NDJSON line splitter: lines across reads, line endings, blank lines, the cap.

use foreman_types::ndjson::{LineSplitter, LineTooLong, MAX_LINE};
use proptest::prelude::*;

#[test]
fn lines_split_across_reads_are_joined() {
    let mut lines = LineSplitter::new();
    assert!(lines.push(b"{\"a\":").unwrap().is_empty());
    let done = lines.push(b"1}\n{\"b\":2}\n\n{\"c\"").unwrap();
    assert_eq!(done, [&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
    assert_eq!(lines.pending(), 4);
    assert_eq!(lines.finish().as_deref(), Some(&b"{\"c\""[..]));
    assert_eq!(lines.finish(), None);
}

#[test]
fn crlf_endings_are_trimmed_and_blank_lines_skipped() {
    let mut lines = LineSplitter::new();
    assert_eq!(
        lines.push(b"x\r\n \r\n\ny\n").unwrap(),
        [&b"x"[..], &b"y"[..]]
    );
    lines.push(b"  \t").unwrap();
    assert_eq!(lines.finish(), None);
}

#[test]
fn an_unfinished_line_past_the_cap_is_an_error() {
    let mut lines = LineSplitter::with_max_line(8);
    assert!(lines.push(b"12345678").unwrap().is_empty());
    assert_eq!(lines.push(b"9"), Err(LineTooLong { max: 8 }));
}

#[test]
fn a_finished_line_past_the_cap_is_an_error_even_in_one_read() {
    let mut lines = LineSplitter::with_max_line(8);
    assert_eq!(lines.push(b"ok\n123456789\n"), Err(LineTooLong { max: 8 }));
}

#[test]
fn the_cap_is_on_each_line_not_on_a_read() {
    let mut lines = LineSplitter::with_max_line(8);
    let read = b"12345678\n12345678\n12345678\n1234";
    assert_eq!(lines.push(read).unwrap().len(), 3);
    assert_eq!(lines.pending(), 4);
}

#[test]
fn the_default_cap_is_16_mib_and_says_so() {
    assert_eq!(MAX_LINE, 16 * 1024 * 1024);
    let err = LineTooLong { max: MAX_LINE };
    assert_eq!(err.to_string(), "a line is longer than 16 MiB");
    assert_eq!(
        LineTooLong { max: 100 }.to_string(),
        "a line is longer than 100 bytes"
    );
}

#[test]
fn a_long_line_in_many_small_reads_is_scanned_once() {
    // 16 MiB in 4 KiB reads: quadratic rescanning would take minutes here.
    let mut lines = LineSplitter::new();
    let read = vec![b'a'; 4096];
    for _ in 0..(MAX_LINE / read.len()) {
        assert!(lines.push(&read).unwrap().is_empty());
    }
    assert_eq!(lines.push(b"\n").unwrap()[0].len(), MAX_LINE);
}

proptest! {
    /// However the bytes are cut into reads, the same lines come out.
    #[test]
    fn reads_cut_anywhere_give_the_same_lines(
        text in "([a-z{}\":]{0,12}(\r?\n)){0,12}[a-z]{0,5}",
        cuts in proptest::collection::vec(0usize..200, 0..10),
    ) {
        let bytes = text.as_bytes();
        let mut whole = LineSplitter::new();
        let mut expected = whole.push(bytes).unwrap();
        expected.extend(whole.finish());

        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = LineSplitter::new();
        let mut got = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            got.extend(pieces.push(&bytes[from..cut]).unwrap());
            from = cut;
        }
        got.extend(pieces.finish());
        prop_assert_eq!(got, expected);
    }
}
