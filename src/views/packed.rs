//! Records read ahead of the fold, handed from the reading thread to the folding thread: per
//! block, the strings the fold reads copied into one text buffer, each record's fields as
//! ranges into it, and its JSON already extracted.
//!
//! The reading thread decodes each record once, in place in the decompressed block
//! ([`columnar::for_each_record`]; [`RecordRef::decode`] only for opaque
//! records and blocks of format versions 1 and 2). The folding thread rebuilds a
//! [`RecordRef`] from the ranges without decoding anything, and the buffers go back to the
//! reading thread to be reused, so no per-record allocation crosses threads.
//!
//! Invariants: [`Text::view`] gives the [`RecordRef`] it was packed from, except the payloads,
//! which only [`fold::extract`] reads and are empty here, and the fields the fold does not
//! read, which are absent.

use std::ops::Range;

use super::fold;
use crate::model::{
    BodyRef, HookRef, InternalRef, OriginRef, OtlpRef, PtyRef, RecordRef, TranscriptRef,
};
use crate::model::{Malformed, PtyKind, Signal, Source, Usage};
use crate::segments::Offset;
use crate::segments::columnar::BlockRecord;

/// A string of a packed record: a range of its block's text, or absent.
type Str = Option<Range<usize>>;

/// A hook record's fields (see [`HookRef`]).
#[derive(Debug)]
struct PackedHook {
    event: Str,
    tool_name: Str,
    tool_use_id: Str,
    agent_id: Str,
    agent_type: Str,
    prompt_id: Str,
    cwd: Str,
    pty_session: Str,
    malformed: Option<Malformed>,
    arrival_time: bool,
}

/// A transcript record's fields (see [`TranscriptRef`]).
#[derive(Debug)]
struct PackedTranscript {
    line_type: Str,
    subtype: Str,
    uuid: Str,
    parent_uuid: Str,
    request_id: Str,
    message_id: Str,
    model: Str,
    usage: Option<Usage>,
    is_sidechain: Option<bool>,
    agent_id: Str,
    malformed: Option<Malformed>,
    file: Range<usize>,
}

#[derive(Debug)]
enum PackedBody {
    Hook(PackedHook),
    Transcript(PackedTranscript),
    /// A PTY record's kind and working directory.
    Pty(PtyKind, Str),
    /// An OTLP record's signal (the fold reads what `fold::extract` took from its payload).
    Otlp(Signal),
    /// Internal records (the fold reads only their session and time).
    Other,
}

/// A record's view fields, strings as ranges of its block's text.
#[derive(Debug)]
pub(super) struct Packed {
    ts: u64,
    source: Source,
    session: Str,
    body: PackedBody,
}

/// One record of a [`PackedBlock`].
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "items live in a block's reused vector; boxing would allocate per record"
)]
pub(super) enum Item {
    /// Below the offset the fold starts at (not decoded).
    Skipped,
    /// The record's bytes do not decode: the decoder's message.
    Unreadable(String),
    /// The record's fields and its extracted JSON.
    Record(Packed, fold::Extracted),
}

/// The strings of a block's records, back to back.
#[derive(Debug, Default)]
pub(super) struct Text(String);

impl Text {
    fn put(&mut self, value: Option<&str>) -> Str {
        let value = value?;
        let start = self.0.len();
        self.0.push_str(value);
        Some(start..self.0.len())
    }

    fn get(&self, range: &Str) -> Option<&str> {
        range.as_ref().and_then(|r| self.0.get(r.clone()))
    }

    /// The view of `packed`, a record of the block this text belongs to: the fields the fold
    /// reads; payloads (`raw`, PTY `data`) are empty and the fields it does not read
    /// (`transcript_path`, `agent_transcript_path`, origin positions, `truncated`,
    /// `redactions`, PTY start fields, internal events) are absent.
    pub(super) fn view<'a>(&'a self, packed: &Packed) -> RecordRef<'a> {
        let body = match &packed.body {
            PackedBody::Hook(h) => BodyRef::Hook(HookRef {
                event: self.get(&h.event),
                tool_name: self.get(&h.tool_name),
                tool_use_id: self.get(&h.tool_use_id),
                agent_id: self.get(&h.agent_id),
                agent_type: self.get(&h.agent_type),
                prompt_id: self.get(&h.prompt_id),
                cwd: self.get(&h.cwd),
                transcript_path: None,
                agent_transcript_path: None,
                pty_session: self.get(&h.pty_session),
                malformed: h.malformed,
                origin: None,
                truncated: None,
                arrival_time: h.arrival_time,
                raw: &[],
            }),
            PackedBody::Transcript(t) => BodyRef::Transcript(TranscriptRef {
                line_type: self.get(&t.line_type),
                subtype: self.get(&t.subtype),
                uuid: self.get(&t.uuid),
                parent_uuid: self.get(&t.parent_uuid),
                request_id: self.get(&t.request_id),
                message_id: self.get(&t.message_id),
                model: self.get(&t.model),
                usage: t.usage.clone(),
                is_sidechain: t.is_sidechain,
                agent_id: self.get(&t.agent_id),
                malformed: t.malformed,
                origin: OriginRef {
                    file: self.0.get(t.file.clone()).unwrap_or_default(),
                    position: 0,
                    len: 0,
                },
                truncated: None,
                raw: &[],
            }),
            PackedBody::Pty(kind, cwd) => BodyRef::Pty(PtyRef {
                kind: *kind,
                data: &[],
                command: None,
                cwd: self.get(cwd),
                term: None,
                width: None,
                height: None,
                status: None,
            }),
            PackedBody::Otlp(signal) => BodyRef::Otlp(OtlpRef {
                signal: *signal,
                name: None,
                prompt_id: None,
                request_id: None,
                tool_use_id: None,
                truncated: None,
                raw: &[],
            }),
            PackedBody::Other => BodyRef::Internal(InternalRef {
                event: "",
                detail: "",
                data: &[],
            }),
        };
        RecordRef {
            ts: packed.ts,
            source: packed.source,
            session: self.get(&packed.session),
            body,
            redactions: 0,
        }
    }
}

