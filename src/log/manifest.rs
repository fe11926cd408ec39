//! MANIFEST: the list of live sealed segments, the next offset, the inbox files consumed by the
//! last seal, and the ingest cursors, replaced atomically (write temp, sync, rename, fsync dir).
//!
//! Layout: `magic[8] = "CTMANIF1" | len u32 LE | crc32 u32 LE | JSON[len]`, CRC-32 over the
//! JSON bytes. JSON keeps it readable with ordinary tools; the checksum keeps it honest.
//!
//! Invariants: a segment file not named here is garbage from an interrupted seal; an inbox
//! file named in `consumed_inbox` is already sealed and must be deleted, never sealed twice;
//! `cursors` are exactly the file positions covered by sealed records.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LogError;
use crate::segments::segment::Finished;
use crate::segments::{Offset, SegmentId};

/// First eight bytes of a MANIFEST file.
pub(crate) const MANIFEST_MAGIC: [u8; 8] = *b"CTMANIF1";
/// Largest MANIFEST accepted, in bytes (64 MiB), checked before allocating.
pub(crate) const MAX_MANIFEST_BYTES: u32 = 64 << 20;

/// One live sealed segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Base offset.
    pub id: SegmentId,
    /// File name inside `segments/`.
    pub file: String,
    /// Records in the segment.
    pub record_count: u64,
    /// Smallest record timestamp, ns.
    pub min_ts: u64,
    /// Largest record timestamp, ns.
    pub max_ts: u64,
    /// Raw (framed, uncompressed) bytes.
    pub raw_bytes: u64,
    /// File length in bytes.
    pub file_bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
    /// When the segment was first created (its base offset first sealed), ns since the epoch.
    pub created_ns: u64,
    /// One past the last offset the segment covers, set only for a sparse segment (rewritten by
    /// retention, format version 2), whose `record_count` no longer spans its offsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Offset>,
    /// The zstd level every block of the file was compressed at, when the compactor wrote it
    /// (`ctrace compact` recompresses segments to `storage.compaction_zstd_level`); absent for
    /// segments written by sealing, whose blocks may mix levels. Readers that do not know the
    /// field ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
}

/// How a segment file came to be written, for [`SegmentEntry::install`].
#[derive(Debug, Clone, Copy)]
pub(super) struct NewSegment<'a> {
    /// Base offset.
    pub(super) id: SegmentId,
    /// The finished temporary file.
    pub(super) temp: &'a Path,
    /// Its name once installed in `segments/`.
    pub(super) file: &'a str,
    /// What the writer finished with.
    pub(super) finished: &'a Finished,
    /// [`SegmentEntry::created_ns`].
    pub(super) created_ns: u64,
    /// [`SegmentEntry::end`].
    pub(super) end: Option<Offset>,
    /// [`SegmentEntry::level`].
    pub(super) level: Option<i32>,
    /// The fault injection point before the rename (`crate::fault`).
    pub(super) fault_point: &'static str,
}

impl SegmentEntry {
    /// Renames a finished temporary segment file into `segments_dir` under its name and returns
    /// its manifest entry (not yet committed: the caller syncs the directory and writes the
    /// MANIFEST). Sealing, retention and recompression install segments this way.
    ///
    /// # Errors
    /// [`LogError::Io`] naming the destination when the rename fails.
    pub(super) fn install(segments_dir: &Path, new: NewSegment<'_>) -> Result<Self, LogError> {
        let path = segments_dir.join(new.file);
        (crate::fault::point(new.fault_point).and_then(|()| std::fs::rename(new.temp, &path)))
            .map_err(|source| LogError::Io { path, source })?;
        Ok(SegmentEntry {
            id: new.id,
            file: new.file.to_owned(),
            record_count: new.finished.footer.record_count,
            min_ts: new.finished.footer.min_ts,
            max_ts: new.finished.footer.max_ts,
            raw_bytes: new.finished.footer.raw_bytes,
            file_bytes: new.finished.file_bytes,
            crc32: new.finished.crc32,
            created_ns: new.created_ns,
            end: new.end,
            level: new.level,
        })
    }

    /// The file name of this segment rewritten (by retention or recompression) for the
    /// MANIFEST `generation` that will list it: `<base>-<end>-g<generation>.seg`.
    pub(super) fn rewritten_file_name(&self, generation: u64) -> String {
        format!(
            "{:020}-{:020}-g{generation:020}.seg",
            self.id.0,
            self.end().0
        )
    }

    /// One past the last offset the segment covers (saturating; [`Manifest::decode`] rejects
    /// entries where it would overflow).
    pub fn end(&self) -> Offset {
        self.end
            .unwrap_or(Offset(self.id.0.saturating_add(self.record_count)))
    }

    /// Whether some offsets in `[id, end)` are missing (removed by retention).
    pub fn is_sparse(&self) -> bool {
        self.end().0.saturating_sub(self.id.0) != self.record_count
    }
}

/// Where bulk ingest of one source file has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// Byte position just past the last ingested line or element.
    pub end: u64,
}

/// The MANIFEST content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version: 1 when segments tile the offsets densely, 2 once retention removed
    /// records (sparse segments, gaps between segments); see [`Manifest::required_version`].
    pub version: u32,
    /// Incremented by every commit.
    pub generation: u64,
    /// The offset the next sealed record gets.
    pub next_offset: Offset,
    /// Live segments in offset order.
    pub segments: Vec<SegmentEntry>,
    /// Inbox files (relative to the store root, or absolute) consumed by the last commit.
    #[serde(default)]
    pub consumed_inbox: Vec<String>,
    /// Ingest cursors by absolute source-file path.
    #[serde(default)]
    pub cursors: BTreeMap<String, Cursor>,
    /// Segment files (names inside `segments/`) that the last commit dropped whole
    /// (retention): recovery deletes them if a crash left them behind. Older builds ignore
    /// the field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

