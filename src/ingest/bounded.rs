//! Reading an input of any size with a bounded buffer (`DESIGN.md` §8): the first bytes are
//! kept, the rest is only counted and hashed, so a 1 GB hook payload or transcript line costs
//! as much memory as the limit, not as the input.
//!
//! [`BoundedHead`] is the one place that keeps a head and hashes the whole; [`read_bounded`]
//! (hook stdin) and [`read_line_bounded`] (bulk ingest, one line at a time) feed it.

use std::io::{BufRead, Read};

use sha2::{Digest, Sha256};

use crate::model::Truncated;

/// Bytes read per `read()` once past the limit (64 KiB).
const CHUNK_BYTES: usize = 64 << 10;

/// Keeps the first bytes of an input fed in pieces, and its size and SHA-256 once it is
/// longer than a limit. Memory: the kept bytes plus the hasher state, whatever the input.
#[derive(Debug)]
pub struct BoundedHead {
    head: Vec<u8>,
    /// Inputs longer than this (bytes) are truncated.
    limit: usize,
    /// Bytes kept of a truncated input (at least `limit`).
    keep: usize,
    total: u64,
    /// Set once the input passed `limit`: it has seen every byte so far.
    hasher: Option<Sha256>,
}

impl BoundedHead {
    /// An empty input that keeps at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self::with_margin(limit, 0)
    }

    /// An empty input that is truncated past `limit` bytes but keeps `limit + margin` of them
    /// (so that a caller can still redact across the cut before cutting at `limit` with
    /// [`crate::model::Record::truncate_to`], which keeps this size and digest).
    pub fn with_margin(limit: usize, margin: usize) -> Self {
        Self {
            head: Vec::new(),
            limit,
            keep: limit.saturating_add(margin),
            total: 0,
            hasher: None,
        }
    }

    /// Feeds the next bytes of the input.
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        match self.hasher.as_mut() {
            Some(hasher) => hasher.update(bytes),
            // Past the limit: from now on every byte is hashed. Until now `head` held them all.
            None if self.total > self.limit as u64 => {
                let mut hasher = Sha256::new();
                hasher.update(&self.head);
                hasher.update(bytes);
                self.hasher = Some(hasher);
            }
            None => {}
        }
        let room = self.keep.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
    }

    /// Bytes fed so far.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// The kept bytes.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The kept bytes, and a [`Truncated`] (whole size in bytes and SHA-256) when the input was
    /// longer than the limit.
    pub fn finish(self) -> (Vec<u8>, Option<Truncated>) {
        let truncated = self.hasher.map(|hasher| Truncated {
            total_bytes: self.total,
            sha256: hasher.finalize().to_vec(),
        });
        (self.head, truncated)
    }
}

/// Reads `reader` to its end, keeping at most `limit` bytes. Returns the kept bytes, a
/// [`Truncated`] (the whole input's size in bytes and its SHA-256) when the input was longer,
/// and the first read error, if any (what was read before it is returned all the same: the
/// hook stores what it got). Memory: `limit` plus a 64 KiB buffer, whatever the input.
pub fn read_bounded(
    mut reader: impl Read,
    limit: usize,
) -> (Vec<u8>, Option<Truncated>, Option<std::io::Error>) {
    let mut kept = BoundedHead::new(limit);
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut error = None;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => kept.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let (head, truncated) = kept.finish();
    (head, truncated, error)
}

/// One line read by [`read_line_bounded`].
#[derive(Debug)]
pub struct BoundedLine {
    /// The line's first bytes (at most the limit plus the margin), without its `\n` (a `\r`
    /// before it stays).
    pub head: Vec<u8>,
    /// The whole line's size and SHA-256 (without its `\n`) when it was longer than the limit.
    pub truncated: Option<Truncated>,
    /// Length of the whole line in bytes, without its `\n`.
    pub len: u64,
    /// Whether the line ended with `\n` (false for a last line at the end of the input).
    pub terminated: bool,
    /// Whether every byte of the whole line is ASCII whitespace (an empty line too).
    pub blank: bool,
}

impl BoundedLine {
    /// Bytes the line occupies in the input, its `\n` included.
    pub fn span(&self) -> u64 {
        self.len + u64::from(self.terminated)
    }
}

