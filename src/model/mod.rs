//! The record model (`DESIGN.md` §2): one event, encoded with rmp-serde's named (map) encoding
//! so fields can be added later without breaking old readers.
//!
//! Invariants: the raw bytes of a hook payload or transcript line are kept exactly as received;
//! extracted fields are conveniences and may be absent. Decoding never panics.

use serde::{Deserialize, Serialize};

use crate::segments::Offset;

mod borrowed;

pub use borrowed::{
    BodyRef, HookRef, InternalRef, OriginRef, OtlpRef, PtyRef, RecordRef, TranscriptRef,
};

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A Claude Code hook payload (`ctrace hook`, or a logged payload ingested in bulk).
    Hook,
    /// One line of a Claude Code transcript (`~/.claude/projects/**.jsonl`).
    Transcript,
    /// A terminal stream event from a PTY recording.
    Pty,
    /// An OpenTelemetry record.
    Otlp,
    /// A record imported from an archive.
    Import,
    /// ctrace's own bookkeeping.
    Internal,
}

impl Source {
    /// All sources, in declaration order.
    pub const ALL: [Source; 6] = [
        Source::Hook,
        Source::Transcript,
        Source::Pty,
        Source::Otlp,
        Source::Import,
        Source::Internal,
    ];

    /// The lowercase name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hook => "hook",
            Source::Transcript => "transcript",
            Source::Pty => "pty",
            Source::Otlp => "otlp",
            Source::Import => "import",
            Source::Internal => "internal",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| {
                format!("unknown source `{s}` (expected hook, transcript, pty, otlp, import or internal)")
            })
    }
}

/// Why a payload or line could not be fully understood. The raw bytes are stored anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// Zero bytes, or only whitespace.
    Empty,
    /// Not valid UTF-8.
    NotUtf8,
    /// Not valid JSON.
    InvalidJson,
    /// JSON with `\uD800`–`\uDFFF` escapes that do not form pairs; fields were extracted after
    /// replacing them with U+FFFD.
    LoneSurrogate,
    /// Valid JSON, but not an object.
    NotObject,
}

impl Malformed {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Empty => "empty",
            Malformed::NotUtf8 => "not_utf8",
            Malformed::InvalidJson => "invalid_json",
            Malformed::LoneSurrogate => "lone_surrogate",
            Malformed::NotObject => "not_object",
        }
    }
}

/// What was kept of an input larger than `storage.max_record_bytes` (`docs/format.md`,
/// "Truncated records"): the record's `raw` holds the input's first bytes, and this says how
/// large the whole input was and what its SHA-256 was, so the record is never silently short
/// and a copy found elsewhere can be matched to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncated {
    /// Size of the whole input in bytes.
    pub total_bytes: u64,
    /// SHA-256 of the whole input (32 bytes): bytes in the record encoding, lowercase hex in
    /// human-readable formats (`cat --json`).
    #[serde(with = "digest_bytes")]
    pub sha256: Vec<u8>,
}

/// Bytes in binary formats (rmp), hex in human-readable ones (JSON).
mod digest_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            serde_bytes::serialize(bytes, serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            hex::decode(&text).map_err(|e| {
                serde::de::Error::custom(format!("`{text}` is not a hex digest ({e})"))
            })
        } else {
            serde_bytes::deserialize(deserializer)
        }
    }
}

/// A payload's bytes: msgpack `bin` in the record encoding, and only `bin` (or `str`) when
/// decoding it, so [`Record::decode`] accepts exactly what [`RecordRef::decode`] can borrow (an array of
/// small integers would decode to the same bytes owned but not borrowed, and the two readers
/// would disagree about what is a record). Human-readable formats (JSON) keep serde_bytes'
/// lenient forms.
mod payload_bytes {
    use std::fmt;

    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(bytes, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            return serde_bytes::deserialize(deserializer);
        }
        struct Bin;
        impl Visitor<'_> for Bin {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("payload bytes (msgpack bin)")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            // A msgpack `str` borrows as bytes too (serde's `&[u8]` accepts it).
            fn visit_str<E: Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
        }
        deserializer.deserialize_byte_buf(Bin)
    }
}

impl Truncated {
    /// The SHA-256 in lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(&self.sha256)
    }
}

