//! Encrypted export archives: an export archive ([`crate::export::archive`]) wrapped, byte for
//! byte, in an [age](https://age-encryption.org/v1) file, so decrypting it with any age
//! implementation gives a normal `.tar.zst` archive.
//!
//! Layout (the age format, `age-encryption.org/v1`): a text header starting with
//! [`AGE_MAGIC`] that wraps a random file key for each recipient (X25519 `age1…`, SSH
//! `ssh-ed25519`/`ssh-rsa` public keys) or for one passphrase (scrypt), a 16-byte nonce, then the
//! archive in 64 KiB chunks, each sealed with ChaCha20-Poly1305 and the last one marked as last.
//!
//! Invariants:
//! - Encryption and decryption stream: at most one 64 KiB chunk of plaintext is held here, on
//!   top of what the archive writer and reader hold.
//! - A wrong key or passphrase is refused before any plaintext is produced (the header MAC); a
//!   changed, cut or extended ciphertext fails the chunk that holds it (each chunk is
//!   authenticated, and the last chunk is marked), so no unauthenticated byte is passed on.
//! - [`decrypt_to_temp`] writes the plaintext to a new 0600 file that is removed when the
//!   returned handle is dropped, also when decryption fails half way.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;

/// The first bytes of every age file (the version line of its header, without the newline).
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
/// Plaintext bytes per authenticated chunk of the age payload (64 KiB).
pub const CHUNK_BYTES: u64 = 64 << 10;

/// Errors of encrypting and decrypting archives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// A recipient is neither an `age1…` X25519 recipient nor a supported SSH public key.
    #[error(
        "not an age recipient: {recipient:?} ({what}; expected age1… from age-keygen, or an ssh-ed25519 or ssh-rsa public key)"
    )]
    BadRecipient {
        /// The text given.
        recipient: String,
        /// Why it was refused.
        what: &'static str,
    },
    /// Encrypting to the recipients failed (for example recipients that cannot be mixed).
    #[error("cannot encrypt to these recipients")]
    Recipients {
        /// age's error.
        #[source]
        source: age::EncryptError,
    },
    /// An identity file could not be read or holds something other than identities.
    #[error("reading identity file {}", path.display())]
    IdentityFile {
        /// The identity file.
        path: PathBuf,
        /// What went wrong (the message names a line, never its content).
        #[source]
        source: io::Error,
    },
    /// An identity file holds no identity this build can use.
    #[error("identity file {} holds no usable identity ({what})", path.display())]
    NoIdentity {
        /// The identity file.
        path: PathBuf,
        /// What it holds instead.
        what: &'static str,
    },
    /// The file's age header is damaged, truncated or not age at all.
    #[error("{} has a damaged or truncated age header ({what})", path.display())]
    BadHeader {
        /// The encrypted file.
        path: PathBuf,
        /// What age found.
        what: &'static str,
    },
    /// None of the identities given can open the file (wrong key, or a key it is not
    /// encrypted to).
    #[error(
        "none of the identities given can decrypt {} (it is encrypted to other keys, or its header was changed)", path.display()
    )]
    NoMatchingIdentity {
        /// The encrypted file.
        path: PathBuf,
    },
    /// The passphrase does not open the file.
    #[error("wrong passphrase for {}", path.display())]
    WrongPassphrase {
        /// The encrypted file.
        path: PathBuf,
    },
    /// The file is encrypted to a passphrase and identities were given, or the reverse.
    #[error("{} is encrypted {encrypted_to}, but {given} was given", path.display())]
    WrongKind {
        /// The encrypted file.
        path: PathBuf,
        /// What the file is encrypted to: "to a passphrase" or "to recipients".
        encrypted_to: &'static str,
        /// What was given: "a passphrase" or "identities".
        given: &'static str,
    },
    /// The passphrase's scrypt work factor is above what this machine accepts (about 16 s).
    #[error(
        "{} asks for scrypt work factor 2^{required}, more than the 2^{limit} accepted here", path.display()
    )]
    ExcessiveWork {
        /// The encrypted file.
        path: PathBuf,
        /// log2 of the work factor the file asks for.
        required: u8,
        /// log2 of the largest work factor accepted.
        limit: u8,
    },
    /// A chunk of the ciphertext does not authenticate: the file was changed or damaged.
    #[error(
        "{} is damaged or was changed: the encrypted chunk at plaintext byte {position} does not authenticate", path.display()
    )]
    Damaged {
        /// The encrypted file.
        path: PathBuf,
        /// Plaintext bytes decrypted before the failing chunk (a multiple of [`CHUNK_BYTES`]).
        position: u64,
    },
    /// The ciphertext ends before its last chunk: the file was cut short.
    #[error(
        "{} is truncated: the encrypted stream ends after {position} bytes of plaintext without its last chunk", path.display()
    )]
    Truncated {
        /// The encrypted file.
        path: PathBuf,
        /// Plaintext bytes decrypted before the end.
        position: u64,
    },
    /// Reading the encrypted file or writing the plaintext failed.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// What to decrypt with.
