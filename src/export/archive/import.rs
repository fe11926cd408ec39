//! [`import`]: adding a verified archive's records to a store, skipping records it holds.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::read::read_members;
use super::{
    ArchiveError, ArchiveManifest, CHUNK_DIR, IMPORT_ROLL_BYTES, MemberEntry, for_each_sealed,
    sha256_hex, split_chunk,
};
use crate::log::SealReport;
use crate::log::StoreLock;
use crate::log::read::TimeRange;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Records in the archive.
    pub archive_records: u64,
    /// Records added to the store.
    pub added: u64,
    /// Records already in the store (same bytes), not added again.
    pub already_present: u64,
    /// Bytes of the records added.
    pub added_bytes: u64,
    /// Offsets assigned to the added records: first, and one past the last.
    pub first_offset: Option<u64>,
    /// One past the last offset assigned.
    pub next_offset: Option<u64>,
}

type RecordKey = [u8; 16];

fn record_key(bytes: &[u8]) -> RecordKey {
    let digest = Sha256::digest(bytes);
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Adds the records of a verified archive (see [`verify`](super::verify)) to the store held by `lock`, in archive
/// order, skipping records whose exact bytes the store already holds (as a multiset). Records
/// keep their bytes: `ts`, `source`, `session`, body and raw payloads are those of the exporting
/// store; offsets are assigned by this store. Seals every [`IMPORT_ROLL_BYTES`] and at the end.
/// `progress` is told the compressed bytes read so far.
///
/// Transcript and hook records carry the file and position they were ingested from; sealing them
/// advances this store's ingest cursors for those paths, as if this store had ingested them.
///
/// # Errors
/// [`ArchiveError::ChecksumMismatch`] when a chunk no longer matches the manifest (the file
/// changed since [`verify`](super::verify); chunks before it have been added); reading errors as [`verify`](super::verify);
/// [`ArchiveError::Log`] when appending or sealing fails.
pub fn import(
    lock: &mut StoreLock<'_>,
    path: &Path,
    manifest: &ArchiveManifest,
    progress: Box<dyn FnMut(u64)>,
) -> Result<ImportSummary, ArchiveError> {
    lock.seal()?;
    let mut present: HashMap<RecordKey, u32> = HashMap::new();
    if manifest.records > 0 {
        let snapshot = lock.store().snapshot()?;
        let time = if manifest.undecodable > 0 {
            TimeRange::default()
        } else {
            TimeRange {
                since: manifest.min_ts,
                until: manifest.max_ts,
            }
        };
        for_each_sealed(&snapshot, time, |_, bytes| {
            *present.entry(record_key(bytes)).or_default() += 1;
            Ok(())
        })?;
    }
    let expected: HashMap<&str, &MemberEntry> = manifest
        .members
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let mut summary = ImportSummary {
        archive_records: manifest.records,
        ..ImportSummary::default()
    };
    let mut producer = None;
    let mut seals: Vec<SealReport> = Vec::new();
    let trailer = read_members(path, progress, |name, content| {
        if !name.starts_with(CHUNK_DIR) {
            return Ok(());
        }
        let Some(entry) = expected.get(name) else {
            return Err(ArchiveError::UnexpectedMember {
                member: name.to_owned(),
            });
        };
        let computed = sha256_hex(content);
        if computed != entry.sha256 {
            return Err(ArchiveError::ChecksumMismatch {
                member: name.to_owned(),
                expected: entry.sha256.clone(),
                computed,
            });
        }
        for record in split_chunk(name, content)? {
            if !present.is_empty()
                && let Some(count) = present.get_mut(&record_key(record))
                && *count > 0
            {
                *count -= 1;
                summary.already_present += 1;
                continue;
            }
            let inbox = match producer.as_mut() {
                Some(inbox) => inbox,
                None => producer.insert(lock.store().producer("import")?),
            };
            inbox.append(record)?;
            summary.added += 1;
            summary.added_bytes += record.len() as u64;
            if inbox.len_bytes() >= IMPORT_ROLL_BYTES
                && let Some(inbox) = producer.take()
            {
                inbox.close()?;
                seals.push(lock.seal()?);
            }
        }
        Ok(())
    })?;
    if let Some(inbox) = producer.take() {
        inbox.close()?;
        seals.push(lock.seal()?);
    }
    if let Some(error) = trailer {
        return Err(error);
    }
    let assigned: Vec<&SealReport> = seals.iter().filter(|s| s.records > 0).collect();
    summary.first_offset = assigned.first().map(|s| s.first_offset.0);
    summary.next_offset = assigned.last().map(|s| s.next_offset.0);
    Ok(summary)
}