/// The file and byte range a record was read from during bulk ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Absolute path of the source file.
    pub file: String,
    /// Byte position of the first byte of the line or element in the file.
    pub position: u64,
    /// Length in bytes of the line or element (without the line terminator).
    pub len: u64,
}

/// Token usage of one API response (`message.usage` in a transcript line).
///
/// Field names follow the Anthropic Messages API `usage` object; the 5-minute / 1-hour split
/// comes from its `cache_creation` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Tokens written to the prompt cache (all TTLs).
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// Of the cache writes, those with the 5-minute TTL.
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    /// Of the cache writes, those with the 1-hour TTL.
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

impl Usage {
    /// Sum of all token counts (input, output, cache write, cache read).
    pub fn total(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
    }
}

/// A hook payload (`source = hook`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookBody {
    /// `hook_event_name`, any string (unknown events are kept as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `tool_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// `tool_use_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// `agent_id` (set when the hook fires inside a subagent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// `agent_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// `prompt_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// `cwd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `transcript_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_path: Option<String>,
    /// `agent_transcript_path` (SubagentStop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_transcript_path: Option<String>,
    /// `CTRACE_PTY_SESSION` from the hook's environment, when it ran inside `ctrace record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty_session: Option<String>,
    /// Set when the payload is not a well-formed JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<Malformed>,
    /// Source file and position when the payload was ingested from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Set when the payload was larger than `storage.max_record_bytes`: `raw` holds its first
    /// bytes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    /// Set when the record's `ts` is only when the payload reached the store, not when the hook
    /// fired: a payload read from a hook log (`origin` set) that carries no logger time
    /// (`timestamp`, `logged_at`) gets the log file's modification time. Views never take a
    /// session's, turn's or span's time from such a record (issue 15, "Fidelity").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub arrival_time: bool,
    /// The payload bytes exactly as received (the first bytes of them when `truncated`).
    #[serde(with = "payload_bytes")]
    pub raw: Vec<u8>,
}

/// One transcript line (`source = transcript`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptBody {
    /// The line's `type` (`user`, `assistant`, `system`, `progress`, `summary`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_type: Option<String>,
    /// `subtype` of `system` lines, or `data.type` of `progress` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// `uuid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// `parentUuid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
    /// `requestId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `message.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `message.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `message.usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `isSidechain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_sidechain: Option<bool>,
    /// `agentId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Set when the line is not a well-formed JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<Malformed>,
    /// Source file and byte position of the line.
    pub origin: Origin,
    /// Set when the line was larger than `storage.max_record_bytes`: `raw` holds its first
    /// bytes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    /// The line's bytes exactly as in the file (without the line terminator; the first bytes
    /// of them when `truncated`).
    #[serde(with = "payload_bytes")]
    pub raw: Vec<u8>,
}

/// Kind of a terminal stream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtyKind {
    /// Bytes the program wrote to the terminal.
    Output,
    /// Bytes typed by the user.
    Input,
    /// The window size changed.
    Resize,
    /// A named point in time.
    Marker,
    /// The program exited.
    Exit,
    /// The recording started.
    Start,
}

/// A terminal stream event (`source = pty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtyBody {
    /// What happened.
    pub kind: PtyKind,
    /// Output or input bytes, marker label; not necessarily UTF-8.
    #[serde(with = "payload_bytes", default)]
    pub data: Vec<u8>,
    /// Command line (`start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Working directory (`start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `TERM` (`start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// Columns (`start`, `resize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
    /// Rows (`start`, `resize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u16>,
    /// Exit status (`exit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// ctrace's own bookkeeping event (`source = internal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalBody {
    /// What happened (for example `inbox_damage`).
    pub event: String,
    /// Details, human-readable.
    #[serde(default)]
    pub detail: String,
    /// Bytes the event is about: for `undecodable_record`, the inbox record's bytes that did
    /// not decode, kept so nothing is lost (`docs/format.md`, "Sealing").
    #[serde(with = "payload_bytes", default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
}

/// The source-specific part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// A hook payload.
    Hook(HookBody),
    /// A transcript line.
    Transcript(TranscriptBody),
    /// A terminal stream event.
    Pty(PtyBody),
    /// A bookkeeping event.
    Internal(InternalBody),
    /// An OpenTelemetry log record, metric data point or span.
    Otlp(OtlpBody),
}