pub enum DecryptWith {
    /// Identities read by [`read_identity_file`].
    Identities(Vec<Box<dyn age::Identity>>),
    /// A passphrase (the file must be encrypted to a passphrase).
    Passphrase(SecretString),
}

/// Parses one recipient: an `age1…` X25519 recipient, or an `ssh-ed25519`/`ssh-rsa` public key
/// line (as in `~/.ssh/id_ed25519.pub`).
///
/// # Errors
/// [`EncryptError::BadRecipient`].
pub fn parse_recipient(text: &str) -> Result<Box<dyn age::Recipient + Send>, EncryptError> {
    let text = text.trim();
    let refuse = |what| EncryptError::BadRecipient {
        recipient: text.to_owned(),
        what,
    };
    if text.starts_with("age1") {
        return text
            .parse::<age::x25519::Recipient>()
            .map(|r| Box::new(r) as _)
            .map_err(|_| refuse("not a valid age1 recipient"));
    }
    if text.starts_with("ssh-") {
        use age::ssh::ParseRecipientKeyError as E;
        return text
            .parse::<age::ssh::Recipient>()
            .map(|r| Box::new(r) as _)
            .map_err(|e| {
                refuse(match e {
                    E::RsaModulusTooLarge => "RSA key too large",
                    E::RsaModulusTooSmall => "RSA key smaller than 2048 bits",
                    E::Unsupported(_) => "unsupported SSH key type",
                    _ => "not a valid SSH public key",
                })
            });
    }
    if text.starts_with("AGE-SECRET-KEY-") {
        // Not echoed: it is a secret.
        return Err(EncryptError::BadRecipient {
            recipient: "AGE-SECRET-KEY-1…".to_owned(),
            what: "this is a secret key: give its public key (age-keygen -y)",
        });
    }
    Err(refuse("unknown recipient type"))
}