/// A block's records as the fold reads them.
#[derive(Debug, Default)]
pub(super) struct PackedBlock {
    /// The strings of every record.
    pub(super) text: Text,
    /// The records in offset order.
    pub(super) items: Vec<Item>,
}

impl PackedBlock {
    /// Empties the block, keeping its buffers for reuse.
    pub(super) fn clear(&mut self) {
        self.text.0.clear();
        self.items.clear();
    }

    fn put(&mut self, value: Option<&str>) -> Str {
        self.text.put(value)
    }

    /// Adds a record that was not decoded (below the start).
    pub(super) fn push_skipped(&mut self) {
        self.items.push(Item::Skipped);
    }

    /// Adds a record whose bytes do not decode.
    pub(super) fn push_unreadable(&mut self, error: String) {
        self.items.push(Item::Unreadable(error));
    }

    /// Extracts the JSON of `record` and adds the record.
    pub(super) fn push(&mut self, record: &RecordRef<'_>) {
        let extracted = fold::extract(record);
        let session = self.put(record.session);
        let body = match &record.body {
            BodyRef::Hook(hook) => PackedBody::Hook(PackedHook {
                event: self.put(hook.event),
                tool_name: self.put(hook.tool_name),
                tool_use_id: self.put(hook.tool_use_id),
                agent_id: self.put(hook.agent_id),
                agent_type: self.put(hook.agent_type),
                prompt_id: self.put(hook.prompt_id),
                cwd: self.put(hook.cwd),
                pty_session: self.put(hook.pty_session),
                malformed: hook.malformed,
                arrival_time: hook.arrival_time,
            }),
            BodyRef::Transcript(line) => PackedBody::Transcript(PackedTranscript {
                line_type: self.put(line.line_type),
                subtype: self.put(line.subtype),
                uuid: self.put(line.uuid),
                parent_uuid: self.put(line.parent_uuid),
                request_id: self.put(line.request_id),
                message_id: self.put(line.message_id),
                model: self.put(line.model),
                usage: line.usage.clone(),
                is_sidechain: line.is_sidechain,
                agent_id: self.put(line.agent_id),
                malformed: line.malformed,
                file: self.put(Some(line.origin.file)).unwrap_or_default(),
            }),
            BodyRef::Pty(pty) => PackedBody::Pty(pty.kind, self.put(pty.cwd)),
            BodyRef::Otlp(otlp) => PackedBody::Otlp(otlp.signal),
            BodyRef::Internal(_) => PackedBody::Other,
        };
        self.items.push(Item::Record(
            Packed {
                ts: record.ts,
                source: record.source,
                session,
                body,
            },
            extracted,
        ));
    }

    /// Adds the record at `offset` of a block whose records are encoded bytes (format versions
    /// 1 and 2, or an opaque record of a columnar block): decoded unless below `from`.
    pub(super) fn push_bytes(&mut self, offset: Offset, from: Offset, bytes: &[u8]) {
        if offset < from {
            self.push_skipped();
            return;
        }
        match RecordRef::decode(bytes) {
            Ok(record) => self.push(&record),
            Err(error) => self.push_unreadable(error.to_string()),
        }
    }

