//! `ctrace export --format asciicast [--v3] --session S [-o FILE]`: writes a PTY session as an
//! asciicast v2 (default) or v3 file (`crate::ingest::asciicast::write`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::UsageError;
use crate::ingest::asciicast;
use crate::log::Store;
use crate::log::record::{Record, Source};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// asciicast (asciinema's terminal recording format), v2 or with --v3 v3
    Asciicast,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Asciicast)]
    pub format: ExportFormat,
    /// asciicast v3 instead of v2
    #[arg(long)]
    pub v3: bool,
    /// Session id, or a unique prefix of one
    #[arg(long)]
    pub session: String,
    /// Output file (written atomically) [default: stdout]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `export`.
///
/// # Errors
/// When the session is unknown or has no terminal data, the store cannot be read, or the file
/// cannot be written.
pub fn run(store: &Store, args: &ExportArgs) -> anyhow::Result<i32> {
    let ids = super::replay::session_ids(store)?;
    let (session, has_pty) = super::replay::resolve(&ids, &args.session)?;
    if !has_pty {
        return Err(UsageError(format!(
            "session {session} has no terminal data (record one with `ctrace record`)"
        ))
        .into());
    }
    let snapshot = store.snapshot()?;
    let mut records: Vec<Record> = Vec::new();
    for stored in snapshot.session(session, crate::log::read::TimeRange::default()) {
        let stored = stored?;
        if stored.record.source == Source::Pty {
            records.push(stored.record);
        }
    }
    let version = if args.v3 { 3 } else { 2 };
    match args.output.as_deref() {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            asciicast::write(&mut out, &records, version)?;
            out.flush()?;
        }
        Some(path) if path.as_os_str() == "-" => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            asciicast::write(&mut out, &records, version)?;
            out.flush()?;
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let temp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let mut out = std::io::BufWriter::new(temp);
            let summary = asciicast::write(&mut out, &records, version)
                .with_context(|| format!("writing {}", path.display()))?;
            let temp = out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", path.display()))?;
            temp.persist(path)
                .map_err(|e| e.error)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "ctrace: wrote session {session} to {} (asciicast v{version}, {} events{})",
                path.display(),
                summary.events,
                if summary.dropped > 0 {
                    format!(", {} records not representable left out", summary.dropped)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(0)
}