/// An encryptor to `recipients` (each as [`parse_recipient`] takes it).
///
/// # Errors
/// [`EncryptError::BadRecipient`] for the first recipient that does not parse;
/// [`EncryptError::Recipients`] when age refuses the set (for example none).
pub fn recipients_encryptor(recipients: &[String]) -> Result<age::Encryptor, EncryptError> {
    let parsed = recipients
        .iter()
        .map(|r| parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    age::Encryptor::with_recipients(parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|source| EncryptError::Recipients { source })
}

/// An encryptor to a passphrase (scrypt, with the work factor age picks for about 1 s on this
/// machine).
pub fn passphrase_encryptor(passphrase: SecretString) -> age::Encryptor {
    age::Encryptor::with_user_passphrase(passphrase)
}

/// Reads the identities of an identity file: the lines `AGE-SECRET-KEY-1…` of a file written by
/// `age-keygen` (comments and blank lines skipped), or an unencrypted OpenSSH `ssh-ed25519` or
/// `ssh-rsa` private key.
///
/// # Errors
/// [`EncryptError::IdentityFile`] when the file cannot be read or holds a line that is not an
/// identity; [`EncryptError::NoIdentity`] when it holds none, or a passphrase-protected or
/// unsupported SSH key.
pub fn read_identity_file(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, EncryptError> {
    let io_error = |source| EncryptError::IdentityFile {
        path: path.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    File::open(path)
        .and_then(|f| f.take(16 << 20).read_to_end(&mut text))
        .map_err(io_error)?;
    let looks_ssh = text
        .windows(b"-----BEGIN".len())
        .take(64)
        .any(|w| w == b"-----BEGIN");
    if looks_ssh {
        let filename = Some(path.display().to_string());
        let identity = age::ssh::Identity::from_buffer(&text[..], filename).map_err(io_error)?;
        return match identity {
            age::ssh::Identity::Unencrypted(_) => {
                let identity: Box<dyn age::Identity> = Box::new(identity);
                Ok(vec![identity])
            }
            age::ssh::Identity::Encrypted(_) => Err(EncryptError::NoIdentity {
                path: path.to_path_buf(),
                what: "a passphrase-protected SSH key; decrypt a copy with `ssh-keygen -p`, or use an age key",
            }),
            age::ssh::Identity::Unsupported(_) => Err(EncryptError::NoIdentity {
                path: path.to_path_buf(),
                what: "an unsupported SSH key type",
            }),
        };
    }
    let file = age::IdentityFile::from_buffer(&text[..]).map_err(io_error)?;
    let identities = file
        .into_identities()
        .map_err(|_| EncryptError::NoIdentity {
            path: path.to_path_buf(),
            what: "identities this build cannot use",
        })?;
    if identities.is_empty() {
        return Err(EncryptError::NoIdentity {
            path: path.to_path_buf(),
            what: "no AGE-SECRET-KEY-1 line",
        });
    }
    Ok(identities)
}

/// Whether the file at `path` starts with [`AGE_MAGIC`] (an age file, binary format).
///
/// # Errors
/// [`EncryptError::Io`] when it cannot be opened or read.
pub fn is_encrypted(path: &Path) -> Result<bool, EncryptError> {
    let io_error = |source| EncryptError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut start = Vec::with_capacity(AGE_MAGIC.len());
    File::open(path)
        .map_err(io_error)?
        .take(AGE_MAGIC.len() as u64)
        .read_to_end(&mut start)
        .map_err(io_error)?;
    Ok(start == AGE_MAGIC)
}

/// Reads the age header of the file at `path` and tells whether it is encrypted to a
/// passphrase (as opposed to recipients).
///
/// # Errors
/// [`EncryptError::BadHeader`], [`EncryptError::Io`].
pub fn is_passphrase_encrypted(path: &Path) -> Result<bool, EncryptError> {
    Ok(open_decryptor(path, &mut |_| {})?.is_scrypt())
}

/// A reader that tells `progress` the bytes read so far.
struct Counting<'a, R> {
    inner: R,
    read: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

type Decryptor<'a> = age::Decryptor<Counting<'a, BufReader<File>>>;

fn open_decryptor<'a>(
    path: &Path,
    progress: &'a mut dyn FnMut(u64),
) -> Result<Decryptor<'a>, EncryptError> {
    let file = File::open(path).map_err(|source| EncryptError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, file),
        read: 0,
        progress,
    };
    age::Decryptor::new(counting).map_err(|e| header_error(path, e))
}

fn header_error(path: &Path, error: age::DecryptError) -> EncryptError {
    let bad = |what| EncryptError::BadHeader {
        path: path.to_path_buf(),
        what,
    };
    match error {
        age::DecryptError::Io(source) if source.kind() == io::ErrorKind::UnexpectedEof => {
            bad("the file ends inside the header")
        }
        age::DecryptError::Io(source) => EncryptError::Io {
            path: path.to_path_buf(),
            source,
        },
        age::DecryptError::InvalidMac => bad("the header MAC does not match: changed header"),
        age::DecryptError::UnknownFormat => bad("unknown age version"),
        _ => bad("invalid header"),
    }
}

