//! The one borrowed view of a record: [`RecordRef`] mirrors [`Record`] field for field, with
//! strings and payloads borrowed from the bytes it was read from, whichever encoding they are
//! in: the rmp-serde named encoding ([`RecordRef::decode`]) or a columnar block's compact
//! envelope (built in place by `segments::columnar`).
//!
//! Invariants: the mirrors have the same field names, order and serde attributes as the owned
//! types, so [`RecordRef::encode_into`] writes exactly the bytes [`Record::encode`] writes for
//! the same record, and [`RecordRef::to_record`] gives the record [`Record::decode`] gives
//! (checked for every kind of record by the tests below). A field added to the owned types is
//! added here too; the tests fail until it is.

use serde::{Deserialize, Serialize};

use super::{
    Body, DecodeError, HookBody, InternalBody, Malformed, Origin, OtlpBody, PtyBody, PtyKind,
    Record, Signal, Source, TranscriptBody, Truncated, Usage,
};

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A record borrowed from encoded bytes or a block ([`Record`] with `&str` and `&[u8]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef<'a> {
    /// Record time, ns since the Unix epoch ([`Record::ts`]).
    pub ts: u64,
    /// Where the record came from.
    pub source: Source,
    /// Claude Code session id, or a PTY recording's id.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    /// The body.
    #[serde(borrow)]
    pub body: BodyRef<'a>,
    /// Secrets redacted from the payload.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u32,
}

/// The body of a [`RecordRef`] ([`Body`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyRef<'a> {
    /// A hook payload ([`HookBody`]).
    #[serde(borrow)]
    Hook(HookRef<'a>),
    /// A transcript line ([`TranscriptBody`]).
    #[serde(borrow)]
    Transcript(TranscriptRef<'a>),
    /// A terminal stream event ([`PtyBody`]).
    #[serde(borrow)]
    Pty(PtyRef<'a>),
    /// A bookkeeping event ([`InternalBody`]).
    #[serde(borrow)]
    Internal(InternalRef<'a>),
    /// An OpenTelemetry item ([`OtlpBody`]).
    #[serde(borrow)]
    Otlp(OtlpRef<'a>),
}

/// Where a payload was read from ([`Origin`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginRef<'a> {
    /// The file.
    pub file: &'a str,
    /// Byte position of the payload in the file.
    pub position: u64,
    /// Length of the payload in the file, in bytes.
    pub len: u64,
}

/// A hook payload's fields ([`HookBody`]; the field meanings are documented there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct HookRef<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub transcript_path: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_transcript_path: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub pty_session: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<Malformed>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginRef<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub arrival_time: bool,
    #[serde(borrow, with = "serde_bytes")]
    pub raw: &'a [u8],
}

/// A transcript line's fields ([`TranscriptBody`]; the field meanings are documented there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TranscriptRef<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub line_type: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_sidechain: Option<bool>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<Malformed>,
    #[serde(borrow)]
    pub origin: OriginRef<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    #[serde(borrow, with = "serde_bytes")]
    pub raw: &'a [u8],
}

/// A terminal stream event's fields ([`PtyBody`]; the field meanings are documented there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct PtyRef<'a> {
    pub kind: PtyKind,
    #[serde(borrow, with = "serde_bytes", default)]
    pub data: &'a [u8],
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub command: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub term: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// A bookkeeping event's fields ([`InternalBody`]; the field meanings are documented there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct InternalRef<'a> {
    #[serde(borrow)]
    pub event: &'a str,
    #[serde(default, borrow)]
    pub detail: &'a str,
    #[serde(
        borrow,
        with = "serde_bytes",
        default,
        skip_serializing_if = "<[u8]>::is_empty"
    )]
    pub data: &'a [u8],
}

/// An OpenTelemetry item's fields ([`OtlpBody`]; the field meanings are documented there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct OtlpRef<'a> {
    pub signal: Signal,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    #[serde(borrow, with = "serde_bytes")]
    pub raw: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Decodes a record from its encoded bytes (rmp-serde named encoding), borrowing strings
    /// and payloads from `bytes`.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not a record, or when a string of it is stored in
    /// a form that cannot be borrowed (never for bytes ctrace wrote).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }

    /// Appends the record's encoding to `out`: exactly the bytes [`Record::encode`] gives for
    /// [`RecordRef::to_record`].
    ///
    /// # Errors
    /// Never for records ctrace builds; an error would come from rmp-serde itself.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error> {
        rmp_serde::encode::write_named(out, self)
    }

    /// The owned record.
    pub fn to_record(&self) -> Record {
        Record {
            ts: self.ts,
            source: self.source,
            session: self.session.map(str::to_owned),
            body: self.body.to_body(),
            redactions: self.redactions,
        }
    }
}

impl<'a> BodyRef<'a> {
    /// The payload: the hook's JSON, the transcript line, the PTY bytes or the internal
    /// event's detail (as [`Record::raw`]).
    pub fn raw(&self) -> &'a [u8] {
        match self {
            BodyRef::Hook(hook) => hook.raw,
            BodyRef::Transcript(line) => line.raw,
            BodyRef::Pty(pty) => pty.data,
            BodyRef::Internal(internal) => internal.detail.as_bytes(),
            BodyRef::Otlp(otlp) => otlp.raw,
        }
    }

    /// Where the payload was read from, for hook payloads and transcript lines read from files.
    pub fn origin(&self) -> Option<&OriginRef<'a>> {
        match self {
            BodyRef::Hook(hook) => hook.origin.as_ref(),
            BodyRef::Transcript(line) => Some(&line.origin),
            BodyRef::Pty(_) | BodyRef::Internal(_) | BodyRef::Otlp(_) => None,
        }
    }

    fn to_body(&self) -> Body {
        let own = |s: Option<&str>| s.map(str::to_owned);
        match self {
            BodyRef::Hook(h) => Body::Hook(HookBody {
                event: own(h.event),
                tool_name: own(h.tool_name),
                tool_use_id: own(h.tool_use_id),
                agent_id: own(h.agent_id),
                agent_type: own(h.agent_type),
                prompt_id: own(h.prompt_id),
                cwd: own(h.cwd),
                transcript_path: own(h.transcript_path),
                agent_transcript_path: own(h.agent_transcript_path),
                pty_session: own(h.pty_session),
                malformed: h.malformed,
                origin: h.origin.as_ref().map(OriginRef::to_origin),
                truncated: h.truncated.clone(),
                arrival_time: h.arrival_time,
                raw: h.raw.to_vec(),
            }),
            BodyRef::Transcript(t) => Body::Transcript(TranscriptBody {
                line_type: own(t.line_type),
                subtype: own(t.subtype),
                uuid: own(t.uuid),
                parent_uuid: own(t.parent_uuid),
                request_id: own(t.request_id),
                message_id: own(t.message_id),
                model: own(t.model),
                usage: t.usage.clone(),
                is_sidechain: t.is_sidechain,
                agent_id: own(t.agent_id),
                malformed: t.malformed,
                origin: t.origin.to_origin(),
                truncated: t.truncated.clone(),
                raw: t.raw.to_vec(),
            }),
            BodyRef::Pty(p) => Body::Pty(PtyBody {
                kind: p.kind,
                data: p.data.to_vec(),
                command: own(p.command),
                cwd: own(p.cwd),
                term: own(p.term),
                width: p.width,
                height: p.height,
                status: p.status,
            }),
            BodyRef::Internal(i) => Body::Internal(InternalBody {
                event: i.event.to_owned(),
                detail: i.detail.to_owned(),
                data: i.data.to_vec(),
            }),
            BodyRef::Otlp(o) => Body::Otlp(OtlpBody {
                signal: o.signal,
                name: own(o.name),
                prompt_id: own(o.prompt_id),
                request_id: own(o.request_id),
                tool_use_id: own(o.tool_use_id),
                truncated: o.truncated.clone(),
                raw: o.raw.to_vec(),
            }),
        }
    }
}

impl OriginRef<'_> {
    fn to_origin(&self) -> Origin {
        Origin {
            file: self.file.to_owned(),
            position: self.position,
            len: self.len,
        }
    }
}

impl Record {
    /// The record borrowed ([`RecordRef`]): no copies of strings or payloads.
    pub fn as_ref(&self) -> RecordRef<'_> {
        fn s(v: &Option<String>) -> Option<&str> {
            v.as_deref()
        }
        fn origin(o: &Origin) -> OriginRef<'_> {
            OriginRef {
                file: &o.file,
                position: o.position,
                len: o.len,
            }
        }
        let body = match &self.body {
            Body::Hook(h) => BodyRef::Hook(HookRef {
                event: s(&h.event),
                tool_name: s(&h.tool_name),
                tool_use_id: s(&h.tool_use_id),
                agent_id: s(&h.agent_id),
                agent_type: s(&h.agent_type),
                prompt_id: s(&h.prompt_id),
                cwd: s(&h.cwd),
                transcript_path: s(&h.transcript_path),
                agent_transcript_path: s(&h.agent_transcript_path),
                pty_session: s(&h.pty_session),
                malformed: h.malformed,
                origin: h.origin.as_ref().map(origin),
                truncated: h.truncated.clone(),
                arrival_time: h.arrival_time,
                raw: &h.raw,
            }),
            Body::Transcript(t) => BodyRef::Transcript(TranscriptRef {
                line_type: s(&t.line_type),
                subtype: s(&t.subtype),
                uuid: s(&t.uuid),
                parent_uuid: s(&t.parent_uuid),
                request_id: s(&t.request_id),
                message_id: s(&t.message_id),
                model: s(&t.model),
                usage: t.usage.clone(),
                is_sidechain: t.is_sidechain,
                agent_id: s(&t.agent_id),
                malformed: t.malformed,
                origin: origin(&t.origin),
                truncated: t.truncated.clone(),
                raw: &t.raw,
            }),
            Body::Pty(p) => BodyRef::Pty(PtyRef {
                kind: p.kind,
                data: &p.data,
                command: s(&p.command),
                cwd: s(&p.cwd),
                term: s(&p.term),
                width: p.width,
                height: p.height,
                status: p.status,
            }),
            Body::Internal(i) => BodyRef::Internal(InternalRef {
                event: &i.event,
                detail: &i.detail,
                data: &i.data,
            }),
            Body::Otlp(o) => BodyRef::Otlp(OtlpRef {
                signal: o.signal,
                name: s(&o.name),
                prompt_id: s(&o.prompt_id),
                request_id: s(&o.request_id),
                tool_use_id: s(&o.tool_use_id),
                truncated: o.truncated.clone(),
                raw: &o.raw,
            }),
        };
        RecordRef {
            ts: self.ts,
            source: self.source,
            session: self.session.as_deref(),
            body,
            redactions: self.redactions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pty_start() -> Body {
        Body::Pty(PtyBody {
            kind: PtyKind::Start,
            data: b"\x1b[31mred\xff".to_vec(),
            command: Some("bash -l".into()),
            cwd: Some("/x".into()),
            term: Some("xterm-256color".into()),
            width: Some(80),
            height: Some(24),
            status: Some(-1),
        })
    }

    fn pty_empty() -> Body {
        Body::Pty(PtyBody {
            kind: PtyKind::Output,
            data: Vec::new(),
            command: None,
            cwd: None,
            term: None,
            width: None,
            height: None,
            status: None,
        })
    }

    /// One record of every body kind with every field set, and one with every optional field
    /// absent.
    fn every_kind() -> Vec<Record> {
        let origin = Origin {
            file: "/home/u/.claude/projects/p/s.jsonl".into(),
            position: 12,
            len: 30,
        };
        let truncated = Truncated {
            total_bytes: 9_000,
            sha256: vec![7; 32],
        };
        let some = |s: &str| Some(s.to_owned());
        let bodies = vec![
            Body::Hook(HookBody {
                event: some("PreToolUse"),
                tool_name: some("Bash"),
                tool_use_id: some("toolu_1"),
                agent_id: some("a1"),
                agent_type: some("general-purpose"),
                prompt_id: some("p1"),
                cwd: some("/x"),
                transcript_path: some("/t.jsonl"),
                agent_transcript_path: some("/a.jsonl"),
                pty_session: some("pty-1"),
                malformed: Some(Malformed::LoneSurrogate),
                origin: Some(origin.clone()),
                truncated: Some(truncated.clone()),
                arrival_time: true,
                raw: b"{\"session_id\":\"s1\"}".to_vec(),
            }),
            Body::Hook(HookBody::default()),
            Body::Transcript(TranscriptBody {
                line_type: some("assistant"),
                subtype: some("turn_duration"),
                uuid: some("u2"),
                parent_uuid: some("u1"),
                request_id: some("req_1"),
                message_id: some("msg_1"),
                model: some("claude-opus-4-6"),
                usage: Some(Usage {
                    input_tokens: 3,
                    output_tokens: 10,
                    cache_creation_input_tokens: 5,
                    cache_read_input_tokens: 7,
                    ephemeral_5m_input_tokens: 5,
                    ephemeral_1h_input_tokens: 0,
                }),
                is_sidechain: Some(true),
                agent_id: some("a1"),
                malformed: Some(Malformed::InvalidJson),
                origin: origin.clone(),
                truncated: Some(truncated),
                raw: b"{\"type\":\"assistant\"}".to_vec(),
            }),
            Body::Transcript(TranscriptBody::default()),
            pty_start(),
            pty_empty(),
            Body::Internal(InternalBody {
                event: "undecodable_record".into(),
                detail: "inbox file 3".into(),
                data: vec![0xc1, 0x00],
            }),
            Body::Internal(InternalBody {
                event: "inbox_damage".into(),
                detail: String::new(),
                data: Vec::new(),
            }),
            Body::Otlp(OtlpBody {
                signal: Signal::Logs,
                name: some("api_request"),
                prompt_id: some("p1"),
                request_id: some("req_1"),
                tool_use_id: some("toolu_1"),
                truncated: Some(Truncated {
                    total_bytes: 9_000,
                    sha256: vec![7; 32],
                }),
                raw: vec![0x0a, 0x00],
            }),
            Body::Otlp(OtlpBody {
                signal: Signal::Metrics,
                name: None,
                prompt_id: None,
                request_id: None,
                tool_use_id: None,
                truncated: None,
                raw: Vec::new(),
            }),
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Record {
                ts: 1_700_000_000_000_000_000 + i as u64,
                source: match body {
                    Body::Hook(_) => Source::Hook,
                    Body::Transcript(_) => Source::Transcript,
                    Body::Pty(_) => Source::Pty,
                    Body::Internal(_) => Source::Internal,
                    Body::Otlp(_) => Source::Otlp,
                },
                session: (i % 2 == 0).then(|| format!("s{i}")),
                body,
                redactions: (i % 3) as u32,
            })
            .collect()
    }

    /// The borrowed view decodes from, and encodes to, exactly the owned record's bytes, for
    /// every kind of record: a field added to one side and not the other fails here.
    #[test]
    fn mirrors_the_owned_record_byte_for_byte() {
        for record in every_kind() {
            let bytes = record.encode().unwrap();
            let view = RecordRef::decode(&bytes).unwrap();
            assert_eq!(view, record.as_ref(), "{record:?}");
            assert_eq!(view.to_record(), record);
            let mut again = Vec::new();
            view.encode_into(&mut again).unwrap();
            assert_eq!(again, bytes, "{record:?}");
            assert_eq!(view.body.raw(), record.raw());
        }
    }

    #[test]
    fn garbage_does_not_decode() {
        for bytes in [&b""[..], b"\xc1", b"\x81\xa2ts\xc0", &[0x92, 0x01, 0x02]] {
            assert!(RecordRef::decode(bytes).is_err());
        }
    }
}
