//! What bulk ingest needs to know of a file before reading it: that it is a regular file,
//! its kind (from its extension and first bytes), the session its path names, and the first
//! timestamp in it (the time of lines that carry none).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{FileKind, LINE_BUFFER_BYTES};

/// Opens `path` for reading if it is a regular file, with its metadata. `O_NONBLOCK`: a file
/// swapped for a FIFO after the walk must not block the open.
pub(super) fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "not a regular file ({})",
            special_kind(&meta.file_type())
        )));
    }
    Ok((file, meta))
}

/// Length of a `"timestamp":"` key plus the most bytes its value is looked for in.
const TIMESTAMP_WINDOW_BYTES: usize = TIMESTAMP_KEY.len() + 40;
const TIMESTAMP_KEY: &[u8] = b"\"timestamp\":\"";

/// The first `"timestamp":"..."` value that parses in `file` from byte `from` on, in ns, read
/// 1 MiB at a time (positioned reads: the file's offset is left alone).
pub(super) fn first_timestamp_from(
    file: &std::fs::File,
    from: u64,
) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf: Vec<u8> = Vec::new();
    let mut position = from;
    loop {
        let old = buf.len();
        buf.resize(old + LINE_BUFFER_BYTES, 0);
        let mut filled = old;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], position) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    position += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let eof = filled < buf.len();
        buf.truncate(filled);
        // A key that starts this close to the end is looked at with the next bytes.
        let safe = if eof {
            buf.len()
        } else {
            buf.len().saturating_sub(TIMESTAMP_WINDOW_BYTES)
        };
        if let Some(ts) = first_timestamp(&buf, safe) {
            return Ok(Some(ts));
        }
        if eof {
            return Ok(None);
        }
        buf.drain(..safe);
    }
}

/// The first `"timestamp":"..."` value in `bytes` whose key starts before `before` and that
/// parses, in ns.
fn first_timestamp(bytes: &[u8], before: usize) -> Option<u64> {
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&bytes[from..], TIMESTAMP_KEY) {
        if from + found >= before {
            return None;
        }
        let start = from + found + TIMESTAMP_KEY.len();
        let end = bytes[start..]
            .iter()
            .take(40)
            .position(|&b| b == b'"')
            .map(|e| start + e);
        if let Some(end) = end
            && let Some(ts) = std::str::from_utf8(&bytes[start..end])
                .ok()
                .and_then(crate::claude::parse_timestamp)
        {
            return Some(ts);
        }
        from = start;
    }
    None
}

/// Fills `buf` from the start of `file` (fewer bytes at its end), then rewinds the file.
pub(super) fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(filled)
}

/// What kind of special file `file_type` is, for messages.
pub(super) fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

/// The extension of `path`, in lower case.
pub(super) fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// The canonical form of `path` (`path` itself when it cannot be resolved).
pub(super) fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The session a transcript file belongs to when its lines do not say: the session directory
/// for `<session>/subagents/agent-*.jsonl`, else the file stem.
pub fn session_from_path(path: &Path) -> Option<String> {
    let parent = path.parent()?;
    if parent.file_name().and_then(|n| n.to_str()) == Some("subagents") {
        return parent
            .parent()?
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned);
    }
    path.file_stem().and_then(|s| s.to_str()).map(str::to_owned)
}

/// Whether a JSON value is a hook payload: an object with `hook_event_name` or `session_id`.
fn looks_like_payload(value: &serde_json::Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.contains_key("hook_event_name") || map.contains_key("session_id"))
}

/// Decides a file's kind from its extension and first bytes. `None`: not something to ingest.
pub(super) fn detect(path: &Path, head: &[u8], named: bool) -> Option<FileKind> {
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if extension(path).as_deref() == Some("json") {
        return match first {
            Some(b'[') => {
                let split = crate::ingest::json_array::split_array(head);
                let payload = split.elements.first().is_some_and(|&(s, e)| {
                    serde_json::from_slice::<serde_json::Value>(&head[s..e])
                        .map(|v| looks_like_payload(&v))
                        .unwrap_or(true)
                });
                (named || payload).then_some(FileKind::HookArray)
            }
            Some(b'{') => {
                let payload = serde_json::from_slice::<serde_json::Value>(head)
                    .map(|v| looks_like_payload(&v))
                    .unwrap_or(head.windows(10).any(|w| w == b"session_id"));
                (named || payload).then_some(FileKind::HookObject)
            }
            _ => named.then_some(FileKind::HookObject),
        };
    }
    let mut hooks = 0;
    let mut lines = 0;
    for line in head.split(|&b| b == b'\n').take(20) {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) {
            lines += 1;
            if value
                .as_object()
                .is_some_and(|m| m.contains_key("hook_event_name"))
            {
                hooks += 1;
            }
        }
    }
    Some(if lines > 0 && hooks * 2 > lines {
        FileKind::HookLines
    } else {
        FileKind::TranscriptLines
    })
}
