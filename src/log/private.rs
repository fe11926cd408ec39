//! Private files and directories: every file ctrace creates is user-only (0600), every
//! directory 0700; store files are opened without following symlinks; directories ctrace takes
//! records from are checked before use (`docs/security.md`, "Files and directories").
//!
//! Invariants:
//! - A directory ctrace writes records to or seals records from is a real directory (not a
//!   symlink), owned by the effective user; spool directories outside the store are also not
//!   writable by group or others. A directory that fails the check is refused (writers) or
//!   skipped with a warning (readers, sealer), never used.
//! - A file found in a spool directory is sealed only if it is a regular file owned by the
//!   effective user, opened with `O_NOFOLLOW`.
//! - Store directories owned by the effective user are tightened to 0700 when a command opens
//!   the store (a store made by hand with mode 0755 is not left readable by others).

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::LogError;

/// `open(2)` flag that makes opening a symlink fail (`ELOOP`); pass to
/// [`std::os::unix::fs::OpenOptionsExt::custom_flags`]. Costs nothing on the hook path.
pub const NOFOLLOW: i32 = libc::O_NOFOLLOW;

/// Mode of every directory ctrace creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file ctrace creates.
pub(crate) const FILE_MODE: u32 = 0o600;

/// The effective user id of this process.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why a file or directory was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsafe {
    /// It is a symbolic link.
    Symlink,
    /// A directory was expected.
    NotDirectory,
    /// A regular file was expected.
    NotRegularFile,
    /// It belongs to another user.
    Owner {
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        expected: u32,
    },
    /// Group or others may write to it (permission bits shown).
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink => write!(f, "it is a symbolic link"),
            Self::NotDirectory => write!(f, "it is not a directory"),
            Self::NotRegularFile => write!(f, "it is not a regular file"),
            Self::Owner { owner, expected } => {
                write!(f, "it belongs to uid {owner}, not to uid {expected}")
            }
            Self::Writable { mode } => {
                write!(f, "group or others may write to it (mode {mode:04o})")
            }
        }
    }
}

/// How strictly [`check_dir`] judges a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirRule {
    /// Not a symlink, a directory (readers of a store, which may be another user's).
    Real,
    /// Not a symlink, a directory, owned by the effective user.
    Owned,
    /// As `Owned`, and not writable by group or others (spool directories in `$TMPDIR`).
    OwnedPrivate,
}

fn lstat(path: &Path) -> Result<Option<Metadata>, LogError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn judge_dir(meta: &Metadata, rule: DirRule) -> Result<(), Unsafe> {
    if meta.file_type().is_symlink() {
        return Err(Unsafe::Symlink);
    }
    if !meta.is_dir() {
        return Err(Unsafe::NotDirectory);
    }
    if rule == DirRule::Real {
        return Ok(());
    }
    let expected = euid();
    if meta.uid() != expected {
        return Err(Unsafe::Owner {
            owner: meta.uid(),
            expected,
        });
    }
    let mode = meta.mode() & 0o7777;
    if rule == DirRule::OwnedPrivate && mode & 0o022 != 0 {
        return Err(Unsafe::Writable { mode });
    }
    Ok(())
}

/// Whether an entry found in a spool directory may be read or sealed: a regular file (not a
/// symlink) owned by `expected` (the owner of the checked spool directory: this user for the
/// fallback spool, the store's owner for `<store>/spool`).
///
/// # Errors
/// The reason it may not.
pub(crate) fn judge_spool_file(meta: &Metadata, expected: u32) -> Result<(), Unsafe> {
    if meta.file_type().is_symlink() {
        return Err(Unsafe::Symlink);
    }
    if !meta.is_file() {
        return Err(Unsafe::NotRegularFile);
    }
    if meta.uid() != expected {
        return Err(Unsafe::Owner {
            owner: meta.uid(),
            expected,
        });
    }
    Ok(())
}

/// Checks an existing directory; `Ok(false)` when it does not exist.
///
/// # Errors
/// [`LogError::Unsafe`] naming the directory and the reason; [`LogError::Io`] when it cannot
/// be examined.
pub fn check_dir(path: &Path, rule: DirRule) -> Result<bool, LogError> {
    match lstat(path)? {
        None => Ok(false),
        Some(meta) => judge_dir(&meta, rule)
            .map(|()| true)
            .map_err(|reason| unsafe_path(path, reason)),
    }
}

