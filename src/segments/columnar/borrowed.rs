//! The record a compact envelope describes, as the record model's borrowed view
//! ([`RecordRef`]) pointing into a block's raw content.

use super::decode::payload_ts;
use super::decode::{EntrySource, Fields, Loc};
use super::{BlockDecodeError, KIND_HOOK, SLOT_SESSION};
use crate::model::{BodyRef, HookRef, OriginRef, RecordRef, Source, TranscriptRef};

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
                truncated: None,
                arrival_time: false,
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
                truncated: None,
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
        record
            .encode_into(out)
            .map_err(|_| "record does not encode")
    }
}
