//! Columnar block layout (segment format versions 3 and 4): the raw content of a sealed block
//! as a section of compact *envelopes* followed by a section of *payloads*.
//!
//! This is the one place where the segment layer knows what a record means. A record's
//! envelope (`model::Record` without its payload) mostly repeats what its payload
//! already says: the session id, the hook event, the tool-use id, the transcript line's uuid
//! and so on are all strings inside the payload's JSON. Written inline in front of every
//! payload (format versions 1 and 2) they cost about 40 bytes per record *after* zstd, because
//! each copy is a separate long-distance match. Here each such string is stored as a reference
//! into the record's own payload (position and length), or as "same as in the previous
//! record", and the payloads are stored back to back, exactly as they arrived, so that zstd
//! sees the same byte stream as when it compresses the source files.
//!
//! ```text
//! block raw content := magic "CTB3" | count: varint | envelopes_len: varint
//!                      | envelopes[envelopes_len] | payloads...
//! envelope := kind: u8 ...
//!   kind 0 (opaque):      len: varint                       — the record's encoded bytes,
//!                                                              verbatim, in the payload section
//!   kind 1 (hook):        ts | session | redactions: varint
//!                         | event | tool_name | tool_use_id | agent_id | agent_type
//!                         | prompt_id | cwd | transcript_path | agent_transcript_path
//!                         | pty_session | malformed: u8 | origin? | raw_len: varint
//!   kind 2 (transcript):  ts | session | redactions: varint
//!                         | line_type | subtype | uuid | parent_uuid | request_id
//!                         | message_id | model | usage? | is_sidechain: u8 | agent_id
//!                         | malformed: u8 | origin | raw_len: varint
//! ts      := absent when the kind byte has 0x10 (the payload's "timestamp" gives it), else
//!            zigzag varint of (ts − the last ts stored in this block), wrapping
//! string  := 0 (absent) | 1 (same as this field in the previous hook/transcript envelope)
//!          | 2 position: varint, len: varint (bytes of this record's payload)
//!          | 3 len: varint, bytes[len] (literal, inside the envelope section)
//! origin? := 0 (absent) | 1 origin;  origin := file: string | zigzag(position − predicted)
//!          | zigzag(len − raw_len); predicted = previous origin's position + len + 1 when the
//!          file is "same", else 0
//! usage?  := 0 | 1 input | output | cache_creation | cache_read | ephemeral_5m | ephemeral_1h
//!            (varints)
//! malformed, is_sidechain := 0 absent, else 1 + the value's index
//! ```
//!
//! A record is written in compact form only when decoding the envelope gives back exactly the
//! bytes that were given to the writer (checked at write time); anything else (PTY and
//! internal records, records from a newer encoder, bytes that do not decode) is stored opaque.
//! So reading a block always returns byte-for-byte what was written.
//!
//! Invariants: a decoder never panics and never allocates more than the block's raw size
//! (bounded by the caller) plus one record being materialised, whatever the input.

use crate::model::Malformed;
use memchr::memmem;

/// First four bytes of a columnar block's raw content. Blocks of format versions 1 and 2
/// start with a frame (`"CTF1"`), so the two layouts are told apart by their first bytes.
pub(crate) const BLOCK_MAGIC: [u8; 4] = *b"CTB3";

const KIND_OPAQUE: u8 = 0;
const KIND_HOOK: u8 = 1;
const KIND_TRANSCRIPT: u8 = 2;
/// Added to the kind byte when the record's `ts` is the payload's `"timestamp"` (see
/// [`payload_ts`]) and so is not stored.
const KIND_TS_FROM_PAYLOAD: u8 = 0x10;

const STR_NONE: u8 = 0;
const STR_SAME: u8 = 1;
const STR_REF: u8 = 2;
const STR_LIT: u8 = 3;
const STR_REF_END: u8 = 4;

/// String slots: hook fields 0..10, transcript fields 10..18, shared 18 (session), 19 (file).
const SLOTS: usize = 20;
const SLOT_SESSION: usize = 18;
const SLOT_FILE: usize = 19;

/// Why a columnar block does not decode (the caller adds segment and position).
pub(crate) type BlockDecodeError = &'static str;

/// Whether `raw` (a block's decompressed content) uses the columnar layout.
pub fn is_columnar(raw: &[u8]) -> bool {
    raw.starts_with(&BLOCK_MAGIC)
}

