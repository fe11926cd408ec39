//! [`verify`]: the whole-archive check that comes before any import.

use std::path::Path;

use super::read::{check_header, read_members};
use super::{
    ArchiveError, ArchiveManifest, CHUNK_DIR, FORMAT_VERSION, HEADER_MEMBER, MANIFEST_MEMBER,
    MANIFEST_SUM_MEMBER, check_member_name, sha256_hex, split_chunk,
};
use crate::model::Record;

/// A member as read: its name, size, SHA-256 and, for a chunk, its record count and the
/// framing or decoding error to report once the checksums are known to match.
struct SeenMember {
    name: String,
    bytes: u64,
    sha256: String,
    records: Option<u64>,
    framing: Option<ArchiveError>,
}

impl SeenMember {
    /// What `verify` keeps of member `name` with bytes `content`.
    fn new(name: &str, content: &[u8]) -> Self {
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
        Self {
            name: name.to_owned(),
            bytes: content.len() as u64,
            sha256: sha256_hex(content),
            records,
            framing,
        }
    }
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
    let mut seen: Vec<SeenMember> = Vec::new();
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
        seen.push(SeenMember::new(name, content));
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
    let manifest = parse_manifest(&manifest_bytes, &manifest_sum)?;
    check_members(&manifest, &mut seen)?;
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

/// Checks `manifest.json` against `manifest.json.sha256` and parses it.
///
/// # Errors
/// [`ArchiveError::BadMember`], [`ArchiveError::ChecksumMismatch`],
/// [`ArchiveError::NewerFormat`].
fn parse_manifest(
    manifest_bytes: &[u8],
    manifest_sum: &[u8],
) -> Result<ArchiveManifest, ArchiveError> {
    let computed = sha256_hex(manifest_bytes);
    let expected = String::from_utf8_lossy(manifest_sum).trim().to_owned();
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
        serde_json::from_slice(manifest_bytes).map_err(|_| ArchiveError::BadMember {
            member: MANIFEST_MEMBER.to_owned(),
            what: "not a manifest",
        })?;
    if manifest.format_version > FORMAT_VERSION {
        return Err(ArchiveError::NewerFormat {
            found: manifest.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(manifest)
}

/// Checks the members read against the manifest's list, in order: names, sizes, SHA-256,
/// then framing and record counts.
///
/// # Errors
/// [`ArchiveError::MissingMember`], [`ArchiveError::UnexpectedMember`],
/// [`ArchiveError::ChecksumMismatch`], [`ArchiveError::BadMember`] and the member's framing
/// error.
fn check_members(manifest: &ArchiveManifest, seen: &mut [SeenMember]) -> Result<(), ArchiveError> {
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
    Ok(())
}
