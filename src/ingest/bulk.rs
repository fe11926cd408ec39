//! Bulk ingest of files and directories, and tailing of transcripts named by hooks.
//!
//! Input kinds, decided per file:
//! - `*.jsonl` / `*.ndjson`: one JSON value per line; a file whose first lines carry
//!   `hook_event_name` holds hook payloads, otherwise transcript lines;
//! - `*.json`: one hook payload (an object), or a JSON array of hook payloads (as hook loggers
//!   write them);
//! - `*.cast`: an asciicast v2/v3 recording, ingested whole as a PTY session
//!   ([`Ingester::ingest_cast`]);
//! - directories: walked recursively (a whole `~/.claude/projects` tree with `subagents/`);
//!   there, `*.json` files are taken only when they look like payloads (an object, or an array
//!   of objects, with `session_id` or `hook_event_name`).
//!
//! Idempotence: each record carries its source file and byte position; the sealer keeps, per
//! file, the end of what is sealed (MANIFEST cursors). Ingest reads each file from its cursor,
//! so re-ingesting adds nothing and a grown file adds only the new lines. A last line without a
//! newline is taken when it is valid JSON or the file has not changed for
//! [`SETTLED_AFTER`]; otherwise it waits for the next ingest.
//!
//! The caller holds the store lock for the whole run: records go to a producer inbox file that
//! is sealed every [`ROLL_BYTES`] and at the end.
//!
//! Files named on the command line are read whatever their path (the user chose them); the
//! transcripts hooks name are read only when [`transcript_path`]'s rules admit them, and one
//! that cannot be read is logged and skipped, never an error of the pass.

mod files;
pub mod transcript_path;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::asciicast::CastError;
use super::bounded::read_line_bounded;
use super::cast_file::{self, CastFileError};
use super::json_file;
use super::redact::Redactor;
use crate::claude::{hook_record, transcript_record};
use crate::log::inbox::ProducerInbox;
use crate::log::{LogError, SealReport, StoreLock};
use crate::model::{Body, Origin, Record};
pub use files::session_from_path;
use files::{
    canonical, detect, extension, first_timestamp_from, open_regular, read_up_to, special_kind,
};

/// Producer inbox size in bytes after which ingest seals and starts a new one (32 MiB).
pub const ROLL_BYTES: u64 = 32 << 20;
/// An unterminated last line is taken once the file is this old.
pub const SETTLED_AFTER: Duration = Duration::from_secs(5);
/// Read buffer of bulk ingest in bytes (1 MiB); lines are read through it one at a time.
const LINE_BUFFER_BYTES: usize = 1 << 20;
/// Bytes kept of a line above `storage.max_record_bytes` beyond the limit (64 KiB), so that
/// redaction sees a secret straddling the cut whole before the record is cut to the limit.
const REDACTION_MARGIN_BYTES: usize = 64 << 10;

/// A file whose lines bulk ingest reads, from `start` on.
struct LineSource<'a> {
    /// The file's key in the MANIFEST cursors (its canonical path).
    key: &'a str,
    path: &'a Path,
    file: &'a std::fs::File,
    start: u64,
    /// Whether an unterminated last line is taken (the file has not changed for a while).
    settled: bool,
    mtime_ns: u64,
}

/// A file open for bulk ingest.
struct OpenedFile<'a> {
    /// The path it was named by (messages, and the session of a transcript).
    path: &'a Path,
    /// Its key in the MANIFEST cursors (its canonical path).
    key: String,
    file: std::fs::File,
    meta: std::fs::Metadata,
}

/// A JSON hook log (an array of payloads, or one payload) that bulk ingest reads.
struct JsonSource<'a> {
    /// The file's key in the MANIFEST cursors (its canonical path).
    key: &'a str,
    path: &'a Path,
    /// [`FileKind::HookArray`] or [`FileKind::HookObject`].
    kind: FileKind,
    /// The end of what was ingested of the file before.
    cursor: u64,
    mtime_ns: u64,
}

/// A file's modification time, as bulk ingest uses it.
struct FileTimes {
    /// Whether the file has not changed for [`SETTLED_AFTER`].
    settled: bool,
    /// The modification time in ns since the Unix epoch (0 when unknown).
    mtime_ns: u64,
}

