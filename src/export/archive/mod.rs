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

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::log::LogError;

mod import;
mod read;
mod verify;
mod write;

pub use import::{ImportSummary, import};
pub use read::{check_member_name, split_chunk};
pub use verify::verify;
pub use write::{ArchiveWriter, export, for_each_sealed};

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
pub(crate) const ZSTD_LEVEL: i32 = 3;
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
pub(crate) struct ArchiveHeader {
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