/// Decrypts the age file at `path` into `out` (named `out_path` in errors), streaming, and
/// returns the plaintext bytes written. `progress` is told the encrypted bytes read so far.
///
/// Bytes are written to `out` only once their chunk has authenticated, but a failure after the
/// first chunk leaves the chunks before it in `out`: callers discard `out` on error.
///
/// # Errors
/// [`EncryptError::BadHeader`]; [`EncryptError::NoMatchingIdentity`],
/// [`EncryptError::WrongPassphrase`], [`EncryptError::WrongKind`],
/// [`EncryptError::ExcessiveWork`] before anything is written; [`EncryptError::Damaged`] or
/// [`EncryptError::Truncated`] at the first chunk that does not authenticate;
/// [`EncryptError::Io`] naming `path` or `out_path`.
pub fn decrypt(
    path: &Path,
    with: &DecryptWith,
    out: &mut dyn Write,
    out_path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<u64, EncryptError> {
    let decryptor = open_decryptor(path, &mut progress)?;
    let scrypt = decryptor.is_scrypt();
    let to = |path: &Path, passphrase: bool| EncryptError::WrongKind {
        path: path.to_path_buf(),
        encrypted_to: if passphrase {
            "to a passphrase"
        } else {
            "to recipients"
        },
        given: if passphrase {
            "identities"
        } else {
            "a passphrase"
        },
    };
    let opened = match with {
        DecryptWith::Identities(_) if scrypt => return Err(to(path, true)),
        DecryptWith::Passphrase(_) if !scrypt => return Err(to(path, false)),
        DecryptWith::Identities(identities) => {
            decryptor.decrypt(identities.iter().map(|i| i.as_ref()))
        }
        DecryptWith::Passphrase(passphrase) => {
            let identity = age::scrypt::Identity::new(passphrase.clone());
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
    };
    let mut reader = opened.map_err(|e| key_error(path, scrypt, e))?;
    let mut buf = vec![0u8; CHUNK_BYTES as usize];
    let mut position = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(stream_error(path, position, e)),
        };
        out.write_all(&buf[..n])
            .map_err(|source| EncryptError::Io {
                path: out_path.to_path_buf(),
                source,
            })?;
        position += n as u64;
    }
    Ok(position)
}

fn key_error(path: &Path, scrypt: bool, error: age::DecryptError) -> EncryptError {
    let path = path.to_path_buf();
    match error {
        // The scrypt identity's only failure to unwrap its stanza.
        age::DecryptError::DecryptionFailed if scrypt => EncryptError::WrongPassphrase { path },
        age::DecryptError::NoMatchingKeys
        | age::DecryptError::KeyDecryptionFailed
        | age::DecryptError::DecryptionFailed => EncryptError::NoMatchingIdentity { path },
        age::DecryptError::ExcessiveWork { required, target } => EncryptError::ExcessiveWork {
            path,
            required,
            limit: target.saturating_add(4),
        },
        other => header_error(&path, other),
    }
}

fn stream_error(path: &Path, position: u64, source: io::Error) -> EncryptError {
    let path = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::UnexpectedEof => EncryptError::Truncated { path, position },
        io::ErrorKind::InvalidData => EncryptError::Damaged { path, position },
        _ => EncryptError::Io { path, source },
    }
}

/// Decrypts the age file at `path` (as [`decrypt`]) into a new file in `dir`, created 0600, and
/// returns it, synced and rewound. The file is removed when the handle is dropped, and at once
/// when decryption fails.
///
/// # Errors
/// As [`decrypt`]; [`EncryptError::Io`] naming `dir` when the file cannot be created.
pub fn decrypt_to_temp(
    path: &Path,
    with: &DecryptWith,
    dir: &Path,
    progress: impl FnMut(u64),
) -> Result<tempfile::NamedTempFile, EncryptError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EncryptError::Io { path, source }
    };
    let temp = private_temp(dir).map_err(io_error(dir))?;
    let temp_path = temp.path().to_path_buf();
    let mut out = io::BufWriter::with_capacity(1 << 20, temp);
    // On error `out` (and with it the temp file) is dropped, which removes the file.
    decrypt(path, with, &mut out, &temp_path, progress)?;
    let temp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io_error(&temp_path))?;
    temp.as_file().sync_data().map_err(io_error(&temp_path))?;
    Ok(temp)
}

