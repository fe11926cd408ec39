//! Encoding a columnar block: compact envelopes with strings as references into the
//! record's own payload, then the payloads back to back.

use super::decode::payload_ts;
use super::{
    BLOCK_MAGIC, KIND_HOOK, KIND_OPAQUE, KIND_TRANSCRIPT, KIND_TS_FROM_PAYLOAD, SLOT_FILE,
    SLOT_SESSION, SLOTS, STR_LIT, STR_NONE, STR_REF, STR_REF_END, STR_SAME, find, malformed_code,
    put_varint, zigzag,
};
use crate::model::{BodyRef, HookRef, OriginRef, RecordRef, TranscriptRef};

// --- encoding ---------------------------------------------------------------------------------

/// Per-block encoder state: the previous envelope's values, for "same" and deltas.
#[derive(Default)]
pub(super) struct EncodeState {
    pub(super) ts: u64,
    pub(super) slots: [Option<String>; SLOTS],
    pub(super) origin_end: Option<u64>,
}

impl EncodeState {
    pub(super) fn string(
        &mut self,
        out: &mut Vec<u8>,
        slot: usize,
        value: Option<&str>,
        raw: &[u8],
    ) {
        let Some(value) = value else {
            out.push(STR_NONE);
            self.slots[slot] = None;
            return;
        };
        if self.slots[slot].as_deref() == Some(value) {
            out.push(STR_SAME);
            return;
        }
        let found = find(raw, value.as_bytes());
        match found {
            Some(position) => {
                let from_end = raw.len() - position;
                if from_end < position {
                    out.push(STR_REF_END);
                    put_varint(out, from_end as u64);
                } else {
                    out.push(STR_REF);
                    put_varint(out, position as u64);
                }
                put_varint(out, value.len() as u64);
            }
            None => {
                out.push(STR_LIT);
                put_varint(out, value.len() as u64);
                out.extend_from_slice(value.as_bytes());
            }
        }
        self.slots[slot] = Some(value.to_owned());
    }

    /// Writes the kind byte, the payload length and the timestamp.
    pub(super) fn head(&mut self, out: &mut Vec<u8>, kind: u8, ts: u64, raw: &[u8]) {
        let derived = payload_ts(raw) == Some(ts);
        out.push(if derived {
            kind | KIND_TS_FROM_PAYLOAD
        } else {
            kind
        });
        if memchr::memchr(b'\n', raw).is_none() {
            put_varint(out, 0);
        } else {
            put_varint(out, raw.len() as u64 + 1);
        }
        if !derived {
            put_varint(out, zigzag(ts.wrapping_sub(self.ts) as i64));
            self.ts = ts;
        }
    }

    pub(super) fn origin(&mut self, out: &mut Vec<u8>, origin: Option<&OriginRef<'_>>, raw: &[u8]) {
        let Some(origin) = origin else {
            out.push(0);
            self.origin_end = None;
            self.slots[SLOT_FILE] = None;
            return;
        };
        out.push(1);
        let same_file = self.slots[SLOT_FILE].as_deref() == Some(origin.file);
        self.string(out, SLOT_FILE, Some(origin.file), raw);
        let predicted = if same_file {
            self.origin_end.unwrap_or(0)
        } else {
            0
        };
        put_varint(out, zigzag(origin.position.wrapping_sub(predicted) as i64));
        put_varint(
            out,
            zigzag(origin.len.wrapping_sub(raw.len() as u64) as i64),
        );
        self.origin_end = Some(origin.position.wrapping_add(origin.len).wrapping_add(1));
    }
}

