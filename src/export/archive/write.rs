//! Writing an archive: [`ArchiveWriter`] (members, chunks, manifest) and [`export`] of a
//! store's sealed records.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use serde::Serialize;

use super::{
    ArchiveError, ArchiveHeader, ArchiveManifest, CHUNK_BYTES, CHUNK_DIR, FORMAT_NAME,
    FORMAT_VERSION, HEADER_MEMBER, MANIFEST_MEMBER, MANIFEST_SUM_MEMBER, MemberEntry, Selection,
    ZSTD_LEVEL, max_opt, min_opt, sha256_hex,
};
use crate::log::LogError;
use crate::log::Snapshot;
use crate::log::read::TimeRange;
use crate::model::RecordRef;
use crate::segments::Offset;

/// Writes an archive to `out` as records are added.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<zstd::stream::write::Encoder<'static, W>>,
    path: PathBuf,
    created_ns: u64,
    chunk: Vec<u8>,
    chunk_entry: MemberEntry,
    manifest: ArchiveManifest,
    sessions: std::collections::HashSet<String>,
}

impl<W: Write> std::fmt::Debug for ArchiveWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("path", &self.path)
            .field("records", &self.manifest.records)
            .finish_non_exhaustive()
    }
}

pub(super) fn empty_entry() -> MemberEntry {
    MemberEntry {
        name: String::new(),
        bytes: 0,
        sha256: String::new(),
        records: Some(0),
        first_offset: None,
        last_offset: None,
        min_ts: None,
        max_ts: None,
    }
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `out` and writes the header member. `path` names the output in
    /// errors.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] when the output cannot be written.
    pub fn new(out: W, path: &Path, selection: Selection) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(io)?;
        encoder.include_checksum(true).map_err(io)?;
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        let created_ns = crate::now_ns();
        let mut writer = Self {
            tar,
            path: path.to_path_buf(),
            created_ns,
            chunk: Vec::new(),
            chunk_entry: empty_entry(),
            manifest: ArchiveManifest {
                format: FORMAT_NAME.to_owned(),
                format_version: FORMAT_VERSION,
                ctrace_version: env!("CARGO_PKG_VERSION").to_owned(),
                record_format_version: 1,
                created_ns,
                selection,
                records: 0,
                record_bytes: 0,
                sources: BTreeMap::new(),
                undecodable: 0,
                sessions: 0,
                first_offset: None,
                last_offset: None,
                min_ts: None,
                max_ts: None,
                members: Vec::new(),
            },
            sessions: std::collections::HashSet::new(),
        };
        let header = ArchiveHeader {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            ctrace_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let bytes = json_bytes(&header, HEADER_MEMBER)?;
        writer.member(HEADER_MEMBER, &bytes)?;
        let sha = sha256_hex(&bytes);
        writer.manifest.members.push(MemberEntry {
            name: HEADER_MEMBER.to_owned(),
            bytes: bytes.len() as u64,
            sha256: sha,
            records: None,
            ..empty_entry()
        });
        Ok(writer)
    }

    fn member(&mut self, name: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.created_ns / 1_000_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        let path = self.path.clone();
        self.tar
            .append_data(&mut header, name, bytes)
            .map_err(|source| ArchiveError::Io { path, source })
    }

    /// Adds one record: its exact encoded bytes and, when they decode, its head; `offset` is its
    /// offset in the exporting store (`None` while unsealed).
    ///
    /// # Errors
    /// [`ArchiveError::Io`] when a full chunk cannot be written.
    pub fn add(
        &mut self,
        bytes: &[u8],
        offset: Option<Offset>,
        head: Option<&RecordRef<'_>>,
    ) -> Result<(), ArchiveError> {
        let len = u32::try_from(bytes.len()).map_err(|_| ArchiveError::BadMember {
            member: self.chunk_name(),
            what: "record larger than 4 GiB",
        })?;
        if !self.chunk.is_empty() && self.chunk.len() + 4 + bytes.len() > CHUNK_BYTES {
            self.flush_chunk()?;
        }
        self.chunk.extend_from_slice(&len.to_le_bytes());
        self.chunk.extend_from_slice(bytes);
        let entry = &mut self.chunk_entry;
        entry.records = Some(entry.records.unwrap_or(0) + 1);
        let offset = offset.map(|o| o.0);
        entry.first_offset = min_opt(entry.first_offset, offset);
        entry.last_offset = max_opt(entry.last_offset, offset);
        let manifest = &mut self.manifest;
        manifest.records += 1;
        manifest.record_bytes += bytes.len() as u64;
        manifest.first_offset = min_opt(manifest.first_offset, offset);
        manifest.last_offset = max_opt(manifest.last_offset, offset);
        match head {
            Some(head) => {
                entry.min_ts = min_opt(entry.min_ts, Some(head.ts));
                entry.max_ts = max_opt(entry.max_ts, Some(head.ts));
                manifest.min_ts = min_opt(manifest.min_ts, Some(head.ts));
                manifest.max_ts = max_opt(manifest.max_ts, Some(head.ts));
                *manifest
                    .sources
                    .entry(head.source.as_str().to_owned())
                    .or_default() += 1;
                if let Some(session) = head.session
                    && !self.sessions.contains(session)
                {
                    self.sessions.insert(session.to_owned());
                }
            }
            None => manifest.undecodable += 1,
        }
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn chunk_name(&self) -> String {
        // The header member is members[0]; chunks are numbered from 0.
        format!(
            "{CHUNK_DIR}{:08}.bin",
            self.manifest.members.len().saturating_sub(1)
        )
    }

    fn flush_chunk(&mut self) -> Result<(), ArchiveError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let name = self.chunk_name();
        let chunk = std::mem::take(&mut self.chunk);
        self.member(&name, &chunk)?;
        let mut entry = std::mem::replace(&mut self.chunk_entry, empty_entry());
        entry.name = name;
        entry.bytes = chunk.len() as u64;
        entry.sha256 = sha256_hex(&chunk);
        self.manifest.members.push(entry);
        Ok(())
    }

    /// Writes the last chunk, the manifest and its checksum, and finishes the stream. Returns
    /// the manifest and the output.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] when the output cannot be written.
    pub fn finish(mut self) -> Result<(ArchiveManifest, W), ArchiveError> {
        self.flush_chunk()?;
        self.manifest.sessions = self.sessions.len() as u64;
        let bytes = json_bytes(&self.manifest, MANIFEST_MEMBER)?;
        self.member(MANIFEST_MEMBER, &bytes)?;
        let sum = format!("{}\n", sha256_hex(&bytes));
        self.member(MANIFEST_SUM_MEMBER, sum.as_bytes())?;
        let io = |source| ArchiveError::Io {
            path: self.path.clone(),
            source,
        };
        let encoder = self.tar.into_inner().map_err(io)?;
        let out = encoder.finish().map_err(io)?;
        Ok((self.manifest, out))
    }
}