    /// Adds the record at `offset` of a columnar block, given in place by
    /// [`crate::segments::columnar::for_each_record`]; skipped when below `from`.
    pub(super) fn push_block_record(
        &mut self,
        offset: Offset,
        from: Offset,
        record: BlockRecord<'_>,
    ) {
        match record {
            _ if offset < from => self.push_skipped(),
            BlockRecord::Compact(record) => self.push(&record),
            BlockRecord::Opaque(bytes) => self.push_bytes(offset, from, bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, InternalBody, Origin, PtyBody, PtyKind, Record, Source};
    use crate::segments::columnar;

    fn records() -> Vec<Record> {
        let hook = |raw: &str| crate::claude::hook_record(raw.as_bytes().to_vec(), 10, None, None);
        let line = |raw: &str, position: u64| {
            crate::claude::transcript_record(
                raw.as_bytes().to_vec(),
                Origin {
                    file: "/home/u/.claude/projects/-p/s1.jsonl".into(),
                    position,
                    len: raw.len() as u64,
                },
                7,
                Some("fallback"),
            )
        };
        vec![
            hook(
                r#"{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"toolu_1","cwd":"/x","tool_input":{"command":"bd close bd-1"}}"#,
            ),
            hook(r#"{"session_id":"s1","hook_event_name":"SubagentStop","agent_id":"a1"}"#),
            line(
                r#"{"type":"user","sessionId":"s1","uuid":"u1","cwd":"/x","timestamp":"2025-06-26T11:45:51.979Z","message":{"role":"user","content":"hi"}}"#,
                0,
            ),
            line(
                r#"{"parentUuid":"u1","isSidechain":true,"agentId":"a1","type":"assistant","sessionId":"s1","uuid":"u2","requestId":"req_1","timestamp":"2025-06-26T11:45:52Z","message":{"id":"msg_1","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"/a"}}],"usage":{"input_tokens":3,"output_tokens":9}}}"#,
                200,
            ),
            line("{not json", 600),
            Record {
                ts: 99,
                source: Source::Pty,
                session: Some("pty-1".into()),
                body: Body::Pty(PtyBody {
                    kind: PtyKind::Output,
                    data: b"hi".to_vec(),
                    command: None,
                    cwd: None,
                    term: None,
                    width: None,
                    height: None,
                    status: None,
                }),
                redactions: 0,
            },
            Record {
                ts: 100,
                source: Source::Internal,
                session: None,
                body: Body::Internal(InternalBody {
                    event: "inbox_damage".into(),
                    detail: "x".into(),
                    data: Vec::new(),
                }),
                redactions: 0,
            },
        ]
    }

    /// `view` as the fold sees it after packing ([`Text::view`]): no payload, and only the
    /// fields the fold reads.
    fn as_packed(mut view: RecordRef<'_>) -> RecordRef<'_> {
        view.redactions = 0;
        match &mut view.body {
            BodyRef::Hook(hook) => {
                hook.raw = &[];
                hook.transcript_path = None;
                hook.agent_transcript_path = None;
                hook.origin = None;
                hook.truncated = None;
            }
            BodyRef::Transcript(line) => {
                line.raw = &[];
                line.origin.position = 0;
                line.origin.len = 0;
                line.truncated = None;
            }
            BodyRef::Pty(pty) => {
                pty.data = &[];
                (pty.command, pty.term) = (None, None);
                (pty.width, pty.height, pty.status) = (None, None, None);
            }
            BodyRef::Internal(internal) => {
                (internal.event, internal.detail, internal.data) = ("", "", &[]);
            }
            BodyRef::Otlp(otlp) => {
                otlp.raw = &[];
                (otlp.name, otlp.prompt_id, otlp.request_id, otlp.tool_use_id) =
                    (None, None, None, None);
                otlp.truncated = None;
            }
        }
        view
    }

    #[test]
    fn block_records_view_and_pack_like_their_encoded_bytes() {
        let records = records();
        let bytes: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
        let mut raw = Vec::new();
        columnar::encode_block(bytes.iter().map(Vec::as_slice), &mut raw);

        let mut walked = PackedBlock::default();
        let mut compact = 0;
        columnar::for_each_record(&raw, bytes.len() as u32, |k, record| {
            if let BlockRecord::Compact(r) = &record {
                compact += 1;
                assert_eq!(*r, RecordRef::decode(&bytes[k]).unwrap(), "record {k}");
            }
            walked.push_block_record(Offset(k as u64), Offset(0), record);
        })
        .unwrap();
        assert_eq!(compact, 5);

        let mut from_bytes = PackedBlock::default();
        for (k, b) in bytes.iter().enumerate() {
            from_bytes.push_bytes(Offset(k as u64), Offset(0), b);
        }
        for block in [&walked, &from_bytes] {
            assert_eq!(block.items.len(), bytes.len());
            for (k, item) in block.items.iter().enumerate() {
                let Item::Record(packed, _) = item else {
                    panic!("record {k}: {item:?}");
                };
                let expected = as_packed(RecordRef::decode(&bytes[k]).unwrap());
                assert_eq!(block.text.view(packed), expected, "record {k}");
            }
        }

        // Records below the start are not decoded; bytes that are not a record are reported.
        let mut partial = PackedBlock::default();
        partial.push_bytes(Offset(0), Offset(1), &bytes[0]);
        partial.push_bytes(Offset(1), Offset(1), b"\xc1");
        assert!(matches!(partial.items[0], Item::Skipped));
        assert!(matches!(partial.items[1], Item::Unreadable(_)));
    }
}
