//! `ctrace stats`: store size and counts, redactions, and a warning when a store without a
//! size limit grows past [`LARGE_STORE_BYTES`].

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::log::Store;

/// Stored bytes past which `stats` warns when `retention.max_bytes` is not set (10 GiB).
pub const LARGE_STORE_BYTES: u64 = 10 << 30;

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

/// The numbers `stats` prints.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Store directory.
    pub store: String,
    /// Sealed segments.
    pub segments: u64,
    /// Sealed records.
    pub records: u64,
    /// Next offset to be assigned.
    pub next_offset: u64,
    /// Raw (framed, uncompressed) bytes of sealed records.
    pub raw_bytes: u64,
    /// Segment file bytes on disk.
    pub stored_bytes: u64,
    /// raw / stored.
    pub compression_ratio: f64,
    /// Records not yet sealed.
    pub unsealed_records: u64,
    /// Bytes of inbox files not yet sealed.
    pub unsealed_bytes: u64,
    /// Oldest record time, RFC 3339.
    pub oldest: Option<String>,
    /// Newest record time, RFC 3339.
    pub newest: Option<String>,
    /// Secrets replaced by redaction, summed over all records (sealed and unsealed).
    pub redactions: u64,
    /// Records with at least one redaction.
    pub redacted_records: u64,
    /// Sessions pinned against retention.
    pub pinned_sessions: u64,
    /// Warnings (a large store without a size limit).
    pub warnings: Vec<String>,
}

/// Runs `stats`. Does not seal; reads every record once to total the redactions.
///
/// # Errors
/// When the store cannot be read.
pub fn run(store: &Store, args: &StatsArgs) -> anyhow::Result<i32> {
    let snapshot = store.snapshot()?;
    let m = snapshot.manifest();
    let raw: u64 = m.segments.iter().map(|s| s.raw_bytes).sum();
    let stored: u64 = m.segments.iter().map(|s| s.file_bytes).sum();
    let mut redactions = 0u64;
    let mut redacted_records = 0u64;
    for record in snapshot.iter() {
        let record = record?;
        if record.record.redactions > 0 {
            redactions += u64::from(record.record.redactions);
            redacted_records += 1;
        }
    }
    let mut warnings = Vec::new();
    let policy = &store.config().retention;
    if policy.max_bytes.is_none() && stored > LARGE_STORE_BYTES {
        warnings.push(format!(
            "the store holds {stored} bytes and no retention.max_bytes is set: everything is \
             kept; see docs/retention.md"
        ));
    }
    let pinned_sessions = crate::log::retention::Pins::load(store.paths())?.len() as u64;
    let stats = Stats {
        store: store.paths().root.display().to_string(),
        segments: m.segments.len() as u64,
        records: snapshot.sealed_records(),
        next_offset: m.next_offset.0,
        raw_bytes: raw,
        stored_bytes: stored,
        compression_ratio: if stored > 0 {
            raw as f64 / stored as f64
        } else {
            0.0
        },
        unsealed_records: snapshot.unsealed_records(),
        unsealed_bytes: snapshot.unsealed_bytes(),
        oldest: m
            .segments
            .iter()
            .map(|s| s.min_ts)
            .min()
            .map(super::time::format_ts),
        newest: m
            .segments
            .iter()
            .map(|s| s.max_ts)
            .max()
            .map(super::time::format_ts),
        redactions,
        redacted_records,
        pinned_sessions,
        warnings,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        super::output::json_line(&mut out, &stats)?;
        return Ok(0);
    }
    writeln!(out, "store        {}", stats.store)?;
    writeln!(out, "segments     {}", stats.segments)?;
    writeln!(
        out,
        "records      {} sealed, {} unsealed",
        stats.records, stats.unsealed_records
    )?;
    writeln!(
        out,
        "bytes        {} raw, {} stored (ratio {:.2}x), {} unsealed",
        stats.raw_bytes, stats.stored_bytes, stats.compression_ratio, stats.unsealed_bytes
    )?;
    if let (Some(oldest), Some(newest)) = (&stats.oldest, &stats.newest) {
        writeln!(out, "time range   {oldest} .. {newest}")?;
    }
    writeln!(
        out,
        "redactions   {} in {} records",
        stats.redactions, stats.redacted_records
    )?;
    writeln!(out, "pinned       {} sessions", stats.pinned_sessions)?;
    for warning in &stats.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    Ok(0)
}
