//! Reading: a [`Snapshot`] is a consistent view of sealed segments (memory-mapped) plus the
//! records still in the inbox (ordinary reads), taken without any lock.
//!
//! Consistency: the snapshot reads the MANIFEST, maps the segments it names, reads the inbox
//! and spool files it has not consumed, then checks the MANIFEST generation again; if a seal
//! committed in between, it starts over. Maps of segments stay valid after a later seal
//! deletes their files.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::manifest::Manifest;
use super::{LogError, Store, StorePaths, inbox, list_dir};
use crate::model::{Record, StoredRecord};
use crate::segments::frame::{MAX_FRAME_LIMIT_BYTES, ScanItem, StreamScanner};
use crate::segments::segment::SegmentReader;
use crate::segments::{Offset, SegmentError};

mod blocks;

pub use blocks::{Block, Candidate, DamagedBlock, map_blocks};

const SNAPSHOT_ATTEMPTS: u32 = 200;

/// Sealed records a reader passed over because they cannot be read: a damaged block, a
/// segment that does not open or is missing, a record that does not decode. Reading goes on
/// with every intact record; `verify` names the damage and `ctrace recover` rebuilds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// The segment file.
    pub file: PathBuf,
    /// First offset passed over.
    pub first: Offset,
    /// One past the last offset passed over.
    pub end: Offset,
    /// What is wrong.
    pub reason: String,
}

/// What this process's readers have passed over so far (each range once).
static SKIPPED: Mutex<BTreeSet<Skipped>> = Mutex::new(BTreeSet::new());

/// Records that a reader passed over `skipped` (logged once per range, kept for
/// [`take_skipped`]).
pub fn note_skipped(skipped: Skipped) {
    let mut all = SKIPPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !all.contains(&skipped) {
        tracing::warn!(file = %skipped.file.display(), first = skipped.first.0, end = skipped.end.0, reason = %skipped.reason, "passed over unreadable records");
        all.insert(skipped);
    }
}

/// Everything passed over since the last call, in file and offset order; the CLI prints each
/// once on stderr when a command ends.
pub fn take_skipped() -> Vec<Skipped> {
    let mut all = SKIPPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::take(&mut *all).into_iter().collect()
}

/// A consistent read view of a store.
#[derive(Debug)]
pub struct Snapshot {
    manifest: Manifest,
    segments: Vec<Arc<SegmentReader>>,
    /// Inbox and spool files as they were when the snapshot was taken, re-read frame by frame
    /// by each iterator (never held in memory whole).
    unsealed: Vec<UnsealedFile>,
    unsealed_records: u64,
    unsealed_bytes: u64,
    unsealed_skipped_bytes: u64,
}

/// Time bounds of a scan, ns since the epoch, both inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Lower bound.
    pub since: Option<u64>,
    /// Upper bound.
    pub until: Option<u64>,
}

impl TimeRange {
    /// Whether `ts` is inside the range.
    pub fn contains(&self, ts: u64) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts <= u)
    }

    /// Whether `[min, max]` overlaps the range.
    pub fn overlaps(&self, min: u64, max: u64) -> bool {
        self.since.is_none_or(|s| max >= s) && self.until.is_none_or(|u| min <= u)
    }
}

