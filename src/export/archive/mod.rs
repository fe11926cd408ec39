//! The export archive: a self-describing `tar` stream compressed with `zstd` (`.tar.zst`) that
//! carries records exactly as encoded in the log, with a manifest and a SHA-256 of every member
//! (`docs/export.md`). Writing it is a read of the log; reading it back is ingest.
//!
//! Members, in this order:
//!
//! | member | content |
//! | --- | --- |
//! | `ctrace-archive.json` | `{"format":"ctrace-archive","format_version":1,"ctrace_version":…}`: read first, so an archive from a newer format is refused before anything else |
//! | `records/00000000.bin` … | record chunks (below), each at most [`CHUNK_BYTES`] except a chunk holding one larger record |
//! | `manifest.json` | [`ArchiveManifest`]: versions, record counts, offset and time ranges, and the size, SHA-256 and ranges of every member above |
//! | `manifest.json.sha256` | the lowercase hex SHA-256 of `manifest.json` |
//!
//! A record chunk is a sequence of `len u32 LE | record[len]`, where `record` is the record's
//! rmp-serde encoding exactly as stored in the log (`DESIGN.md` §2).
//!
//! Invariants:
//! - [`verify`] reads the whole archive and checks every member's SHA-256, the member list and the
//!   record counts before [`import`] changes anything; [`import`] checks each chunk's SHA-256
//!   again before appending its records, so a file changed between the two passes adds only
//!   verified chunks.
//! - Import is idempotent: a record whose exact bytes are already in the store (counted as a
//!   multiset, so records that are legitimately identical keep their multiplicity) is not added
//!   again.
//! - No decoder allocates more than the member size announced in the tar header, and that is
//!   bounded by [`MAX_MEMBER_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::log::read::TimeRange;
use crate::log::{LogError, SealReport, Snapshot, StoreLock};
use crate::model::{Record, RecordHead};
use crate::segments::Offset;