/// The OpenTelemetry signal an `otlp` record carries (OTLP 1.x: the three
/// `Export*ServiceRequest` messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// A log record (Claude Code's events: `claude_code.api_request`, ...).
    Logs,
    /// One data point of a metric (`claude_code.token.usage`, ...).
    Metrics,
    /// A span.
    Traces,
}

impl Signal {
    /// The lowercase name, as in the OTLP/HTTP paths (`/v1/logs`, `/v1/metrics`, `/v1/traces`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }
}

/// One OpenTelemetry item (`source = otlp`): a log record, a metric data point or a span,
/// received over OTLP/HTTP (`ctrace serve`, `docs/api.md`).
///
/// `raw` is an OTLP protobuf `Export{Logs,Metrics,Trace}ServiceRequest` holding this one item
/// with its resource and scope, so one record decodes on its own with any OTLP library and
/// nothing of the request is lost (the request, split per item and re-encoded). The other
/// fields are extracted for the views and may be absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtlpBody {
    /// Which signal `raw` is a request of.
    pub signal: Signal,
    /// The event name without the `claude_code.` prefix for log records (`api_request`; from
    /// the record's `event_name`, its `event.name` attribute or its body), the metric's name,
    /// or the span's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `prompt.id` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// The `request_id` attribute (the Anthropic API request id, `req_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The `tool_use_id` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// Set when the encoded item was larger than `storage.max_record_bytes`: `raw` holds its
    /// first bytes (and no longer decodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    /// The item as a one-item OTLP protobuf request (see above).
    #[serde(with = "payload_bytes")]
    pub raw: Vec<u8>,
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Capture time, UTC, ns since the Unix epoch. For transcript lines, the line's own
    /// `timestamp` when it has one (see `docs/format.md`).
    pub ts: u64,
    /// Where the record came from.
    pub source: Source,
    /// Claude Code `session_id`, or a PTY recording's id; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The source-specific part.
    pub body: Body,
    /// How many secrets redaction replaced in this record before it was written (0 when none;
    /// omitted from the encoding then, so records without redactions encode as in format v1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u32,
}

