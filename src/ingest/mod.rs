//! Parsers that turn Claude Code hook payloads, transcript lines and asciicast files into
//! records, and bulk ingest of files and directories.

pub mod asciicast;
pub mod bounded;
pub mod bulk;
pub mod cast_file;

pub mod hook;
pub mod json_array;
pub mod json_file;
pub mod redact;
pub mod tail;
pub mod watch;

pub use bulk::{FileKind, IngestError, IngestSummary, Ingester, SkippedFile};