// --- varints ----------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// A bounds-checked reader over the envelope section.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Result<u8, BlockDecodeError> {
        let b = *self.buf.get(self.at).ok_or("envelope truncated")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, BlockDecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("varint too long")
    }

    fn len(&mut self) -> Result<usize, BlockDecodeError> {
        usize::try_from(self.varint()?).map_err(|_| "length out of range")
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], BlockDecodeError> {
        let end = self.at.checked_add(len).ok_or("length out of range")?;
        let out = self.buf.get(self.at..end).ok_or("envelope truncated")?;
        self.at = end;
        Ok(out)
    }
}

mod borrowed;
mod decode;
mod encode;

pub use decode::{
    BlockRecord, OneRecord, Step, decode_block, decode_block_selected, for_each_record,
};
pub use encode::encode_block;

/// The first position of `needle` in `haystack`. Payloads are mostly small: below 4 KiB the
/// candidates of the first byte are compared directly, which is cheaper than building a
/// `memmem` finder for each of a record's fields.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if haystack.len() >= 4096 {
        return memmem::find(haystack, needle);
    }
    memchr::memchr_iter(first, haystack)
        .find(|&at| haystack.get(at + 1..at + needle.len()) == Some(rest))
}

fn malformed_code(m: Option<Malformed>) -> u8 {
    match m {
        None => 0,
        Some(Malformed::Empty) => 1,
        Some(Malformed::InvalidJson) => 2,
        Some(Malformed::NotUtf8) => 3,
        Some(Malformed::LoneSurrogate) => 4,
        Some(Malformed::NotObject) => 5,
    }
}

fn malformed_from(code: u8) -> Result<Option<Malformed>, BlockDecodeError> {
    Ok(match code {
        0 => None,
        1 => Some(Malformed::Empty),
        2 => Some(Malformed::InvalidJson),
        3 => Some(Malformed::NotUtf8),
        4 => Some(Malformed::LoneSurrogate),
        5 => Some(Malformed::NotObject),
        _ => return Err("unknown malformed code"),
    })
}

#[cfg(test)]
mod tests {
    use super::decode::{head, parse_utc, payload_ts};
    use super::*;
    use crate::model::{Body, InternalBody, Origin, PtyBody, PtyKind, Record, Source};

    /// A hook record as captured (`arrival_time` cleared: the compact envelope has no such
    /// field, so a record marked so is stored opaque; see `arrival_timed_hooks_are_opaque`).
    fn hook(ts: u64, raw: &str, origin: Option<Origin>) -> Record {
        let mut record = crate::claude::hook_record(raw.as_bytes().to_vec(), ts, None, origin);
        if let Body::Hook(hook) = &mut record.body {
            hook.arrival_time = false;
        }
        record
    }