/// Formats a record time (ns since the Unix epoch) as RFC 3339 UTC with milliseconds, as
/// every JSON output of records and rows shows it (`2026-01-31T12:00:00.123Z`).
pub fn format_ts(ts_ns: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ts_ns);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Formats a duration in ns compactly (`850ms`, `12.3s`, `4m05s`, `2h13m`).
pub fn format_duration(ns: u64) -> String {
    let ms = ns / 1_000_000;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = ms / 1000;
    if total < 3600 {
        return format!("{}m{:02}s", total / 60, total % 60);
    }
    format!("{}h{:02}m", total / 3600, (total % 3600) / 60)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Error decoding a record's bytes.
#[derive(Debug, thiserror::Error)]
#[error("record bytes do not decode")]
pub struct DecodeError(#[from] rmp_serde::decode::Error);

impl Record {
    /// Cuts the hook payload or transcript line of this record to its first `limit` bytes when
    /// it is longer, and records the whole input's size and SHA-256 in `truncated` (an input
    /// already truncated keeps its original size and digest). Other bodies are left alone
    /// (PTY chunks are small by construction). Returns whether anything was cut.
    pub fn truncate_to(&mut self, limit: usize) -> bool {
        use sha2::Digest;
        let (raw, truncated) = match &mut self.body {
            Body::Hook(body) => (&mut body.raw, &mut body.truncated),
            Body::Transcript(body) => (&mut body.raw, &mut body.truncated),
            Body::Otlp(body) => (&mut body.raw, &mut body.truncated),
            Body::Pty(_) | Body::Internal(_) => return false,
        };
        if raw.len() <= limit {
            return false;
        }
        if truncated.is_none() {
            *truncated = Some(Truncated {
                total_bytes: raw.len() as u64,
                sha256: sha2::Sha256::digest(&raw[..]).to_vec(),
            });
        }
        raw.truncate(limit);
        raw.shrink_to_fit();
        true
    }

    /// What was cut from this record, if it was truncated.
    pub fn truncated(&self) -> Option<&Truncated> {
        match &self.body {
            Body::Hook(body) => body.truncated.as_ref(),
            Body::Transcript(body) => body.truncated.as_ref(),
            Body::Otlp(body) => body.truncated.as_ref(),
            Body::Pty(_) | Body::Internal(_) => None,
        }
    }

    /// Encodes the record with rmp-serde's named encoding.
    ///
    /// # Errors
    /// Never for records built by ctrace; an error would come from rmp-serde itself.
    pub fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Decodes a record from its bytes.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }

    /// The raw payload bytes (hook payload, transcript line, PTY data).
    pub fn raw(&self) -> &[u8] {
        match &self.body {
            Body::Hook(hook) => &hook.raw,
            Body::Transcript(line) => &line.raw,
            Body::Pty(pty) => &pty.data,
            Body::Internal(internal) => internal.detail.as_bytes(),
            Body::Otlp(otlp) => &otlp.raw,
        }
    }
}

/// A record as read back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset; `None` while it is still in the inbox (not yet sealed).
    pub offset: Option<Offset>,
    /// The record.
    pub record: Record,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload stored as a msgpack array of integers is not a record for either reader
    /// (found by `record_decoder_never_panics`: the owned reader used to accept it).
    #[test]
    fn payload_as_an_integer_array_is_rejected_by_both_readers() {
        let mut bytes = vec![0x83];
        for (key, value) in [
            (&b"ts"[..], &[0x05][..]),
            (b"source", b"\xa4hook"),
            (b"body", b""),
        ] {
            bytes.push(0xa0 | key.len() as u8);
            bytes.extend_from_slice(key);
            bytes.extend_from_slice(value);
        }
        bytes.extend_from_slice(b"\x81\xa4hook\x81\xa3raw\x93\x01\x02\x03");
        assert!(Record::decode(&bytes).is_err());
        assert!(RecordRef::decode(&bytes).is_err());
        // The same payload as `bin` and as `str` decodes in both.
        for form in [&b"\xc4\x03\x01\x02\x03"[..], b"\xa3\x01\x02\x03"] {
            let mut good = bytes[..bytes.len() - 4].to_vec();
            good.extend_from_slice(form);
            assert_eq!(Record::decode(&good).unwrap().raw(), [1, 2, 3]);
            assert_eq!(RecordRef::decode(&good).unwrap().body.raw(), [1, 2, 3]);
        }
    }

    #[test]
    fn named_encoding_round_trip() {
        let record = Record {
            ts: 1_700_000_000_123_456_789,
            source: Source::Hook,
            session: Some("abc".into()),
            body: Body::Hook(HookBody {
                event: Some("PreToolUse".into()),
                tool_name: Some("Bash".into()),
                raw: b"{\"x\":1}".to_vec(),
                ..HookBody::default()
            }),
            redactions: 0,
        };
        let bytes = record.encode().unwrap();
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        let view = RecordRef::decode(&bytes).unwrap();
        assert_eq!(view.ts, record.ts);
        assert!(matches!(
            view.body,
            BodyRef::Hook(HookRef {
                event: Some("PreToolUse"),
                ..
            })
        ));
        // Field names are in the encoding (named, not positional).
        assert!(bytes.windows(4).any(|w| w == b"body"));
    }

    #[test]
    fn garbage_does_not_decode() {
        for bytes in [&b""[..], b"\xc1", b"\x81\xa2ts\xc0", &[0x92, 0x01, 0x02]] {
            assert!(Record::decode(bytes).is_err());
        }
    }

    /// Issue 15: the digest's hex goes through the `hex` crate; JSON round-trips and a digest
    /// with an odd number of digits or a non-hex digit is refused (it used to lose the last
    /// digit silently).
    #[test]
    fn truncated_digest_is_hex_in_json() {
        let truncated = Truncated {
            total_bytes: 3,
            sha256: vec![0x00, 0xab, 0xff],
        };
        let json = serde_json::to_string(&truncated).unwrap();
        assert_eq!(json, r#"{"total_bytes":3,"sha256":"00abff"}"#);
        assert_eq!(truncated.sha256_hex(), "00abff");
        assert_eq!(serde_json::from_str::<Truncated>(&json).unwrap(), truncated);
        for bad in ["00abf", "00abfg"] {
            let json = format!(r#"{{"total_bytes":3,"sha256":"{bad}"}}"#);
            assert!(serde_json::from_str::<Truncated>(&json).is_err(), "{bad}");
        }
    }
}
