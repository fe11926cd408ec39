//! Recovery rules for segment files the MANIFEST does not name, and `ctrace recover`: a
//! MANIFEST rebuilt from the segments' own footers and block indexes (`docs/format.md`,
//! "Recovery").
//!
//! Invariant: a sealed segment is deleted only when it is provably not needed:
//! - **never committed**: every offset it holds that is below the MANIFEST's `next_offset` is
//!   covered by a listed segment, and the rest are at or above `next_offset`, which no commit
//!   has reached (offsets are assigned only by a commit, and `next_offset` only grows);
//! - **superseded**: all its offsets lie inside listed segments' ranges (the old file of a
//!   tail extension, recompression or retention rewrite, left by a crash after the commit);
//! - **retired**: the last commit names it in `retired` (retention dropped it whole).
//!
//! Anything else, in particular every segment when the MANIFEST is missing, is kept.

use std::collections::BTreeMap;

use super::manifest::{Cursor, Manifest, SegmentEntry};
use super::{LogError, StorePaths, list_dir};
use crate::model::{Body, Record};
use crate::segments::segment::SegmentReader;
use crate::segments::{Offset, SegmentId};

/// What a segment file that the MANIFEST does not name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlisted {
    /// Its committed offsets are all in listed segments, the others were never committed.
    Uncommitted,
    /// Named in the MANIFEST's `retired` list.
    Retired,
    /// It holds committed offsets that no listed segment covers: keep it.
    Committed,
}

/// A segment file name's offsets: `<base:020>-<end:020>[-g<generation:020>].seg`.
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, u64, u64)> {
    let stem = name.strip_suffix(".seg")?;
    let mut parts = stem.split('-');
    let base = parts.next()?.parse().ok()?;
    let end = parts.next()?.parse().ok()?;
    let generation = match parts.next() {
        Some(g) => g.strip_prefix('g')?.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() || end < base {
        return None;
    }
    Some((base, end, generation))
}

/// Judges an unlisted segment file by the rules in the module docs. A name that does not parse
/// is [`Unlisted::Committed`] (kept).
pub(crate) fn unlisted_segment(manifest: &Manifest, name: &str) -> Unlisted {
    if manifest.retired.iter().any(|r| r == name) {
        return Unlisted::Retired;
    }
    let Some((base, end, _)) = parse_segment_name(name) else {
        return Unlisted::Committed;
    };
    let committed_end = end.min(manifest.next_offset.0);
    let mut at = base;
    for segment in &manifest.segments {
        if at >= committed_end {
            break;
        }
        if segment.id.0 <= at && at < segment.end().0 {
            at = segment.end().0;
        }
    }
    if at >= committed_end {
        Unlisted::Uncommitted
    } else {
        Unlisted::Committed
    }
}

/// A MANIFEST rebuilt from the segment files, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct RebuiltManifest {
    /// The MANIFEST to write.
    pub manifest: Manifest,
    /// Segment files that are copies of offsets another chosen file holds (older generations).
    pub superseded: Vec<String>,
    /// Segment files that do not open (damaged), with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Records whose bytes do not decode (their offsets), found while rebuilding the cursors.
    pub undecodable: Vec<Offset>,
    /// Chosen segments with blocks that do not read: file name and the offset ranges of those
    /// blocks. [`recover_manifest`] salvages them (the intact blocks into a new file).
    pub damaged: Vec<(String, Vec<(Offset, Offset)>)>,
}

