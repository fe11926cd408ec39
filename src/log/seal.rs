//! Sealing: inbox files → sealed segments with dense offsets, committed by a new MANIFEST.
//!
//! Steps (all under the exclusive store lock):
//! 1. gather inbox files: leftovers of an interrupted seal (`sealing-*.wal`), producer files
//!    whose producer has finished (their `flock` is free), `active.wal` (renamed aside to
//!    `sealing-<generation>.wal`, then locked exclusively to wait out in-flight writers), and
//!    spool files;
//! 2. scan them with resynchronisation, counting damaged and torn bytes, reading each file
//!    frame by frame (memory: one record and one 1 MiB read, whatever the inbox size);
//! 3. write each record to segments as it is scanned: extend the tail segment while it is below `segment_bytes` and younger
//!    than `segment_age` (its full blocks are copied, its last block re-packed), otherwise
//!    start new ones; roll whenever a segment reaches `segment_bytes`;
//! 4. sync segment files and the directory, commit the MANIFEST (new segments, next offset,
//!    consumed inbox files, ingest cursors);
//! 5. delete the consumed files and the replaced tail segment.
//!
//! A crash before step 4 leaves unlisted segments (deleted at recovery) and the inbox files
//! (sealed again); after step 4, the consumed files are deleted at recovery. Either way every
//! record is sealed exactly once.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::manifest::{Cursor, NewSegment, SegmentEntry, sync_dir};
use sha2::Digest;

use super::{LogError, StoreLock, inbox, list_dir, remove_file};
use crate::model::{Body, BodyRef, InternalBody, Record, RecordRef, Source};
use crate::segments::frame::{MAX_FRAME_LIMIT_BYTES, ScanItem, StreamScanner};
use crate::segments::segment::{SegmentReader, SegmentWriter};
use crate::segments::{Offset, SegmentId};

/// Hook events after which the session's transcript is tailed (`transcript_path`,
/// `agent_transcript_path`).
pub(crate) const TAIL_EVENTS: [&str; 4] = ["Stop", "SubagentStop", "SessionEnd", "PreCompact"];

/// What one seal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Inbox and spool files consumed.
    pub files: u32,
    /// Records sealed.
    pub records: u64,
    /// Raw record bytes sealed (framed, before compression).
    pub raw_bytes: u64,
    /// Bytes skipped because they did not form valid frames (logged with position).
    pub skipped_bytes: u64,
    /// Bytes of incomplete frames at the end of files whose writer died mid-write.
    pub torn_bytes: u64,
    /// Records whose bytes did not decode: sealed as `internal` records of event
    /// `undecodable_record` holding the bytes, timestamped at seal time.
    pub undecodable: u64,
    /// Records above `storage.max_record_bytes` (plus envelope room) sealed truncated.
    pub truncated: u64,
    /// First offset assigned.
    pub first_offset: Offset,
    /// One past the last offset assigned.
    pub next_offset: Offset,
    /// Transcripts named by Stop / SubagentStop / SessionEnd / PreCompact hooks in this seal,
    /// as the payloads name them: untrusted paths, which the tailer checks before it opens
    /// anything (`ingest::bulk::transcript_path`).
    pub transcripts_to_tail: BTreeSet<PathBuf>,
    /// Wall time of the seal in ns.
    pub elapsed_ns: u64,
}

struct InboxFile {
    /// Name recorded in `consumed_inbox` (relative to the store root, or absolute).
    name: String,
    path: PathBuf,
    /// Locked exclusively; read frame by frame when sealed.
    file: File,
}

/// Room for a record's envelope (extracted fields, framing) above `storage.max_record_bytes`
/// before the sealer cuts it (1 MiB).
const ENVELOPE_SLACK_BYTES: usize = 1 << 20;

