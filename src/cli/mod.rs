//! The `ctrace` command line: clap derive, one file per subcommand, each with a `run`.
//!
//! Exit codes: 0 success; 1 failure (including damage found by `verify`); 2 bad usage or bad
//! input named on the command line. A closed stdout (`ctrace cat | head`) exits 0. `ctrace hook`
//! always exits 0.

pub mod cat;
pub mod compact;
pub mod config_cmd;
pub mod cost;
pub mod demo;
pub mod export;
pub mod forget;
pub mod gc;
pub mod grep;
pub mod hook;
pub mod import;
pub mod ingest;
pub mod install;
pub use crate::views::items;
pub mod output;
pub mod passphrase;
pub mod pin;
pub mod record;
pub mod recover;
pub mod reindex;
pub mod replay;
pub mod search;
pub mod serve;
pub mod sessions;
pub mod show;
pub mod stats;
mod table;
pub mod tasks;
pub mod time;
pub mod tree;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::log::Store;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "ctrace",
    version,
    about = "A complete, checksummed record of what your Claude Code agents did",
    long_about = "ctrace records every Claude Code hook event, every transcript line and the raw \
terminal stream into a checksummed, segmented, zstd-compressed append-only log, and lets you list \
sessions, read their timelines, search all history, account for cost, replay terminals, keep the \
store under retention policies, export it, and verify it.\n\nStart with `ctrace demo`."
)]
pub(crate) struct Cli {
    /// Store directory [default: $CTRACE_HOME, else $XDG_DATA_HOME/ctrace, else ~/.local/share/ctrace]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Configuration file [default: STORE/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record one hook payload from stdin (what Claude Code runs; always exits 0, prints nothing)
    Hook,
    /// Add ctrace to Claude Code's settings.json for every hook event (with --telemetry, also
    /// the OpenTelemetry export to `ctrace serve`)
    Install(install::InstallArgs),
    /// Remove ctrace from Claude Code's settings.json (hooks and telemetry variables)
    Uninstall(install::InstallArgs),
    /// Ingest transcripts and hook payloads from files or directories (e.g. ~/.claude/projects)
    Ingest(ingest::IngestArgs),
    /// List sessions
    Sessions(sessions::SessionsArgs),
    /// Show one session's timeline
    Show(show::ShowArgs),
    /// Run a command under a pseudo-terminal and record its terminal stream
    Record(record::RecordArgs),
    /// Replay a session's terminal with its timing (the timeline, for sessions without terminal data)
    Replay(replay::ReplayArgs),
    /// Export records: a .tar.zst archive for `ctrace import` (default), JSON Lines, asciicast, or OTLP/JSON traces
    Export(export::ExportArgs),
    /// Print records (JSON Lines with --json)
    Cat(cat::CatArgs),
    /// Check every frame, block, index, footer and the MANIFEST; exit 1 on damage
    Verify(verify::VerifyArgs),
    /// Store size and counts
    Stats(stats::StatsArgs),
    /// Print the effective configuration
    Config,
    /// Rebuild a lost or corrupt MANIFEST from the segments (dry run unless --apply)
    Recover(recover::RecoverArgs),
    /// Search every record (tantivy query syntax: words, "phrases", AND/OR/NOT, field:value)
    Search(search::SearchArgs),
    /// Regex scan over the decompressed log, for what the index cannot express
    Grep(grep::GrepArgs),
    /// Rebuild the full-text index from the log
    Reindex(reindex::ReindexArgs),
    /// Run the compactor once: seal, update views and index, apply retention
    Compact(compact::CompactArgs),
    /// Tokens and cost (USD) by session, day, model, project, agent, tool, task or 5-hour block
    Cost(cost::CostArgs),
    /// One session as a tree: turns, tool calls, subagents, with status, duration and cost
    Tree(tree::TreeArgs),
    /// To-dos and Beads issues as a tree with status, time and cost
    Tasks(tasks::TasksArgs),
    /// Apply the retention policy (--dry-run shows what would go)
    Gc(gc::GcArgs),
    /// Keep a session whatever the retention policy
    Pin(pin::PinArgs),
    /// Undo `ctrace pin`
    Unpin(pin::PinArgs),
    /// Remove one session from the log, the views and the index
    Forget(forget::ForgetArgs),
    /// Add the records of an export archive to this store (checksums verified first)
    Import(import::ImportArgs),
    /// Run the service: background compactor, HTTP hook target, JSON API and live stream
    Serve(serve::ServeArgs),
    /// Run a self-contained demo: record real commands through the hook path and show them
    Demo(demo::DemoArgs),
}