/// Rebuilds a MANIFEST from `segments/`: every file that opens (footer, index and header
/// checked) is a candidate; where candidates overlap, the one with the highest generation in
/// its name (then the largest end) wins and the others are superseded. Ingest cursors are
/// rebuilt from the records' origins (file and byte range), so re-ingesting adds nothing;
/// `previous` (an old MANIFEST that still decodes) gives the generation to continue from.
///
/// # Errors
/// [`LogError::Io`] when `segments/` cannot be listed or a chosen file cannot be read.
pub fn rebuild_manifest(
    paths: &StorePaths,
    previous: Option<&Manifest>,
) -> Result<RebuiltManifest, LogError> {
    let mut rebuilt = RebuiltManifest::default();
    let mut candidates = Vec::new();
    for name in list_dir(&paths.segments)? {
        let Some((base, end, generation)) = parse_segment_name(&name) else {
            continue;
        };
        let path = paths.segments.join(&name);
        match SegmentReader::open(&path, SegmentId(base)) {
            Ok(reader) => candidates.push((base, end, generation, name, reader)),
            Err(e) => rebuilt.unreadable.push((name, e.to_string())),
        }
    }
    // Lowest base first; for one base, the newest generation, then the longest.
    candidates.sort_by(|a, b| (a.0, b.2, b.1).cmp(&(b.0, a.2, a.1)));
    let mut covered = 0u64;
    let mut cursors: BTreeMap<String, Cursor> = BTreeMap::new();
    let mut max_generation = previous.map_or(0, |m| m.generation);
    for (base, end, generation, name, reader) in candidates {
        if base < covered || (base == covered && end <= covered && covered > 0) {
            rebuilt.superseded.push(name);
            continue;
        }
        max_generation = max_generation.max(generation);
        let path = paths.segments.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?;
        let created_ns = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let damaged = note_cursors(&reader, &mut cursors, &mut rebuilt.undecodable);
        if !damaged.is_empty() {
            rebuilt.damaged.push((name.clone(), damaged));
        }
        let footer = reader.footer();
        rebuilt.manifest.segments.push(SegmentEntry {
            id: SegmentId(base),
            file: name,
            record_count: footer.record_count,
            min_ts: footer.min_ts,
            max_ts: footer.max_ts,
            raw_bytes: footer.raw_bytes,
            file_bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
            created_ns,
            end: reader.is_sparse().then_some(Offset(end)),
            level: None,
        });
        covered = end;
    }
    let manifest = &mut rebuilt.manifest;
    manifest.next_offset = Offset(covered.max(previous.map_or(0, |m| m.next_offset.0)));
    manifest.generation = max_generation + 1;
    manifest.cursors = cursors;
    // Gaps between chosen segments (retention, damage) make it a version 2 MANIFEST.
    manifest.version = manifest.required_version();
    Ok(rebuilt)
}

/// Ingest cursors from the records' origins: past the furthest line or element ingested from
/// each file.
fn note_cursors(
    reader: &SegmentReader,
    cursors: &mut BTreeMap<String, Cursor>,
    undecodable: &mut Vec<Offset>,
) -> Vec<(Offset, Offset)> {
    let mut damaged = Vec::new();
    for (index, meta) in reader.blocks().iter().enumerate() {
        let Ok(records) = reader.read_block(index) else {
            damaged.push((
                meta.first_offset,
                Offset(meta.first_offset.0 + u64::from(meta.count)),
            ));
            continue;
        };
        for (i, bytes) in records.iter().enumerate() {
            let origin = match Record::decode(bytes) {
                Ok(Record {
                    body: Body::Transcript(line),
                    ..
                }) => Some(line.origin),
                Ok(Record {
                    body: Body::Hook(hook),
                    ..
                }) => hook.origin,
                Ok(_) => None,
                Err(_) => {
                    undecodable.push(Offset(meta.first_offset.0 + i as u64));
                    None
                }
            };
            if let Some(origin) = origin.filter(|o| !o.file.is_empty()) {
                // A line's cursor is past its newline; an element's past its last byte.
                let end = origin.position + origin.len + 1;
                let cursor = cursors.entry(origin.file).or_default();
                cursor.end = cursor.end.max(end);
            }
        }
    }
    damaged
}

/// What [`recover_manifest`] found, and whether it wrote the MANIFEST.
#[derive(Debug, Clone)]
pub struct RecoverPlan {
    /// The MANIFEST as it was, when it decoded.
    pub previous: Option<Manifest>,
    /// Why the MANIFEST as it was could not be used (missing, corrupt), if so.
    pub problem: Option<String>,
    /// The rebuilt MANIFEST and what was left out.
    pub rebuilt: RebuiltManifest,
    /// Whether the rebuilt MANIFEST lists other segments or another next offset than the
    /// previous one (or there was none).
    pub differs: bool,
    /// Whether it was written.
    pub applied: bool,
}