impl StoreLock<'_> {
    /// Seals every finished inbox file into segments and commits a new MANIFEST.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] after a failed sync (this handle then refuses to seal again);
    /// [`LogError::Io`] / [`LogError::Segment`] on other failures, which leave the store as it
    /// was (recovery removes partial output).
    pub fn seal(&mut self) -> Result<SealReport, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned {
                path: self.store.paths.manifest.clone(),
                source: std::io::Error::other("an earlier sync failed"),
            });
        }
        let started = Instant::now();
        let generation = self.manifest.generation + 1;
        let files = self.gather(generation)?;
        let mut report = SealReport {
            first_offset: self.manifest.next_offset,
            next_offset: self.manifest.next_offset,
            ..SealReport::default()
        };
        if files.is_empty() {
            return Ok(report);
        }
        let mut cursors = self.manifest.cursors.clone();
        let mut created = Vec::new();
        let written = self.seal_files(&files, &mut report, &mut cursors, &mut created);
        let (segments, replaced) = match written {
            Ok(written) => written,
            Err(e) => {
                discard(&created);
                return Err(e);
            }
        };
        let mut manifest = self.manifest.clone();
        manifest.generation = generation;
        manifest.consumed_inbox = files.iter().map(|f| f.name.clone()).collect();
        manifest.retired.clear();
        manifest.cursors = cursors;
        manifest.segments = segments;
        manifest.next_offset = Offset(self.manifest.next_offset.0 + report.records);
        manifest.version = manifest.required_version();
        if let Err(e) = manifest.commit(&self.store.paths.manifest) {
            self.poisoned = true;
            // A commit that failed before its rename (a full disk) leaves the old MANIFEST:
            // the new files were never committed, so they go now rather than hold the space.
            if super::Manifest::load(&self.store.paths.manifest)
                .is_ok_and(|on_disk| on_disk.generation < generation)
            {
                discard(&created);
            }
            return Err(e);
        }
        self.manifest = manifest;
        report.next_offset = self.manifest.next_offset;
        for file in &files {
            super::fault_point("seal-inbox-delete", &file.path)?;
            remove_file(&file.path)?;
        }
        if let Some(old) = replaced {
            let old = self.store.paths.segments.join(old);
            super::fault_point("seal-tail-delete", &old)?;
            remove_file(&old)?;
        }
        report.elapsed_ns = started.elapsed().as_nanos() as u64;
        tracing::info!(
            records = report.records,
            raw_bytes = report.raw_bytes,
            files = report.files,
            first = report.first_offset.0,
            next = report.next_offset.0,
            elapsed_ms = report.elapsed_ns / 1_000_000,
            "sealed"
        );
        Ok(report)
    }

    /// Reads `files` frame by frame ([`StreamScanner`]: one record and 1 MiB read at a time,
    /// not whole files) and writes their records to segments as they come; counts into
    /// `report` and moves `cursors`. Every file it creates is pushed to `created`.
    fn seal_files(
        &mut self,
        files: &[InboxFile],
        report: &mut SealReport,
        cursors: &mut std::collections::BTreeMap<String, Cursor>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(Vec<SegmentEntry>, Option<String>), LogError> {
        let mut sink = SegmentSink::begin(self)?;
        let now = crate::now_ns();
        for file in files {
            let io = |source| super::private::io_error(&file.path, source);
            let mut scanner = StreamScanner::new(&file.file, MAX_FRAME_LIMIT_BYTES);
            while let Some(item) = scanner.next_item().map_err(io)? {
                match item {
                    ScanItem::Record { bytes, .. } => {
                        let (bytes, ts) = match RecordRef::decode(&bytes) {
                            Ok(head) => {
                                note_head(&head, report, cursors);
                                let ts = head.ts;
                                (self.within_limits(bytes, ts, report)?, ts)
                            }
                            Err(_) => {
                                report.undecodable += 1;
                                tracing::warn!(file = %file.path.display(), bytes = bytes.len(), "inbox record does not decode: sealed wrapped in an undecodable_record record");
                                (self.wrap_undecodable(&bytes, now)?, now)
                            }
                        };
                        report.records += 1;
                        report.raw_bytes += bytes.len() as u64;
                        sink.add(self, &bytes, ts, created)?;
                    }
                    ScanItem::Skipped {
                        position,
                        len,
                        error,
                    } => {
                        report.skipped_bytes += len;
                        tracing::warn!(file = %file.path.display(), position, len, %error, "skipped damaged inbox bytes");
                    }
                }
            }
            if scanner.tail_bytes() > 0 {
                report.torn_bytes += scanner.tail_bytes();
                tracing::info!(file = %file.path.display(), bytes = scanner.tail_bytes(), "torn tail (writer died mid-write)");
            }
        }
        report.files = files.len() as u32;
        sink.finish(self, created)
    }

    /// A record that fits a block every reader accepts: `bytes` as they are when they are at
    /// most `storage.max_record_bytes` plus [`ENVELOPE_SLACK_BYTES`], else the record with its
    /// payload cut to `storage.max_record_bytes` and flagged `truncated` (inboxes written by
    /// other builds or configurations can hold larger records; no record may make a sealed
    /// segment unreadable).
    fn within_limits(
        &self,
        bytes: Vec<u8>,
        ts: u64,
        report: &mut SealReport,
    ) -> Result<Vec<u8>, LogError> {
        let limit = self.store.config.max_record_bytes();
        if bytes.len() <= limit.saturating_add(ENVELOPE_SLACK_BYTES) {
            return Ok(bytes);
        }
        report.truncated += 1;
        let encode = |record: &Record| {
            record.encode().map_err(|e| LogError::Encode {
                what: "record",
                message: e.to_string(),
            })
        };
        if let Ok(mut record) = Record::decode(&bytes) {
            record.truncate_to(limit);
            let cut = encode(&record)?;
            if cut.len() <= limit.saturating_add(ENVELOPE_SLACK_BYTES) {
                tracing::warn!(
                    bytes = bytes.len(),
                    kept = cut.len(),
                    "record above storage.max_record_bytes sealed truncated"
                );
                return Ok(cut);
            }
        }
        // Not a hook or transcript record, or its envelope alone is too large: keep the first
        // bytes of the encoded record, with the whole size and digest.
        let digest = sha2::Sha256::digest(&bytes);
        let record = Record {
            ts,
            source: Source::Internal,
            session: None,
            body: Body::Internal(InternalBody {
                event: "oversized_record".to_owned(),
                detail: format!(
                    "record of {} bytes above storage.max_record_bytes; data holds its first {limit} encoded bytes; sha256 {}",
                    bytes.len(),
                    hex::encode(digest)
                ),
                data: bytes[..limit.min(bytes.len())].to_vec(),
            }),
            redactions: 0,
        };
        tracing::warn!(
            bytes = bytes.len(),
            "oversized record sealed as an oversized_record record"
        );
        encode(&record)
    }

    /// An `internal` record keeping inbox bytes that do not decode as a record, so that every
    /// sealed record decodes and nothing is lost (`docs/format.md`, "Sealing").
    fn wrap_undecodable(&self, bytes: &[u8], now: u64) -> Result<Vec<u8>, LogError> {
        let limit = self.store.config.max_record_bytes();
        let record = Record {
            ts: now,
            source: Source::Internal,
            session: None,
            body: Body::Internal(InternalBody {
                event: "undecodable_record".to_owned(),
                detail: format!(
                    "{} inbox bytes that do not decode as a record{}",
                    bytes.len(),
                    if bytes.len() > limit {
                        "; data holds the first storage.max_record_bytes of them"
                    } else {
                        "; data holds them"
                    }
                ),
                data: bytes[..limit.min(bytes.len())].to_vec(),
            }),
            redactions: 0,
        };
        record.encode().map_err(|e| LogError::Encode {
            what: "record",
            message: e.to_string(),
        })
    }

    /// Collects and locks the inbox and spool files to seal, in arrival order.
    fn gather(&mut self, generation: u64) -> Result<Vec<InboxFile>, LogError> {
        let paths = self.store.paths.clone();
        let consumed: BTreeSet<&str> = self
            .manifest
            .consumed_inbox
            .iter()
            .map(String::as_str)
            .collect();
        let mut sealing = Vec::new();
        let mut producers = Vec::new();
        for name in list_dir(&paths.inbox)? {
            if !name.ends_with(".wal") || name == inbox::ACTIVE_FILE {
                continue;
            }
            let relative = format!("inbox/{name}");
            if consumed.contains(relative.as_str()) {
                continue;
            }
            if name.starts_with("sealing-") {
                sealing.push((relative, paths.inbox.join(&name)));
            } else {
                producers.push((relative, paths.inbox.join(&name)));
            }
        }
        // Producer files in creation order (their names end in the creation time, ns).
        producers.sort_by_key(|(name, _)| creation_key(name));
        let mut files = Vec::new();
        for (name, path) in sealing.into_iter().chain(producers) {
            if let Some(file) = take_file(name, &path, false)? {
                files.push(file);
            }
        }
        let active = paths.inbox.join(inbox::ACTIVE_FILE);
        let active_len = match std::fs::symlink_metadata(&active) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(LogError::Unsafe {
                    path: active,
                    reason: super::private::Unsafe::Symlink,
                });
            }
            Ok(meta) => meta.len(),
            Err(_) => 0,
        };
        if active_len > 0 {
            // Unique even if an earlier seal at this generation died after its rename: a rename
            // must never replace a file that still holds unsealed records.
            let name = format!(
                "sealing-{generation:020}-{:020}-{}.wal",
                crate::now_ns(),
                std::process::id()
            );
            let aside = paths.inbox.join(&name);
            (crate::fault::point("seal-inbox-rename")
                .and_then(|()| std::fs::rename(&active, &aside)))
            .map_err(|source| LogError::Io {
                path: active.clone(),
                source,
            })?;
            if let Some(file) = take_file(format!("inbox/{name}"), &aside, true)? {
                files.push(file);
            }
        }
        // Spool directories that fail their checks are logged and skipped (`checked_*`), and
        // so are files in them that are not our own regular files (`spool_files`).
        let spools = [
            (paths.checked_spool(), false),
            (paths.checked_fallback_spool(), true),
        ];
        for (dir, absolute) in spools {
            let Some(dir) = dir else { continue };
            for (name, path) in inbox::spool_files(&dir)? {
                let recorded = if absolute {
                    path.to_string_lossy().into_owned()
                } else {
                    format!("spool/{name}")
                };
                if consumed.contains(recorded.as_str()) {
                    continue;
                }
                if let Some(file) = take_file(recorded, &path, false)? {
                    files.push(file);
                }
            }
        }
        Ok(files)
    }

    /// Starts a new segment with the tail segment's full blocks copied and its last block's
    /// records re-added.
    fn reopen_tail(
        &self,
        tail: &SegmentEntry,
        created: &mut Vec<PathBuf>,
    ) -> Result<OpenSegment, LogError> {
        let path = self.store.paths.segments.join(&tail.file);
        let reader = SegmentReader::open(&path, tail.id)?;
        let mut segment = OpenSegment::create(self, Offset(tail.id.0), tail.created_ns, created)?;
        let blocks = reader.blocks();
        let block_target = self.store.config.storage.block_bytes;
        for (i, meta) in blocks.iter().enumerate() {
            let last = i + 1 == blocks.len();
            if last && u64::from(meta.raw_len) < block_target {
                for bytes in reader.read_block(i)? {
                    let ts = RecordRef::decode(&bytes).map_or(meta.min_ts, |r| r.ts);
                    segment.writer.add(&bytes, ts)?;
                }
            } else {
                let start = meta.position as usize;
                let compressed = &reader.bytes()[start..start + meta.compressed_len as usize];
                segment.writer.copy_block(meta, compressed)?;
            }
        }
        Ok(segment)
    }
}

