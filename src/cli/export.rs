//! `ctrace export [--format F] [--session S]... [--project P] [--since T] [--until T] [-o FILE]`:
//! writes records out of the store.
//!
//! Formats (`docs/export.md`):
//! - `archive` (default): a `.tar.zst` archive with a manifest and a SHA-256 of every member,
//!   that `ctrace import` restores (`crate::export::archive`);
//! - `jsonl`: one record per line, exactly as `ctrace cat --json` prints it;
//! - `asciicast`: one PTY session as asciicast v2, or v3 with `--v3`;
//! - `otlp-json`: each Claude session as one OTLP/JSON `ExportTraceServiceRequest` per line, the
//!   layout of the OpenTelemetry Collector's file exporter (`crate::export::otlp`);
//! - `otlp`: pushed to a collector's OTLP/HTTP receiver (`--endpoint`): each Claude session's
//!   spans (as `otlp-json` has them) as protobuf traces, and the records as logs
//!   (`crate::otlp::batch`), with retries and backoff (`crate::otlp::push`).
//!
//! Without `--format`, the format comes from `--v3` (asciicast), else from the output's extension
//! (`.tar.zst`/`.tzst`, `.jsonl`/`.ndjson`, `.cast`), else a single `--session` naming a PTY
//! recording is exported as asciicast (what `ctrace export --session S` did before the other
//! formats existed), else the archive.
//!
//! `--encrypt-to R` (repeatable) or `--passphrase` wrap the archive in an age file
//! (`crate::export::encrypt`); the archive format is then implied, and `.age` names an archive.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::UsageError;
use super::time::now_ns;
use crate::export::archive::{self, ArchiveManifest, ArchiveWriter, Selection};
use crate::export::asciicast;
use crate::export::encrypt;
use crate::log::Store;
use crate::log::read::TimeRange;
use crate::model::{Body, Record, Source};
use crate::segments::Offset;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A .tar.zst archive with a manifest and checksums, for `ctrace import`
    Archive,
    /// One record per line, as `ctrace cat --json`
    Jsonl,
    /// asciicast (asciinema's terminal recording format) of one PTY session, v2 or with --v3 v3
    Asciicast,
    /// OpenTelemetry OTLP/JSON traces, one ExportTraceServiceRequest per Claude session per line
    OtlpJson,
    /// OTLP/HTTP protobuf pushed to a collector (--endpoint): sessions as traces, records as logs
    Otlp,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format [default: archive; see `docs/export.md` for how it is inferred]
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// asciicast v3 instead of v2
    #[arg(long)]
    pub v3: bool,
    /// Only this session: id or unique prefix (repeatable)
    #[arg(long)]
    pub session: Vec<String>,
    /// Only sessions whose project (first working directory) is this directory or below it
    #[arg(long)]
    pub project: Option<String>,
    /// Only records at or after this time (2h, yesterday, 2026-01-31, RFC 3339)
    #[arg(long)]
    pub since: Option<String>,
    /// Only records at or before this time
    #[arg(long)]
    pub until: Option<String>,
    /// Output file (written atomically) [default: stdout; `-` is stdout]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
    /// Encrypt the archive with age to this recipient: age1… (age-keygen) or an ssh-ed25519 /
    /// ssh-rsa public key (repeatable)
    #[arg(long, value_name = "RECIPIENT", conflicts_with = "passphrase")]
    pub encrypt_to: Vec<String>,
    /// Encrypt the archive with age to a passphrase, read from $CTRACE_PASSPHRASE or asked on
    /// the terminal (never given on the command line)
    #[arg(long)]
    pub passphrase: bool,
    /// With --format otlp: the collector's OTLP/HTTP base URL (http://collector:4318);
    /// /v1/traces and /v1/logs are appended
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// With --format otlp: a header of every request, NAME=VALUE (repeatable)
    #[arg(long, value_name = "NAME=VALUE")]
    pub header: Vec<String>,
    /// With --format otlp: records per logs request (1 to 10000); a request also ends at
    /// `[forward] max_batch_bytes` (4 MiB by default)
    #[arg(long, value_name = "N", default_value_t = 512,
        value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,
}