/// `ctrace recover`: under the store lock (waiting for it), rebuilds the MANIFEST from the
/// segments ([`rebuild_manifest`]) and, when `apply` is set and it differs from the MANIFEST
/// as it is, commits it (temp, sync, rename, sync dir). Never deletes anything: segments left
/// out are superseded copies that ordinary recovery then removes, or unreadable files that
/// stay where they are and are reported.
///
/// # Errors
/// [`LogError::Io`] on the lock, `segments/` or the commit.
pub fn recover_manifest(store: &super::Store, apply: bool) -> Result<RecoverPlan, LogError> {
    use std::os::unix::fs::OpenOptionsExt;
    let paths = store.paths();
    let io = |source| LogError::Io {
        path: paths.lock.clone(),
        source,
    };
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(super::private::FILE_MODE)
        .custom_flags(super::private::NOFOLLOW)
        .open(&paths.lock)
        .map_err(io)?;
    lock.lock().map_err(io)?;
    let (previous, problem) = match super::load_manifest(paths) {
        Ok(manifest) => (Some(manifest), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut rebuilt = rebuild_manifest(paths, previous.as_ref())?;
    if let Some(previous) = &previous {
        // Cursors the old MANIFEST knew are kept where they are further on.
        for (file, cursor) in &previous.cursors {
            let entry = rebuilt.manifest.cursors.entry(file.clone()).or_default();
            entry.end = entry.end.max(cursor.end);
        }
        rebuilt.manifest.consumed_inbox = previous.consumed_inbox.clone();
    }
    let differs = !rebuilt.damaged.is_empty()
        || previous.as_ref().is_none_or(|previous| {
            let files = |m: &Manifest| {
                m.segments
                    .iter()
                    .map(|s| s.file.clone())
                    .collect::<Vec<_>>()
            };
            files(previous) != files(&rebuilt.manifest)
                || previous.next_offset != rebuilt.manifest.next_offset
        });
    let applied = apply && differs;
    if applied {
        let mut quarantined = Vec::new();
        for (file, _) in &rebuilt.damaged {
            let generation = rebuilt.manifest.generation;
            let Some(slot) = rebuilt
                .manifest
                .segments
                .iter_mut()
                .find(|s| &s.file == file)
            else {
                continue;
            };
            *slot = salvage(store, slot, generation)?;
            quarantined.push(file.clone());
        }
        rebuilt.manifest.version = rebuilt.manifest.required_version();
        rebuilt.manifest.commit(&paths.manifest)?;
        // After the commit: the salvaged copies are live, the damaged files are not.
        let quarantine = paths.root.join("quarantine");
        for file in &quarantined {
            super::private::ensure_store_dir(&quarantine)?;
            let to = quarantine.join(file);
            std::fs::rename(paths.segments.join(file), &to).map_err(|source| LogError::Io {
                path: to.clone(),
                source,
            })?;
            tracing::warn!(file = %to.display(), "damaged segment quarantined; its intact blocks were salvaged");
        }
        super::manifest::sync_dir(&paths.segments)?;
        tracing::warn!(
            segments = rebuilt.manifest.segments.len(),
            next = rebuilt.manifest.next_offset.0,
            "MANIFEST rebuilt from the segments by `ctrace recover`"
        );
    }
    drop(lock);
    Ok(RecoverPlan {
        previous,
        problem,
        rebuilt,
        differs,
        applied,
    })
}

/// Copies every block of `entry`'s file that reads intact (CRC, decompression, records) into
/// a new sparse segment `<base>-<end>-g<generation>.seg`, synced; the damaged blocks' offsets
/// are left out. Returns the new entry.
///
/// # Errors
/// [`LogError::Segment`] / [`LogError::Io`] reading or writing.
fn salvage(
    store: &super::Store,
    entry: &SegmentEntry,
    generation: u64,
) -> Result<SegmentEntry, LogError> {
    let paths = store.paths();
    let reader = SegmentReader::open(&paths.segments.join(&entry.file), entry.id)?;
    let file = format!(
        "{:020}-{:020}-g{generation:020}.seg",
        entry.id.0,
        entry.end().0
    );
    let temp = paths.segments.join(format!("{file}.salvage.tmp"));
    let mut writer = crate::segments::segment::SegmentWriter::create_sparse(
        &temp,
        Offset(entry.id.0),
        usize::try_from(store.config().storage.block_bytes).unwrap_or(usize::MAX),
        store.config().storage.zstd_level,
        store.config().frame_limit(),
    )?;
    for (index, meta) in reader.blocks().iter().enumerate() {
        if reader.read_block(index).is_err() {
            continue;
        }
        let start = usize::try_from(meta.position).unwrap_or(usize::MAX);
        let Some(compressed) = reader
            .bytes()
            .get(start..start.saturating_add(meta.compressed_len as usize))
        else {
            continue;
        };
        writer.copy_block(meta, compressed)?;
    }
    let finished = writer.finish()?;
    let path = paths.segments.join(&file);
    std::fs::rename(&temp, &path).map_err(|source| LogError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(SegmentEntry {
        file,
        record_count: finished.footer.record_count,
        min_ts: finished.footer.min_ts,
        max_ts: finished.footer.max_ts,
        raw_bytes: finished.footer.raw_bytes,
        file_bytes: finished.file_bytes,
        crc32: finished.crc32,
        end: Some(entry.end()),
        level: None,
        ..entry.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, end: u64) -> SegmentEntry {
        SegmentEntry {
            id: SegmentId(id),
            file: super::super::seal::segment_file_name(SegmentId(id), Offset(end)),
            record_count: end - id,
            min_ts: 0,
            max_ts: 0,
            raw_bytes: 0,
            file_bytes: 0,
            crc32: 0,
            created_ns: 0,
            end: None,
            level: None,
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_segment_name("00000000000000000010-00000000000000000020.seg"),
            Some((10, 20, 0))
        );
        assert_eq!(
            parse_segment_name(
                "00000000000000000010-00000000000000000020-g00000000000000000007.seg"
            ),
            Some((10, 20, 7))
        );
        assert_eq!(parse_segment_name("x.seg"), None);
        assert_eq!(
            parse_segment_name("00000000000000000020-00000000000000000010.seg"),
            None
        );
    }

    /// Issue 14 item 1: only provably unneeded segments are judged removable.
    #[test]
    fn unlisted_segments_are_judged_by_proof() {
        let manifest = Manifest {
            version: 1,
            generation: 4,
            next_offset: Offset(30),
            segments: vec![entry(0, 10), entry(10, 30)],
            retired: vec!["gone.seg".into()],
            ..Manifest::default()
        };
        let name = |a: u64, b: u64| format!("{a:020}-{b:020}.seg");
        // An interrupted seal past the end, and one that extended the tail.
        assert_eq!(
            unlisted_segment(&manifest, &name(30, 40)),
            Unlisted::Uncommitted
        );
        assert_eq!(
            unlisted_segment(&manifest, &name(10, 45)),
            Unlisted::Uncommitted
        );
        // The old tail before an extension that committed.
        assert_eq!(
            unlisted_segment(&manifest, &name(10, 20)),
            Unlisted::Uncommitted
        );
        assert_eq!(unlisted_segment(&manifest, "gone.seg"), Unlisted::Retired);
        // Committed offsets nobody else holds: the MANIFEST lost track of them.
        let empty = Manifest {
            version: 1,
            ..Manifest::default()
        };
        assert_eq!(
            unlisted_segment(&empty, &name(0, 10)),
            Unlisted::Uncommitted
        );
        let rolled_back = Manifest {
            next_offset: Offset(30),
            segments: vec![entry(10, 30)],
            ..manifest.clone()
        };
        assert_eq!(
            unlisted_segment(&rolled_back, &name(0, 10)),
            Unlisted::Committed
        );
        assert_eq!(
            unlisted_segment(&manifest, "not-a-segment.seg"),
            Unlisted::Committed
        );
    }
}