fn private_temp(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ctrace-decrypted-").suffix(".tar.zst");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    builder.tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn encrypt(encryptor: age::Encryptor, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(plain).unwrap();
        writer.finish().unwrap();
        out
    }

    fn key_pair(dir: &Path) -> (PathBuf, String) {
        let identity = age::x25519::Identity::generate();
        let path = dir.join("key.txt");
        let text = format!(
            "# created: test\n# public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        );
        std::fs::write(&path, text).unwrap();
        (path, identity.to_public().to_string())
    }

    /// Issue 14 item 1: round trip through a file, a flipped byte in every region names the
    /// failure, and a cut file is truncated.
    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (key, recipient) = key_pair(dir.path());
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sealed = encrypt(recipients_encryptor(&[recipient]).unwrap(), &plain);
        let file = dir.path().join("a.age");
        std::fs::write(&file, &sealed).unwrap();
        assert!(is_encrypted(&file).unwrap());
        assert!(!is_passphrase_encrypted(&file).unwrap());
        let with = DecryptWith::Identities(read_identity_file(&key).unwrap());
        let mut out = Vec::new();
        let n = decrypt(&file, &with, &mut out, Path::new("out"), |_| {}).unwrap();
        assert_eq!(n, plain.len() as u64);
        assert_eq!(out, plain);

        let mut flipped = sealed.clone();
        let at = sealed.len() - 100_000;
        flipped[at] ^= 1;
        std::fs::write(&file, &flipped).unwrap();
        let err = decrypt(&file, &with, &mut io::sink(), Path::new("out"), |_| {}).unwrap_err();
        assert!(
            matches!(err, EncryptError::Damaged { position, .. } if position % CHUNK_BYTES == 0),
            "{err:?}"
        );

        std::fs::write(&file, &sealed[..sealed.len() - 70_000]).unwrap();
        let err = decrypt(&file, &with, &mut io::sink(), Path::new("out"), |_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                EncryptError::Truncated { .. } | EncryptError::Damaged { .. }
            ),
            "{err:?}"
        );

        let mut header = sealed.clone();
        header[30] ^= 1;
        std::fs::write(&file, &header).unwrap();
        let err = decrypt(&file, &with, &mut io::sink(), Path::new("out"), |_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                EncryptError::BadHeader { .. } | EncryptError::NoMatchingIdentity { .. }
            ),
            "{err:?}"
        );
    }

    /// Issue 14 item 2: another key is refused as such, and the temp file is gone after a
    /// failure.
    #[test]
    fn wrong_key_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, recipient) = key_pair(dir.path());
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let (other_key, _) = key_pair(&other);
        let sealed = encrypt(recipients_encryptor(&[recipient]).unwrap(), b"plain");
        let file = dir.path().join("a.age");
        std::fs::write(&file, sealed).unwrap();
        let with = DecryptWith::Identities(read_identity_file(&other_key).unwrap());
        let temps = dir.path().join("tmp");
        std::fs::create_dir(&temps).unwrap();
        let err = decrypt_to_temp(&file, &with, &temps, |_| {}).unwrap_err();
        assert!(
            matches!(err, EncryptError::NoMatchingIdentity { .. }),
            "{err:?}"
        );
        assert_eq!(std::fs::read_dir(&temps).unwrap().count(), 0);
    }

    /// Issue 14 item 1: recipients are checked before anything is written.
    #[test]
    fn bad_recipients_are_named() {
        for bad in [
            "age1notakey",
            "AGE-SECRET-KEY-1QQQQ",
            "ssh-dss AAAA",
            "hello",
            "",
        ] {
            let err = parse_recipient(bad).err().unwrap();
            assert!(
                matches!(err, EncryptError::BadRecipient { .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