impl FileTimes {
    fn of(meta: &std::fs::Metadata) -> Self {
        let mtime = meta.modified().unwrap_or(SystemTime::now());
        let settled = mtime
            .elapsed()
            .map(|age| age >= SETTLED_AFTER)
            .unwrap_or(false);
        let mtime_ns = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(0))
            .unwrap_or(0);
        Self { settled, mtime_ns }
    }
}

/// Errors of bulk ingest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A log error (append, seal).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A source file or directory could not be read.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A file that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
    /// Whether the file was refused as invalid (as opposed to not being something to ingest);
    /// `ctrace ingest` exits 1 when any file was refused.
    #[serde(default)]
    pub rejected: bool,
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Files read (including those with nothing new).
    pub files: u64,
    /// Files with nothing new since the last ingest.
    pub unchanged_files: u64,
    /// Records added.
    pub records: u64,
    /// Hook records added.
    pub hook_records: u64,
    /// Transcript records added.
    pub transcript_records: u64,
    /// PTY records added (from asciicast files).
    pub pty_records: u64,
    /// Source bytes consumed.
    pub bytes: u64,
    /// Records flagged malformed, by kind (they are stored raw all the same).
    pub malformed: BTreeMap<String, u64>,
    /// Records whose line or payload was above `storage.max_record_bytes`, stored truncated
    /// (first bytes, whole size and SHA-256; see `docs/format.md`).
    pub truncated: u64,
    /// Files not ingested, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Bytes of unterminated last lines left for the next ingest.
    pub pending_tail_bytes: u64,
    /// Wall time in ns.
    pub elapsed_ns: u64,
}

impl IngestSummary {
    /// Total malformed records.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().sum()
    }
}

/// How a file's content is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Transcript lines (JSONL).
    TranscriptLines,
    /// Hook payloads, one per line (NDJSON).
    HookLines,
    /// A JSON array of hook payloads.
    HookArray,
    /// One hook payload.
    HookObject,
}

/// Runs one ingest over a store lock.
pub struct Ingester<'l, 's> {
    lock: &'l mut StoreLock<'s>,
    producer: Option<ProducerInbox>,
    cursors: BTreeMap<String, u64>,
    summary: IngestSummary,
    progress: Box<dyn FnMut(u64) + 'l>,
    seals: Vec<SealReport>,
    started: Instant,
    pty_sessions: Option<BTreeSet<String>>,
    /// Shared so a cast pass can redact while `push` borrows the ingester.
    redactor: std::sync::Arc<Redactor>,
}

impl<'l, 's> Ingester<'l, 's> {
    /// Starts an ingest. Seals pending inbox data first so cursors are current.
    ///
    /// # Errors
    /// [`IngestError::Log`] when sealing fails.
    pub fn new(lock: &'l mut StoreLock<'s>) -> Result<Self, IngestError> {
        // What waited in the inbox first (its hooks may name transcripts: see `finish`).
        let first = lock.seal()?;
        let redactor = std::sync::Arc::new(Redactor::new(&lock.store().config().redaction));
        Ok(Self {
            redactor,
            lock,
            producer: None,
            cursors: BTreeMap::new(),
            summary: IngestSummary::default(),
            progress: Box::new(|_| {}),
            seals: vec![first],
            started: Instant::now(),
            pty_sessions: None,
        })
    }

    /// Sets a callback told the number of source bytes consumed after each file.
    pub fn on_progress(&mut self, progress: impl FnMut(u64) + 'l) {
        self.progress = Box::new(progress);
    }

    fn cursor(&self, key: &str) -> u64 {
        self.cursors
            .get(key)
            .copied()
            .or_else(|| self.lock.manifest().cursors.get(key).map(|c| c.end))
            .unwrap_or(0)
    }

