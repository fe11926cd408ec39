//! Streaming reads of hook logs written as one JSON document: a top-level array of payloads
//! (`FileKind::HookArray`) or a single payload object (`FileKind::HookObject`). The file is
//! read in 1 MiB pieces; each payload keeps at most `limit + margin` bytes
//! ([`BoundedHead::with_margin`]) and, when longer than `limit`, its whole size and SHA-256, so
//! memory is bounded whatever the file's or a payload's size.
//!
//! Positions are byte offsets in the file; a payload's position and length are those of its
//! text in the file (what the record's origin and the ingest cursor count).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::bounded::BoundedHead;
use super::json_array::{ArrayScanner, ArraySink};
use crate::model::Truncated;

/// Read size of the streaming pass (bytes).
const BUFFER_BYTES: usize = 1 << 20;

/// One payload of a JSON hook log.
#[derive(Debug)]
pub struct Payload {
    /// Byte position of the payload's text in the file.
    pub position: u64,
    /// Length of the payload's text in the file, in bytes.
    pub len: u64,
    /// The payload's first bytes (all of them unless `truncated`).
    pub head: Vec<u8>,
    /// The whole payload's size and SHA-256 when it was longer than the limit.
    pub truncated: Option<Truncated>,
}

/// How a payload is kept: truncated past `limit` bytes, keeping `margin` more for redaction.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Payloads longer than this (bytes) are truncated.
    pub limit: usize,
    /// Bytes kept past `limit` of a truncated payload.
    pub margin: usize,
}

/// Collects the elements that end in the piece being fed, skipping those before `from`.
struct Elements {
    from: u64,
    bounds: Bounds,
    current: Option<(u64, BoundedHead)>,
    done: Vec<Payload>,
}

impl ArraySink for Elements {
    fn element_start(&mut self, at: u64) {
        self.current = (at >= self.from).then(|| {
            (
                at,
                BoundedHead::with_margin(self.bounds.limit, self.bounds.margin),
            )
        });
    }

    fn element_bytes(&mut self, bytes: &[u8]) {
        if let Some((_, head)) = self.current.as_mut() {
            head.push(bytes);
        }
    }

    fn element_end(&mut self, end: u64) {
        if let Some((position, head)) = self.current.take() {
            let (head, truncated) = head.finish();
            self.done.push(Payload {
                position,
                len: end - position,
                head,
                truncated,
            });
        }
    }
}

/// Hands `each` the elements of the JSON array in `file` that start at or after byte `from`, in
/// order; text that is not a well-formed array from some point on is handed over raw, whitespace
/// trimmed, as one last payload (a malformed payload is kept, never dropped). Returns the end of
/// the last payload handed over, or `from` when there is none.
///
/// # Errors
/// Reading the file, or `each`'s error.
pub(crate) fn array_payloads<E: From<std::io::Error>>(
    file: &mut File,
    from: u64,
    bounds: Bounds,
    mut each: impl FnMut(Payload) -> Result<(), E>,
) -> Result<u64, E> {
    file.seek(SeekFrom::Start(0))?;
    let mut scanner = ArrayScanner::default();
    let mut sink = Elements {
        from,
        bounds,
        current: None,
        done: Vec::new(),
    };
    let mut buf = vec![0u8; BUFFER_BYTES];
    let mut end = from;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        scanner.feed(&buf[..n], &mut sink);
        for payload in sink.done.drain(..) {
            end = payload.position + payload.len;
            each(payload)?;
        }
    }
    let scan = scanner.finish();
    if let Some(broken) = scan.broken_at
        && broken >= from
        && broken < scan.content_end
    {
        // The byte at `broken` is not whitespace (an element's first byte, or the stray byte).
        let payload = read_range(file, broken, scan.content_end - broken, bounds)?;
        end = scan.content_end;
        each(payload)?;
    }
    Ok(end)
}

