//! Reading an input of any size with a bounded buffer (`DESIGN.md` §8): the first bytes are
//! kept, the rest is only counted and hashed, so a 1 GB hook payload costs as much memory as
//! the limit, not as the input.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::log::record::Truncated;

/// Bytes read per `read()` once past the limit (64 KiB).
const CHUNK_BYTES: usize = 64 << 10;

/// Reads `reader` to its end, keeping at most `limit` bytes. Returns the kept bytes, a
/// [`Truncated`] (the whole input's size in bytes and its SHA-256) when the input was longer,
/// and the first read error, if any (what was read before it is returned all the same: the
/// hook stores what it got). Memory: `limit` plus a 64 KiB buffer, whatever the input.
pub fn read_bounded(
    mut reader: impl Read,
    limit: usize,
) -> (Vec<u8>, Option<Truncated>, Option<std::io::Error>) {
    let mut head = Vec::new();
    // `take(limit + 1)`: one byte past the limit tells that there is more.
    let first = (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut head)
        .err();
    if head.len() <= limit || first.is_some() {
        if head.len() > limit {
            return truncate_head(head, limit, first);
        }
        return (head, None, first);
    }
    let mut hasher = Sha256::new();
    hasher.update(&head);
    let mut total = head.len() as u64;
    head.truncate(limit);
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut error = None;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let truncated = Truncated {
        total_bytes: total,
        sha256: hasher.finalize().to_vec(),
    };
    (head, Some(truncated), error)
}

fn truncate_head(
    mut head: Vec<u8>,
    limit: usize,
    error: Option<std::io::Error>,
) -> (Vec<u8>, Option<Truncated>, Option<std::io::Error>) {
    let truncated = Truncated {
        total_bytes: head.len() as u64,
        sha256: Sha256::digest(&head).to_vec(),
    };
    head.truncate(limit);
    (head, Some(truncated), error)
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
}
