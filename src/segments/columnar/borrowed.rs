//! Borrowed mirrors of `model::Record` and its parts, pointing into a block's raw content,
//! and their construction from decoded envelope fields.

use serde::{Deserialize, Serialize};

use super::decode::payload_ts;
use super::decode::{EntrySource, Fields, Loc};
use super::{BlockDecodeError, KIND_HOOK, SLOT_SESSION};
use crate::model::{Malformed, Source, Usage};

impl Fields {
    /// The record these fields describe, borrowed from the block (strings checked to be
    /// UTF-8, the timestamp taken from the payload when it is not stored).
    pub(super) fn record_ref<'a>(
        &self,
        source: EntrySource<'a>,
    ) -> Result<RecordRef<'a>, BlockDecodeError> {
        let text = |loc: Option<Loc>| -> Result<Option<&'a str>, BlockDecodeError> {
            loc.map(|loc| {
                std::str::from_utf8(source.resolve(loc)?).map_err(|_| "string is not UTF-8")
            })
            .transpose()
        };
        let raw = source
            .payloads
            .get(self.raw.0..self.raw.1)
            .ok_or("payload out of range")?;
        let ts = match self.ts {
            Some(ts) => ts,
            None => payload_ts(raw).ok_or("payload has no timestamp")?,
        };
        let origin = self
            .origin
            .map(
                |(file, position, len)| -> Result<OriginRef<'a>, BlockDecodeError> {
                    Ok(OriginRef {
                        file: text(Some(file))?.unwrap_or_default(),
                        position,
                        len,
                    })
                },
            )
            .transpose()?;
        let s = &self.strings;
        let body = if self.kind == KIND_HOOK {
            BodyRef::Hook(HookRef {
                event: text(s[0])?,
                tool_name: text(s[1])?,
                tool_use_id: text(s[2])?,
                agent_id: text(s[3])?,
                agent_type: text(s[4])?,
                prompt_id: text(s[5])?,
                cwd: text(s[6])?,
                transcript_path: text(s[7])?,
                agent_transcript_path: text(s[8])?,
                pty_session: text(s[9])?,
                malformed: self.malformed,
                origin,
                raw,
            })
        } else {
            BodyRef::Transcript(TranscriptRef {
                line_type: text(s[10])?,
                subtype: text(s[11])?,
                uuid: text(s[12])?,
                parent_uuid: text(s[13])?,
                request_id: text(s[14])?,
                message_id: text(s[15])?,
                model: text(s[16])?,
                usage: self.usage.clone(),
                is_sidechain: self.is_sidechain,
                agent_id: text(s[17])?,
                malformed: self.malformed,
                origin: origin.ok_or("transcript envelope without origin")?,
                raw,
            })
        };
        Ok(RecordRef {
            ts,
            source: if self.kind == KIND_HOOK {
                Source::Hook
            } else {
                Source::Transcript
            },
            session: text(s[SLOT_SESSION])?,
            body,
            redactions: self.redactions,
        })
    }

    /// Writes the encoded bytes of the record these fields describe (exactly what
    /// `Record::encode` gives for it; see [`RecordRef`]) to `out`.
    pub(super) fn encode_into(
        &self,
        source: EntrySource<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), BlockDecodeError> {
        let record = self.record_ref(source)?;
        rmp_serde::encode::write_named(out, &record).map_err(|_| "record does not encode")
    }
}

// Borrowed mirrors of `model::{Record, HookBody, TranscriptBody, Origin}` with the same
// field names, order and serde attributes, so rmp-serde encodes them to the same bytes without
// copying strings and payloads into owned values first. `round_trips_every_kind_of_record`
// and the corpus tests check the bytes are equal. They are also what [`for_each_record`] gives
// readers that use the fields in place.

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A hook or transcript record borrowed from a columnar block: `model::Record` with
/// strings and payload pointing into the block's raw content. Encodes (rmp-serde, named) to
/// exactly the bytes `Record::encode` gives for the same record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef<'a> {
    /// Record time, ns since the Unix epoch.
    pub ts: u64,
    /// Where the record came from (hook or transcript).
    pub source: Source,
    /// Claude Code session id.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    /// The body.
    #[serde(borrow)]
    pub body: BodyRef<'a>,
    /// Secrets redacted from the payload.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u32,
}

/// The body of a [`RecordRef`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyRef<'a> {
    /// A hook payload (`model::HookBody`).
    #[serde(borrow)]
    Hook(HookRef<'a>),
    /// A transcript line (`model::TranscriptBody`).
    #[serde(borrow)]
    Transcript(TranscriptRef<'a>),
}

impl BodyRef<'_> {
    /// The payload: the hook's JSON or the transcript line, as received.
    pub fn raw(&self) -> &[u8] {
        match self {
            BodyRef::Hook(hook) => hook.raw,
            BodyRef::Transcript(line) => line.raw,
        }
    }
}

/// Where a payload was read from (`model::Origin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginRef<'a> {
    /// The file.
    pub file: &'a str,
    /// Byte position of the payload in the file.
    pub position: u64,
    /// Length of the payload in the file, in bytes.
    pub len: u64,
}

/// A hook payload's fields (`model::HookBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRef<'a> {
    /// `hook_event_name`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    /// `tool_name`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<&'a str>,
    /// `tool_use_id`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<&'a str>,
    /// `agent_id`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<&'a str>,
    /// `agent_type`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<&'a str>,
    /// `prompt_id`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<&'a str>,
    /// `cwd`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<&'a str>,
    /// `transcript_path`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub transcript_path: Option<&'a str>,
    /// `agent_transcript_path`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_transcript_path: Option<&'a str>,
    /// The PTY recording the hook ran under.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub pty_session: Option<&'a str>,
    /// Why the payload could not be fully understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<Malformed>,
    /// Where the payload was read from (imports).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginRef<'a>>,
    /// The payload as received.
    #[serde(borrow, with = "serde_bytes")]
    pub raw: &'a [u8],
}

/// A transcript line's fields (`model::TranscriptBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptRef<'a> {
    /// `type`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub line_type: Option<&'a str>,
    /// `subtype` (or `data.type` of progress lines).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<&'a str>,
    /// `uuid`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<&'a str>,
    /// `parentUuid`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<&'a str>,
    /// `requestId`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// `message.id`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    /// `message.model`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    /// `message.usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `isSidechain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_sidechain: Option<bool>,
    /// `agentId`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<&'a str>,
    /// Why the line could not be fully understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<Malformed>,
    /// The transcript file and the line's place in it.
    #[serde(borrow)]
    pub origin: OriginRef<'a>,
    /// The line as read (without its newline).
    #[serde(borrow, with = "serde_bytes")]
    pub raw: &'a [u8],
}
