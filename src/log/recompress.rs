//! Recompression of sealed segments by the compactor: sealing compresses at a fast level
//! (`storage.zstd_level`, default 3) so that the hook path and bulk ingest stay quick;
//! `ctrace compact` later rewrites sealed segments at `storage.compaction_zstd_level`
//! (default 9), like the "bottommost level" compression of LSM stores. Offsets, records and
//! their bytes do not change, only how the blocks are compressed (and, for segments written
//! before format version 3, their layout: they are rewritten in the columnar layout).
//!
//! Crash safety is that of retention's rewrites: the new file is written under a temp name,
//! synced, renamed to a name carrying the new MANIFEST generation, the directory synced, the
//! MANIFEST committed, and only then the old file deleted. A crash before the commit leaves a
//! file that recovery removes (it is not in the MANIFEST); after it, an old file that recovery
//! removes. Readers that opened the old file keep their map; readers that find it gone reload
//! the MANIFEST (see `read`).

use super::manifest::{NewSegment, SegmentEntry, sync_dir};
use super::{LogError, StoreLock, remove_file};
use crate::model::RecordRef;
use crate::segments::Offset;
use crate::segments::segment::{BlockLayout, SegmentReader, SegmentWriter};

/// What [`StoreLock::recompress`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecompressReport {
    /// The level segments were recompressed to.
    pub level: i32,
    /// Segments rewritten.
    pub segments: u64,
    /// Records in them.
    pub records: u64,
    /// File bytes of those segments before.
    pub bytes_before: u64,
    /// File bytes of those segments after.
    pub bytes_after: u64,
    /// Segments left for a later run because the byte budget was spent.
    pub deferred: u64,
    /// Damaged segments left as they are.
    pub damaged: u64,
}

impl StoreLock<'_> {
    /// Rewrites every sealed segment not yet at `level` (its MANIFEST entry has no `level`, or
    /// another one) with all blocks compressed at `level`, oldest first, until the segments
    /// rewritten hold `budget_bytes` file bytes (`None`: no limit). The newest segment is
    /// included: when sealing later reopens it to add records, its entry loses `level` and the
    /// next run recompresses it again (at most `storage.segment_bytes` of work).
    ///
    /// # Errors
    /// [`LogError::Poisoned`] after a failed sync; [`LogError::Segment`] / [`LogError::Io`]
    /// when a segment cannot be read or written, which leaves the store as it was (the partial
    /// file is removed, or recovery removes it).
    pub fn recompress(
        &mut self,
        level: i32,
        budget_bytes: Option<u64>,
    ) -> Result<RecompressReport, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned {
                path: self.store.paths.manifest.clone(),
                source: std::io::Error::other("an earlier sync failed"),
            });
        }
        let mut report = RecompressReport {
            level,
            ..RecompressReport::default()
        };
        let segments = self.manifest.segments.clone();
        for entry in &segments {
            if entry.level == Some(level) {
                continue;
            }
            if budget_bytes.is_some_and(|budget| report.bytes_before >= budget) {
                report.deferred += 1;
                continue;
            }
            let generation = self.manifest.generation + 1;
            let new = match self.rewrite_at_level(entry, level, generation) {
                Ok(new) => new,
                // A damaged segment is left as it is (its intact blocks stay readable;
                // `verify` names the damage, `ctrace recover` rebuilds); the others go on.
                Err(LogError::Segment(error)) => {
                    tracing::warn!(file = %entry.file, %error, "not recompressing a damaged segment");
                    report.damaged += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            crate::fault::crash("recompress-written");
            if let Err(e) = sync_dir(&self.store.paths.segments) {
                self.poisoned = true;
                return Err(e);
            }
            let mut manifest = self.manifest.clone();
            manifest.generation = generation;
            manifest.retired.clear();
            for slot in &mut manifest.segments {
                if slot.id == entry.id {
                    *slot = new.clone();
                }
            }
            manifest.version = manifest.required_version();
            if let Err(e) = manifest.commit(&self.store.paths.manifest) {
                // Only a commit that failed before its rename leaves the old MANIFEST: after
                // the rename (a failed directory sync) the new MANIFEST names the new file.
                if super::Manifest::load(&self.store.paths.manifest)
                    .is_ok_and(|on_disk| on_disk.generation < generation)
                {
                    let _ = remove_file(&self.store.paths.segments.join(&new.file));
                }
                self.poisoned = true;
                return Err(e);
            }
            self.manifest = manifest;
            crate::fault::crash("recompress-committed");
            let old = self.store.paths.segments.join(&entry.file);
            super::fault_point("recompress-delete", &old)?;
            remove_file(&old)?;
            report.segments += 1;
            report.records += entry.record_count;
            report.bytes_before += entry.file_bytes;
            report.bytes_after += new.file_bytes;
        }
        if report.segments > 0 {
            tracing::info!(
                level,
                segments = report.segments,
                bytes_before = report.bytes_before,
                bytes_after = report.bytes_after,
                "segments recompressed"
            );
        }
        Ok(report)
    }

    /// Writes `entry` again, every block recompressed at `level`, under a name that carries
    /// `generation`.
    fn rewrite_at_level(
        &self,
        entry: &SegmentEntry,
        level: i32,
        generation: u64,
    ) -> Result<SegmentEntry, LogError> {
        let paths = &self.store.paths;
        let storage = &self.store.config.storage;
        let reader = SegmentReader::open(&paths.segments.join(&entry.file), entry.id)?;
        let temp = paths.segments.join(format!(
            "{:020}.seg.{}.recompress.tmp",
            entry.id.0,
            std::process::id()
        ));
        remove_file(&temp)?;
        let mut writer = SegmentWriter::create_layout(
            &temp,
            Offset(entry.id.0),
            usize::try_from(storage.block_bytes).unwrap_or(usize::MAX),
            level,
            self.store.config.frame_limit(),
            reader.is_sparse(),
            BlockLayout::Columnar,
        )?;
        let result = (|| {
            for (i, meta) in reader.blocks().iter().enumerate() {
                for (j, bytes) in reader.read_block(i)?.into_iter().enumerate() {
                    let ts = RecordRef::decode(&bytes).map_or(meta.min_ts, |r| r.ts);
                    writer.add_at(Offset(meta.first_offset.0 + j as u64), &bytes, ts)?;
                }
            }
            writer.finish().map_err(LogError::from)
        })();
        let finished = match result {
            Ok(finished) => finished,
            Err(e) => {
                let _ = remove_file(&temp);
                return Err(e);
            }
        };
        let file = entry.rewritten_file_name(generation);
        SegmentEntry::install(
            &paths.segments,
            NewSegment {
                id: entry.id,
                temp: &temp,
                file: &file,
                finished: &finished,
                created_ns: entry.created_ns,
                end: entry.end,
                level: Some(level),
                fault_point: "recompress-rename",
            },
        )
    }
}
