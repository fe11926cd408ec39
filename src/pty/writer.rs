//! The writer thread: PTY records encoded, redacted and appended to the recorder's producer
//! inbox in batches, with the file rolled between batches.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use super::{FLUSH_AFTER, FLUSH_BYTES, ROLL_AFTER, ROLL_BYTES};
use crate::ingest::redact::{Redactor, StreamRedactor};
use crate::log::inbox::ProducerInbox;
use crate::log::{LogError, Store};
use crate::model::{Body, PtyBody, PtyKind, Record, Source};

/// An event sent to the writer thread.
pub(super) enum Event {
    Chunk {
        ts: u64,
        kind: PtyKind,
        data: Vec<u8>,
    },
    Resize {
        ts: u64,
        width: u16,
        height: u16,
    },
    Exit {
        ts: u64,
        status: i32,
    },
}

/// Wall-clock ns that never go backwards: the start time plus a monotonic clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) wall_ns: u64,
    pub(super) started: Instant,
}

impl Clock {
    pub(super) fn now(&self) -> u64 {
        self.wall_ns
            .saturating_add(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

pub(super) fn pty_record(session: &str, ts: u64, body: PtyBody) -> Record {
    Record {
        ts,
        source: Source::Pty,
        session: Some(session.to_owned()),
        body: Body::Pty(body),
        redactions: 0,
    }
}

pub(super) fn body(kind: PtyKind) -> PtyBody {
    PtyBody {
        kind,
        data: Vec::new(),
        command: None,
        cwd: None,
        term: None,
        width: None,
        height: None,
        status: None,
    }
}

pub(super) fn encode(record: &Record) -> Result<Vec<u8>, LogError> {
    record.encode().map_err(|e| LogError::Encode {
        what: "record",
        message: e.to_string(),
    })
}

/// Appends records to the recorder's producer inbox, in batches, rolling the file.
pub(super) struct Writer {
    pub(super) store: Store,
    pub(super) session: String,
    pub(super) file: Option<ProducerInbox>,
    pub(super) file_started: Instant,
    pub(super) pending: Vec<Vec<u8>>,
    pub(super) pending_bytes: usize,
    pub(super) oldest_pending: Option<Instant>,
    pub(super) records: u64,
    pub(super) error: Option<LogError>,
    pub(super) redactor: Redactor,
    pub(super) output: StreamRedactor,
    pub(super) input: StreamRedactor,
}

impl Writer {
    /// A writer for `session` with no inbox file yet (created on the first flush).
    pub(super) fn new(store: &Store, session: &str) -> Self {
        Self {
            store: store.clone(),
            session: session.to_owned(),
            file: None,
            file_started: Instant::now(),
            pending: Vec::new(),
            pending_bytes: 0,
            oldest_pending: None,
            records: 0,
            error: None,
            redactor: Redactor::new(&store.config().redaction),
            output: StreamRedactor::default(),
            input: StreamRedactor::default(),
        }
    }

    pub(super) fn push(&mut self, record: &Record) {
        if self.error.is_some() {
            return;
        }
        match encode(record) {
            Ok(bytes) => {
                self.pending_bytes += bytes.len();
                self.pending.push(bytes);
                self.oldest_pending.get_or_insert_with(Instant::now);
                self.records += 1;
            }
            Err(e) => self.error = Some(e),
        }
        if self.pending_bytes >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Writes pending records; rolls the file first when it is due, writing the batch to the new
    /// file before closing the old one.
    pub(super) fn flush(&mut self) {
        if self.pending.is_empty() || self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_flush() {
            tracing::error!(error = %e, session = %self.session, "PTY recording stopped: store error");
            self.error = Some(e);
        }
        self.pending.clear();
        self.pending_bytes = 0;
        self.oldest_pending = None;
    }

    pub(super) fn try_flush(&mut self) -> Result<(), LogError> {
        let due = self.file.as_ref().is_none_or(|file| {
            self.file_started.elapsed() >= ROLL_AFTER || file.len_bytes() >= ROLL_BYTES
        });
        let old = if due {
            let new = self.store.producer("pty")?;
            self.file_started = Instant::now();
            self.file.replace(new)
        } else {
            None
        };
        if let Some(file) = self.file.as_mut() {
            for bytes in &self.pending {
                file.append(bytes)?;
            }
            file.flush()?;
        }
        if let Some(old) = old {
            old.close()?;
        }
        Ok(())
    }

    pub(super) fn close(mut self) -> (u64, Option<LogError>) {
        self.flush();
        if let Some(file) = self.file.take()
            && let Err(e) = file.close()
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        (self.records, self.error)
    }

    /// Runs until an `Exit` event or until every sender is gone.
    pub(super) fn run(mut self, events: &Receiver<Event>) -> (u64, Option<LogError>) {
        loop {
            let event = match self.oldest_pending {
                Some(oldest) => {
                    let wait = FLUSH_AFTER.saturating_sub(oldest.elapsed());
                    match events.recv_timeout(wait) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => {
                            self.flush();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match events.recv() {
                    Ok(event) => event,
                    Err(_) => break,
                },
            };
            let (ts, body, last) = match event {
                Event::Chunk { ts, kind, data } => {
                    let stream = match kind {
                        PtyKind::Input => &mut self.input,
                        _ => &mut self.output,
                    };
                    let (data, redactions) = stream.push(&self.redactor, &data);
                    if data.is_empty() {
                        // All of it held back as a possible start of a secret.
                        continue;
                    }
                    let mut record = pty_record(&self.session, ts, PtyBody { data, ..body(kind) });
                    record.redactions = redactions;
                    self.push(&record);
                    continue;
                }
                Event::Resize { ts, width, height } => (
                    ts,
                    PtyBody {
                        width: Some(width),
                        height: Some(height),
                        data: format!("{width}x{height}").into_bytes(),
                        ..body(PtyKind::Resize)
                    },
                    false,
                ),
                Event::Exit { ts, status } => (
                    ts,
                    PtyBody {
                        status: Some(status),
                        data: status.to_string().into_bytes(),
                        ..body(PtyKind::Exit)
                    },
                    true,
                ),
            };
            if last {
                self.drain_streams(ts);
            }
            let mut record = pty_record(&self.session, ts, body);
            self.redactor.redact_record(&mut record);
            self.push(&record);
            if last {
                break;
            }
        }
        self.drain_streams(crate::now_ns());
        self.close()
    }

    /// Writes the tails the redaction streams held back, as records at `ts`.
    pub(super) fn drain_streams(&mut self, ts: u64) {
        for kind in [PtyKind::Output, PtyKind::Input] {
            let stream = match kind {
                PtyKind::Input => &mut self.input,
                _ => &mut self.output,
            };
            let (data, redactions) = stream.finish(&self.redactor);
            if data.is_empty() {
                continue;
            }
            let mut record = pty_record(&self.session, ts, PtyBody { data, ..body(kind) });
            record.redactions = redactions;
            self.push(&record);
        }
    }
}