impl Snapshot {
    pub(in crate::log) fn take(store: &Store) -> Result<Self, LogError> {
        let paths = store.paths();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let manifest = super::load_manifest(paths)?;
            let Some(segments) = open_segments(paths, &manifest)? else {
                continue;
            };
            let unsealed = unsealed_files(paths, &manifest)?;
            let counts = UnsealedCounts::of(&unsealed)?;
            let again = Manifest::load(&paths.manifest)?;
            if again.generation != manifest.generation {
                continue;
            }
            return Ok(Self {
                manifest,
                segments,
                unsealed,
                unsealed_records: counts.records,
                unsealed_bytes: counts.bytes,
                unsealed_skipped_bytes: counts.skipped_bytes,
            });
        }
        Err(LogError::SnapshotRace {
            attempts: SNAPSHOT_ATTEMPTS,
        })
    }

    /// The MANIFEST this snapshot was taken at.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of sealed records (offsets removed by retention are not counted).
    pub fn sealed_records(&self) -> u64 {
        self.manifest.segments.iter().map(|s| s.record_count).sum()
    }

    /// Number of unsealed records seen in the inbox.
    pub fn unsealed_records(&self) -> u64 {
        self.unsealed_records
    }

    /// Bytes of inbox and spool files not yet sealed.
    pub fn unsealed_bytes(&self) -> u64 {
        self.unsealed_bytes
    }

    /// Bytes in the inbox that do not form valid frames (damage, or a write in progress).
    pub fn unsealed_skipped_bytes(&self) -> u64 {
        self.unsealed_skipped_bytes
    }

    /// All records: sealed in offset order, then unsealed in arrival order.
    pub fn iter(&self) -> Records<'_> {
        self.scan(Offset(0), TimeRange::default(), true)
    }

    /// Records from `from` on, optionally within a time range (blocks outside it are not
    /// decompressed), optionally with the unsealed records.
    pub fn scan(&self, from: Offset, time: TimeRange, unsealed: bool) -> Records<'_> {
        let segment = self
            .segments
            .partition_point(|s| s.end_offset().0 <= from.0);
        Records {
            snapshot: self,
            segment,
            block: 0,
            records: Vec::new(),
            next_in_block: 0,
            block_first: Offset(0),
            block_segment: 0,
            from,
            time,
            unsealed_next: if unsealed { 0 } else { usize::MAX },
            unsealed_scan: None,
        }
    }

    /// The records of one session, sealed then unsealed, within `time`. Sessions are not indexed
    /// at this layer: this is a filtered scan that skips blocks outside `time`.
    pub fn session<'s>(
        &'s self,
        session: &'s str,
        time: TimeRange,
    ) -> impl Iterator<Item = Result<StoredRecord, LogError>> + 's {
        self.scan(Offset(0), time, true).filter(move |r| match r {
            Ok(stored) => stored.record.session.as_deref() == Some(session),
            Err(_) => true,
        })
    }

    /// The record at `offset`, if it is sealed.
    ///
    /// # Errors
    /// [`LogError::Segment`] when its block is damaged; [`LogError::RecordDecode`].
    pub fn get(&self, offset: Offset) -> Result<Option<Record>, LogError> {
        let i = self
            .segments
            .partition_point(|s| s.end_offset().0 <= offset.0);
        let Some(segment) = self.segments.get(i) else {
            return Ok(None);
        };
        let Some(block) = segment.block_of(offset) else {
            return Ok(None);
        };
        let meta = segment.blocks()[block];
        let index = (offset.0 - meta.first_offset.0) as usize;
        let Some(bytes) = segment.read_record_in_block(block, index)? else {
            return Ok(None);
        };
        Record::decode(&bytes)
            .map(Some)
            .map_err(|source| LogError::RecordDecode { offset, source })
    }
}

/// Opens the segments `manifest` names, passing over (and noting) those that do not open;
/// `None` when a commit deleted one since `manifest` was read (the snapshot starts over).
fn open_segments(
    paths: &StorePaths,
    manifest: &Manifest,
) -> Result<Option<Vec<Arc<SegmentReader>>>, LogError> {
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for entry in &manifest.segments {
        let path = paths.segments.join(&entry.file);
        match SegmentReader::open(&path, entry.id) {
            Ok(reader) => segments.push(Arc::new(reader)),
            Err(SegmentError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // Deleted by a commit since we read the MANIFEST (start over), or
                // missing while the MANIFEST still names it (damage: skip it).
                let now = super::load_manifest(paths)?;
                if now.generation != manifest.generation {
                    return Ok(None);
                }
                note_skipped(Skipped {
                    file: path,
                    first: Offset(entry.id.0),
                    end: entry.end(),
                    reason: "segment file named in MANIFEST is missing".to_owned(),
                });
            }
            Err(e) => note_skipped(Skipped {
                file: path,
                first: Offset(entry.id.0),
                end: entry.end(),
                reason: format!("segment does not open: {e}"),
            }),
        }
    }
    Ok(Some(segments))
}

