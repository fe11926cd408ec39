//! `verify`: checks every byte of the store without changing it.
//!
//! Checks, in order: the MANIFEST (magic, length, CRC, ascending offsets, dense unless version
//! 2); for each listed segment,
//! the file's length and whole-file CRC against the MANIFEST, header / index / footer, every
//! block (CRC, decompression, frames, record count), every record's decoding and timestamp
//! against its block's min/max; segment files the MANIFEST does not name; and every inbox and
//! spool file's frames. A torn tail at the end of an inbox file is a note, never damage (a
//! killed writer leaves one; the next seal drops it); bad frames inside the file are damage.
//! A missing MANIFEST while segments exist, a record that does not decode, and a segment the
//! MANIFEST does not name that holds committed records are damage.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::manifest::{Manifest, SegmentEntry};
use super::{Store, StorePaths, inbox, list_dir};
use crate::model::Record;
use crate::segments::frame::{MAX_FRAME_LIMIT_BYTES, ScanItem, Scanner};
use crate::segments::segment::{BlockMeta, parse_segment, read_block};

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub file: PathBuf,
    /// Byte position in the file, when known.
    pub position: Option<u64>,
    /// What is wrong.
    pub kind: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Blocks checked.
    pub blocks: u64,
    /// Sealed records checked.
    pub records: u64,
    /// Inbox / spool files checked.
    pub inbox_files: u64,
    /// Unsealed records found in them.
    pub inbox_records: u64,
    /// Problems; empty means the store is clean.
    pub damage: Vec<Damage>,
    /// Notes that are not damage (a write in progress, leftovers recovery will remove).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether no damage was found.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }

    fn damage(&mut self, file: &Path, position: Option<u64>, kind: String) {
        self.damage.push(Damage {
            file: file.to_path_buf(),
            position,
            kind,
        });
    }
}

/// Checks the whole store read-only.
pub fn verify(store: &Store) -> VerifyReport {
    let paths = store.paths();
    let mut report = VerifyReport::default();
    let (manifest, manifest_ok) = match super::load_manifest(paths) {
        Ok(manifest) => (manifest, true),
        Err(e) => {
            report.damage(&paths.manifest, None, e.to_string());
            (Manifest::default(), false)
        }
    };
    let mut live = HashSet::new();
    for entry in &manifest.segments {
        live.insert(entry.file.clone());
        report.segments += 1;
        check_segment(&mut report, &paths.segments.join(&entry.file), entry);
    }
    check_unlisted_segments(&mut report, paths, &manifest, manifest_ok, &live);
    for path in unconsumed_inbox_files(paths, &manifest) {
        report.inbox_files += 1;
        check_inbox_file(&mut report, &path);
    }
    report
}

/// Checks one listed segment file against its MANIFEST entry, then its blocks and records.
fn check_segment(report: &mut VerifyReport, path: &Path, entry: &SegmentEntry) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.damage(path, None, format!("cannot read segment: {e}"));
            return;
        }
    };
    if bytes.len() as u64 != entry.file_bytes {
        report.damage(
            path,
            None,
            format!(
                "length {} bytes, MANIFEST says {} bytes",
                bytes.len(),
                entry.file_bytes
            ),
        );
    }
    let crc = crc32fast::hash(&bytes);
    if crc != entry.crc32 {
        report.damage(
            path,
            None,
            format!(
                "whole-file crc {crc:#010x}, MANIFEST says {:#010x}",
                entry.crc32
            ),
        );
    }
    let (footer, blocks) = match parse_segment(entry.id, &bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            report.damage(path, position_of(&e), e.to_string());
            return;
        }
    };
    if footer.record_count != entry.record_count {
        report.damage(
            path,
            None,
            format!(
                "{} records, MANIFEST says {}",
                footer.record_count, entry.record_count
            ),
        );
    }
    let blocks_end = blocks
        .last()
        .map_or(entry.id.0, |b| b.first_offset.0 + u64::from(b.count));
    if blocks_end > entry.end().0 {
        report.damage(
            path,
            None,
            format!(
                "blocks reach offset {blocks_end}, MANIFEST says the segment ends at {}",
                entry.end()
            ),
        );
    }
    for meta in &blocks {
        report.blocks += 1;
        match read_block(entry.id, &bytes, meta) {
            Ok(records) => check_records(report, path, meta, &records),
            Err(e) => report.damage(path, Some(meta.position), e.to_string()),
        }
    }
}