/// A session named by `--session`, resolved to its full id.
struct WantedSession {
    /// The full session id.
    id: String,
    /// Whether the session has PTY records.
    has_pty: bool,
}

/// Runs `export`.
///
/// # Errors
/// Bad arguments (exit 2): unknown or ambiguous sessions, bad times, an archive to a terminal,
/// asciicast of a session without terminal data; store read errors; output errors.
pub fn run(store: &Store, args: &ExportArgs) -> anyhow::Result<i32> {
    let now = now_ns();
    let time = super::time::parse_range(args.since.as_deref(), args.until.as_deref(), now)?;
    let output = args.output.as_deref().filter(|p| p.as_os_str() != "-");
    let sessions = wanted_sessions(store, args)?;
    let format = choose_format(args, output, &sessions)?;
    let mut selected: Option<BTreeSet<String>> =
        (!sessions.is_empty()).then(|| sessions.iter().map(|s| s.id.clone()).collect());
    if let Some(project) = &args.project {
        let in_project = sessions_in_project(store, project)?;
        selected = Some(match selected {
            Some(given) => given.intersection(&in_project).cloned().collect(),
            None => in_project,
        });
    }
    match format {
        ExportFormat::Asciicast => asciicast_export(store, args, output, &sessions),
        ExportFormat::Archive => {
            if output.is_none() && std::io::stdout().is_terminal() {
                return Err(UsageError(
                    "the archive is binary: give -o FILE (or redirect stdout)".into(),
                )
                .into());
            }
            // Recipients and passphrase are checked before anything is read or written.
            let encryptor = encryptor(args)?;
            let selection = Selection {
                sessions: selected.as_ref().map(|s| s.iter().cloned().collect()),
                project: args.project.clone(),
                since_ns: time.since,
                until_ns: time.until,
            };
            archive_export(
                store,
                args,
                output,
                time,
                selected.as_ref(),
                selection,
                encryptor,
            )
        }
        ExportFormat::Jsonl => {
            let (records, _) = write_output(output, |out| {
                jsonl_export(store, out, time, selected.as_ref())
            })?;
            if let Some(path) = output {
                eprintln!(
                    "ctrace: wrote {records} records to {} (jsonl)",
                    path.display()
                );
            }
            Ok(0)
        }
        ExportFormat::OtlpJson => otlp_export(store, output, selected),
        ExportFormat::Otlp => otlp_push(store, args, time, selected),
    }
}

/// The sessions named by `--session`, resolved, each once, in the order given.
fn wanted_sessions(store: &Store, args: &ExportArgs) -> anyhow::Result<Vec<WantedSession>> {
    let ids = if !args.session.is_empty() {
        super::replay::session_ids(store)?
    } else {
        super::refresh(store)?;
        BTreeMap::new()
    };
    let mut sessions: Vec<WantedSession> = Vec::new();
    for wanted in &args.session {
        let (id, has_pty) = super::replay::resolve(&ids, wanted)?;
        if !sessions.iter().any(|s| s.id == id) {
            sessions.push(WantedSession {
                id: id.to_owned(),
                has_pty: *has_pty,
            });
        }
    }
    Ok(sessions)
}

