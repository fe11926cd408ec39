//! The inbox: multi-writer write-ahead files of framed records, not yet sealed.
//!
//! - `inbox/active.wal` is shared by every `ctrace hook` process: each opens it with
//!   `O_APPEND`, takes a shared `flock`, checks that the inode still matches the path (the
//!   sealer renames the file aside before sealing it), writes the whole record (all of its
//!   frames) with one `write()`, optionally `fdatasync`s, and closes.
//! - `inbox/<producer>-*.wal` belong to one long-running producer (bulk ingest, PTY recorder),
//!   which holds an exclusive `flock` on it while it writes; the sealer skips locked files.
//! - `spool/*.wal` hold payloads that could not be appended to the inbox; same framing.
//!
//! Every file here is created 0600 and opened with `O_NOFOLLOW`; the inbox directory is checked
//! (a real directory, ours, not writable by others) before `active.wal` is opened, so a planted
//! symlink never makes ctrace write outside the store ([`super::private`]).
//!
//! Invariant: an append that returned `Ok` is in a file the sealer will find, exactly once.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::LogError;
use super::private::{self, DirRule};
use crate::config::Durability;
use crate::segments::frame;

/// Name of the shared inbox file.
pub(crate) const ACTIVE_FILE: &str = "active.wal";
/// Extension of inbox and spool files.
pub(crate) const WAL_EXTENSION: &str = "wal";

/// Creates the store directory `dir` and its parents with mode 0700 if missing, and checks it
/// (see [`private::ensure_store_dir`]).
///
/// # Errors
/// [`LogError::Io`]; [`LogError::Unsafe`] when it is a symlink, not a directory or not ours.
pub fn create_dir_private(dir: &Path) -> Result<(), LogError> {
    private::ensure_store_dir(dir)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(private::FILE_MODE)
        .custom_flags(private::NOFOLLOW)
        .open(path)
}

/// Appends one encoded record to `inbox/active.wal` as described in the module docs.
///
/// # Errors
/// [`LogError::Io`] when the file cannot be opened, locked or written (disk full, read-only
/// store), after which the record is not in the file and the caller (the hook) spools it
/// elsewhere; [`LogError::Poisoned`] when `fdatasync` fails, after which the record is in the
/// file (written, not known to be durable) and must not be spooled again.
pub fn append_shared(
    inbox_dir: &Path,
    record: &[u8],
    frame_limit: u32,
    durability: Durability,
) -> Result<(), LogError> {
    let mut frames = Vec::with_capacity(record.len() + 64);
    frame::encode_record(&mut frames, record, frame_limit);
    append_shared_frames(inbox_dir, &frames, durability)
}

/// [`append_shared`] for records already framed ([`frame::encode_record`] of each, in
/// order): one write and one sync for all of them (a batch of OTLP items). The errors are
/// those of [`append_shared`], for the batch as a whole.
///
/// # Errors
/// As [`append_shared`].
pub fn append_shared_frames(
    inbox_dir: &Path,
    frames: &[u8],
    durability: Durability,
) -> Result<(), LogError> {
    let path = inbox_dir.join(ACTIVE_FILE);
    let io = |source| private::io_error(&path, source);
    if !private::check_dir(inbox_dir, DirRule::OwnedPrivate)? {
        create_dir_private(inbox_dir)?;
    }
    for attempt in 0.. {
        let mut file = match open_append(&path) {
            Ok(file) => file,
            Err(e) => return Err(io(e)),
        };
        file.lock_shared().map_err(io)?;
        let held = file.metadata().map_err(io)?;
        match std::fs::metadata(&path) {
            Ok(current) if current.ino() == held.ino() && current.dev() == held.dev() => {}
            // The sealer renamed the file aside after we opened it: start over on the new one.
            _ if attempt < 1000 => continue,
            _ => {
                return Err(io(std::io::Error::other(
                    "inbox file keeps being replaced while appending",
                )));
            }
        }
        crate::fault::write_all("inbox-append-write", &mut file, frames).map_err(io)?;
        if durability == Durability::Fsync {
            (crate::fault::point("inbox-append-sync").and_then(|()| file.sync_data())).map_err(
                |source| LogError::Poisoned {
                    path: path.clone(),
                    source,
                },
            )?;
        }
        return Ok(());
    }
    Err(io(std::io::Error::other("unreachable append loop end")))
}

/// An inbox file owned by one producer, exclusively locked while open.
#[derive(Debug)]
pub struct ProducerInbox {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    frame_limit: u32,
    durability: Durability,
    written_bytes: u64,
}