/// Writes the compact envelope of `record`, one [`has_envelope`] accepts (PTY, internal and
/// OTLP records write nothing: the caller stores those opaque).
fn encode_compact(state: &mut EncodeState, out: &mut Vec<u8>, record: &RecordRef<'_>) {
    match &record.body {
        BodyRef::Hook(hook) => {
            let raw = hook.raw;
            state.head(out, KIND_HOOK, record.ts, raw);
            state.string(out, SLOT_SESSION, record.session, raw);
            put_varint(out, u64::from(record.redactions));
            let fields = [
                &hook.event,
                &hook.tool_name,
                &hook.tool_use_id,
                &hook.agent_id,
                &hook.agent_type,
                &hook.prompt_id,
                &hook.cwd,
                &hook.transcript_path,
                &hook.agent_transcript_path,
                &hook.pty_session,
            ];
            for (slot, value) in fields.into_iter().enumerate() {
                state.string(out, slot, *value, raw);
            }
            out.push(malformed_code(hook.malformed));
            state.origin(out, hook.origin.as_ref(), raw);
        }
        BodyRef::Transcript(line) => {
            let raw = line.raw;
            state.head(out, KIND_TRANSCRIPT, record.ts, raw);
            state.string(out, SLOT_SESSION, record.session, raw);
            put_varint(out, u64::from(record.redactions));
            let fields = [
                &line.line_type,
                &line.subtype,
                &line.uuid,
                &line.parent_uuid,
                &line.request_id,
                &line.message_id,
                &line.model,
            ];
            for (i, value) in fields.into_iter().enumerate() {
                state.string(out, 10 + i, *value, raw);
            }
            match &line.usage {
                None => out.push(0),
                Some(u) => {
                    out.push(1);
                    for n in [
                        u.input_tokens,
                        u.output_tokens,
                        u.cache_creation_input_tokens,
                        u.cache_read_input_tokens,
                        u.ephemeral_5m_input_tokens,
                        u.ephemeral_1h_input_tokens,
                    ] {
                        put_varint(out, n);
                    }
                }
            }
            out.push(match line.is_sidechain {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
            state.string(out, 17, line.agent_id, raw);
            out.push(malformed_code(line.malformed));
            state.origin(out, Some(&line.origin), raw);
        }
        BodyRef::Pty(_) | BodyRef::Internal(_) | BodyRef::Otlp(_) => {}
    }
}

/// Whether the compact envelope describes every field of `record`. Written as exhaustive
/// patterns on purpose: a field added to the record model does not compile here until it is
/// either given a place in the envelope (`_` below) or checked to be absent, in which case a
/// record that has it is stored opaque rather than losing it. Today the fields without a place
/// are `truncated` and a hook's `arrival_time`; PTY, internal and OTLP records are always
/// opaque.
fn has_envelope(record: &RecordRef<'_>) -> bool {
    let RecordRef {
        ts: _,
        source: _,
        session: _,
        body,
        redactions: _,
    } = record;
    match body {
        BodyRef::Hook(HookRef {
            event: _,
            tool_name: _,
            tool_use_id: _,
            agent_id: _,
            agent_type: _,
            prompt_id: _,
            cwd: _,
            transcript_path: _,
            agent_transcript_path: _,
            pty_session: _,
            malformed: _,
            origin: _,
            truncated,
            arrival_time,
            raw: _,
        }) => truncated.is_none() && !arrival_time,
        BodyRef::Transcript(TranscriptRef {
            line_type: _,
            subtype: _,
            uuid: _,
            parent_uuid: _,
            request_id: _,
            message_id: _,
            model: _,
            usage: _,
            is_sidechain: _,
            agent_id: _,
            malformed: _,
            origin:
                OriginRef {
                    file: _,
                    position: _,
                    len: _,
                },
            truncated,
            raw: _,
        }) => truncated.is_none(),
        BodyRef::Pty(_) | BodyRef::Internal(_) | BodyRef::Otlp(_) => false,
    }
}

/// Encodes records (each the encoded bytes of a `Record`, as given to the segment writer)
/// into a columnar block's raw content, appended to `out`.
///
/// A hook or transcript record is written in compact form only when its bytes are exactly
/// `Record::encode` of what they decode to (always true for records ctrace writes); anything
/// else is stored opaque, so the block always gives back the bytes it was given. Costs one
/// record decode and one encode per hook or transcript record.
pub fn encode_block<'a>(records: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let mut envelopes = Vec::new();
    let mut payloads = Vec::new();
    let mut count = 0u64;
    let mut state = EncodeState::default();
    let mut again = Vec::new();
    for bytes in records {
        count += 1;
        // Decoded borrowed (no copies); records the envelope cannot describe stay opaque
        // ([`has_envelope`]), as do bytes that are not exactly what ctrace's encoder writes
        // for what they decode to (for example a field this build does not know).
        let compact = RecordRef::decode(bytes).ok().filter(|record| {
            has_envelope(record) && {
                again.clear();
                record.encode_into(&mut again).is_ok() && again == bytes
            }
        });
        match compact {
            Some(record) => {
                encode_compact(&mut state, &mut envelopes, &record);
                let raw = record.body.raw();
                payloads.extend_from_slice(raw);
                if memchr::memchr(b'\n', raw).is_none() {
                    payloads.push(b'\n');
                }
            }
            None => {
                envelopes.push(KIND_OPAQUE);
                put_varint(&mut envelopes, bytes.len() as u64);
                payloads.extend_from_slice(bytes);
            }
        }
    }
    out.extend_from_slice(&BLOCK_MAGIC);
    put_varint(out, count);
    put_varint(out, envelopes.len() as u64);
    out.extend_from_slice(&envelopes);
    out.extend_from_slice(&payloads);
}