/// The single payload of a JSON object file (its text, whitespace trimmed), unless it ends at or
/// before byte `from` (already ingested) or the file holds only whitespace.
///
/// # Errors
/// Reading the file.
pub(crate) fn object_payload(
    file: &mut File,
    from: u64,
    bounds: Bounds,
) -> std::io::Result<Option<Payload>> {
    file.seek(SeekFrom::Start(0))?;
    let (mut first, mut end) = (None, 0u64);
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, &mut *file);
    let mut position = 0u64;
    loop {
        let piece = match std::io::BufRead::fill_buf(&mut reader) {
            Ok([]) => break,
            Ok(piece) => piece,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(k) = piece.iter().position(|b| !b.is_ascii_whitespace()) {
            first.get_or_insert(position + k as u64);
        }
        if let Some(k) = piece.iter().rposition(|b| !b.is_ascii_whitespace()) {
            end = position + k as u64 + 1;
        }
        let n = piece.len();
        position += n as u64;
        std::io::BufRead::consume(&mut reader, n);
    }
    drop(reader);
    match first {
        Some(start) if end > from => read_range(file, start, end - start, bounds).map(Some),
        _ => Ok(None),
    }
}

/// Reads `len` bytes of `file` from `position` as one payload.
fn read_range(
    file: &mut File,
    position: u64,
    len: u64,
    bounds: Bounds,
) -> std::io::Result<Payload> {
    file.seek(SeekFrom::Start(position))?;
    let mut head = BoundedHead::with_margin(bounds.limit, bounds.margin);
    let mut reader = (&mut *file).take(len);
    let mut buf = vec![0u8; BUFFER_BYTES.min(usize::try_from(len).unwrap_or(usize::MAX))];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = head.total_bytes();
    let (head, truncated) = head.finish();
    Ok(Payload {
        position,
        len,
        head,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn payloads(bytes: &[u8], from: u64, limit: usize) -> (Vec<Payload>, u64) {
        let mut out = Vec::new();
        let end = array_payloads::<std::io::Error>(
            &mut file(bytes),
            from,
            Bounds { limit, margin: 2 },
            |p| {
                out.push(p);
                Ok(())
            },
        )
        .unwrap();
        (out, end)
    }

    #[test]
    fn elements_and_a_broken_tail_are_kept_with_their_positions() {
        let text = b" [{\"a\":1}, {\"b\":\"x\"} , {\"c\": \n";
        let (got, end) = payloads(text, 0, 1 << 20);
        let texts: Vec<&[u8]> = got.iter().map(|p| &p.head[..]).collect();
        assert_eq!(texts, vec![&b"{\"a\":1}"[..], b"{\"b\":\"x\"}", b"{\"c\":"]);
        for p in &got {
            let (s, e) = (p.position as usize, (p.position + p.len) as usize);
            assert_eq!(&text[s..e], &p.head[..]);
        }
        assert_eq!(end, (text.len() - 2) as u64);
        // From the cursor on: the first element is skipped.
        let (again, _) = payloads(text, 3, 1 << 20);
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn a_long_element_keeps_its_head_and_the_whole_size_and_digest() {
        let big = format!("[\"{}\", 1]", "z".repeat(3 << 20));
        let (got, _) = payloads(big.as_bytes(), 0, 100);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].head.len(), 102);
        let cut = got[0].truncated.as_ref().unwrap();
        assert_eq!(cut.total_bytes, (3 << 20) + 2);
        assert_eq!(got[0].len, (3 << 20) + 2);
        assert_eq!(got[1].head, b"1");
    }

    #[test]
    fn an_object_is_one_trimmed_payload() {
        let text = b"\n  {\"hook_event_name\":\"Stop\"}\n\n";
        let bounds = Bounds {
            limit: 1 << 20,
            margin: 0,
        };
        let p = object_payload(&mut file(text), 0, bounds).unwrap().unwrap();
        assert_eq!(p.head, b"{\"hook_event_name\":\"Stop\"}");
        assert_eq!(p.position, 3);
        assert!(
            object_payload(&mut file(text), 40, bounds)
                .unwrap()
                .is_none()
        );
        assert!(
            object_payload(&mut file(b" \n"), 0, bounds)
                .unwrap()
                .is_none()
        );
    }
}
