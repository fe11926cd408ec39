//! File-system helpers every layer uses: atomic replacement of a file, durable directory
//! entries, and removal that does not mind a file already gone.
//!
//! Atomic replacement is the usual POSIX protocol: write a temp file in the target's directory,
//! `fsync` it, `rename` it over the target, `fsync` the directory. A crash at any step leaves
//! either the old file or the new one, never a mix; a stray `*.tmp` is removed by the owner's
//! recovery (the store's `StoreLock::recover`).

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The fault injection points (`crate::fault`) of one kind of atomic replacement, so the fault
/// tests can fail each step of, e.g., a MANIFEST commit separately.
#[derive(Debug, Clone, Copy)]
pub struct ReplacePoints {
    /// Writing the temp file's bytes (a short write is injectable here).
    pub write: &'static str,
    /// `fsync` of the temp file.
    pub sync: &'static str,
    /// The `rename` over the target.
    pub rename: &'static str,
    /// `fsync` of the directory after the rename.
    pub dir_sync: &'static str,
}

/// How [`replace_with`] creates the new file.
#[derive(Debug, Clone, Default)]
pub struct Replace {
    /// Temp file name prefix (`"MANIFEST."` → `MANIFEST.XXXXXX.tmp`); empty for `.tmp…`.
    pub prefix: &'static str,
    /// Permissions given to the new file before it is renamed; `None` keeps the temp file's
    /// 0600.
    pub permissions: Option<Permissions>,
    /// Fault points of the steps; `None` for files the fault tests do not cover.
    pub points: Option<ReplacePoints>,
    /// Whether a failed directory `fsync` after the rename is ignored (for files outside the
    /// store, on file systems that refuse to sync a directory).
    pub dir_sync_best_effort: bool,
}

/// Replaces `path` atomically and durably with what `write` writes (through a 1 MiB buffer),
/// and returns `write`'s value and the new file's size in bytes.
///
/// # Errors
/// The first failing step's I/O error, from `write` included. The target is unchanged unless
/// the error comes from the directory sync after the rename (the new file is then in place
/// but its directory entry may not be durable yet).
pub fn replace_with<T>(
    path: &Path,
    options: &Replace,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<T>,
) -> io::Result<(T, u64)> {
    let dir = parent_dir(path);
    let temp = tempfile::Builder::new()
        .prefix(options.prefix)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    let point = |name: Option<&'static str>| name.map_or(Ok(()), crate::fault::point);
    let value = {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        let value = write(&mut out)?;
        out.flush()?;
        value
    };
    if let Some(permissions) = &options.permissions {
        temp.as_file().set_permissions(permissions.clone())?;
    }
    point(options.points.map(|p| p.sync))?;
    temp.as_file().sync_all()?;
    let bytes = temp.as_file().metadata()?.len();
    point(options.points.map(|p| p.rename))?;
    temp.persist(path).map_err(|e| e.error)?;
    let synced = point(options.points.map(|p| p.dir_sync)).and_then(|()| sync_dir(dir));
    match synced {
        Err(_) if options.dir_sync_best_effort => {}
        other => other?,
    }
    Ok((value, bytes))
}

/// Replaces `path` atomically and durably with `bytes` ([`replace_with`]); the `write` fault
/// point, when given, can cut the write short.
///
/// # Errors
/// As [`replace_with`].
pub fn write_atomic(path: &Path, bytes: &[u8], options: &Replace) -> io::Result<()> {
    let write_point = options.points.map(|p| p.write);
    replace_with(path, options, |out| match write_point {
        Some(name) => crate::fault::write_all(name, out, bytes),
        None => out.write_all(bytes),
    })
    .map(|_| ())
}

/// `fsync`s a directory so that renames, creations and unlinks inside it are durable
/// (fault point `dir-sync`).
///
/// # Errors
/// Opening or syncing the directory.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::fault::point("dir-sync")?;
    File::open(dir)?.sync_all()
}

/// Removes a file; `Ok(false)` when it did not exist.
///
/// # Errors
/// Any other I/O error of `unlink`.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The directory a file lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_old_file_when_the_writer_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"old").unwrap();
        let failed = replace_with(&path, &Replace::default(), |out| {
            out.write_all(b"half")?;
            Err::<(), _>(io::Error::other("writer failed"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temp file is removed");
        write_atomic(&path, b"new", &Replace::default()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn replace_sets_permissions_and_reports_the_size() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let options = Replace {
            permissions: Some(Permissions::from_mode(0o640)),
            ..Replace::default()
        };
        let ((), bytes) = replace_with(&path, &options, |out| out.write_all(b"{}\n")).unwrap();
        assert_eq!(bytes, 3);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn remove_if_exists_says_whether_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"x").unwrap();
        assert!(remove_if_exists(&path).unwrap());
        assert!(!remove_if_exists(&path).unwrap());
        assert_eq!(parent_dir(Path::new("bare")), Path::new("."));
    }
}
