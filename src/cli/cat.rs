//! `ctrace cat`: print records, filtered.

use std::io::{BufWriter, Write};

use clap::Args;

use super::time::{format_ts, now_ns};
use crate::log::Store;
use crate::model::Source;
use crate::segments::Offset;

/// Arguments of `cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Only this session (exact id)
    #[arg(long)]
    pub session: Option<String>,
    /// Only this source: hook, transcript, pty, otlp, import, internal
    #[arg(long)]
    pub source: Option<Source>,
    /// Only records at or after this time (2h, yesterday, 2026-01-31, RFC 3339)
    #[arg(long)]
    pub since: Option<String>,
    /// Only records at or before this time
    #[arg(long)]
    pub until: Option<String>,
    /// JSON Lines: offset, ts, time, source, session, body (payload verbatim when it is
    /// single-line JSON, else payload_text or payload_base64)
    #[arg(long)]
    pub json: bool,
}

/// Runs `cat`.
///
/// # Errors
/// Bad times (exit 2), store read errors, closed stdout (exit 0).
pub fn run(store: &Store, args: &CatArgs) -> anyhow::Result<i32> {
    let now = now_ns();
    let time = super::time::parse_range(args.since.as_deref(), args.until.as_deref(), now)?;
    super::refresh(store)?;
    let snapshot = store.snapshot()?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for stored in snapshot.scan(Offset(0), time, true) {
        let stored = stored?;
        let record = &stored.record;
        if args.source.is_some_and(|s| s != record.source) {
            continue;
        }
        if args
            .session
            .as_deref()
            .is_some_and(|s| record.session.as_deref() != Some(s))
        {
            continue;
        }
        if args.json {
            super::output::write_record_json(&mut out, &stored)?;
        } else {
            let (event, detail) = super::output::summary(record);
            writeln!(
                out,
                "{:>8}  {}  {:<10}  {:<36}  {:<22} {}",
                stored
                    .offset
                    .map_or_else(|| "-".to_owned(), |o| o.0.to_string()),
                format_ts(record.ts),
                record.source.as_str(),
                record.session.as_deref().unwrap_or("-"),
                event,
                detail
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}