/// The inbox and spool files `manifest` has not consumed, open, in the order their records
/// are read: files being sealed, producers' files, `active.wal`, then spooled files.
fn unsealed_files(paths: &StorePaths, manifest: &Manifest) -> Result<Vec<UnsealedFile>, LogError> {
    let consumed: BTreeSet<&str> = manifest.consumed_inbox.iter().map(String::as_str).collect();
    // Read active.wal first and remember its inode: if the sealer renames it aside
    // while we list the directory, its `sealing-*` name is the file already read.
    // A symlinked inbox is refused with an error naming it.
    super::private::check_dir(&paths.inbox, super::private::DirRule::Real)?;
    let active_path = paths.inbox.join(inbox::ACTIVE_FILE);
    let active = open_with_inode(&active_path)?;
    let active_inode = active.as_ref().map(|(_, inode)| *inode);
    let active = active.map(|(file, _)| file);
    let mut sealing = Vec::new();
    let mut producers = Vec::new();
    for name in list_dir(&paths.inbox)? {
        let relative = format!("inbox/{name}");
        if !name.ends_with(".wal") || consumed.contains(relative.as_str()) {
            continue;
        }
        if name.starts_with("sealing-") {
            sealing.push(paths.inbox.join(&name));
        } else if name != inbox::ACTIVE_FILE {
            producers.push(paths.inbox.join(&name));
        }
    }
    let mut spooled = Vec::new();
    if let Some(dir) = paths.checked_spool() {
        for (name, path) in inbox::spool_files(&dir)? {
            if !consumed.contains(format!("spool/{name}").as_str()) {
                spooled.push(path);
            }
        }
    }
    if let Some(dir) = paths.checked_fallback_spool() {
        for (_, path) in inbox::spool_files(&dir)? {
            if !consumed.contains(path.to_string_lossy().as_ref()) {
                spooled.push(path);
            }
        }
    }
    let mut contents = Vec::new();
    for path in sealing.into_iter().chain(producers) {
        let Some((file, inode)) = open_with_inode(&path)? else {
            continue;
        };
        if Some(inode) == active_inode {
            continue;
        }
        contents.push(file);
    }
    contents.extend(active);
    for path in spooled {
        contents.extend(open_with_inode(&path)?.map(|(file, _)| file));
    }
    Ok(contents)
}

/// What a snapshot's unsealed files hold.
#[derive(Debug, Default)]
struct UnsealedCounts {
    /// Whole records.
    records: u64,
    /// Bytes of the files.
    bytes: u64,
    /// Bytes that do not form valid frames.
    skipped_bytes: u64,
}

impl UnsealedCounts {
    /// Counts the records of `files`, frame by frame.
    fn of(files: &[UnsealedFile]) -> Result<Self, LogError> {
        let mut counts = Self::default();
        for file in files {
            counts.bytes += file.len;
            let mut scanner = StreamScanner::new(file.reader(), MAX_FRAME_LIMIT_BYTES);
            while let Some(item) = scanner
                .next_item()
                .map_err(|source| super::private::io_error(&file.path, source))?
            {
                match item {
                    ScanItem::Record { .. } => counts.records += 1,
                    ScanItem::Skipped { len, .. } => counts.skipped_bytes += len,
                }
            }
        }
        Ok(counts)
    }
}

/// A file's identity: (device, inode).
type FileId = (u64, u64);

/// An inbox or spool file as a snapshot saw it: its first `len` bytes (appends after the
/// snapshot are not read; the open descriptor keeps a file the sealer renames or deletes).
#[derive(Debug)]
struct UnsealedFile {
    path: PathBuf,
    file: Arc<std::fs::File>,
    len: u64,
}

impl UnsealedFile {
    fn reader(&self) -> PositionedReader {
        PositionedReader {
            file: Arc::clone(&self.file),
            position: 0,
            end: self.len,
        }
    }
}

/// Reads `file` from `position` to `end` with positioned reads (iterators over one snapshot
/// do not share a file offset).
#[derive(Debug)]
struct PositionedReader {
    file: Arc<std::fs::File>,
    position: u64,
    end: u64,
}

