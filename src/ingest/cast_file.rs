//! Streaming ingest of an asciicast file: two passes over the file, each with one line in
//! memory (at most [`MAX_LINE_BYTES`]), whatever the file's size.
//!
//! 1. [`scan`] parses every line (an invalid cast is rejected before anything is stored),
//!    derives the session id from the file's bytes ([`super::asciicast::session_id`]), counts
//!    the output and input events and runs the redaction rules over each of those two streams
//!    without keeping them (a dry run, as the in-memory `Redactor::redact_pty_records` of the tests does).
//! 2. [`records`] parses the file again and hands over its records in order: the `start`
//!    record, then one per event. When the dry run found a secret in a stream, that stream is
//!    redacted as one stream ([`StreamRedactor`]): bytes held back at a chunk's end move to the
//!    next event of the same stream, and the held-back tail ends the stream's last event, as
//!    the in-memory path does.

use std::io::{BufReader, Read, Seek, SeekFrom};

use super::asciicast::{
    CastError, CastParser, Item, MAX_LINE_BYTES, SessionHasher, event_record, start_record,
};
use super::bounded::read_line_bounded;
use super::redact::{Redactor, StreamRedactor};
use crate::model::{Body, PtyKind, Record};

/// Read buffer of both passes (bytes).
const BUFFER_BYTES: usize = 1 << 20;

/// What the first pass learnt of a valid cast.
#[derive(Debug, Clone)]
pub struct CastScan {
    /// The session id derived from the file's bytes.
    pub session: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Events the cast holds (records are one more: the `start` record).
    pub events: u64,
    /// Per streamed kind (output, input): the number of events, and whether the redaction
    /// rules found a secret in the stream.
    streams: [StreamScan; 2],
}

#[derive(Debug, Clone, Copy, Default)]
struct StreamScan {
    events: u64,
    secret: bool,
}

fn stream_index(kind: PtyKind) -> Option<usize> {
    match kind {
        PtyKind::Output => Some(0),
        PtyKind::Input => Some(1),
        _ => None,
    }
}

/// A reader that feeds every byte it reads to a [`SessionHasher`] and counts them.
struct Hashing<R> {
    inner: R,
    hasher: SessionHasher,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Feeds the lines of `reader` to a [`CastParser`] and each item to `on_item`, counting lines
/// as the in-memory [`super::asciicast::parse`] does (a final `\n` ends with an empty line).
fn each_item<E: From<CastError> + From<std::io::Error>>(
    reader: &mut impl std::io::BufRead,
    mut on_item: impl FnMut(Item) -> Result<(), E>,
) -> Result<(), E> {
    let mut parser = CastParser::default();
    let mut last_terminated = true;
    while let Some(line) = read_line_bounded(reader, MAX_LINE_BYTES + 1, 0)? {
        last_terminated = line.terminated;
        if let Some(item) = parser.line(&line.head, line.len)? {
            on_item(item)?;
        }
    }
    if last_terminated && let Some(item) = parser.line(b"", 0)? {
        on_item(item)?;
    }
    parser.finish()?;
    Ok(())
}

/// Why a pass over a cast stopped.
#[derive(Debug, thiserror::Error)]
pub enum CastFileError {
    /// The file is not a valid cast.
    #[error(transparent)]
    Cast(#[from] CastError),
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The first pass over a cast file, read from its start (see the module docs).
///
/// # Errors
/// [`CastFileError::Cast`] for the first invalid line; [`CastFileError::Io`].
pub fn scan(file: &mut std::fs::File, redactor: &Redactor) -> Result<CastScan, CastFileError> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(
        BUFFER_BYTES,
        Hashing {
            inner: &mut *file,
            hasher: SessionHasher::default(),
            bytes: 0,
        },
    );
    let mut events = 0u64;
    let mut streams = [StreamScan::default(); 2];
    let mut probes = [StreamRedactor::default(), StreamRedactor::default()];
    each_item::<CastFileError>(&mut reader, |item| {
        if let Item::Event(event) = item {
            events += 1;
            if let Some(i) = stream_index(event.kind) {
                streams[i].events += 1;
                if !redactor.is_empty() && !streams[i].secret {
                    streams[i].secret = probes[i].push(redactor, &event.data).1 > 0;
                }
            }
        }
        Ok(())
    })?;
    for (stream, probe) in streams.iter_mut().zip(&mut probes) {
        if !redactor.is_empty() && !stream.secret {
            stream.secret = probe.finish(redactor).1 > 0;
        }
    }
    let hashing = reader.into_inner();
    Ok(CastScan {
        session: hashing.hasher.session_id(),
        bytes: hashing.bytes,
        events,
        streams,
    })
}

/// Why the second pass stopped.
#[derive(Debug)]
pub enum PassError<E> {
    /// Reading or parsing the file (it changed since [`scan`]).
    File(CastFileError),
    /// The caller's `push` failed.
    Push(E),
}

/// The second pass: hands `push` the cast's records in file order, the streams with a secret
/// redacted as streams (see the module docs). `fallback_start_ns` is the start time when the
/// header has no `timestamp`.
///
/// # Errors
/// [`PassError::Push`] with `push`'s error; [`PassError::File`] when the file changed since
/// [`scan`] and no longer reads or parses.
pub fn records<E>(
    file: &mut std::fs::File,
    scan: &CastScan,
    redactor: &Redactor,
    fallback_start_ns: u64,
    mut push: impl FnMut(Record) -> Result<(), E>,
) -> Result<(), PassError<E>> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| PassError::File(CastFileError::Io(e)))?;
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, &mut *file);
    let mut start_ns = fallback_start_ns;
    let mut seen = [0u64; 2];
    let mut streams = [StreamRedactor::default(), StreamRedactor::default()];
    let mut failure: Option<E> = None;
    let walked = each_item::<CastFileError>(&mut reader, |item| {
        let record = match item {
            Item::Header(header) => {
                start_ns = header.timestamp_ns.unwrap_or(fallback_start_ns);
                start_record(&header, &scan.session, start_ns)
            }
            Item::Event(event) => {
                let index = stream_index(event.kind);
                let mut record = event_record(event, &scan.session, start_ns);
                if let Some(i) = index
                    && scan.streams[i].secret
                {
                    seen[i] += 1;
                    redact_in_stream(
                        &mut record,
                        &mut streams[i],
                        redactor,
                        seen[i] == scan.streams[i].events,
                    );
                }
                record
            }
        };
        match push(record) {
            Ok(()) => Ok(()),
            Err(e) => {
                failure = Some(e);
                // Stops the walk; the caller's error is returned below.
                Err(CastFileError::Io(std::io::Error::other("stopped")))
            }
        }
    });
    match (failure, walked) {
        (Some(e), _) => Err(PassError::Push(e)),
        (None, Err(e)) => Err(PassError::File(e)),
        (None, Ok(())) => Ok(()),
    }
}