    /// Records with a field the envelope has no place for (a hook read from a log without a
    /// time, `arrival_time`; a truncated hook or line, `truncated`) read back byte for byte, in
    /// the opaque form, beside compact ones.
    #[test]
    fn fields_without_an_envelope_place_are_stored_opaque() {
        let origin = Origin {
            file: "/logs/pre_tool_use.json".into(),
            position: 1,
            len: 40,
        };
        let arrival = crate::claude::hook_record(
            br#"{"session_id":"s","hook_event_name":"Stop"}"#.to_vec(),
            5,
            None,
            Some(origin),
        );
        assert!(matches!(&arrival.body, Body::Hook(h) if h.arrival_time));
        let mut truncated_hook = hook(
            6,
            r#"{"session_id":"s","hook_event_name":"Stop","x":"0123456789"}"#,
            None,
        );
        assert!(truncated_hook.truncate_to(30));
        let mut truncated_line = transcript(
            r#"{"type":"user","sessionId":"s","message":"0123456789"}"#,
            0,
        );
        assert!(truncated_line.truncate_to(20));
        let plain = hook(7, r#"{"session_id":"s","hook_event_name":"Stop"}"#, None);
        let records = [arrival, truncated_hook, truncated_line, plain];
        let (bytes, raw) = encode(&records);
        let mut kinds = Vec::new();
        for_each_record(&raw, 4, |i, r| {
            kinds.push(match r {
                BlockRecord::Opaque(got) => got == bytes[i].as_slice(),
                BlockRecord::Compact(_) => false,
            });
        })
        .unwrap();
        assert_eq!(kinds, vec![true, true, true, false]);
        let decoded = decode_block(&raw, 4).unwrap();
        assert_eq!(decoded, bytes);
    }

    fn transcript(raw: &str, position: u64) -> Record {
        crate::claude::transcript_record(
            raw.as_bytes().to_vec(),
            Origin {
                file: "/home/u/.claude/projects/p/s.jsonl".into(),
                position,
                len: raw.len() as u64,
            },
            7,
            Some("fallback"),
        )
    }

    fn sample() -> Vec<Record> {
        let mut records = vec![
            hook(
                10,
                r#"{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"toolu_1","cwd":"/x","transcript_path":"/t.jsonl"}"#,
                None,
            ),
            hook(
                5,
                r#"{"session_id":"s1","hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"toolu_1","cwd":"/x"}"#,
                Some(Origin {
                    file: "/h.ndjson".into(),
                    position: 0,
                    len: 3,
                }),
            ),
            transcript(
                r#"{"parentUuid":null,"isSidechain":false,"type":"user","sessionId":"s1","uuid":"u1","timestamp":"2025-06-26T11:45:51.979Z"}"#,
                0,
            ),
            transcript(
                r#"{"parentUuid":"u1","isSidechain":true,"type":"assistant","sessionId":"s1","uuid":"u2","requestId":"req_1","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":3,"output_tokens":9,"cache_creation":{"ephemeral_5m_input_tokens":4}}}}"#,
                120,
            ),
            transcript("{not json", 400),
            transcript("", 410),
            Record {
                ts: 99,
                source: Source::Pty,
                session: Some("pty-1".into()),
                body: Body::Pty(PtyBody {
                    kind: PtyKind::Output,
                    data: b"\x1b[1mhi\xff".to_vec(),
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
        ];
        // A field that is not in the payload (literal), and a redacted record.
        if let Body::Hook(h) = &mut records[0].body {
            h.pty_session = Some("pty-9".into());
        }
        records[1].redactions = 2;
        records
    }

    fn encode(records: &[Record]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let bytes: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
        let mut raw = Vec::new();
        encode_block(bytes.iter().map(Vec::as_slice), &mut raw);
        (bytes, raw)
    }

    #[test]
    fn round_trips_every_kind_of_record() {
        let records = sample();
        let (bytes, raw) = encode(&records);
        assert!(is_columnar(&raw));
        assert_eq!(decode_block(&raw, records.len() as u32).unwrap(), bytes);
        for (i, expected) in bytes.iter().enumerate() {
            match OneRecord::new(i).step(&raw, true).unwrap() {
                Step::Found(got) => assert_eq!(&got, expected),
                other => panic!("record {i}: {other:?}"),
            }
        }
        assert!(matches!(
            OneRecord::new(records.len()).step(&raw, true).unwrap(),
            Step::Absent
        ));
    }

    #[test]
    fn walking_in_place_gives_what_decode_block_gives() {
        let records = sample();
        let (bytes, raw) = encode(&records);
        let mut walked = Vec::new();
        for_each_record(&raw, records.len() as u32, |index, record| {
            walked.push((index, record));
        })
        .unwrap();
        assert_eq!(walked.len(), bytes.len());
        let mut kinds = (0, 0);
        for ((index, record), (i, expected)) in walked.iter().zip(bytes.iter().enumerate()) {
            assert_eq!(*index, i);
            match record {
                BlockRecord::Compact(record) => {
                    kinds.0 += 1;
                    let mut again = Vec::new();
                    rmp_serde::encode::write_named(&mut again, record).unwrap();
                    assert_eq!(&again, expected, "record {i}");
                    let decoded = crate::model::RecordRef::decode(expected).unwrap();
                    assert_eq!(&decoded, record, "record {i}");
                }
                BlockRecord::Opaque(got) => {
                    kinds.1 += 1;
                    assert_eq!(got, expected, "record {i}");
                }
            }
        }
        // Hooks and transcript lines (two of them malformed) compact; PTY and internal opaque.
        assert_eq!(kinds, (6, 2));
        // Damage is an error, never a panic, and a wrong count is damage.
        assert!(for_each_record(&raw, 7, |_, _| {}).is_err());
        for cut in 0..raw.len() {
            assert!(for_each_record(&raw[..cut], 8, |_, _| {}).is_err());
        }
        for at in 0..raw.len() {
            let mut bad = raw.clone();
            bad[at] ^= 0x5a;
            let walked = for_each_record(&bad, 8, |_, _| {});
            assert_eq!(walked.is_ok(), decode_block(&bad, 8).is_ok(), "byte {at}");
        }
    }

    #[test]
    fn payloads_are_stored_verbatim_and_envelopes_are_small() {
        let records = sample();
        let (bytes, raw) = encode(&records);
        let head = head(&raw).unwrap();
        // The payload section is the hook and transcript payloads, each ended by a newline
        // (none holds one), then the PTY and internal records' bytes.
        let mut expected: Vec<u8> = records[..6]
            .iter()
            .flat_map(|r| [r.raw(), b"\n"].concat())
            .collect();
        expected.extend(bytes[6..].iter().flatten());
        assert_eq!(&raw[head.payloads_at..], expected.as_slice());
        // The compact envelopes are well under half of what rmp-serde's named encoding spends
        // around the same payloads.
        let inline: usize = records[..6]
            .iter()
            .zip(&bytes)
            .map(|(r, b)| b.len() - r.raw().len())
            .sum();
        let opaque_envelopes = 2 * 2;
        assert!(
            (head.envelopes.len() - opaque_envelopes) * 2 < inline,
            "envelopes {} bytes vs {inline} inline",
            head.envelopes.len()
        );
    }

    #[test]
    fn truncated_or_damaged_blocks_are_errors_not_panics() {
        let (_, raw) = encode(&sample());
        for cut in 0..raw.len() {
            let _ = decode_block(&raw[..cut], 8);
            let _ = OneRecord::new(3).step(&raw[..cut], cut == raw.len());
            let mut one = OneRecord::new(7);
            let _ = one.step(&raw[..cut / 2], false);
            let _ = one.step(&raw[..cut], cut == raw.len());
        }
        for at in 0..raw.len() {
            let mut bad = raw.clone();
            bad[at] ^= 0x5a;
            let _ = decode_block(&bad, 8);
            let _ = OneRecord::new(5).step(&bad, true);
        }
        assert!(decode_block(&raw, 7).is_err());
    }

    #[test]
    fn find_agrees_with_memmem() {
        let short = b"{\"a\":\"abcabd\",\"b\":\"abd\"}".as_slice();
        let long = [short.repeat(300), b"zz".to_vec()].concat();
        for hay in [short, long.as_slice()] {
            for needle in [&b"abd"[..], b"zz", b"\"", b"x", b"abcabd\",", b""] {
                let expected = if needle.is_empty() {
                    None
                } else {
                    memmem::find(hay, needle)
                };
                assert_eq!(find(hay, needle), expected, "{needle:?}");
            }
        }
    }

    #[test]
    fn payload_timestamps_parse_like_ingest() {
        for text in [
            "2025-06-26T11:45:51.979Z",
            "2025-06-26T11:45:51Z",
            "2024-02-29T23:59:59.123456789Z",
            "1970-01-01T00:00:00.0Z",
            "2100-03-01T00:00:00.5Z",
        ] {
            assert_eq!(
                parse_utc(text.as_bytes()),
                crate::claude::parse_timestamp(text),
                "{text}"
            );
        }
        for bad in [
            "2025-06-26 11:45:51Z",
            "2025-13-01T00:00:00Z",
            "2025-06-26T11:45:51.Z",
            "",
        ] {
            assert_eq!(parse_utc(bad.as_bytes()), None, "{bad}");
        }
        // The last "timestamp" key counts, as memmem::rfind finds it (overlapping keys too).
        for raw in [
            br#"{"timestamp":"timestamp":"2025-06-26T11:45:51Z"}"#.as_slice(),
            br#""timestamp":"timestamp":"timestamp":"2020-01-01T00:00:00Z""#,
            br#"{"timestamp":"2020-01-01T00:00:00Z","timestamp":"timestamp":"x"}"#,
            br#"{"a":"timestamp","timestamp":"2021-01-01T00:00:00Z"}"#,
            br#""timestamp":""#,
            br#"timestamp":"2021-01-01T00:00:00Z""#,
            b"",
        ] {
            let expected = memmem::rfind(raw, br#""timestamp":""#).and_then(|at| {
                let start = at + 13;
                let len = memchr::memchr(b'"', &raw[start..])?;
                parse_utc(&raw[start..start + len])
            });
            assert_eq!(
                payload_ts(raw),
                expected,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let raw = br#"{"message":{"timestamp":"2020-01-01T00:00:00Z"},"timestamp":"2025-06-26T11:45:51.979Z"}"#;
        assert_eq!(
            payload_ts(raw),
            crate::claude::parse_timestamp("2025-06-26T11:45:51.979Z")
        );
    }

    #[test]
    fn partial_blocks_ask_for_more_bytes() {
        let (bytes, raw) = encode(&sample());
        let mut have = 8usize;
        let mut one = OneRecord::new(3);
        loop {
            match one
                .step(&raw[..have.min(raw.len())], have >= raw.len())
                .unwrap()
            {
                Step::Need(n) => {
                    assert!(n > have.min(raw.len()));
                    have = n;
                }
                Step::Found(got) => {
                    assert_eq!(got, bytes[3]);
                    break;
                }
                Step::Absent => panic!("absent"),
            }
        }
    }
}
