//! `ctrace serve`'s access token: `<store>/serve.token`, 32 random bytes from the OS as 64 hex
//! digits, made at the service's first start and reused across restarts (`docs/security.md`,
//! "The service"). What the token lets in is `super::security`'s business.
//!
//! Invariants:
//! - the file is created 0600 with `O_EXCL` and `O_NOFOLLOW`; a failed write removes it;
//! - an existing file is used only if it is a regular file of this user that group and others
//!   cannot read, and holds exactly a token.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::log::private::{FILE_MODE, NOFOLLOW, euid};

/// Name of the token file in the store directory.
pub const TOKEN_FILE: &str = "serve.token";
/// Random bytes in a token (written as 64 hex digits).
const TOKEN_BYTES: usize = 32;

/// Errors of the token file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be created, opened or read.
    #[error("token file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file is a symbolic link.
    #[error("refusing token file {}: it is a symbolic link", path.display())]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// The token file is not a regular file.
    #[error("refusing token file {}: it is not a regular file", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },
    /// The token file belongs to another user.
    #[error("refusing token file {}: it belongs to uid {owner}, not to uid {expected}", path.display())]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        expected: u32,
    },
    /// Group or others may read or write the token file.
    #[error(
        "refusing token file {}: group or others may access it (mode {mode:04o}; run chmod 600)",
        path.display()
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file does not hold a token (64 hex digits).
    #[error("token file {} does not hold a token (64 hex digits); delete it to make a new one", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The system's random source failed.
    #[error("reading random bytes for a token")]
    Random(#[source] getrandom::Error),
}

/// The token of the store at `root`: read from `<root>/serve.token`, or made (32 random bytes
/// as 64 hex digits) and written there with mode 0600 when the file does not exist. The same
/// token is used across restarts; deleting the file makes a new one at the next start.
///
/// # Errors
/// [`TokenError`] when the file is a symlink, not a regular file, another user's, readable
/// by group or others, malformed, or cannot be read or created.
pub fn load_or_create_token(root: &Path) -> Result<String, TokenError> {
    let path = root.join(TOKEN_FILE);
    match read_token(&path) {
        Err(TokenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(TokenError::Random)?;
    let token = hex::encode(bytes);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(NOFOLLOW)
        .open(&path);
    let mut file = match created {
        Ok(file) => file,
        // Another `serve` made it meanwhile (or it is a dangling symlink): read and check it.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return read_token(&path);
        }
        Err(source) => return Err(TokenError::Io { path, source }),
    };
    let written = file
        .write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = std::fs::remove_file(&path);
        return Err(TokenError::Io { path, source });
    }
    tracing::info!(path = %path.display(), "created the serve token");
    Ok(token)
}

/// Reads and checks an existing token file.
fn read_token(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let link = std::fs::symlink_metadata(path).map_err(io)?;
    if link.file_type().is_symlink() {
        return Err(TokenError::Symlink {
            path: path.to_path_buf(),
        });
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                TokenError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                io(source)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(TokenError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    if meta.uid() != euid() {
        return Err(TokenError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            expected: euid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TokenError::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    // A token is 65 bytes; read a little more to tell a longer file.
    (&mut file)
        .take(256)
        .read_to_string(&mut text)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                return TokenError::Malformed {
                    path: path.to_path_buf(),
                };
            }
            io(source)
        })?;
    let token = text.trim();
    if token.len() != TOKEN_BYTES * 2 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenError::Malformed {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_made_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_token(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        let path = dir.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_or_create_token(dir.path()),
            Err(TokenError::NotPrivate { mode: 0o640, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            load_or_create_token(dir.path()),
            Err(TokenError::Malformed { .. })
        ));
    }
}
