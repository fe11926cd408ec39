//! Borrowed decoding of a record for the views: only the fields they read, strings and
//! payloads borrowed from the block.

use serde::Deserialize;

use crate::model::{Malformed, PtyKind, Source, Usage};

/// A record decoded for the views: only the fields they use, strings and payloads borrowed
/// from the block (no copies). Field names follow `model::Record`'s named encoding.
#[derive(Debug, PartialEq, Deserialize)]
pub(in crate::views) struct ViewRecord<'a> {
    pub(in crate::views) ts: u64,
    pub(in crate::views) source: Source,
    #[serde(default, borrow)]
    pub(in crate::views) session: Option<&'a str>,
    #[serde(borrow)]
    pub(in crate::views) body: ViewBody<'a>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(in crate::views) enum ViewBody<'a> {
    #[serde(borrow)]
    Hook(HookView<'a>),
    #[serde(borrow)]
    Transcript(TranscriptView<'a>),
    #[serde(borrow)]
    Pty(PtyView<'a>),
    Internal(serde::de::IgnoredAny),
}

/// The PTY fields the views read (the session list's status and project).
#[derive(Debug, PartialEq, Deserialize)]
pub(in crate::views) struct PtyView<'a> {
    pub(in crate::views) kind: PtyKind,
    #[serde(default, borrow)]
    pub(in crate::views) cwd: Option<&'a str>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(in crate::views) struct HookView<'a> {
    #[serde(default, borrow)]
    pub(in crate::views) event: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) tool_name: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) tool_use_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) agent_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) agent_type: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) prompt_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) cwd: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) pty_session: Option<&'a str>,
    #[serde(default)]
    pub(in crate::views) malformed: Option<Malformed>,
    /// The record's time is only its arrival (`model::HookBody::arrival_time`).
    #[serde(default)]
    pub(in crate::views) arrival_time: bool,
    #[serde(borrow, with = "serde_bytes")]
    pub(in crate::views) raw: &'a [u8],
}

#[derive(Debug, PartialEq, Deserialize)]
pub(in crate::views) struct OriginView<'a> {
    #[serde(borrow)]
    pub(in crate::views) file: &'a str,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(in crate::views) struct TranscriptView<'a> {
    #[serde(default, borrow)]
    pub(in crate::views) line_type: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) subtype: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) uuid: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) parent_uuid: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) request_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) message_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(in crate::views) model: Option<&'a str>,
    #[serde(default)]
    pub(in crate::views) usage: Option<Usage>,
    #[serde(default)]
    pub(in crate::views) is_sidechain: Option<bool>,
    #[serde(default, borrow)]
    pub(in crate::views) agent_id: Option<&'a str>,
    #[serde(default)]
    pub(in crate::views) malformed: Option<Malformed>,
    #[serde(borrow)]
    pub(in crate::views) origin: OriginView<'a>,
    #[serde(borrow, with = "serde_bytes")]
    pub(in crate::views) raw: &'a [u8],
}

/// Decodes the views' part of a record's bytes.
///
/// # Errors
/// The decoder's error when the bytes are not a record.
pub(in crate::views) fn decode(bytes: &[u8]) -> Result<ViewRecord<'_>, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}