    fn push(&mut self, mut record: Record) -> Result<(), IngestError> {
        self.redactor.redact_record(&mut record);
        // After redaction, so a secret is never left half-visible at the cut.
        let cut = record.truncate_to(self.lock.store().config().max_record_bytes());
        // A line read truncated (`lines`) is already flagged, with its size in the file.
        if cut || record.truncated().is_some() {
            self.summary.truncated += 1;
            if let Some(cut) = record.truncated() {
                tracing::warn!(
                    bytes = cut.total_bytes,
                    sha256 = %cut.sha256_hex(),
                    "input above storage.max_record_bytes stored truncated"
                );
            }
        }
        let malformed = match &record.body {
            Body::Hook(hook) => {
                self.summary.hook_records += 1;
                hook.malformed
            }
            Body::Transcript(line) => {
                self.summary.transcript_records += 1;
                line.malformed
            }
            _ => None,
        };
        if let Some(kind) = malformed {
            *self
                .summary
                .malformed
                .entry(kind.as_str().to_owned())
                .or_default() += 1;
        }
        self.summary.records += 1;
        let bytes = record.encode().map_err(|e| LogError::Encode {
            what: "record",
            message: e.to_string(),
        })?;
        let producer = match self.producer.as_mut() {
            Some(producer) => producer,
            None => self.producer.insert(self.lock.store().producer("ingest")?),
        };
        producer.append(&bytes)?;
        if producer.len_bytes() >= ROLL_BYTES {
            self.seal()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<(), IngestError> {
        if let Some(producer) = self.producer.take() {
            producer.close()?;
            let report = self.lock.seal()?;
            self.seals.push(report);
        }
        Ok(())
    }

    /// Ingests files and directories.
    ///
    /// # Errors
    /// [`IngestError::Io`] when a named path cannot be read; [`IngestError::Log`] when the store
    /// fails. Files that are unsupported are listed in the summary, not errors.
    pub fn ingest_paths(&mut self, paths: &[PathBuf]) -> Result<(), IngestError> {
        let mut files: Vec<PathBuf> = Vec::new();
        let mut casts: Vec<PathBuf> = Vec::new();
        // Directory entries are detected; named files too, but always taken.
        let mut seen = BTreeSet::new();
        for path in paths {
            let meta = match std::fs::metadata(path) {
                Ok(meta) => meta,
                Err(source) => {
                    self.refuse(path, format!("cannot read {}: {source}", path.display()));
                    continue;
                }
            };
            if !meta.is_dir() && !meta.is_file() {
                // Opening a FIFO would block until a writer comes; a device may never end.
                self.refuse(
                    path,
                    format!(
                        "{} is not a regular file or directory ({})",
                        path.display(),
                        special_kind(&meta.file_type())
                    ),
                );
                continue;
            }
            if meta.is_dir() {
                for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                    let entry = match entry {
                        Ok(entry) => entry,
                        Err(error) => {
                            // A directory that vanished or cannot be listed mid-walk.
                            let at = error.path().map_or_else(|| path.clone(), Path::to_path_buf);
                            self.refuse(&at, format!("cannot read {}: {error}", at.display()));
                            continue;
                        }
                    };
                    let file_type = entry.file_type();
                    if !file_type.is_file() {
                        if !file_type.is_dir() && !file_type.is_symlink() {
                            self.summary.skipped.push(SkippedFile {
                                rejected: false,
                                path: entry.path().to_path_buf(),
                                reason: format!(
                                    "not a regular file ({})",
                                    special_kind(&file_type)
                                ),
                            });
                        }
                        continue;
                    }
                    let file = entry.path().to_path_buf();
                    match extension(&file).as_deref() {
                        Some("jsonl" | "ndjson" | "json") if seen.insert(canonical(&file)) => {
                            files.push(file);
                        }
                        Some("cast") if seen.insert(canonical(&file)) => {
                            casts.push(file);
                        }
                        _ => {}
                    }
                }
            } else if seen.insert(canonical(path)) {
                if extension(path).as_deref() == Some("cast") {
                    casts.push(path.clone());
                } else {
                    // Named files of any other extension are read as JSON lines or JSON.
                    files.push(path.clone());
                }
            }
        }
        let explicit: BTreeSet<PathBuf> = paths.iter().map(|p| canonical(p)).collect();
        for file in files {
            let named = explicit.contains(&canonical(&file));
            let result = self.ingest_file(&file, None, named);
            self.refuse_unreadable(&file, result)?;
        }
        for cast in casts {
            let result = self.ingest_cast(&cast);
            self.refuse_unreadable(&cast, result)?;
        }
        Ok(())
    }

    /// Lists `path` in the summary as refused (`ctrace ingest` then exits 1) and goes on.
    fn refuse(&mut self, path: &Path, reason: String) {
        tracing::warn!(path = %path.display(), %reason, "ingest refused a file");
        self.summary.skipped.push(SkippedFile {
            rejected: true,
            path: path.to_path_buf(),
            reason,
        });
    }

    /// A file that vanished or cannot be read while ingesting many is refused and the rest go
    /// on; store errors still stop the run.
    fn refuse_unreadable(
        &mut self,
        path: &Path,
        result: Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        match result {
            Err(IngestError::Io { path: at, source }) => {
                let what = if source.kind() == std::io::ErrorKind::NotFound {
                    "vanished before it was read".to_owned()
                } else {
                    format!("cannot be read: {source}")
                };
                self.refuse(path, format!("{} {what}", at.display()));
                Ok(())
            }
            other => other,
        }
    }

    /// Ingests one asciicast v2/v3 file as a PTY session (`super::asciicast`). An invalid cast
    /// adds nothing and is listed in the summary as skipped, with its line and the reason; a cast
    /// whose session is already in the store adds nothing (the session id is derived from the
    /// file's bytes).
    ///
    /// # Errors
    /// [`IngestError::Io`] when the file cannot be read; [`IngestError::Log`] when the store
    /// fails.
    pub fn ingest_cast(&mut self, path: &Path) -> Result<(), IngestError> {
        let io = |source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (mut file, meta) = open_regular(path).map_err(io)?;
        let reject = |this: &mut Self, error: CastError| {
            this.summary.skipped.push(SkippedFile {
                rejected: true,
                path: path.to_path_buf(),
                reason: format!(
                    "invalid asciicast at {}:{}: {error}",
                    path.display(),
                    error.line()
                ),
            });
        };
        let scan = match cast_file::scan(&mut file, &self.redactor) {
            Ok(scan) => scan,
            Err(CastFileError::Cast(error)) => {
                reject(self, error);
                return Ok(());
            }
            Err(CastFileError::Io(source)) => return Err(io(source)),
        };
        self.summary.files += 1;
        if self.pty_sessions()?.contains(&scan.session) {
            self.summary.unchanged_files += 1;
            return Ok(());
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or_else(crate::now_ns, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let redactor = std::sync::Arc::clone(&self.redactor);
        cast_file::records(&mut file, &scan, &redactor, mtime_ns, |record| {
            self.push(record)
        })
        .map_err(|error| match error {
            cast_file::PassError::Push(error) => error,
            // The file changed between the passes: what was pushed stays (it is valid cast
            // data), the rest is reported.
            cast_file::PassError::File(CastFileError::Io(source)) => io(source),
            cast_file::PassError::File(CastFileError::Cast(error)) => {
                io(std::io::Error::other(format!(
                    "the cast changed while it was read: line {}: {error}",
                    error.line()
                )))
            }
        })?;
        self.summary.pty_records += scan.events + 1;
        self.summary.bytes += scan.bytes;
        if let Some(sessions) = self.pty_sessions.as_mut() {
            sessions.insert(scan.session);
        }
        (self.progress)(scan.bytes);
        Ok(())
    }

    /// Sessions that have a PTY `start` record, read once per ingest run.
    fn pty_sessions(&mut self) -> Result<&BTreeSet<String>, IngestError> {
        if self.pty_sessions.is_none() {
            let mut sessions = BTreeSet::new();
            let snapshot = self.lock.store().snapshot()?;
            for stored in snapshot.iter() {
                let stored = stored?;
                if let (Some(session), Body::Pty(pty)) =
                    (&stored.record.session, &stored.record.body)
                    && pty.kind == crate::model::PtyKind::Start
                {
                    sessions.insert(session.clone());
                }
            }
            self.pty_sessions = Some(sessions);
        }
        Ok(self.pty_sessions.get_or_insert_default())
    }

    /// Ingests one file from its cursor. `kind` overrides detection; `named` means the user
    /// named this file (so `.json` files that do not look like payloads are still taken).
    ///
    /// # Errors
    /// As [`Ingester::ingest_paths`].
    pub(crate) fn ingest_file(
        &mut self,
        path: &Path,
        kind: Option<FileKind>,
        named: bool,
    ) -> Result<(), IngestError> {
        let (file, meta) = open_regular(path).map_err(|source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let opened = OpenedFile {
            path,
            key: canonical(path).to_string_lossy().into_owned(),
            file,
            meta,
        };
        self.ingest_opened(opened, kind, named)
    }

    /// [`Ingester::ingest_file`] of a file already open.
    fn ingest_opened(
        &mut self,
        opened: OpenedFile<'_>,
        kind: Option<FileKind>,
        named: bool,
    ) -> Result<(), IngestError> {
        let OpenedFile {
            path,
            key,
            mut file,
            meta,
        } = opened;
        let io = |source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = meta.len();
        let times = FileTimes::of(&meta);
        let cursor = self.cursor(&key);
        self.summary.files += 1;
        if len < cursor {
            self.summary.skipped.push(SkippedFile {
                rejected: false,
                path: path.to_path_buf(),
                reason: format!(
                    "file is {len} bytes, shorter than the {cursor} bytes ingested before (replaced or truncated); not re-read"
                ),
            });
            return Ok(());
        }
        let Some(kind) = self.kind_of(&mut file, path, kind, named)? else {
            return Ok(());
        };
        let whole = matches!(kind, FileKind::HookArray | FileKind::HookObject);
        let start = if whole { 0 } else { cursor };
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let before = self.summary.records;
        let end = match kind {
            FileKind::TranscriptLines | FileKind::HookLines => {
                let source = LineSource {
                    key: &key,
                    path,
                    file: &file,
                    start,
                    settled: times.settled,
                    mtime_ns: times.mtime_ns,
                };
                self.lines(&source, kind)?
            }
            FileKind::HookArray | FileKind::HookObject => {
                let source = JsonSource {
                    key: &key,
                    path,
                    kind,
                    cursor,
                    mtime_ns: times.mtime_ns,
                };
                self.json_payloads(&mut file, &source)?
            }
        };
        self.cursors.insert(key, end.max(cursor));
        if self.summary.records == before {
            self.summary.unchanged_files += 1;
        }
        let consumed = end.saturating_sub(start.max(cursor));
        self.summary.bytes += consumed;
        (self.progress)(len.saturating_sub(cursor));
        Ok(())
    }

    /// The kind of `file`: `kind` when given, else detected from its first 64 KiB. `None` (and
    /// the file listed as skipped) when it is neither hook payloads nor a transcript.
    fn kind_of(
        &mut self,
        file: &mut std::fs::File,
        path: &Path,
        kind: Option<FileKind>,
        named: bool,
    ) -> Result<Option<FileKind>, IngestError> {
        if let Some(kind) = kind {
            return Ok(Some(kind));
        }
        let mut head = vec![0u8; 64 << 10];
        let n = read_up_to(file, &mut head).map_err(|source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        head.truncate(n);
        let detected = detect(path, &head, named);
        if detected.is_none() {
            self.summary.files -= 1;
            self.summary.skipped.push(SkippedFile {
                rejected: false,
                path: path.to_path_buf(),
                reason: "not a hook payload or transcript".into(),
            });
        }
        Ok(detected)
    }

    /// Streams the hook payloads of a JSON array or object file (from `source.cursor`) into
    /// records. Returns the end of the last payload taken.
    fn json_payloads(
        &mut self,
        file: &mut std::fs::File,
        source: &JsonSource<'_>,
    ) -> Result<u64, IngestError> {
        let io = |error| IngestError::Io {
            path: source.path.to_path_buf(),
            source: error,
        };
        let bounds = json_file::Bounds {
            limit: self.lock.store().config().max_record_bytes(),
            margin: REDACTION_MARGIN_BYTES,
        };
        let mut push = |payload: json_file::Payload| {
            let origin = Origin {
                file: source.key.to_owned(),
                position: payload.position,
                len: payload.len,
            };
            let mut record = hook_record(payload.head, source.mtime_ns, None, Some(origin));
            if let Body::Hook(body) = &mut record.body
                && payload.truncated.is_some()
            {
                body.truncated = payload.truncated;
            }
            self.push(record)
        };
        if source.kind == FileKind::HookArray {
            json_file::array_payloads(file, source.cursor, bounds, |payload| {
                push(payload).map_err(JsonStop::Push)
            })
            .map_err(|stop| match stop {
                JsonStop::Push(error) => error,
                JsonStop::Io(error) => io(error),
            })
        } else {
            match json_file::object_payload(file, source.cursor, bounds).map_err(io)? {
                Some(payload) => {
                    let end = payload.position + payload.len;
                    push(payload)?;
                    Ok(end)
                }
                None => Ok(source.cursor),
            }
        }
    }

    /// Reads the lines of `source` from its start position one at a time with a bounded
    /// buffer (`super::bounded::read_line_bounded`): a line longer than
    /// `storage.max_record_bytes` keeps its head and is stored truncated with its whole size
    /// and SHA-256, and its whole length still counts in the record's origin (the cursor).
    /// Records go to the producer inbox as they are made. Returns the end of the last line
    /// taken.
    fn lines(&mut self, source: &LineSource<'_>, kind: FileKind) -> Result<u64, IngestError> {
        let io = |error| IngestError::Io {
            path: source.path.to_path_buf(),
            source: error,
        };
        let session = session_from_path(source.path);
        // A truncated line keeps a margin past the limit: `push` cuts to the limit after
        // redaction, so a secret at the cut is still seen whole by the redactor. Its size and
        // SHA-256 are those of the line in the file, as for a hook payload.
        let limit = self.lock.store().config().max_record_bytes();
        let mut reader = std::io::BufReader::with_capacity(LINE_BUFFER_BYTES, source.file);
        // Lines without a `timestamp` (snapshots, summaries) take the time of the line before
        // them, or of the first timestamped line (looked for when the first record is made),
        // or the file's mtime.
        let mut fallback_ts: Option<u64> = None;
        let mut position = source.start;
        let mut end = source.start;
        while let Some(line) =
            read_line_bounded(&mut reader, limit, REDACTION_MARGIN_BYTES).map_err(io)?
        {
            let at = position;
            position += line.span();
            if line.blank {
                continue;
            }
            if !line.terminated
                && !source.settled
                && (line.truncated.is_some()
                    || serde_json::from_slice::<serde::de::IgnoredAny>(&line.head).is_err())
            {
                self.summary.pending_tail_bytes += line.len;
                break;
            }
            let origin = Origin {
                file: source.key.to_owned(),
                position: at,
                len: line.len,
            };
            end = at + line.len;
            let fallback = match fallback_ts {
                Some(ts) => ts,
                None => first_timestamp_from(source.file, at)
                    .map_err(io)?
                    .unwrap_or(source.mtime_ns),
            };
            let mut record = match kind {
                FileKind::HookLines => hook_record(line.head, source.mtime_ns, None, Some(origin)),
                _ => transcript_record(line.head, origin, fallback, session.as_deref()),
            };
            if line.truncated.is_some() {
                match &mut record.body {
                    Body::Hook(body) => body.truncated = line.truncated,
                    Body::Transcript(body) => body.truncated = line.truncated,
                    _ => {}
                }
            }
            fallback_ts = Some(record.ts);
            self.push(record)?;
        }
        Ok(end)
    }

    /// Seals what was ingested and returns the summary and the seals done. A seal also seals
    /// the hook records other processes left in the inbox; the transcripts those name
    /// (Stop-like hooks) are tailed here, as the compactor's refresh tails them, so a
    /// transcript is not left behind because an ingest, rather than a reading command, sealed
    /// its hook. The summary counts what was asked for, not those tails.
    ///
    /// # Errors
    /// [`IngestError::Log`] when a seal fails.
    pub fn finish(mut self) -> Result<(IngestSummary, Vec<SealReport>), IngestError> {
        self.seal()?;
        let asked = self.summary.clone();
        let mut tailed: BTreeSet<PathBuf> = BTreeSet::new();
        // Tailing seals again, and that seal may take more hooks (another process keeps
        // writing): a few rounds, then the next refresh takes the rest.
        for _ in 0..3 {
            let named: BTreeSet<PathBuf> = self
                .seals
                .iter()
                .flat_map(|seal| seal.transcripts_to_tail.iter())
                .filter(|path| !tailed.contains(*path))
                .cloned()
                .collect();
            if named.is_empty() {
                break;
            }
            self.tail_transcripts(&named)?;
            self.seal()?;
            tailed.extend(named);
        }
        self.summary = asked;
        self.summary.elapsed_ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(0);
        Ok((self.summary, self.seals))
    }
}

/// Why a streaming pass over a JSON hook log stopped: the file, or storing a payload.
enum JsonStop {
    Io(std::io::Error),
    Push(IngestError),
}

impl From<std::io::Error> for JsonStop {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}