impl Manifest {
    /// Encodes to the on-disk layout.
    ///
    /// # Errors
    /// [`LogError::Encode`] when serialization fails.
    pub fn encode(&self) -> Result<Vec<u8>, LogError> {
        let json = serde_json::to_vec(self).map_err(|e| LogError::Encode {
            what: "manifest",
            message: e.to_string(),
        })?;
        let mut out = Vec::with_capacity(16 + json.len());
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        out.extend_from_slice(&json);
        Ok(out)
    }

    /// Decodes and checks the on-disk layout.
    ///
    /// # Errors
    /// [`LogError::ManifestCorrupt`] naming the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        let corrupt = |what: &'static str| LogError::ManifestCorrupt { what };
        if bytes.len() < 16 || bytes[..8] != MANIFEST_MAGIC {
            return Err(corrupt("magic"));
        }
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if len > MAX_MANIFEST_BYTES || bytes.len() != 16 + len as usize {
            return Err(corrupt("length"));
        }
        let stored = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let json = &bytes[16..];
        if crc32fast::hash(json) != stored {
            return Err(corrupt("checksum"));
        }
        let manifest: Manifest = serde_json::from_slice(json).map_err(|_| corrupt("content"))?;
        if !(1..=2).contains(&manifest.version) {
            return Err(corrupt("version"));
        }
        let dense = manifest.version == 1;
        let mut expected = manifest.segments.first().map(|s| s.id.0).unwrap_or(0);
        for segment in &manifest.segments {
            if segment.id.0 != expected && (dense || segment.id.0 < expected) {
                return Err(corrupt("segment offsets are not dense"));
            }
            let Some(span_end) = segment.id.0.checked_add(segment.record_count) else {
                return Err(corrupt("segment offsets overflow"));
            };
            if let Some(end) = segment.end
                && (dense || end.0 < span_end)
            {
                return Err(corrupt("segment end"));
            }
            expected = segment.end().0;
        }
        let next_ok = if dense {
            expected == manifest.next_offset.0
        } else {
            expected <= manifest.next_offset.0
        };
        if !manifest.segments.is_empty() && !next_ok {
            return Err(corrupt("next offset"));
        }
        Ok(manifest)
    }

    /// The lowest version that describes this MANIFEST: 2 when a segment is sparse or there
    /// are gaps between segments or after the last one, else 1 (what older builds read).
    pub fn required_version(&self) -> u32 {
        let mut expected = self.segments.first().map(|s| s.id.0).unwrap_or(0);
        for segment in &self.segments {
            if segment.id.0 != expected || segment.end.is_some() {
                return 2;
            }
            expected = segment.end().0;
        }
        if !self.segments.is_empty() && expected != self.next_offset.0 {
            return 2;
        }
        1
    }

    /// Reads the MANIFEST at `path`; a missing file is an empty manifest.
    ///
    /// # Errors
    /// [`LogError::Io`] or [`LogError::ManifestCorrupt`].
    pub fn load(path: &Path) -> Result<Self, LogError> {
        let read = super::inbox::open_read(path).and_then(|mut file| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes).map(|_| bytes)
        });
        match read {
            Ok(bytes) => Self::decode(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                version: 1,
                ..Self::default()
            }),
            Err(source) => Err(super::private::io_error(path, source)),
        }
    }

    /// Replaces the MANIFEST at `path` atomically and durably: temp file, sync, rename, fsync
    /// the directory.
    ///
    /// # Errors
    /// [`LogError::Io`]; after a failed sync the caller must treat the store as poisoned.
    pub fn commit(&self, path: &Path) -> Result<(), LogError> {
        let bytes = self.encode()?;
        let options = crate::fs::Replace {
            prefix: "MANIFEST.",
            points: Some(crate::fs::ReplacePoints {
                write: "manifest-write",
                sync: "manifest-sync",
                rename: "manifest-rename",
                dir_sync: "manifest-dir-sync",
            }),
            ..crate::fs::Replace::default()
        };
        crate::fs::write_atomic(path, &bytes, &options).map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// fsyncs a directory so renames and unlinks inside it are durable.
///
/// # Errors
/// [`LogError::Io`].
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    crate::fs::sync_dir(dir).map_err(|source| LogError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            version: 1,
            generation: 3,
            next_offset: Offset(10),
            segments: vec![SegmentEntry {
                id: SegmentId(0),
                file: "x.seg".into(),
                record_count: 10,
                min_ts: 1,
                max_ts: 2,
                raw_bytes: 3,
                file_bytes: 4,
                crc32: 5,
                created_ns: 6,
                end: None,
                level: None,
            }],
            consumed_inbox: vec!["inbox/sealing-3-0.wal".into()],
            cursors: BTreeMap::from([("/a".into(), Cursor { end: 7 })]),
            retired: vec!["00000000000000000000-00000000000000000003.seg".into()],
        }
    }

    #[test]
    fn round_trip_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("MANIFEST");
        assert_eq!(Manifest::load(&path).unwrap().generation, 0);
        sample().commit(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), sample());
    }

    #[test]
    fn every_byte_flip_is_detected() {
        let bytes = sample().encode().unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            assert!(Manifest::decode(&damaged).is_err(), "flip at {at}");
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..cut]).is_err());
        }
    }
}