/// Writes sealed records after the current last offset, one at a time: extends the tail
/// segment when it may be (on the first record), rolls segments at `segment_bytes`.
struct SegmentSink {
    segments: Vec<SegmentEntry>,
    /// File name of a tail segment that the new MANIFEST replaces.
    replaced: Option<String>,
    open: Option<OpenSegment>,
    next: Offset,
    now: u64,
    /// Whether a record was added (the tail is looked at before the first one).
    started: bool,
}

impl SegmentSink {
    fn begin(lock: &mut StoreLock<'_>) -> Result<Self, LogError> {
        // A MANIFEST exists before the first segment file does, so that a missing MANIFEST
        // with segments beside it is always a lost one (`load_manifest`), never a first seal
        // that died before its commit.
        if std::fs::symlink_metadata(&lock.store.paths.manifest).is_err()
            && let Err(e) = lock.manifest.commit(&lock.store.paths.manifest)
        {
            lock.poisoned = true;
            return Err(e);
        }
        Ok(Self {
            segments: lock.manifest.segments.clone(),
            replaced: None,
            open: None,
            next: lock.manifest.next_offset,
            now: crate::now_ns(),
            started: false,
        })
    }

    /// Before the first record: reopens the tail segment when it is dense, below
    /// `segment_bytes` and younger than `segment_age`.
    fn start(&mut self, lock: &StoreLock<'_>, created: &mut Vec<PathBuf>) -> Result<(), LogError> {
        self.started = true;
        let storage = &lock.store.config.storage;
        let Some(tail) = self.segments.last().cloned() else {
            return Ok(());
        };
        let age_ns = self.now.saturating_sub(tail.created_ns);
        // A sparse tail (rewritten by retention) is never extended: its blocks cannot be
        // copied as a dense run.
        if !tail.is_sparse()
            && tail.end() == lock.manifest.next_offset
            && tail.raw_bytes < storage.segment_bytes
            && u128::from(age_ns) < storage.segment_age.as_nanos()
        {
            match lock.reopen_tail(&tail, created) {
                Ok(segment) => {
                    self.open = Some(segment);
                    self.segments.pop();
                    self.replaced = Some(tail.file);
                }
                // A damaged tail is never extended (its intact blocks stay as they are):
                // the new records start a segment of their own.
                Err(LogError::Segment(error)) => {
                    tracing::warn!(file = %tail.file, %error, "not extending a damaged tail segment");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn add(
        &mut self,
        lock: &StoreLock<'_>,
        bytes: &[u8],
        ts: u64,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), LogError> {
        if !self.started {
            self.start(lock, created)?;
        }
        let segment = match self.open.as_mut() {
            Some(segment) => segment,
            None => self
                .open
                .insert(OpenSegment::create(lock, self.next, self.now, created)?),
        };
        segment.writer.add(bytes, ts)?;
        self.next = Offset(self.next.0 + 1);
        if segment.writer.raw_bytes() >= lock.store.config.storage.segment_bytes
            && let Some(full) = self.open.take()
        {
            self.segments.push(full.finish(&lock.store.paths, created)?);
        }
        Ok(())
    }

    /// Finishes the open segment and syncs the segment directory; returns the new segment
    /// list and the replaced tail segment's file name.
    fn finish(
        mut self,
        lock: &mut StoreLock<'_>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(Vec<SegmentEntry>, Option<String>), LogError> {
        if let Some(last) = self.open.take() {
            self.segments.push(last.finish(&lock.store.paths, created)?);
        }
        if let Err(e) = sync_dir(&lock.store.paths.segments) {
            lock.poisoned = true;
            return Err(e);
        }
        Ok((self.segments, self.replaced))
    }
}

struct OpenSegment {
    writer: SegmentWriter,
    temp: PathBuf,
    base: Offset,
    created_ns: u64,
}

impl OpenSegment {
    fn create(
        lock: &StoreLock<'_>,
        base: Offset,
        created_ns: u64,
        created: &mut Vec<PathBuf>,
    ) -> Result<Self, LogError> {
        let storage = &lock.store.config.storage;
        let temp = lock.store.paths.segments.join(format!(
            "{:020}.seg.{}.tmp",
            base.0,
            std::process::id()
        ));
        remove_file(&temp)?;
        created.push(temp.clone());
        let writer = SegmentWriter::create(
            &temp,
            base,
            usize::try_from(storage.block_bytes).unwrap_or(usize::MAX),
            storage.zstd_level,
            lock.store.config.frame_limit(),
        )?;
        Ok(Self {
            writer,
            temp,
            base,
            created_ns,
        })
    }

    fn finish(
        self,
        paths: &super::StorePaths,
        created: &mut Vec<PathBuf>,
    ) -> Result<SegmentEntry, LogError> {
        let end = self.writer.next_offset();
        let finished = self.writer.finish()?;
        let file = segment_file_name(SegmentId(self.base.0), end);
        created.push(paths.segments.join(&file));
        SegmentEntry::install(
            &paths.segments,
            NewSegment {
                id: SegmentId(self.base.0),
                temp: &self.temp,
                file: &file,
                finished: &finished,
                created_ns: self.created_ns,
                end: None,
                level: None,
                fault_point: "seal-segment-rename",
            },
        )
    }
}

/// Removes the files a failed seal created (never committed: no MANIFEST names them), so a
/// full disk is not kept full by them; a file that cannot be removed is left to recovery.
fn discard(created: &[PathBuf]) {
    for path in created {
        if let Err(error) = remove_file(path) {
            tracing::warn!(%error, "could not remove a file of a failed seal");
        }
    }
}

/// A segment's file name: `<base:020>-<end:020>.seg`, where `end` is one past its last offset.
/// The end is part of the name so that extending the tail segment writes a new file and the
/// MANIFEST commit switches to it atomically.
pub(crate) fn segment_file_name(base: SegmentId, end: Offset) -> String {
    format!("{:020}-{:020}.seg", base.0, end.0)
}

fn creation_key(name: &str) -> (u128, String) {
    let stem = name.trim_end_matches(".wal");
    let nanos = stem
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<u128>().ok())
        .unwrap_or(0);
    (nanos, name.to_owned())
}

fn note_head(
    head: &RecordRef<'_>,
    report: &mut SealReport,
    cursors: &mut std::collections::BTreeMap<String, Cursor>,
) {
    if let Some(origin) = head.body.origin() {
        let end = origin.position + origin.len;
        let cursor = cursors.entry(origin.file.to_owned()).or_default();
        cursor.end = cursor.end.max(end);
    }
    if let BodyRef::Hook(hook) = &head.body
        && hook.origin.is_none()
        && hook.event.is_some_and(|event| TAIL_EVENTS.contains(&event))
    {
        for path in [hook.transcript_path, hook.agent_transcript_path]
            .into_iter()
            .flatten()
        {
            if !path.is_empty() {
                report.transcripts_to_tail.insert(PathBuf::from(path));
            }
        }
    }
}

/// Opens and exclusively locks an inbox file (read later, frame by frame). With `wait`, waits for the
/// lock (in-flight hook writers hold it shared); without, a busy file is skipped (`None`).
fn take_file(name: String, path: &Path, wait: bool) -> Result<Option<InboxFile>, LogError> {
    let io = |source| super::private::io_error(path, source);
    let file = match inbox::open_read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if wait {
        file.lock().map_err(io)?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    Ok(Some(InboxFile {
        name,
        path: path.to_path_buf(),
        file,
    }))
}