impl std::io::Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = usize::try_from(self.end.saturating_sub(self.position)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// Opens a file and returns it (with its length now) and its identity; `None` when missing.
fn open_with_inode(path: &std::path::Path) -> Result<Option<(UnsealedFile, FileId)>, LogError> {
    use std::os::unix::fs::MetadataExt;
    let io = |source| super::private::io_error(path, source);
    let file = match inbox::open_read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    let unsealed = UnsealedFile {
        path: path.to_path_buf(),
        file: Arc::new(file),
        len: meta.len(),
    };
    Ok(Some((unsealed, (meta.dev(), meta.ino()))))
}

/// Iterator over a snapshot's records. A damaged block or a record that does not decode is
/// passed over ([`note_skipped`]) and reading goes on with the next; it yields no errors
/// today, but callers keep handling them.
#[derive(Debug)]
pub struct Records<'a> {
    snapshot: &'a Snapshot,
    segment: usize,
    block: usize,
    records: Vec<Vec<u8>>,
    next_in_block: usize,
    block_first: Offset,
    /// The segment the current block was read from.
    block_segment: usize,
    from: Offset,
    time: TimeRange,
    /// Index of the unsealed file being read (`usize::MAX`: unsealed records not wanted).
    unsealed_next: usize,
    unsealed_scan: Option<StreamScanner<PositionedReader>>,
}

impl Iterator for Records<'_> {
    type Item = Result<StoredRecord, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.next_in_block < self.records.len() {
                let index = self.next_in_block;
                self.next_in_block += 1;
                let offset = Offset(self.block_first.0 + index as u64);
                if offset < self.from {
                    continue;
                }
                let record = match Record::decode(&self.records[index]) {
                    Ok(record) => record,
                    Err(source) => {
                        if let Some(segment) = self.snapshot.segments.get(self.block_segment) {
                            note_skipped(Skipped {
                                file: segment.path().to_path_buf(),
                                first: offset,
                                end: Offset(offset.0 + 1),
                                reason: format!("record does not decode: {source}"),
                            });
                        }
                        continue;
                    }
                };
                if !self.time.contains(record.ts) {
                    continue;
                }
                return Some(Ok(StoredRecord {
                    offset: Some(offset),
                    record,
                }));
            }
            if let Some(segment) = self.snapshot.segments.get(self.segment) {
                let Some(meta) = segment.blocks().get(self.block).copied() else {
                    self.segment += 1;
                    self.block = 0;
                    continue;
                };
                let block = self.block;
                self.block += 1;
                if meta.first_offset.0 + u64::from(meta.count) <= self.from.0
                    || !self.time.overlaps(meta.min_ts, meta.max_ts)
                {
                    continue;
                }
                self.records.clear();
                self.next_in_block = 0;
                self.block_first = meta.first_offset;
                self.block_segment = self.segment;
                match segment.read_block(block) {
                    Ok(records) => self.records = records,
                    Err(e) => note_skipped(Skipped {
                        file: segment.path().to_path_buf(),
                        first: meta.first_offset,
                        end: Offset(meta.first_offset.0 + u64::from(meta.count)),
                        reason: e.to_string(),
                    }),
                }
                continue;
            }
            // Unsealed records, one file after the other, read frame by frame.
            let file = self.snapshot.unsealed.get(self.unsealed_next)?;
            let scanner = self
                .unsealed_scan
                .get_or_insert_with(|| StreamScanner::new(file.reader(), MAX_FRAME_LIMIT_BYTES));
            let item = match scanner.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => {
                    self.unsealed_scan = None;
                    self.unsealed_next += 1;
                    continue;
                }
                Err(source) => {
                    self.unsealed_scan = None;
                    self.unsealed_next += 1;
                    return Some(Err(super::private::io_error(&file.path, source)));
                }
            };
            let ScanItem::Record { bytes, .. } = item else {
                continue;
            };
            match Record::decode(&bytes) {
                Ok(record) if self.time.contains(record.ts) => {
                    return Some(Ok(StoredRecord {
                        offset: None,
                        record,
                    }));
                }
                Ok(_) => continue,
                Err(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests;