/// The `format` field of the header and manifest.
pub const FORMAT_NAME: &str = "ctrace-archive";
/// The archive format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the first member.
pub const HEADER_MEMBER: &str = "ctrace-archive.json";
/// Name of the manifest member.
pub const MANIFEST_MEMBER: &str = "manifest.json";
/// Name of the member holding the manifest's SHA-256.
pub const MANIFEST_SUM_MEMBER: &str = "manifest.json.sha256";
/// Directory of the record chunks inside the archive.
pub const CHUNK_DIR: &str = "records/";
/// Raw bytes after which a record chunk is closed (16 MiB).
pub const CHUNK_BYTES: usize = 16 << 20;
/// Largest member accepted when reading, in bytes (1 GiB), checked before allocating.
pub const MAX_MEMBER_BYTES: u64 = 1 << 30;
/// zstd level of the archive stream.
pub const ZSTD_LEVEL: i32 = 3;
/// Producer inbox size in bytes after which import seals (32 MiB), as bulk ingest does.
pub const IMPORT_ROLL_BYTES: u64 = 32 << 20;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Errors of writing and reading archives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A log error (reading the source store, appending to or sealing the target store).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The archive file could not be opened or read, or the output could not be written.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a ctrace archive (not zstd, not tar, or no ctrace header first).
    #[error("{} is not a ctrace archive ({what})", path.display())]
    NotArchive {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        what: &'static str,
    },
    /// The archive was written in a newer format than this build reads.
    #[error(
        "archive format version {found} is newer than this ctrace reads (up to {supported}); upgrade ctrace"
    )]
    NewerFormat {
        /// The archive's format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The archive ends inside (or just before) a member.
    #[error("archive is truncated: member {member} is incomplete")]
    Truncated {
        /// The member being read.
        member: String,
    },
    /// The compressed stream or the tar structure is damaged while reading a member.
    #[error("archive is damaged in member {member}")]
    Damaged {
        /// The member being read (or the last one read, when a tar header is damaged).
        member: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// A member's SHA-256 is not the one in the manifest.
    #[error(
        "checksum mismatch in member {member}: manifest says {expected}, content is {computed}"
    )]
    ChecksumMismatch {
        /// The member.
        member: String,
        /// SHA-256 in the manifest, lowercase hex.
        expected: String,
        /// SHA-256 of the content, lowercase hex.
        computed: String,
    },
    /// A member listed in the manifest (or a required member) is absent.
    #[error("archive is missing member {member}")]
    MissingMember {
        /// The member.
        member: String,
    },
    /// A member that the manifest does not list, or one out of place.
    #[error("archive has an unexpected member {member}")]
    UnexpectedMember {
        /// The member.
        member: String,
    },
    /// A member's content is not what its kind requires.
    #[error("member {member} is malformed: {what}")]
    BadMember {
        /// The member.
        member: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A member's name is not one a ctrace archive holds: absolute, with `..`, empty or `.`
    /// components, backslashes or NUL, or outside the expected set (issue 14 item 8).
    #[error("archive member name {member:?} is refused: {what}")]
    BadMemberName {
        /// The name as found (in the tar stream or the manifest).
        member: String,
        /// Why it is refused.
        what: &'static str,
    },
    /// A record of a chunk does not decode as a record: importing it would leave the store
    /// holding bytes no reader can use (issue 14 item 3).
    #[error("record {index} of member {member} does not decode as a record")]
    BadRecord {
        /// The chunk member.
        member: String,
        /// The record's index in the chunk, from 0.
        index: usize,
        /// The decoder's error.
        #[source]
        source: crate::model::DecodeError,
    },
    /// A member is larger than [`MAX_MEMBER_BYTES`].
    #[error("member {member} is {bytes} bytes, above the limit of {limit} bytes")]
    MemberTooLarge {
        /// The member.
        member: String,
        /// Its size in the tar header.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

/// The first member: enough to tell a ctrace archive and its format version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Archive format version.
    pub format_version: u32,
    /// Version of the ctrace that wrote it.
    pub ctrace_version: String,
}

/// One member as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Path inside the tar.
    pub name: String,
    /// Size in bytes (uncompressed).
    pub bytes: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Records in the member (record chunks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Offset of the chunk's first record in the exporting store (`None` when the first record
    /// was not yet sealed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_offset: Option<u64>,
    /// Offset of the chunk's last sealed record in the exporting store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_offset: Option<u64>,
    /// Smallest record time in the chunk, ns since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ts: Option<u64>,
    /// Largest record time in the chunk, ns since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ts: Option<u64>,
}

/// What was selected for export, recorded in the manifest for the reader's information.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Only these sessions (`None`: every record, including records without a session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<String>>,
    /// The `--project` filter as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Lower time bound, ns since the epoch, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ns: Option<u64>,
    /// Upper time bound, ns since the epoch, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ns: Option<u64>,
}

/// The manifest member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveManifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Archive format version.
    pub format_version: u32,
    /// Version of the ctrace that wrote it.
    pub ctrace_version: String,
    /// Store record format version of the records (`docs/format.md`).
    pub record_format_version: u32,
    /// When the archive was written, ns since the epoch.
    pub created_ns: u64,
    /// The selection exported.
    pub selection: Selection,
    /// Records in the archive.
    pub records: u64,
    /// Sum of the records' encoded sizes, bytes.
    pub record_bytes: u64,
    /// Records by source.
    pub sources: BTreeMap<String, u64>,
    /// Records whose bytes do not decode (exported raw; they have no time).
    pub undecodable: u64,
    /// Distinct sessions.
    pub sessions: u64,
    /// Smallest exported offset in the exporting store.
    pub first_offset: Option<u64>,
    /// Largest exported offset in the exporting store.
    pub last_offset: Option<u64>,
    /// Smallest record time, ns since the epoch.
    pub min_ts: Option<u64>,
    /// Largest record time, ns since the epoch.
    pub max_ts: Option<u64>,
    /// Every member before the manifest, in archive order.
    pub members: Vec<MemberEntry>,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

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

