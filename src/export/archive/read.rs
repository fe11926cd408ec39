//! Reading an archive's members: the tar stream under zstd, member names, chunk framing
//! and the header member, with errors that name the damaged member.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{
    ArchiveError, ArchiveHeader, CHUNK_DIR, FORMAT_NAME, FORMAT_VERSION, HEADER_MEMBER,
    MANIFEST_MEMBER, MANIFEST_SUM_MEMBER, MAX_MEMBER_BYTES, ZSTD_MAGIC,
};

/// A reader that counts the bytes read through it.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) read: u64,
    pub(super) progress: Box<dyn FnMut(u64)>,
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
pub(super) fn read_members(
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
pub(super) fn not_tar(path: &Path, source: std::io::Error) -> ArchiveError {
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

pub(super) fn damaged(member: &str, source: std::io::Error) -> ArchiveError {
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
/// [`MANIFEST_SUM_MEMBER`], or `records/<8+ digits>.bin` as [`ArchiveWriter`](super::ArchiveWriter) writes them.
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
pub(super) fn check_header(path: &Path, content: &[u8]) -> Result<ArchiveHeader, ArchiveError> {
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