/// The format: `--format`, else the archive when encrypting, else inferred; refuses flags that
/// do not apply to it.
fn choose_format(
    args: &ExportArgs,
    output: Option<&Path>,
    sessions: &[WantedSession],
) -> anyhow::Result<ExportFormat> {
    let encrypting = !args.encrypt_to.is_empty() || args.passphrase;
    let format = match args.format {
        Some(format) => format,
        None if encrypting => ExportFormat::Archive,
        None => infer_format(args, output, sessions),
    };
    if encrypting && format != ExportFormat::Archive {
        return Err(UsageError(
            "--encrypt-to and --passphrase apply to the archive format only".into(),
        )
        .into());
    }
    if args.v3 && format != ExportFormat::Asciicast {
        return Err(UsageError("--v3 applies to --format asciicast only".into()).into());
    }
    match (format, &args.endpoint) {
        (ExportFormat::Otlp, None) => {
            return Err(UsageError(
                "--format otlp needs --endpoint URL (the collector's OTLP/HTTP receiver)".into(),
            )
            .into());
        }
        (ExportFormat::Otlp, Some(_)) if output.is_some() => {
            return Err(UsageError(
                "--format otlp sends to --endpoint; -o applies to the file formats".into(),
            )
            .into());
        }
        (ExportFormat::Otlp, Some(_)) => {}
        (_, Some(_)) => {
            return Err(UsageError("--endpoint applies to --format otlp only".into()).into());
        }
        (_, None) if !args.header.is_empty() => {
            return Err(UsageError("--header applies to --format otlp only".into()).into());
        }
        (_, None) => {}
    }
    Ok(format)
}

/// What an OTLP export wrote.
#[derive(Debug, Default)]
struct OtlpTotals {
    /// Requests (one per session).
    traces: u64,
    /// Spans in them.
    spans: u64,
}