pub(super) fn json_bytes(value: &impl Serialize, member: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|_| ArchiveError::BadMember {
        member: member.to_owned(),
        what: "does not serialize",
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Exports the records of `snapshot` selected by `keep` (given each record's head, `None` when
/// its bytes do not decode) within `time`, in offset order then the unsealed records, with their
/// exact stored bytes. `progress` is told each record's encoded size in bytes.
///
/// # Errors
/// [`ArchiveError::Log`] for a damaged block of the store; [`ArchiveError::Io`] on output.
pub fn export<W: Write>(
    snapshot: &Snapshot,
    time: TimeRange,
    mut keep: impl FnMut(Option<&RecordRef<'_>>) -> bool,
    writer: &mut ArchiveWriter<W>,
    mut progress: impl FnMut(u64),
) -> Result<(), ArchiveError> {
    for_each_sealed(snapshot, time, |offset, bytes| {
        let head = RecordRef::decode(bytes).ok();
        if head.as_ref().is_some_and(|h| !time.contains(h.ts)) {
            return Ok(());
        }
        if keep(head.as_ref()) {
            writer.add(bytes, Some(offset), head.as_ref())?;
        }
        progress(bytes.len() as u64);
        Ok(())
    })?;
    for stored in snapshot.scan(snapshot.manifest().next_offset, time, true) {
        let stored = stored?;
        if stored.offset.is_some() {
            continue;
        }
        let bytes = stored.record.encode().map_err(|e| LogError::Encode {
            what: "record",
            message: e.to_string(),
        })?;
        let head = RecordRef::decode(&bytes).ok();
        if keep(head.as_ref()) {
            writer.add(&bytes, None, head.as_ref())?;
        }
        progress(bytes.len() as u64);
    }
    Ok(())
}

/// Calls `f` with the offset and exact stored bytes of every sealed record in blocks that
/// overlap `time` (records of such a block outside `time` are included: filter on their head).
///
/// # Errors
/// [`ArchiveError::Log`] for a damaged block, or what `f` returns.
pub fn for_each_sealed(
    snapshot: &Snapshot,
    time: TimeRange,
    mut f: impl FnMut(Offset, &[u8]) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    for block in snapshot.blocks(.., time) {
        let records = match snapshot.read_block(&block) {
            Ok(records) => records,
            Err(damaged) => {
                // Exported without the damaged block; the warning names it.
                damaged.note();
                continue;
            }
        };
        for (i, bytes) in records.iter().enumerate() {
            f(Offset(block.first.0 + i as u64), bytes)?;
        }
    }
    Ok(())
}
