//! Claude Code's own shapes, in one place: hook payloads ([`hook`]), transcript lines
//! ([`transcript`]), tool calls ([`tool`]), the hook event table ([`events`]) and one-line
//! summaries of payloads for people ([`summary`]). The record
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
pub mod summary;
pub mod tool;
pub mod transcript;

pub use hook::hook_record;
pub use lenient::replace_lone_surrogates;
pub use transcript::{parse_timestamp, transcript_record};

/// Members of hook payloads and transcript lines that hold ids, paths, versions, signatures
/// and bookkeeping rather than text a person would search for (the index skips their values).
pub const BOOKKEEPING_KEYS: &[&str] = &[
    "agentId",
    "agent_transcript_path",
    "cwd",
    "entrypoint",
    "gitBranch",
    "id",
    "leafUuid",
    "logicalParentUuid",
    "messageId",
    "parentToolUseID",
    "parentUuid",
    "permission_mode",
    "permissionMode",
    "promptId",
    "prompt_id",
    "requestId",
    "role",
    "sessionId",
    "session_id",
    "signature",
    "slug",
    "stop_reason",
    "subtype",
    "timestamp",
    "toolUseID",
    "toolUseResult",
    "tool_use_id",
    "transcript_path",
    "type",
    "usage",
    "userType",
    "uuid",
    "version",
];

#[cfg(test)]
mod tests;
