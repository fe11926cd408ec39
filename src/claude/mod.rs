//! Claude Code's own shapes, in one place: hook payloads ([`hook`]), transcript lines
//! ([`transcript`]), tool calls ([`tool`]) and the hook event table ([`events`]). The record
//! builders of ingest, the fold of the views, the index's text extraction, the CLI's one-line
//! summaries and `install` read Claude Code's JSON through this module, so a field Claude Code
//! adds or renames is one edit here.
//!
//! Sources: the hooks reference (<https://code.claude.com/docs/en/hooks>), the settings
//! reference (<https://code.claude.com/docs/en/settings>), and transcript files as Claude Code
//! writes them (the corpus under `../shared/corpus`, described in its `SOURCES.md`).
//!
//! Layer: bottom (with `model`, `config`, `segments`, `fs`): it uses only the record model.

pub mod events;
pub mod hook;
mod lenient;
pub mod tool;
pub mod transcript;

pub use hook::hook_record;
pub use lenient::replace_lone_surrogates;
pub use transcript::{parse_timestamp, transcript_record};

#[cfg(test)]
mod tests;