/// Redacts one event's data as the next chunk of its stream; the stream's last event also takes
/// the bytes the stream held back.
fn redact_in_stream(
    record: &mut Record,
    stream: &mut StreamRedactor,
    redactor: &Redactor,
    last: bool,
) {
    if let Body::Pty(pty) = &mut record.body {
        let (mut data, mut n) = stream.push(redactor, &pty.data);
        if last {
            let (tail, more) = stream.finish(redactor);
            data.extend_from_slice(&tail);
            n = n.saturating_add(more);
        }
        pty.data = data;
        record.redactions = record.redactions.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::io::Write;

    fn streamed(bytes: &[u8], redactor: &Redactor) -> (CastScan, Vec<Record>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let scan = scan(&mut file, redactor).unwrap();
        let mut out = Vec::new();
        records::<()>(&mut file, &scan, redactor, 7, |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        (scan, out)
    }

    /// The streaming passes give the in-memory path's records, redaction across events
    /// included (issue 14 item 9).
    #[test]
    fn streaming_matches_the_in_memory_path() {
        let redactor = Redactor::new(&Config::default().redaction);
        let cast = b"{\"version\": 2, \"width\": 80, \"height\": 24}\n\
            [0.5, \"o\", \"key: sk-ant-api03-AAAAAAAAAA\"]\n\
            [0.6, \"i\", \"x\"]\n\
            [0.7, \"o\", \"AAAAAAAAAAAAAAAAAAAAAAAA done\"]\n\
            [0.8, \"r\", \"90x30\"]\n";
        let (scan, streamed) = streamed(cast, &redactor);
        let parsed = super::super::asciicast::parse(cast).unwrap();
        let mut expected = super::super::asciicast::records(
            &parsed,
            &super::super::asciicast::session_id(cast),
            7,
        );
        redactor.redact_pty_records(&mut expected);
        assert_eq!(scan.events, 4);
        assert_eq!(scan.bytes, cast.len() as u64);
        assert_eq!(streamed, expected);
        assert!(
            streamed.iter().map(|r| r.redactions).sum::<u32>() > 0,
            "the secret split across two events is redacted"
        );
    }

    #[test]
    fn errors_name_the_same_line_as_the_in_memory_parser() {
        let redactor = Redactor::new(&Config::default().redaction);
        for cast in [
            &b""[..],
            b"\n\n",
            b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"o\"]\n",
            b"{\"version\": 2, \"width\": 80, \"height\": 24}\nnot json",
        ] {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(cast).unwrap();
            let streamed = scan(&mut file, &redactor).unwrap_err();
            let in_memory = super::super::asciicast::parse(cast).unwrap_err();
            let CastFileError::Cast(streamed) = streamed else {
                panic!("not a cast error: {streamed}")
            };
            assert_eq!(streamed.line(), in_memory.line(), "{cast:?}");
            assert_eq!(streamed.to_string(), in_memory.to_string());
        }
    }

    #[test]
    fn a_line_over_the_limit_is_rejected_without_being_held() {
        let redactor = Redactor::new(&Config::default().redaction);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"o\", \"")
            .unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..17 {
            file.write_all(&chunk).unwrap();
        }
        file.write_all(b"\"]\n").unwrap();
        let error = scan(&mut file, &redactor).unwrap_err();
        assert!(
            matches!(
                error,
                CastFileError::Cast(CastError::LineTooLong { line: 2, .. })
            ),
            "{error}"
        );
    }
}