/// Checks that every record of a block decodes and has a timestamp inside the block's range.
fn check_records(report: &mut VerifyReport, path: &Path, meta: &BlockMeta, records: &[Vec<u8>]) {
    for (i, record) in records.iter().enumerate() {
        report.records += 1;
        let offset = meta.first_offset.0 + i as u64;
        match Record::decode(record) {
            Ok(head) if head.ts < meta.min_ts || head.ts > meta.max_ts => report.damage(
                path,
                Some(meta.position),
                format!(
                    "record at offset {offset} has ts {} outside its block's range",
                    head.ts
                ),
            ),
            Ok(_) => {}
            Err(_) => report.damage(
                path,
                Some(meta.position),
                format!(
                    "record at offset {offset} does not decode as a record (`ctrace forget --offset {offset}` removes it)"
                ),
            ),
        }
    }
}

/// Segment files the MANIFEST does not name: damage when they hold committed records, else a
/// note (recovery removes them).
fn check_unlisted_segments(
    report: &mut VerifyReport,
    paths: &StorePaths,
    manifest: &Manifest,
    manifest_ok: bool,
    live: &HashSet<String>,
) {
    let Ok(names) = list_dir(&paths.segments) else {
        return;
    };
    for name in names {
        if !name.ends_with(".seg") || live.contains(&name) {
            continue;
        }
        let path = paths.segments.join(&name);
        match super::recover::unlisted_segment(manifest, &name) {
            _ if !manifest_ok => report.notes.push(format!(
                "segment {} is kept: the MANIFEST that would name it is unreadable",
                path.display()
            )),
            super::recover::Unlisted::Committed => report.damage(
                &path,
                None,
                "segment is not in MANIFEST but holds committed records no listed segment has (`ctrace recover` lists it again)".to_owned(),
            ),
            verdict => report.notes.push(format!(
                "segment {} is not in MANIFEST ({verdict:?}: removed at the next recovery)",
                path.display()
            )),
        }
    }
}

/// The inbox and spool files the MANIFEST does not list as consumed.
fn unconsumed_inbox_files(paths: &StorePaths, manifest: &Manifest) -> Vec<PathBuf> {
    let consumed: HashSet<&str> = manifest.consumed_inbox.iter().map(String::as_str).collect();
    let mut inbox_files = Vec::new();
    for (dir, prefix) in [(&paths.inbox, "inbox/"), (&paths.spool, "spool/")] {
        if let Ok(names) = list_dir(dir) {
            for name in names {
                if name.ends_with(&format!(".{}", inbox::WAL_EXTENSION))
                    && !consumed.contains(format!("{prefix}{name}").as_str())
                {
                    inbox_files.push(dir.join(name));
                }
            }
        }
    }
    inbox_files
}

/// Checks the frames of one inbox or spool file; a torn tail is a note, not damage.
fn check_inbox_file(report: &mut VerifyReport, path: &Path) {
    let Ok(file) = File::open(path) else {
        return;
    };
    let idle = file.try_lock().is_ok();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.damage(path, None, format!("cannot read inbox file: {e}"));
            return;
        }
    };
    let mut scanner = Scanner::new(&bytes, MAX_FRAME_LIMIT_BYTES, 0);
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record { .. } => report.inbox_records += 1,
            ScanItem::Skipped {
                position,
                len,
                error,
            } => report.damage(
                path,
                Some(position),
                format!("{len} bytes do not form valid frames: {error}"),
            ),
        }
    }
    if scanner.tail_bytes() > 0 {
        let position = scanner.valid_len() as u64;
        // A torn tail is what a killed writer leaves; the next seal drops it. It is not
        // damage (`docs/format.md`, "Frame").
        if idle {
            report.notes.push(format!(
                "{}: torn tail at byte {position}: {} bytes of an incomplete frame (a writer died mid-write; dropped at the next seal)",
                path.display(),
                scanner.tail_bytes()
            ));
        } else {
            report.notes.push(format!(
                "{}: write in progress at byte {position}",
                path.display()
            ));
        }
    }
}

fn position_of(error: &crate::segments::SegmentError) -> Option<u64> {
    use crate::segments::SegmentError as E;
    match error {
        E::BadMagic { position }
        | E::FrameChecksum { position, .. }
        | E::BadFlags { position, .. }
        | E::ChecksumMismatch { position, .. }
        | E::Corrupt { position, .. } => Some(*position),
        _ => None,
    }
}