fn empty_entry() -> MemberEntry {
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
        head: Option<&RecordHead>,
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
                if let Some(session) = &head.session
                    && !self.sessions.contains(session)
                {
                    self.sessions.insert(session.clone());
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

fn json_bytes(value: &impl Serialize, member: &str) -> Result<Vec<u8>, ArchiveError> {
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
    mut keep: impl FnMut(Option<&RecordHead>) -> bool,
    writer: &mut ArchiveWriter<W>,
    mut progress: impl FnMut(u64),
) -> Result<(), ArchiveError> {
    for_each_sealed(snapshot, time, |offset, bytes| {
        let head = RecordHead::decode(bytes).ok();
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
        let head = RecordHead::decode(&bytes).ok();
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
    for segment in snapshot.segments() {
        for (index, meta) in segment.blocks().iter().enumerate() {
            if !time.overlaps(meta.min_ts, meta.max_ts) {
                continue;
            }
            let records = match segment.read_block(index) {
                Ok(records) => records,
                Err(error) => {
                    // Exported without the damaged block; the warning names it.
                    crate::log::read::note_skipped(crate::log::read::Skipped {
                        file: segment.path().to_path_buf(),
                        first: meta.first_offset,
                        end: Offset(meta.first_offset.0 + u64::from(meta.count)),
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            for (i, bytes) in records.iter().enumerate() {
                f(Offset(meta.first_offset.0 + i as u64), bytes)?;
            }
        }
    }
    Ok(())
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
    progress: Box<dyn FnMut(u64)>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

/// Reads every member of the archive at `path` in order and calls `visit(name, content)`.
/// `progress` is told the compressed bytes read so far. Returns the error of the end of the
/// compressed stream (its checksum), if any, for the caller to report after its own checks, so a
/// damaged member is named by its checksum rather than by the stream's.
fn read_members(
    path: &Path,
    progress: Box<dyn FnMut(u64)>,
    mut visit: impl FnMut(&str, &[u8]) -> Result<(), ArchiveError>,
) -> Result<Option<ArchiveError>, ArchiveError> {
    let io = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match file.read(&mut magic[got..]).map_err(io)? {
            0 => break,
            n => got += n,
        }
    }
    if got < 4 || magic != ZSTD_MAGIC {
        return Err(ArchiveError::NotArchive {
            path: path.to_path_buf(),
            what: "not zstd-compressed",
        });
    }
    let file = File::open(path).map_err(io)?;
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, file),
        read: 0,
        progress,
    };
    let decoder = zstd::stream::read::Decoder::new(counting).map_err(io)?;
    let mut archive = tar::Archive::new(decoder);
    let mut last = String::from("(archive start)");
    let mut seen_any = false;
    let entries = archive.entries().map_err(|source| damaged(&last, source))?;
    for entry in entries {
        let mut entry = entry.map_err(|source| {
            if seen_any {
                damaged(&format!("after {last}"), source)
            } else {
                not_tar(path, source)
            }
        })?;
        // The raw header bytes, not `entry.path()`, which normalises `./x` and GNU long names.
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // The first member tells a ctrace archive from a foreign tar (the visitor refuses a
        // foreign one as such); every later one must have a name of the layout.
        if seen_any {
            check_member_name(&name)?;
        }
        let size = entry.size();
        if size > MAX_MEMBER_BYTES {
            return Err(ArchiveError::MemberTooLarge {
                member: name,
                bytes: size,
                limit: MAX_MEMBER_BYTES,
            });
        }
        let mut content = Vec::with_capacity(size as usize);
        if let Err(source) = entry.read_to_end(&mut content) {
            return Err(damaged(&name, source));
        }
        if (content.len() as u64) < size {
            return Err(ArchiveError::Truncated { member: name });
        }
        seen_any = true;
        visit(&name, &content)?;
        last = name;
    }
    // Read the compressed stream to its end so zstd checks its frame checksum, which also
    // covers the tar padding after the last member.
    let mut decoder = archive.into_inner();
    let trailer = std::io::copy(&mut decoder, &mut std::io::sink())
        .err()
        .map(|source| damaged(&format!("after {last}"), source));
    if !seen_any {
        return Err(ArchiveError::NotArchive {
            path: path.to_path_buf(),
            what: "no tar members",
        });
    }
    Ok(trailer)
}

/// The first tar header does not read: damage to a ctrace archive when the zstd stream does not
/// decode or starts with the header member's name, else a foreign file.
fn not_tar(path: &Path, source: std::io::Error) -> ArchiveError {
    if source.kind() == std::io::ErrorKind::UnexpectedEof {
        return ArchiveError::Truncated {
            member: HEADER_MEMBER.to_owned(),
        };
    }
    // A zstd stream that does not decode is a damaged archive (the magic was checked).
    // The whole stream is decoded (this is the error path only) so that its checksum is
    // checked: damage to the header's name is damage, not a foreign file.
    let mut start = Vec::new();
    let ours = File::open(path)
        .and_then(zstd::stream::read::Decoder::new)
        .and_then(|mut decoder| {
            (&mut decoder)
                .take(HEADER_MEMBER.len() as u64)
                .read_to_end(&mut start)?;
            std::io::copy(&mut decoder, &mut std::io::sink())
        })
        .map_or(true, |_| start == HEADER_MEMBER.as_bytes());
    if ours {
        ArchiveError::Damaged {
            member: HEADER_MEMBER.to_owned(),
            source,
        }
    } else {
        ArchiveError::NotArchive {
            path: path.to_path_buf(),
            what: "not a tar stream",
        }
    }
}

fn damaged(member: &str, source: std::io::Error) -> ArchiveError {
    if source.kind() == std::io::ErrorKind::UnexpectedEof {
        ArchiveError::Truncated {
            member: member.to_owned(),
        }
    } else {
        ArchiveError::Damaged {
            member: member.to_owned(),
            source,
        }
    }
}

/// Checks a member name: exactly [`HEADER_MEMBER`], [`MANIFEST_MEMBER`],
/// [`MANIFEST_SUM_MEMBER`], or `records/<8+ digits>.bin` as [`ArchiveWriter`] writes them.
/// Anything else (absolute paths, `..`, `.` or empty components, backslashes, NUL, other
/// directories) is refused before its content is looked at.
///
/// # Errors
/// [`ArchiveError::BadMemberName`] saying why.
pub fn check_member_name(name: &str) -> Result<(), ArchiveError> {
    let refuse = |what| {
        Err(ArchiveError::BadMemberName {
            member: name.to_owned(),
            what,
        })
    };
    if name.is_empty() {
        return refuse("empty");
    }
    if name.contains('\0') {
        return refuse("contains NUL");
    }
    if name.contains('\\') {
        return refuse("contains a backslash");
    }
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return refuse("empty, `.` or `..` path component");
    }
    if [HEADER_MEMBER, MANIFEST_MEMBER, MANIFEST_SUM_MEMBER].contains(&name) {
        return Ok(());
    }
    let chunk = name
        .strip_prefix(CHUNK_DIR)
        .and_then(|rest| rest.strip_suffix(".bin"));
    match chunk {
        Some(digits) if digits.len() >= 8 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => refuse("not a ctrace archive member (header, manifest or records/NNNNNNNN.bin)"),
    }
}

/// Splits a record chunk into its records.
///
/// # Errors
/// [`ArchiveError::BadMember`] when a length runs past the end of the chunk.
pub fn split_chunk<'a>(member: &str, mut chunk: &'a [u8]) -> Result<Vec<&'a [u8]>, ArchiveError> {
    let mut records = Vec::new();
    while !chunk.is_empty() {
        let bad = |what| ArchiveError::BadMember {
            member: member.to_owned(),
            what,
        };
        let Some((len, rest)) = chunk.split_first_chunk::<4>() else {
            return Err(bad("record length cut short"));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(bad("record length past the end of the chunk"));
        }
        let (record, rest) = rest.split_at(len);
        records.push(record);
        chunk = rest;
    }
    Ok(records)
}

/// Checks that `header` names a format this build reads.
fn check_header(path: &Path, content: &[u8]) -> Result<ArchiveHeader, ArchiveError> {
    let header: ArchiveHeader =
        serde_json::from_slice(content).map_err(|_| ArchiveError::NotArchive {
            path: path.to_path_buf(),
            what: "first member is not a ctrace archive header",
        })?;
    if header.format != FORMAT_NAME {
        return Err(ArchiveError::NotArchive {
            path: path.to_path_buf(),
            what: "first member names another format",
        });
    }
    if header.format_version > FORMAT_VERSION {
        return Err(ArchiveError::NewerFormat {
            found: header.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(header)
}

/// Reads the whole archive at `path` and checks it: the header first (format and version), every
/// member's SHA-256 against the manifest, the manifest's own SHA-256, the member list, and the
/// record counts. Returns the manifest. `progress` is told the compressed bytes read so far.
///
/// # Errors
/// [`ArchiveError::NotArchive`], [`ArchiveError::NewerFormat`], [`ArchiveError::Truncated`],
/// [`ArchiveError::Damaged`], [`ArchiveError::ChecksumMismatch`],
/// [`ArchiveError::MissingMember`], [`ArchiveError::UnexpectedMember`],
/// [`ArchiveError::BadMember`], each naming the member; [`ArchiveError::Io`].
pub fn verify(path: &Path, progress: Box<dyn FnMut(u64)>) -> Result<ArchiveManifest, ArchiveError> {
    struct Seen {
        name: String,
        bytes: u64,
        sha256: String,
        records: Option<u64>,
        framing: Option<ArchiveError>,
    }
    let mut seen: Vec<Seen> = Vec::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut manifest_sum: Option<Vec<u8>> = None;
    // A newer format is refused once the stream is known to be intact (so damage that happens
    // to turn the version digit into a larger one is reported as damage); a header that does not
    // parse is reported after the checksums have named the damaged member.
    let mut newer: Option<ArchiveError> = None;
    let mut header_error: Option<ArchiveError> = None;
    let trailer = read_members(path, progress, |name, content| {
        if newer.is_some() {
            return Ok(());
        }
        if seen.is_empty() && manifest_bytes.is_none() {
            if name != HEADER_MEMBER {
                return Err(ArchiveError::NotArchive {
                    path: path.to_path_buf(),
                    what: "first member is not a ctrace archive header",
                });
            }
            match check_header(path, content) {
                Ok(_) => {}
                Err(e @ ArchiveError::NewerFormat { .. }) => {
                    newer = Some(e);
                    return Ok(());
                }
                Err(e) => header_error = Some(e),
            }
        } else if manifest_sum.is_some() {
            return Err(ArchiveError::UnexpectedMember {
                member: name.to_owned(),
            });
        }
        match name {
            MANIFEST_MEMBER if manifest_bytes.is_none() => {
                manifest_bytes = Some(content.to_vec());
                return Ok(());
            }
            MANIFEST_SUM_MEMBER if manifest_bytes.is_some() => {
                manifest_sum = Some(content.to_vec());
                return Ok(());
            }
            _ => {}
        }
        if manifest_bytes.is_some() {
            return Err(ArchiveError::UnexpectedMember {
                member: name.to_owned(),
            });
        }
        // A framing error is reported after the checksums: a damaged chunk is a checksum
        // mismatch first.
        let (records, framing) = if name.starts_with(CHUNK_DIR) {
            match split_chunk(name, content) {
                Ok(records) => {
                    // Every record must decode before the archive is accepted; reported
                    // after the checksums, like a framing error.
                    let undecodable = records.iter().enumerate().find_map(|(index, bytes)| {
                        Record::decode(bytes)
                            .err()
                            .map(|source| ArchiveError::BadRecord {
                                member: name.to_owned(),
                                index,
                                source,
                            })
                    });
                    (Some(records.len() as u64), undecodable)
                }
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        seen.push(Seen {
            name: name.to_owned(),
            bytes: content.len() as u64,
            sha256: sha256_hex(content),
            records,
            framing,
        });
        Ok(())
    })?;
    if let Some(newer) = newer {
        return Err(trailer.unwrap_or(newer));
    }
    let Some(manifest_bytes) = manifest_bytes else {
        return Err(ArchiveError::MissingMember {
            member: MANIFEST_MEMBER.to_owned(),
        });
    };
    let Some(manifest_sum) = manifest_sum else {
        return Err(ArchiveError::MissingMember {
            member: MANIFEST_SUM_MEMBER.to_owned(),
        });
    };
    let computed = sha256_hex(&manifest_bytes);
    let expected = String::from_utf8_lossy(&manifest_sum).trim().to_owned();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ArchiveError::BadMember {
            member: MANIFEST_SUM_MEMBER.to_owned(),
            what: "not a SHA-256 in hex",
        });
    }
    if computed != expected {
        return Err(ArchiveError::ChecksumMismatch {
            member: MANIFEST_MEMBER.to_owned(),
            expected,
            computed,
        });
    }
    let manifest: ArchiveManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|_| ArchiveError::BadMember {
            member: MANIFEST_MEMBER.to_owned(),
            what: "not a manifest",
        })?;
    if manifest.format_version > FORMAT_VERSION {
        return Err(ArchiveError::NewerFormat {
            found: manifest.format_version,
            supported: FORMAT_VERSION,
        });
    }
    for (i, entry) in manifest.members.iter().enumerate() {
        check_member_name(&entry.name)?;
        let Some(member) = seen.get_mut(i) else {
            return Err(ArchiveError::MissingMember {
                member: entry.name.clone(),
            });
        };
        if member.name != entry.name {
            return Err(ArchiveError::UnexpectedMember {
                member: member.name.clone(),
            });
        }
        if member.sha256 != entry.sha256 || member.bytes != entry.bytes {
            return Err(ArchiveError::ChecksumMismatch {
                member: entry.name.clone(),
                expected: entry.sha256.clone(),
                computed: member.sha256.clone(),
            });
        }
        if let Some(error) = member.framing.take() {
            return Err(error);
        }
        if member.records != entry.records {
            return Err(ArchiveError::BadMember {
                member: entry.name.clone(),
                what: "record count differs from the manifest",
            });
        }
    }
    if let Some(extra) = seen.get(manifest.members.len()) {
        return Err(ArchiveError::UnexpectedMember {
            member: extra.name.clone(),
        });
    }
    if let Some(error) = header_error.or(trailer) {
        return Err(error);
    }
    let total: u64 = seen.iter().filter_map(|m| m.records).sum();
    if total != manifest.records {
        return Err(ArchiveError::BadMember {
            member: MANIFEST_MEMBER.to_owned(),
            what: "record total differs from the chunks",
        });
    }
    Ok(manifest)
}

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

/// Adds the records of a verified archive (see [`verify`]) to the store held by `lock`, in archive
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
/// changed since [`verify`]; chunks before it have been added); reading errors as [`verify`];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_split_round_trip_and_bounds() {
        let mut chunk = Vec::new();
        for record in [&b"abc"[..], b"", b"xyzw"] {
            chunk.extend_from_slice(&(record.len() as u32).to_le_bytes());
            chunk.extend_from_slice(record);
        }
        let records = split_chunk("records/x", &chunk).unwrap();
        assert_eq!(records, vec![&b"abc"[..], b"", b"xyzw"]);
        for cut in 1..chunk.len() {
            // Every strict prefix that does not end on a record boundary is refused.
            let boundary = [7usize, 11].contains(&cut);
            assert_eq!(
                split_chunk("records/x", &chunk[..cut]).is_ok(),
                boundary,
                "cut at {cut}"
            );
        }
        let mut huge = chunk.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            split_chunk("records/x", &huge),
            Err(ArchiveError::BadMember { .. })
        ));
    }

    #[test]
    fn hex_is_lowercase_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