/// Writes each selected Claude session (all of them without a selection) as one OTLP/JSON
/// request per line.
fn otlp_export(
    store: &Store,
    output: Option<&Path>,
    selected: Option<BTreeSet<String>>,
) -> anyhow::Result<i32> {
    let claude: Vec<String> = match selected {
        Some(selected) => selected.into_iter().collect(),
        None => claude_sessions(store)?,
    };
    let (OtlpTotals { traces, spans }, _) = write_output(output, |out| {
        let mut totals = OtlpTotals::default();
        for session in &claude {
            let tree = crate::views::tree::session_tree(store, session)
                .with_context(|| format!("building the span tree of session {session}"))?;
            let Some(tree) = tree else { continue };
            let line = crate::export::otlp::request(&tree, session);
            totals.traces += 1;
            totals.spans += crate::export::otlp::span_count(&tree);
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(totals)
    })?;
    if let Some(path) = output {
        eprintln!(
            "ctrace: wrote {traces} traces ({spans} spans) to {} (otlp-json)",
            path.display()
        );
    }
    Ok(0)
}

/// Pushes each selected Claude session's spans (all sessions without a selection) as OTLP
/// traces and the selected records as OTLP logs to `--endpoint`. Exit status 0 when every
/// request was delivered, 1 when some were not (each named on stderr).
fn otlp_push(
    store: &Store,
    args: &ExportArgs,
    time: TimeRange,
    selected: Option<BTreeSet<String>>,
) -> anyhow::Result<i32> {
    use crate::otlp::push::{Backoff, Endpoint, Pusher, parse_header};
    use crate::otlp::{Signal, batch::Batch};
    use prost::Message;
    let url = args.endpoint.as_deref().unwrap_or_default();
    let mut endpoint = Endpoint::new(url).map_err(|e| UsageError(e.to_string()))?;
    for header in &args.header {
        endpoint
            .headers
            .push(parse_header(header).map_err(|e| UsageError(e.to_string()))?);
    }
    let pusher = Pusher::new(endpoint);
    let backoff = Backoff::default();
    let never = || false;
    super::refresh(store)?;
    let mut failures: Vec<String> = Vec::new();
    let mut send = |signal: Signal, body: &[u8], what: &str| -> bool {
        match pusher.send(signal, body, &backoff, &never) {
            Ok(_) => true,
            Err(error) => {
                eprintln!("ctrace: {what} not delivered: {error}");
                failures.push(what.to_owned());
                false
            }
        }
    };
    // Traces: one request per Claude session.
    let claude: Vec<String> = match &selected {
        Some(selected) => selected.iter().cloned().collect(),
        None => claude_sessions(store)?,
    };
    let (mut traces, mut spans) = (0u64, 0u64);
    for session in &claude {
        let tree = crate::views::tree::session_tree(store, session)
            .with_context(|| format!("building the span tree of session {session}"))?;
        let Some(tree) = tree else { continue };
        let json = crate::export::otlp::request(&tree, session);
        let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            serde_json::from_value(json)
                .with_context(|| format!("encoding the spans of session {session}"))?;
        if send(
            Signal::Traces,
            &request.encode_to_vec(),
            &format!("the spans of session {session}"),
        ) {
            traces += 1;
            spans += crate::export::otlp::span_count(&tree);
        }
    }
    // Logs: the records, in offset order, `--batch` per request and at most
    // `[forward] max_batch_bytes` (a request refused as too large is halved).
    let signals = [Signal::Logs, Signal::Metrics, Signal::Traces];
    let max_bytes = store.config().forward.max_batch_bytes;
    let empty = Batch::for_store(store);
    let snapshot = store.snapshot()?;
    let mut records = 0u64;
    let mut flush = |pending: &mut Vec<crate::model::StoredRecord>| {
        let part: Vec<(u64, &crate::model::Record)> = pending
            .iter()
            .filter_map(|stored| Some((stored.offset?.0, &stored.record)))
            .collect();
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            return;
        };
        let what = format!("records {}..={}", first.0, last.0);
        match pusher.deliver(&empty, &part, &signals, &backoff, &never) {
            Ok(delivery) => {
                records += delivery.delivered;
                for refused in &delivery.refused {
                    let which = if refused.records == 1 {
                        format!("record {}", refused.first)
                    } else {
                        format!("records {}..={}", refused.first, refused.last)
                    };
                    eprintln!(
                        "ctrace: {} of {which} not delivered: {}",
                        refused.signal.as_str(),
                        refused.error
                    );
                    failures.push(which);
                }
            }
            Err(error) => {
                eprintln!("ctrace: {what} not delivered: {error}");
                failures.push(what);
            }
        }
        pending.clear();
    };
    let mut pending = Vec::new();
    let mut bytes = 0;
    for stored in snapshot.scan(Offset(0), time, false) {
        let stored = stored?;
        if stored.offset.is_none() {
            break;
        }
        let record = &stored.record;
        let wanted = match (&selected, &record.session) {
            (None, _) => true,
            (Some(selected), Some(session)) => selected.contains(session),
            (Some(_), None) => false,
        };
        if !wanted || !time.contains(record.ts) {
            continue;
        }
        bytes += crate::otlp::batch::approx_bytes(record);
        pending.push(stored);
        if pending.len() as u64 >= args.batch || bytes >= max_bytes {
            flush(&mut pending);
            bytes = 0;
        }
    }
    flush(&mut pending);
    eprintln!(
        "ctrace: delivered {traces} traces ({spans} spans) and {records} records to {}",
        pusher.endpoint().url
    );
    if failures.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "ctrace: {} requests were not delivered (see above)",
            failures.len()
        );
        Ok(1)
    }
}

fn infer_format(
    args: &ExportArgs,
    output: Option<&Path>,
    sessions: &[WantedSession],
) -> ExportFormat {
    if args.v3 {
        return ExportFormat::Asciicast;
    }
    let name = output
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.ends_with(".tar.zst") || name.ends_with(".tzst") || name.ends_with(".age") {
        return ExportFormat::Archive;
    }
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        return ExportFormat::Jsonl;
    }
    if name.ends_with(".cast") {
        return ExportFormat::Asciicast;
    }
    let filtered = args.project.is_some() || args.since.is_some() || args.until.is_some();
    match sessions {
        [WantedSession { has_pty: true, .. }] if !filtered => ExportFormat::Asciicast,
        _ => ExportFormat::Archive,
    }
}