/// Reads the next `\n`-terminated line of `reader`. A line longer than `limit` bytes is
/// truncated: its first `limit + margin` bytes are kept and the rest is only counted and
/// hashed ([`BoundedHead::with_margin`]). `Ok(None)` at the end of the input. Memory:
/// `limit + margin` plus the reader's buffer, however long the line.
///
/// # Errors
/// The reader's I/O error (`Interrupted` is retried).
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    limit: usize,
    margin: usize,
) -> std::io::Result<Option<BoundedLine>> {
    let mut kept = BoundedHead::with_margin(limit, margin);
    let mut blank = true;
    let mut terminated = false;
    let mut any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (piece, used) = match memchr::memchr(b'\n', buf) {
            Some(n) => {
                terminated = true;
                (&buf[..n], n + 1)
            }
            None => (buf, buf.len()),
        };
        blank = blank && piece.iter().all(u8::is_ascii_whitespace);
        kept.push(piece);
        reader.consume(used);
        if terminated {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    let len = kept.total_bytes();
    let (head, truncated) = kept.finish();
    Ok(Some(BoundedLine {
        head,
        truncated,
        len,
        terminated,
        blank,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_kept_whole() {
        let (head, truncated, error) = read_bounded(&b"hello"[..], 5);
        assert_eq!(head, b"hello");
        assert!(truncated.is_none() && error.is_none());
    }

    #[test]
    fn long_input_keeps_the_head_and_hashes_everything() {
        let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (head, truncated, error) = read_bounded(&input[..], 1000);
        assert!(error.is_none());
        assert_eq!(head, &input[..1000]);
        let truncated = truncated.unwrap();
        assert_eq!(truncated.total_bytes, 300_000);
        assert_eq!(truncated.sha256, Sha256::digest(&input).to_vec());
    }

    /// All lines of `input` read with a small `BufReader` (so lines straddle its buffer).
    fn lines(input: &[u8], limit: usize) -> Vec<BoundedLine> {
        let mut reader = std::io::BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        while let Some(line) = read_line_bounded(&mut reader, limit, 0).unwrap() {
            out.push(line);
        }
        out
    }

    /// Issue 14 item 9: a line longer than the limit keeps its head, its whole size and
    /// SHA-256, and the lines after it are read whole.
    #[test]
    fn long_line_keeps_its_head_and_digest() {
        let long: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = long.clone();
        input.extend_from_slice(b"\n{\"b\":1}\n");
        let read = lines(&input, 100);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].head, &long[..100]);
        assert_eq!(read[0].len, 10_000);
        assert!(read[0].terminated && !read[0].blank);
        let cut = read[0].truncated.as_ref().unwrap();
        assert_eq!(cut.total_bytes, 10_000);
        assert_eq!(cut.sha256, Sha256::digest(&long).to_vec());
        assert_eq!(read[1].head, b"{\"b\":1}");
        assert!(read[1].truncated.is_none());
    }

    /// Issue 14 item 9: with a margin, a truncated line keeps `limit + margin` bytes and its
    /// digest covers the whole line; a line of the limit is not truncated.
    #[test]
    fn margin_keeps_more_of_a_truncated_line() {
        let input = b"0123456789abcdef\n0123\n";
        let mut reader = &input[..];
        let line = read_line_bounded(&mut reader, 4, 6).unwrap().unwrap();
        assert_eq!(line.head, b"0123456789");
        let cut = line.truncated.unwrap();
        assert_eq!(cut.total_bytes, 16);
        assert_eq!(cut.sha256, Sha256::digest(b"0123456789abcdef").to_vec());
        let line = read_line_bounded(&mut reader, 4, 6).unwrap().unwrap();
        assert_eq!(line.head, b"0123");
        assert!(line.truncated.is_none());
    }

    /// Issue 14 item 9: a line of exactly the limit is whole; one byte more is truncated.
    #[test]
    fn exact_limit_line_is_whole() {
        let read = lines(b"0123456789\n01234567890\n", 10);
        assert_eq!(read[0].head, b"0123456789");
        assert!(read[0].truncated.is_none());
        assert_eq!(read[1].head, b"0123456789");
        assert_eq!(read[1].truncated.as_ref().unwrap().total_bytes, 11);
    }

    /// Issue 14 item 9: a last line without a newline is read, and says so.
    #[test]
    fn last_line_without_newline() {
        let read = lines(b"{\"a\":1}\n{\"b\":2}", 100);
        assert_eq!(read.len(), 2);
        assert!(read[0].terminated);
        assert_eq!(read[1].head, b"{\"b\":2}");
        assert!(!read[1].terminated);
        assert_eq!(read[1].span(), 7);
        // A file of zeros without a newline: one line, truncated, counted whole.
        let zeros = vec![0u8; 5000];
        let read = lines(&zeros, 64);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].len, 5000);
        assert!(!read[0].terminated && !read[0].blank);
        assert_eq!(read[0].truncated.as_ref().unwrap().total_bytes, 5000);
    }

    /// Issue 14 item 9: CRLF lines keep their `\r` (JSON whitespace) and occupy it; a line of
    /// only `\r` is blank.
    #[test]
    fn crlf_lines() {
        let read = lines(b"{\"a\":1}\r\n\r\n{\"b\":2}\r\n", 100);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].head, b"{\"a\":1}\r");
        assert_eq!(read[0].span(), 9);
        assert!(read[1].blank);
        assert_eq!(read[2].head, b"{\"b\":2}\r");
    }

    /// Issue 14 item 9: positions summed from spans stay exact after a truncated line, so a
    /// reader resumed at the cursor starts on the next line.
    #[test]
    fn cursor_after_truncated_line_resumes_on_the_next_line() {
        let mut input = vec![b'x'; 3000];
        input.extend_from_slice(b"\nsecond\nthird");
        let read = lines(&input, 50);
        let cursor = read[0].span();
        assert_eq!(cursor, 3001);
        let resumed = lines(&input[cursor as usize..], 50);
        assert_eq!(resumed[0].head, b"second");
        assert_eq!(cursor + resumed[0].span(), 3008);
        assert_eq!(resumed[1].head, b"third");
    }
}
