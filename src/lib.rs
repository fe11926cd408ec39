//! ctrace: a complete, checksummed, append-only record of what Claude Code agents did.
//!
//! # Layout
//!
//! Modules in data-flow order; the layering rule is in `ARCHITECTURE.md` (checked by
//! `tests/architecture.rs`):
//!
//! - [`segments`]: bytes on disk: the frame codec, the sealed segment format, read-only maps.
//! - [`log`]: the store as a whole: inbox append, sealing, MANIFEST, recovery, reading, verify.
//! - [`ingest`]: parsers that turn hook payloads, transcript lines and asciicast files into
//!   records, and bulk ingest of files and directories with per-file cursors.
//! - [`pty`]: the PTY recorder (portable-pty); it only uses the log's append API.
//! - [`views`]: the compactor's SQLite views (sessions, turns, spans, tasks, usage) and cost.
//! - [`index`]: the tantivy full-text index and its indexer.
//! - [`compactor`]: one pass from new log data to everything derived (seal, views, index,
//!   retention with its log ↔ index crash protocol, recompression), and the loop a service
//!   drives.
//! - [`export`]: export archives (write, verify, import; age encryption), asciicast output and
//!   OTLP/JSON traces.
//! - [`serve`]: `ctrace serve`: the compactor loop on its own thread, the HTTP hook target, the
//!   JSON API and the Server-Sent Events stream (tokio, axum).
//! - [`config`]: the configuration file (`config.toml`).
//! - [`model`]: the record model (`DESIGN.md` §2), seen by every layer.
//! - [`fs`]: atomic replacement, directory sync, idempotent removal.
//! - [`cli`]: the `ctrace` command line (clap), one file per subcommand.
//! - [`fault`]: I/O fault injection points for the fault tests (compiled out of release builds).
//!
//! `ARCHITECTURE.md` walks the same order.

pub mod claude;
pub mod cli;
pub mod compactor;
pub mod config;
pub mod export;
pub mod fault;
pub mod fs;
pub mod index;
pub mod ingest;
pub mod log;
pub mod model;
pub mod otlp;
pub mod pty;
pub mod segments;
pub mod serve;
pub mod views;

/// The current time in ns since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