/// Writes through `write` to `path` atomically (temp file in the same directory, then rename),
/// or to stdout when `path` is `None`. Returns what `write` returned.
fn write_output<T>(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<(T, u64)> {
    let Some(path) = path else {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let value = write(&mut out)?;
        out.flush()?;
        return Ok((value, 0));
    };
    let options = crate::fs::Replace {
        dir_sync_best_effort: true,
        ..crate::fs::Replace::default()
    };
    crate::fs::replace_with(path, &options, |out| {
        write(out).map_err(|e| std::io::Error::other(format!("{e:#}")))
    })
    .with_context(|| format!("writing {}", path.display()))
}

fn progress_bar(args: &ExportArgs, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
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

/// The age encryptor `--encrypt-to` or `--passphrase` ask for, if any.
fn encryptor(args: &ExportArgs) -> anyhow::Result<Option<age::Encryptor>> {
    if !args.encrypt_to.is_empty() {
        let encryptor = encrypt::recipients_encryptor(&args.encrypt_to)
            .map_err(|e| UsageError(e.to_string()))?;
        return Ok(Some(encryptor));
    }
    if !args.passphrase {
        return Ok(None);
    }
    match super::passphrase::get(true)? {
        Some(passphrase) => Ok(Some(encrypt::passphrase_encryptor(passphrase))),
        None => Err(UsageError(format!(
            "--passphrase needs a passphrase: run on a terminal to be asked, or set {}",
            super::passphrase::ENV
        ))
        .into()),
    }
}

/// Writes the archive into `out` and returns its manifest and `out`.
fn write_archive<W: Write>(
    out: W,
    name: &Path,
    snapshot: &crate::log::Snapshot,
    time: TimeRange,
    selected: Option<&BTreeSet<String>>,
    selection: Selection,
    progress: impl FnMut(u64),
) -> anyhow::Result<(ArchiveManifest, W)> {
    let mut writer = ArchiveWriter::new(out, name, selection)?;
    archive::export(
        snapshot,
        time,
        |head| match (selected, head) {
            (None, _) => true,
            (Some(selected), Some(head)) => head.session.is_some_and(|s| selected.contains(s)),
            (Some(_), None) => false,
        },
        &mut writer,
        progress,
    )?;
    Ok(writer.finish()?)
}

fn archive_export(
    store: &Store,
    args: &ExportArgs,
    output: Option<&Path>,
    time: TimeRange,
    selected: Option<&BTreeSet<String>>,
    selection: Selection,
    encryptor: Option<age::Encryptor>,
) -> anyhow::Result<i32> {
    let snapshot = store.snapshot()?;
    let total: u64 = snapshot
        .manifest()
        .segments
        .iter()
        .map(|s| s.raw_bytes)
        .sum::<u64>()
        + snapshot.unsealed_bytes();
    let bar = progress_bar(args, total, "exporting");
    let name = output.map_or_else(|| PathBuf::from("<stdout>"), Path::to_path_buf);
    let encrypted = match (&encryptor, args.encrypt_to.len()) {
        (None, _) => String::new(),
        (Some(_), 0) => ", age-encrypted to a passphrase".to_owned(),
        (Some(_), 1) => ", age-encrypted to 1 recipient".to_owned(),
        (Some(_), n) => format!(", age-encrypted to {n} recipients"),
    };
    let progress = |bytes| {
        if let Some(bar) = &bar {
            bar.inc(bytes);
        }
    };
    let (manifest, archive_bytes) = write_output(output, |out| match encryptor {
        None => {
            let (manifest, _) =
                write_archive(out, &name, &snapshot, time, selected, selection, progress)?;
            Ok(manifest)
        }
        Some(encryptor) => {
            // The age stream wraps exactly the bytes of the plain archive.
            let sealed = encryptor.wrap_output(out)?;
            let (manifest, sealed) = write_archive(
                sealed, &name, &snapshot, time, selected, selection, progress,
            )?;
            sealed.finish()?;
            Ok(manifest)
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(path) = output {
        eprintln!(
            "ctrace: wrote {} records of {} sessions ({} bytes of records) to {} ({} bytes, archive format {}{encrypted})",
            manifest.records,
            manifest.sessions,
            manifest.record_bytes,
            path.display(),
            archive_bytes,
            manifest.format_version
        );
    }
    Ok(0)
}

fn jsonl_export(
    store: &Store,
    out: &mut dyn Write,
    time: TimeRange,
    selected: Option<&BTreeSet<String>>,
) -> anyhow::Result<u64> {
    let snapshot = store.snapshot()?;
    let mut records = 0;
    for stored in snapshot.scan(Offset(0), time, true) {
        let stored = stored?;
        if let Some(selected) = selected
            && !stored
                .record
                .session
                .as_deref()
                .is_some_and(|s| selected.contains(s))
        {
            continue;
        }
        super::output::write_record_json(&mut &mut *out, &stored)?;
        records += 1;
    }
    Ok(records)
}

/// Sessions whose project (first `cwd` seen: hook payload, transcript line, PTY start) is
/// `project` or a directory below it.
fn sessions_in_project(store: &Store, project: &str) -> anyhow::Result<BTreeSet<String>> {
    let wanted = std::fs::canonicalize(project)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| project.to_owned());
    let wanted = wanted.trim_end_matches('/');
    let snapshot = store.snapshot()?;
    let mut first_cwd: BTreeMap<String, String> = BTreeMap::new();
    for stored in snapshot.iter() {
        let record = stored?.record;
        let Some(session) = record.session.as_deref() else {
            continue;
        };
        if first_cwd.contains_key(session) {
            continue;
        }
        if let Some(cwd) = record_cwd(&record) {
            first_cwd.insert(session.to_owned(), cwd);
        }
    }
    Ok(first_cwd
        .into_iter()
        .filter(|(_, cwd)| {
            let cwd = cwd.trim_end_matches('/');
            cwd == wanted
                || cwd
                    .strip_prefix(wanted)
                    .is_some_and(|rest| rest.starts_with('/'))
                || wanted.is_empty()
        })
        .map(|(session, _)| session)
        .collect())
}

fn record_cwd(record: &Record) -> Option<String> {
    match &record.body {
        Body::Hook(hook) => hook.cwd.clone(),
        Body::Pty(pty) => pty.cwd.clone(),
        Body::Transcript(line) => {
            #[derive(serde::Deserialize)]
            struct Cwd {
                cwd: Option<String>,
            }
            serde_json::from_slice::<Cwd>(&line.raw).ok()?.cwd
        }
        Body::Internal(_) | Body::Otlp(_) => None,
    }
}

/// Sessions with hook or transcript records (Claude Code sessions, as opposed to PTY
/// recordings), in id order.
fn claude_sessions(store: &Store) -> anyhow::Result<Vec<String>> {
    let snapshot = store.snapshot()?;
    let mut ids = HashSet::new();
    for stored in snapshot.iter() {
        let record = stored?.record;
        if matches!(record.source, Source::Hook | Source::Transcript)
            && let Some(session) = record.session
        {
            ids.insert(session);
        }
    }
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    Ok(ids)
}

fn asciicast_export(
    store: &Store,
    args: &ExportArgs,
    output: Option<&Path>,
    sessions: &[WantedSession],
) -> anyhow::Result<i32> {
    let [
        WantedSession {
            id: session,
            has_pty,
        },
    ] = sessions
    else {
        return Err(UsageError("asciicast export takes exactly one --session".into()).into());
    };
    if !has_pty {
        return Err(UsageError(format!(
            "session {session} has no terminal data (record one with `ctrace record`)"
        ))
        .into());
    }
    let snapshot = store.snapshot()?;
    let mut records: Vec<Record> = Vec::new();
    for stored in snapshot.session(session, TimeRange::default()) {
        let stored = stored?;
        if stored.record.source == Source::Pty {
            records.push(stored.record);
        }
    }
    let version = if args.v3 { 3 } else { 2 };
    let (summary, _) = write_output(output, |out| {
        Ok(asciicast::write(&mut &mut *out, &records, version)?)
    })?;
    if let Some(path) = output {
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
    Ok(0)
}