/// Recognises `ctrace [--store DIR] [--config FILE] hook` without building the clap command
/// tree, which costs more than the rest of the hook path. Returns `(store, config)` when the
/// arguments are exactly that; anything else goes through clap.
fn hook_fast_path(args: &[std::ffi::OsString]) -> Option<(Option<PathBuf>, Option<PathBuf>)> {
    let mut store = None;
    let mut config = None;
    let mut saw_hook = false;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_str()?;
        match arg {
            "hook" if !saw_hook => saw_hook = true,
            "--store" | "--config" => {
                let value = PathBuf::from(args.get(i + 1)?);
                if arg == "--store" {
                    store = Some(value);
                } else {
                    config = Some(value);
                }
                i += 1;
            }
            _ => {
                if let Some(value) = arg.strip_prefix("--store=") {
                    store = Some(PathBuf::from(value));
                } else if let Some(value) = arg.strip_prefix("--config=") {
                    config = Some(PathBuf::from(value));
                } else {
                    return None;
                }
            }
        }
        i += 1;
    }
    saw_hook.then_some((store, config))
}

/// Parses arguments and runs the command; returns the process exit code.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((store, config)) = hook_fast_path(&args) {
        return hook::run(store.as_deref(), config.as_deref());
    }
    let cli = Cli::parse_from(args);
    if matches!(cli.command, Command::Hook) {
        return hook::run(cli.store.as_deref(), cli.config.as_deref());
    }
    let result = run(cli);
    // Each range of unreadable records a reader passed over, once (DESIGN.md §8).
    for skipped in crate::log::read::take_skipped() {
        eprintln!(
            "ctrace: warning: skipped offsets {}..{} of {}: {} (`ctrace verify` names the damage, `ctrace recover` rebuilds)",
            skipped.first.0,
            skipped.end.0,
            skipped.file.display(),
            skipped.reason
        );
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return 0;
            }
            eprintln!("ctrace: {error:#}");
            if error.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    }
}

/// An error in what the user asked for (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Whether `error` comes from writing to a closed pipe, however it was wrapped: an
/// `io::Error`, or a `serde_json::Error` whose `source()` skips the `io::Error` it holds.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let root = store_dir(cli.store.as_deref())?;
    let _guard = init_logging(&root);
    let config = load_config(&root, cli.config.as_deref())?;
    match cli.command {
        Command::Hook => Ok(0),
        Command::Install(args) => install::run(&args, false, cli.store.as_deref()),
        Command::Uninstall(args) => install::run(&args, true, cli.store.as_deref()),
        Command::Ingest(args) => ingest::run(&open(&root, config)?, &args),
        Command::Sessions(args) => sessions::run(&open(&root, config)?, &args),
        Command::Show(args) => show::run(&open(&root, config)?, &args),
        Command::Record(args) => record::run(&open(&root, config)?, &args),
        Command::Replay(args) => replay::run(&open(&root, config)?, &args),
        Command::Export(args) => export::run(&open(&root, config)?, &args),
        Command::Cat(args) => cat::run(&open(&root, config)?, &args),
        Command::Verify(args) => verify::run(&open(&root, config)?, &args),
        Command::Stats(args) => stats::run(&open(&root, config)?, &args),
        Command::Config => config_cmd::run(&config),
        Command::Recover(args) => recover::run(&Store::at(&root, config), &args),
        Command::Search(args) => search::run(&open(&root, config)?, &args),
        Command::Grep(args) => grep::run(&open(&root, config)?, &args),
        Command::Reindex(args) => reindex::run(&open(&root, config)?, &args),
        Command::Compact(args) => compact::run(&open(&root, config)?, &args),
        Command::Cost(args) => cost::run(&open(&root, config)?, &args),
        Command::Tree(args) => tree::run(&open(&root, config)?, &args),
        Command::Tasks(args) => tasks::run(&open(&root, config)?, &args),
        Command::Gc(args) => gc::run(&open(&root, config)?, &args),
        Command::Pin(args) => pin::run(&open(&root, config)?, &args, false),
        Command::Unpin(args) => pin::run(&open(&root, config)?, &args, true),
        Command::Forget(args) => forget::run(&open(&root, config)?, &args),
        Command::Import(args) => import::run(&open(&root, config)?, &args),
        Command::Serve(args) => serve::run(&open(&root, config)?, &args),
        Command::Demo(args) => demo::run(&root, config, &args),
    }
}

/// The store directory: `--store`, else `$CTRACE_HOME`, else `$XDG_DATA_HOME/ctrace`, else
/// `~/.local/share/ctrace`.
///
/// # Errors
/// When none of them can be determined (no `HOME`).
pub(crate) fn store_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(home) = env("CTRACE_HOME") {
        return Ok(PathBuf::from(home));
    }
    if let Some(data) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("ctrace"));
    }
    let home = env("HOME").context("cannot find the store: set --store, CTRACE_HOME or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/ctrace"))
}

/// Loads `--config FILE` (must exist) or `<store>/config.toml` (optional).
///
/// # Errors
/// A [`crate::config::ConfigError`] naming the key.
pub(crate) fn load_config(root: &Path, flag: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match flag {
        Some(path) => Config::load(path, true)?,
        None => Config::load(&root.join("config.toml"), false)?,
    })
}

fn open(root: &Path, config: Config) -> anyhow::Result<Store> {
    Store::open(root, config).with_context(|| format!("opening store at {}", root.display()))
}

/// Daily runtime log files kept (the oldest is deleted when a new day's file starts).
const LOG_DAYS: usize = 14;