impl ProducerInbox {
    /// Creates `inbox/<prefix>-<pid>-<nanos>.wal` and locks it exclusively.
    ///
    /// # Errors
    /// [`LogError::Io`].
    pub fn create(
        inbox_dir: &Path,
        prefix: &str,
        frame_limit: u32,
        durability: Durability,
    ) -> Result<Self, LogError> {
        create_dir_private(inbox_dir)?;
        private::check_dir(inbox_dir, DirRule::OwnedPrivate)?;
        let nanos = crate::now_ns();
        let path = inbox_dir.join(format!(
            "{prefix}-{}-{nanos}.{WAL_EXTENSION}",
            std::process::id()
        ));
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(private::FILE_MODE)
            .custom_flags(private::NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(Self {
            path,
            file,
            buffer: Vec::with_capacity(1 << 20),
            frame_limit,
            durability,
            written_bytes: 0,
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written to the file plus bytes buffered.
    pub fn len_bytes(&self) -> u64 {
        self.written_bytes + self.buffer.len() as u64
    }

    /// Buffers one encoded record; writes when the buffer passes 1 MiB.
    ///
    /// # Errors
    /// As [`ProducerInbox::flush`].
    pub fn append(&mut self, record: &[u8]) -> Result<(), LogError> {
        frame::encode_record(&mut self.buffer, record, self.frame_limit);
        if self.buffer.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered records (whole records per `write()`), and syncs per the durability
    /// setting.
    ///
    /// # Errors
    /// [`LogError::Io`]; [`LogError::Poisoned`] when the sync fails.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        crate::fault::write_all("inbox-producer-write", &mut self.file, &self.buffer).map_err(
            |source| LogError::Io {
                path: self.path.clone(),
                source,
            },
        )?;
        self.written_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        if self.durability == Durability::Fsync {
            (crate::fault::point("inbox-producer-sync").and_then(|()| self.file.sync_data()))
                .map_err(|source| LogError::Poisoned {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Flushes and closes the file, releasing the lock so a sealer may take it.
    ///
    /// # Errors
    /// As [`ProducerInbox::flush`].
    pub fn close(mut self) -> Result<PathBuf, LogError> {
        self.flush()?;
        Ok(self.path)
    }
}

/// Writes `record` as a standalone spool file in `dir`, durably. The caller has created and
/// checked `dir` ([`private::ensure_store_dir`] for `<store>/spool`,
/// [`private::ensure_spool_dir`] for the fallback spool). The file exists only if its content
/// was written and synced: on any failure it is removed, so a full disk leaves no empty
/// `spool-*.wal` behind.
///
/// # Errors
/// [`LogError::Io`].
pub fn spool(dir: &Path, record: &[u8], frame_limit: u32) -> Result<PathBuf, LogError> {
    let mut frames = Vec::with_capacity(record.len() + 64);
    frame::encode_record(&mut frames, record, frame_limit);
    spool_frames(dir, &frames)
}

/// [`spool`] for records already framed, all in one spool file.
///
/// # Errors
/// [`LogError::Io`].
pub fn spool_frames(dir: &Path, frames: &[u8]) -> Result<PathBuf, LogError> {
    let path = dir.join(format!(
        "spool-{}-{}.{WAL_EXTENSION}",
        std::process::id(),
        crate::now_ns()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(private::FILE_MODE)
        .custom_flags(private::NOFOLLOW)
        .open(&path)
        .map_err(|source| private::io_error(&path, source))?;
    let written = crate::fault::write_all("spool-write", &mut file, frames)
        .and_then(|()| crate::fault::point("spool-sync"))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(LogError::Io { path, source });
    }
    Ok(path)
}

/// The `.wal` files of the spool directory `dir` that may be sealed, as (name, path): regular
/// files owned by the directory's owner (the caller has checked the directory). Anything else (a symlink, a FIFO, another user's file)
/// is logged and skipped, never read. Empty when `dir` does not exist.
///
/// # Errors
/// [`LogError::Io`] when the directory cannot be listed.
pub fn spool_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, LogError> {
    let mut files = Vec::new();
    let owner = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta.uid(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(source) => {
            return Err(LogError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for name in super::list_dir(dir)? {
        if !name.ends_with(".wal") {
            continue;
        }
        let path = dir.join(&name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Io { path, source }),
        };
        match private::judge_spool_file(&meta, owner) {
            Ok(()) => files.push((name, path)),
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "spool file skipped");
            }
        }
    }
    Ok(files)
}

/// Opens an inbox or spool file for reading without following a symlink.
///
/// # Errors
/// The I/O error (`ELOOP` for a symlink).
pub(crate) fn open_read(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(private::NOFOLLOW)
        .open(path)
}
