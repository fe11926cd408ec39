//! `ctrace import FILE`: add the records of an export archive to this store.
//!
//! The whole archive is read and every checksum checked first (`crate::export::archive::verify`);
//! a damaged, truncated or foreign file is refused naming the member, and the store is not
//! touched. Then the records are added under the store lock, skipping those already present, so
//! importing the same archive again adds nothing.
//!
//! An age-encrypted archive (`ctrace export --encrypt-to`/`--passphrase`; recognised by its
//! `age-encryption.org/v1` header, whatever its name) is first decrypted, with `--identity FILE`
//! or the passphrase from `CTRACE_PASSPHRASE` or the terminal, into a 0600 temp file under
//! `$TMPDIR` that is removed afterwards, also on error; every chunk authenticates before the
//! archive is verified, so a wrong key, a changed or a cut file leaves the store unchanged.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::UsageError;
use crate::export::archive;
use crate::export::encrypt::{self, DecryptWith};
use crate::log::Store;

/// Arguments of `ctrace import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive (`ctrace export` default format, `.tar.zst`, or age-encrypted)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Identity file to decrypt an age-encrypted archive: from age-keygen, or an unencrypted SSH
    /// private key (repeatable). A passphrase-encrypted archive reads $CTRACE_PASSPHRASE or asks
    /// on the terminal
    #[arg(long, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Only check the archive; do not import
    #[arg(long)]
    pub verify_only: bool,
    /// One JSON object with the counts on stdout
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

fn bar(args: &ImportArgs, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    })
}

fn reporter(bar: Option<indicatif::ProgressBar>) -> Box<dyn FnMut(u64)> {
    Box::new(move |read| {
        if let Some(bar) = &bar {
            bar.set_position(read);
        }
    })
}

/// Runs `ctrace import`; returns the exit code.
///
/// # Errors
/// When the archive is missing, not an archive, from a newer format, damaged or truncated (the
/// error names the member; nothing is imported), or the store cannot be written.
pub fn run(store: &Store, args: &ImportArgs) -> anyhow::Result<i32> {
    let total = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let encrypted = encrypt::is_encrypted(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    // Dropping `decrypted` removes the plaintext copy, on every path out of this function.
    let decrypted = if encrypted {
        Some(decrypt(args, total)?)
    } else {
        if !args.identity.is_empty() {
            eprintln!(
                "ctrace: {} is not encrypted; --identity ignored",
                args.file.display()
            );
        }
        None
    };
    let (file, total) = match &decrypted {
        Some(temp) => (temp.path(), temp.as_file().metadata()?.len()),
        None => (args.file.as_path(), total),
    };
    let verifying = bar(args, total, "verifying");
    let manifest = archive::verify(file, reporter(verifying.clone()))
        .with_context(|| format!("refusing {}", args.file.display()))?;
    if let Some(bar) = verifying {
        bar.finish_and_clear();
    }
    if args.verify_only {
        if args.json {
            super::output::json_line(&mut std::io::stdout().lock(), &manifest)?;
        } else {
            println!(
                "{}: ok, {} records of {} sessions, {} members, archive format {} (ctrace {})",
                args.file.display(),
                manifest.records,
                manifest.sessions,
                manifest.members.len(),
                manifest.format_version,
                manifest.ctrace_version
            );
        }
        return Ok(0);
    }
    let mut lock = store.lock()?;
    let importing = bar(args, total, "importing");
    let summary = archive::import(&mut lock, file, &manifest, reporter(importing.clone()))
        .with_context(|| format!("importing {}", args.file.display()))?;
    drop(lock);
    if let Some(bar) = importing {
        bar.finish_and_clear();
    }
    if args.json {
        super::output::json_line(&mut std::io::stdout().lock(), &summary)?;
    } else {
        println!(
            "imported {} records from {} ({} already present, {} in the archive){}",
            summary.added,
            args.file.display(),
            summary.already_present,
            summary.archive_records,
            match (summary.first_offset, summary.next_offset) {
                (Some(first), Some(next)) => format!(", offsets {first}..{next}"),
                _ => String::new(),
            }
        );
    }
    Ok(0)
}

/// Decrypts the age-encrypted archive into a temp file (see the module doc).
fn decrypt(args: &ImportArgs, total: u64) -> anyhow::Result<tempfile::NamedTempFile> {
    let file = &args.file;
    let refusing = || format!("refusing {}", file.display());
    let with = if encrypt::is_passphrase_encrypted(file).with_context(refusing)? {
        if !args.identity.is_empty() {
            return Err(UsageError(format!(
                "{} is encrypted to a passphrase, not to a key: drop --identity and set {} \
                 (or run on a terminal to be asked)",
                file.display(),
                super::passphrase::ENV
            ))
            .into());
        }
        match super::passphrase::get(false)? {
            Some(passphrase) => DecryptWith::Passphrase(passphrase),
            None => {
                return Err(UsageError(format!(
                    "{} is encrypted to a passphrase: set {} or run on a terminal to be asked",
                    file.display(),
                    super::passphrase::ENV
                ))
                .into());
            }
        }
    } else {
        if args.identity.is_empty() {
            return Err(UsageError(format!(
                "{} is age-encrypted to keys: give --identity FILE (age-keygen output or an SSH \
                 private key)",
                file.display()
            ))
            .into());
        }
        let mut identities = Vec::new();
        for path in &args.identity {
            identities.extend(encrypt::read_identity_file(path)?);
        }
        DecryptWith::Identities(identities)
    };
    let dir = std::env::temp_dir();
    let decrypting = bar(args, total, "decrypting");
    let mut report = reporter(decrypting.clone());
    let temp = encrypt::decrypt_to_temp(file, &with, Path::new(&dir), &mut report)
        .with_context(refusing)?;
    if let Some(bar) = decrypting {
        bar.finish_and_clear();
    }
    Ok(temp)
}