/// The error for an I/O failure on `path`: a file opened with [`NOFOLLOW`] that is a symlink
/// (`ELOOP`) is [`LogError::Unsafe`], anything else [`LogError::Io`].
pub fn io_error(path: &Path, source: std::io::Error) -> LogError {
    if source.raw_os_error() == Some(libc::ELOOP) {
        unsafe_path(path, Unsafe::Symlink)
    } else {
        LogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn unsafe_path(path: &Path, reason: Unsafe) -> LogError {
    LogError::Unsafe {
        path: path.to_path_buf(),
        reason,
    }
}

/// Creates the store directory `dir` (and missing parents) with mode 0700, then checks it
/// ([`DirRule::Owned`]) and tightens it to 0700 if group or others have any access. A
/// directory that cannot be tightened (read-only file system) is left as it is.
///
/// # Errors
/// [`LogError::Io`] when it cannot be created; [`LogError::Unsafe`] when it is a symlink, not
/// a directory, or another user's.
pub fn ensure_store_dir(dir: &Path) -> Result<(), LogError> {
    let meta = match lstat(dir)? {
        Some(meta) => meta,
        None => {
            create_dirs(dir)?;
            lstat(dir)?.ok_or_else(|| LogError::Io {
                path: dir.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            })?
        }
    };
    judge_dir(&meta, DirRule::Owned).map_err(|reason| unsafe_path(dir, reason))?;
    tighten(dir, &meta);
    Ok(())
}

/// Prepares a store directory for a command that may only read: creates it (0700) if missing
/// and possible, refuses a symlink or a non-directory, tightens it to 0700 if it is ours, and
/// accepts another user's directory or one that cannot be created (a read-only store is read
/// without writing; the sealer's [`ensure_store_dir`] refuses what it may not write).
///
/// # Errors
/// [`LogError::Unsafe`] for a symlink or a non-directory; [`LogError::Io`] when it cannot be
/// examined.
pub(crate) fn prepare_store_dir(dir: &Path) -> Result<(), LogError> {
    match lstat(dir)? {
        None => {
            if let Err(error) = create_dirs(dir) {
                tracing::debug!(%error, "store directory not created");
            }
            Ok(())
        }
        Some(meta) => {
            judge_dir(&meta, DirRule::Real).map_err(|reason| unsafe_path(dir, reason))?;
            if meta.uid() == euid() {
                tighten(dir, &meta);
            }
            Ok(())
        }
    }
}

/// Sets a directory we own to 0700 if group or others have any access; failure (a read-only
/// file system) is only logged.
fn tighten(dir: &Path, meta: &Metadata) {
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    let tightened = std::fs::Permissions::from_mode(mode & !0o077);
    match std::fs::set_permissions(dir, tightened) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), from = format!("{mode:04o}"), "store directory tightened to user-only")
        }
        Err(error) => {
            tracing::debug!(dir = %dir.display(), %error, "could not tighten a store directory")
        }
    }
}

fn create_dirs(dir: &Path) -> Result<(), LogError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| LogError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Creates a spool directory outside the store level by level (each 0700) and checks every
/// level it created or found below `base` with [`DirRule::OwnedPrivate`]: a planted symlink
/// or a directory another user owns or may write to is refused, never used.
///
/// # Errors
/// [`LogError::Unsafe`]; [`LogError::Io`].
pub fn ensure_spool_dir(base: &Path, levels: &[&str]) -> Result<PathBuf, LogError> {
    let mut dir = base.to_path_buf();
    for level in levels {
        dir.push(level);
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(LogError::Io { path: dir, source }),
        }
        check_dir(&dir, DirRule::OwnedPrivate)?;
    }
    Ok(dir)
}

/// Checks the levels of an existing spool directory below `base` for reading or sealing;
/// `Ok(false)` when it does not exist.
///
/// # Errors
/// As [`check_dir`] with [`DirRule::OwnedPrivate`].
pub(crate) fn check_spool_dir(base: &Path, levels: &[&str]) -> Result<bool, LogError> {
    let mut dir = base.to_path_buf();
    for level in levels {
        dir.push(level);
        if !check_dir(&dir, DirRule::OwnedPrivate)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether an I/O error means "this store cannot be written here" (read-only file system,
/// permission denied, disk or quota full), as opposed to damage or a bug.
pub fn is_unwritable_io(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    // By kind too: wrapped errors (tempfile's, with the path) keep the kind, not the errno.
    matches!(
        error.raw_os_error(),
        Some(libc::EROFS | libc::EACCES | libc::EPERM | libc::ENOSPC | libc::EDQUOT)
    ) || matches!(
        error.kind(),
        ErrorKind::ReadOnlyFilesystem
            | ErrorKind::PermissionDenied
            | ErrorKind::StorageFull
            | ErrorKind::QuotaExceeded
    )
}

/// Whether `error` or one of its sources is an I/O error of [`is_unwritable_io`]'s kind, or a
/// refusal of another user's directory ([`Unsafe::Owner`]).
pub fn is_unwritable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && is_unwritable_io(io)
        {
            return true;
        }
        if let Some(LogError::Unsafe {
            reason: Unsafe::Owner { .. },
            ..
        }) = e.downcast_ref::<LogError>()
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The canonical form of a store path, for keying things by store: absolute, symlinks of the
/// existing part resolved, `.`/`..` and trailing slashes removed (`/tmp/X/` and `/tmp/X` are
/// the same store).
pub fn canonical_store_path(root: &Path) -> PathBuf {
    let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    // Resolve the longest existing ancestor, then append the rest lexically.
    let mut rest = Vec::new();
    let mut probe = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(probe) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (probe.parent(), probe.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                probe = parent;
            }
            _ => return absolute.components().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_and_dot_are_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("X");
        let slash = PathBuf::from(format!("{}/", plain.display()));
        let dotted = dir.path().join(".").join("X").join(".");
        assert_eq!(canonical_store_path(&plain), canonical_store_path(&slash));
        assert_eq!(canonical_store_path(&plain), canonical_store_path(&dotted));
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(canonical_store_path(&plain), canonical_store_path(&slash));
    }

    #[test]
    fn symlinked_and_world_writable_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            check_dir(&link, DirRule::Owned),
            Err(LogError::Unsafe {
                reason: Unsafe::Symlink,
                ..
            })
        ));
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_dir(&real, DirRule::OwnedPrivate),
            Err(LogError::Unsafe {
                reason: Unsafe::Writable { .. },
                ..
            })
        ));
        assert!(check_dir(&real, DirRule::Owned).unwrap());
        assert!(!check_dir(&dir.path().join("absent"), DirRule::Owned).unwrap());
    }

    #[test]
    fn store_dirs_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        std::fs::create_dir(&store).unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_store_dir(&store).unwrap();
        let mode = std::fs::metadata(&store).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