/// Starts the runtime log: `<store>/logs/ctrace.log.YYYY-MM-DD`, the last [`LOG_DAYS`] days,
/// filter from `CTRACE_LOG` (EnvFilter syntax, default `info`). Returns `None` (and logs nothing) when the directory
/// cannot be created, is not a directory of ours (a symlink, another user's), or holds a
/// symlink where a log file would be: the log is never written outside the store. Write errors
/// later (a full disk) are dropped silently: the runtime log never prints on stderr.
pub(crate) fn init_logging(root: &Path) -> Option<()> {
    use tracing_subscriber::EnvFilter;
    let dir = root.join("logs");
    crate::log::inbox::create_dir_private(&dir).ok()?;
    if logs_hold_a_symlink(&dir) {
        return None;
    }
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("ctrace.log")
        .max_log_files(LOG_DAYS)
        .build(&dir)
        .ok()?;
    let filter = EnvFilter::try_from_env("CTRACE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(appender)
        .with_ansi(false)
        .with_env_filter(filter)
        .log_internal_errors(false)
        .try_init()
        .ok()
}

/// Whether `logs/` holds anything but regular files (tracing-appender opens its files itself,
/// following symlinks).
fn logs_hold_a_symlink(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    entries
        .flatten()
        .any(|entry| entry.file_type().map_or(true, |t| !t.is_file()))
}

pub use crate::serve::CONSUMERS;

/// The compactor of `store` with [`CONSUMERS`], tailing the transcripts hooks name.
pub fn compactor(store: &Store) -> crate::compactor::Compactor<'_> {
    crate::compactor::Compactor::new(store, &CONSUMERS)
        .with_tailer(&crate::ingest::tail::TranscriptTailer)
}

/// The compactor's refresh ([`crate::compactor::Compactor::refresh`]): seals pending inbox data
/// if nobody else holds the lock and tails the transcripts hooks named. What every reading
/// command does first, so no daemon is needed.
///
/// A store that cannot be written (read-only, full disk, another user's) is not an error here:
/// the seal is skipped with one note on stderr, and the command reads the sealed segments plus
/// the inbox in memory.
///
/// # Errors
/// When sealing or tailing fails for another reason.
pub fn refresh(store: &Store) -> anyhow::Result<()> {
    match compactor(store).refresh() {
        Err(error) if error.is_unwritable() => {
            note_unwritable(
                "reading without sealing the inbox",
                &anyhow::Error::from(error),
            );
            Ok(())
        }
        Err(error) => Err(error.into()),
        Ok(_) => Ok(()),
    }
}

/// Prints, once per process, that the store cannot be written and what the command does
/// instead.
pub(crate) fn note_unwritable(instead: &str, error: &dyn std::fmt::Display) {
    static NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    tracing::warn!(%error, "store not writable: {instead}");
    if !NOTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("ctrace: note: the store cannot be written ({error:#}); {instead}");
    }
}

/// The views, brought up to date; when the store cannot be written, folded from the sealed log
/// in memory for this command (with a note).
///
/// # Errors
/// When the views cannot be read or folded.
pub(crate) fn views_for_reading(store: &Store) -> anyhow::Result<crate::views::ViewsDb> {
    let (db, fallback) =
        crate::views::access::open_current_or_memory(store).context("updating the views")?;
    if let Some(error) = fallback {
        note_unwritable(
            "views folded in memory from the sealed log",
            &anyhow::Error::new(error),
        );
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn hook_fast_path_matches_only_the_hook_command() {
        assert_eq!(
            hook_fast_path(&args(&["ctrace", "hook"])),
            Some((None, None))
        );
        assert_eq!(
            hook_fast_path(&args(&["ctrace", "--store", "/s", "hook", "--config=/c"])),
            Some((Some("/s".into()), Some("/c".into())))
        );
        assert_eq!(
            hook_fast_path(&args(&["ctrace", "--store=/s", "hook"])),
            Some((Some("/s".into()), None))
        );
        assert_eq!(hook_fast_path(&args(&["ctrace", "hook", "--help"])), None);
        assert_eq!(hook_fast_path(&args(&["ctrace", "sessions"])), None);
        assert_eq!(hook_fast_path(&args(&["ctrace", "hook", "hook"])), None);
        assert_eq!(hook_fast_path(&args(&["ctrace", "--store"])), None);
        assert_eq!(hook_fast_path(&args(&["ctrace"])), None);
    }

    /// Issue 14 item 20: `serde_json::to_writer(..)?` into a closed pipe is a broken pipe too
    /// (its `source()` does not expose the `io::Error`).
    #[test]
    fn broken_pipe_is_recognised_through_serde_json() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let json = serde_json::to_writer(Closed, &[1, 2, 3]).unwrap_err();
        let error = anyhow::Error::from(json).context("writing rows");
        assert!(is_broken_pipe(&error));
        let other = anyhow::Error::from(std::io::Error::other("disk"));
        assert!(!is_broken_pipe(&other));
        let direct = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&direct));
    }
}
