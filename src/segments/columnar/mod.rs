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

use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::model::{Malformed, Source, Usage};

/// First four bytes of a columnar block's raw content. Blocks of format versions 1 and 2
/// start with a frame (`"CTF1"`), so the two layouts are told apart by their first bytes.
pub const BLOCK_MAGIC: [u8; 4] = *b"CTB3";

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
pub type BlockDecodeError = &'static str;

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

// --- encoding ---------------------------------------------------------------------------------

/// Per-block encoder state: the previous envelope's values, for "same" and deltas.
#[derive(Default)]
struct EncodeState {
    ts: u64,
    slots: [Option<String>; SLOTS],
    origin_end: Option<u64>,
}

impl EncodeState {
    fn string(&mut self, out: &mut Vec<u8>, slot: usize, value: Option<&str>, raw: &[u8]) {
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
    fn head(&mut self, out: &mut Vec<u8>, kind: u8, ts: u64, raw: &[u8]) {
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

    fn origin(&mut self, out: &mut Vec<u8>, origin: Option<&OriginRef<'_>>, raw: &[u8]) {
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

/// Writes the compact envelope of `record`; PTY and internal records write nothing (the
/// caller stores those opaque).
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
        // Decoded borrowed (no copies); PTY and internal records do not decode as a
        // `RecordRef` and stay opaque, as do bytes that are not exactly what ctrace's encoder
        // writes for what they decode to (for example a field this build does not know).
        let compact = rmp_serde::from_slice::<RecordRef<'_>>(bytes)
            .ok()
            .filter(|record| {
                again.clear();
                rmp_serde::encode::write_named(&mut again, record).is_ok() && again == bytes
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

// --- decoding ---------------------------------------------------------------------------------

/// Where a decoded string lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// In the envelope section at this range.
    Envelope(usize, usize),
    /// In the payload section: absolute range within the payload section.
    Payload(usize, usize),
}

/// The sections a [`Loc`] points into, and where the current record's payload starts.
#[derive(Clone, Copy)]
struct EntrySource<'a> {
    envelopes: &'a [u8],
    payloads: &'a [u8],
    /// Where this record's payload starts in the payload section.
    payload_at: usize,
}

impl<'a> EntrySource<'a> {
    fn resolve(&self, loc: Loc) -> Result<&'a [u8], BlockDecodeError> {
        let (buf, start, end) = match loc {
            Loc::Envelope(s, e) => (self.envelopes, s, e),
            Loc::Payload(s, e) => (self.payloads, s, e),
        };
        buf.get(start..end).ok_or("string reference out of range")
    }
}

/// Per-block decoder state: the previous envelope's values.
#[derive(Debug, Clone, Default)]
struct DecodeState {
    ts: u64,
    slots: [Option<Loc>; SLOTS],
    origin_end: Option<u64>,
}

/// The decoded fields of a compact envelope, with strings as locations.
#[derive(Debug, Clone)]
struct Fields {
    kind: u8,
    /// `None`: the payload's `"timestamp"` (see [`payload_ts`]).
    ts: Option<u64>,
    redactions: u32,
    strings: [Option<Loc>; SLOTS],
    malformed: Option<Malformed>,
    usage: Option<Usage>,
    is_sidechain: Option<bool>,
    origin: Option<(Loc, u64, u64)>,
    /// The payload's range in the payload section (absolute).
    raw: (usize, usize),
}

enum Entry {
    Opaque { range: (usize, usize) },
    Compact(Box<Fields>),
}

/// The error [`DecodeState::entry`] gives when a newline-terminated payload's newline is not
/// in the bytes available (more are needed, or the block is damaged).
const NO_NEWLINE: BlockDecodeError = "payload without its newline";

impl DecodeState {
    /// Decodes a string field whose payload occupies `raw` (absolute range in the payload
    /// section).
    fn string(
        &mut self,
        cursor: &mut Cursor<'_>,
        slot: usize,
        raw: (usize, usize),
    ) -> Result<(), BlockDecodeError> {
        let tag = cursor.u8()?;
        let loc = match tag {
            STR_NONE => None,
            STR_SAME => Some(self.slots[slot].ok_or("\"same\" string without a previous one")?),
            STR_REF | STR_REF_END => {
                let position = cursor.len()?;
                let len = cursor.len()?;
                let start = if tag == STR_REF {
                    raw.0.checked_add(position)
                } else {
                    raw.1.checked_sub(position)
                }
                .filter(|&start| start >= raw.0)
                .ok_or("string reference out of range")?;
                let end = start
                    .checked_add(len)
                    .filter(|&end| end <= raw.1)
                    .ok_or("string reference out of range")?;
                Some(Loc::Payload(start, end))
            }
            STR_LIT => {
                let len = cursor.len()?;
                let start = cursor.at;
                cursor.bytes(len)?;
                Some(Loc::Envelope(start, start + len))
            }
            _ => return Err("unknown string tag"),
        };
        self.slots[slot] = loc;
        Ok(())
    }

    /// Decodes one envelope at the cursor. `source` gives where this record's payload starts.
    /// Returns the entry and where the next record's payload starts.
    fn entry(
        &mut self,
        cursor: &mut Cursor<'_>,
        source: EntrySource<'_>,
    ) -> Result<(Entry, usize), BlockDecodeError> {
        let payload_at = source.payload_at;
        let kind_byte = cursor.u8()?;
        if kind_byte == KIND_OPAQUE {
            let len = cursor.len()?;
            let end = payload_at.checked_add(len).ok_or("length out of range")?;
            return Ok((
                Entry::Opaque {
                    range: (payload_at, end),
                },
                end,
            ));
        }
        let kind = kind_byte & !KIND_TS_FROM_PAYLOAD;
        if kind != KIND_HOOK && kind != KIND_TRANSCRIPT {
            return Err("unknown envelope kind");
        }
        let (raw, next) = match cursor.len()? {
            0 => {
                let rest = source.payloads.get(payload_at..).ok_or(NO_NEWLINE)?;
                let at = payload_at + memchr::memchr(b'\n', rest).ok_or(NO_NEWLINE)?;
                ((payload_at, at), at + 1)
            }
            n => {
                let end = payload_at.checked_add(n - 1).ok_or("length out of range")?;
                ((payload_at, end), end)
            }
        };
        // A timestamp taken from the payload is only parsed when the record is materialised.
        let ts = if kind_byte & KIND_TS_FROM_PAYLOAD != 0 {
            None
        } else {
            self.ts = self.ts.wrapping_add(unzigzag(cursor.varint()?) as u64);
            Some(self.ts)
        };
        self.string(cursor, SLOT_SESSION, raw)?;
        let redactions = u32::try_from(cursor.varint()?).map_err(|_| "redactions out of range")?;
        let mut usage = None;
        let mut is_sidechain = None;
        let malformed;
        if kind == KIND_HOOK {
            for slot in 0..10 {
                self.string(cursor, slot, raw)?;
            }
            malformed = malformed_from(cursor.u8()?)?;
        } else {
            for slot in 10..17 {
                self.string(cursor, slot, raw)?;
            }
            if cursor.u8()? == 1 {
                let mut n = [0u64; 6];
                for v in &mut n {
                    *v = cursor.varint()?;
                }
                usage = Some(Usage {
                    input_tokens: n[0],
                    output_tokens: n[1],
                    cache_creation_input_tokens: n[2],
                    cache_read_input_tokens: n[3],
                    ephemeral_5m_input_tokens: n[4],
                    ephemeral_1h_input_tokens: n[5],
                });
            }
            is_sidechain = match cursor.u8()? {
                0 => None,
                1 => Some(false),
                2 => Some(true),
                _ => return Err("unknown isSidechain code"),
            };
            self.string(cursor, 17, raw)?;
            malformed = malformed_from(cursor.u8()?)?;
        }
        // Origin: the file string, then position and length deltas (the length relative to
        // the payload length).
        let origin = match cursor.u8()? {
            0 => {
                self.slots[SLOT_FILE] = None;
                self.origin_end = None;
                None
            }
            1 => {
                let same_file = cursor.buf.get(cursor.at) == Some(&STR_SAME);
                self.string(cursor, SLOT_FILE, raw)?;
                let file = self.slots[SLOT_FILE].ok_or("origin without a file")?;
                let predicted = if same_file {
                    self.origin_end.unwrap_or(0)
                } else {
                    0
                };
                let position = predicted.wrapping_add(unzigzag(cursor.varint()?) as u64);
                let len = ((raw.1 - raw.0) as u64).wrapping_add(unzigzag(cursor.varint()?) as u64);
                self.origin_end = Some(position.wrapping_add(len).wrapping_add(1));
                Some((file, position, len))
            }
            _ => return Err("unknown origin flag"),
        };
        if kind == KIND_TRANSCRIPT && origin.is_none() {
            return Err("transcript envelope without origin");
        }
        let fields = Fields {
            kind,
            ts,
            redactions,
            strings: self.slots,
            malformed,
            usage,
            is_sidechain,
            origin,
            raw,
        };
        Ok((Entry::Compact(Box::new(fields)), next))
    }
}

/// The record time a payload gives: its last `"timestamp":"…"` value, when that is exactly
/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (RFC 3339 in UTC, as Claude Code writes transcript lines),
/// in ns since the Unix epoch. The rule is part of the format: the writer leaves `ts` out only
/// when this gives it back exactly.
fn payload_ts(raw: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"timestamp\":\"";
    // The last occurrence, found forward (the forward searcher is vectorized, the reverse one
    // is not): the last of the non-overlapping matches, or the one that overlaps it by the
    // key's only border, the quote, KEY.len() - 1 bytes further on.
    static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(KEY));
    let mut at = FINDER.find_iter(raw).last()?;
    if raw
        .get(at + KEY.len() - 1..)
        .is_some_and(|rest| rest.starts_with(KEY))
    {
        at += KEY.len() - 1;
    }
    let start = at + KEY.len();
    let len = memchr::memchr(b'"', raw.get(start..)?)?;
    parse_utc(raw.get(start..start + len)?)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.d{1,9}]Z` into ns since the Unix epoch (years 1970–9999).
fn parse_utc(text: &[u8]) -> Option<u64> {
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        part.iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
        })
    };
    if text.len() < 20
        || text[4] != b'-'
        || text[7] != b'-'
        || text[10] != b'T'
        || text[13] != b':'
        || text[16] != b':'
        || *text.last()? != b'Z'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if year < 1970
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let nanos = match text.len() {
        20 => 0,
        n if (22..=30).contains(&n) && text[19] == b'.' => {
            let fraction = digits(20..n - 1)?;
            fraction * 10u64.pow(u32::try_from(30 - n).ok()?)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm), for the proleptic Gregorian
    // calendar.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

impl Fields {
    /// The record these fields describe, borrowed from the block (strings checked to be
    /// UTF-8, the timestamp taken from the payload when it is not stored).
    fn record_ref<'a>(&self, source: EntrySource<'a>) -> Result<RecordRef<'a>, BlockDecodeError> {
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
    fn encode_into(
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

/// The parsed head of a columnar block.
struct Head<'a> {
    count: usize,
    envelopes: &'a [u8],
    /// Byte position of the payload section in the raw content.
    payloads_at: usize,
}

fn head(raw: &[u8]) -> Result<Head<'_>, BlockDecodeError> {
    if !is_columnar(raw) {
        return Err("columnar block magic");
    }
    let mut cursor = Cursor { buf: raw, at: 4 };
    let count = cursor.len()?;
    let envelopes_len = cursor.len()?;
    let start = cursor.at;
    let envelopes = cursor.bytes(envelopes_len)?;
    // Every envelope takes at least two bytes: a count above that is damage.
    if count > envelopes_len / 2 + 1 {
        return Err("block record count");
    }
    Ok(Head {
        count,
        envelopes,
        payloads_at: start + envelopes_len,
    })
}

/// Decodes a columnar block's raw content into its records' encoded bytes, in order.
///
/// # Errors
/// A description of the damage when the content is not a well-formed columnar block of
/// exactly `expected` records, or when any payload section byte is left over.
pub fn decode_block(raw: &[u8], expected: u32) -> Result<Vec<Vec<u8>>, BlockDecodeError> {
    let all = decode_block_selected(raw, expected, |_, _, _| true)?;
    Ok(all.into_iter().map(|(_, bytes)| bytes).collect())
}

/// Walks a columnar block of `expected` records and returns `(index, encoded bytes)` of the
/// records `select` keeps, materialising only those. `select` gets the record's index, its
/// payload (the raw hook payload or transcript line of a compact record, or the whole encoded
/// record of an opaque one) and whether it is compact. Used by scans that can reject most
/// records from their payload alone (`ctrace grep`).
///
/// # Errors
/// As [`decode_block`].
pub fn decode_block_selected(
    raw: &[u8],
    expected: u32,
    mut select: impl FnMut(usize, &[u8], bool) -> bool,
) -> Result<Vec<(usize, Vec<u8>)>, BlockDecodeError> {
    let head = head(raw)?;
    if head.count != expected as usize {
        return Err("block record count");
    }
    let payloads = &raw[head.payloads_at..];
    let mut cursor = Cursor {
        buf: head.envelopes,
        at: 0,
    };
    let mut state = DecodeState::default();
    let mut payload_at = 0usize;
    let mut out = Vec::new();
    for index in 0..head.count {
        let source = EntrySource {
            envelopes: head.envelopes,
            payloads,
            payload_at,
        };
        let (entry, next) = state.entry(&mut cursor, source)?;
        let (range, compact) = match &entry {
            Entry::Opaque { range } => (*range, false),
            Entry::Compact(fields) => (fields.raw, true),
        };
        let payload = payloads
            .get(range.0..range.1)
            .ok_or("payload out of range")?;
        if select(index, payload, compact) {
            out.push((index, materialize_entry(&entry, source)?));
        }
        payload_at = next;
    }
    if cursor.at != head.envelopes.len() {
        return Err("bytes after the last envelope");
    }
    if payload_at != payloads.len() {
        return Err("bytes after the last payload");
    }
    Ok(out)
}

/// One record of a columnar block as [`for_each_record`] gives it, borrowed from the block's
/// raw content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "given by value to a callback, one record at a time: boxing would allocate per record"
)]
pub enum BlockRecord<'a> {
    /// A hook or transcript record stored in compact form.
    Compact(RecordRef<'a>),
    /// A record stored verbatim: its encoded bytes (`Record::encode`; PTY and internal records,
    /// or bytes a compact envelope could not reproduce).
    Opaque(&'a [u8]),
}

/// Walks a columnar block of `expected` records in place: calls `each` with every record's
/// index and its fields borrowed from `raw`, in order, without building the records' encoded
/// bytes. A compact record gives what [`decode_block`] would give for it, decoded as a
/// `Record` (the same envelope decoding, checks and timestamp rule).
///
/// `each` may have been called for the records before the damage when this returns an error:
/// callers that must not use part of a damaged block keep what they got until the end.
///
/// # Errors
/// As [`decode_block`].
pub fn for_each_record<'a>(
    raw: &'a [u8],
    expected: u32,
    mut each: impl FnMut(usize, BlockRecord<'a>),
) -> Result<(), BlockDecodeError> {
    let head = head(raw)?;
    if head.count != expected as usize {
        return Err("block record count");
    }
    let payloads = raw.get(head.payloads_at..).ok_or("payload out of range")?;
    let mut cursor = Cursor {
        buf: head.envelopes,
        at: 0,
    };
    let mut state = DecodeState::default();
    let mut payload_at = 0usize;
    for index in 0..head.count {
        let source = EntrySource {
            envelopes: head.envelopes,
            payloads,
            payload_at,
        };
        let (entry, next) = state.entry(&mut cursor, source)?;
        let record = match &entry {
            Entry::Opaque { range } => BlockRecord::Opaque(
                payloads
                    .get(range.0..range.1)
                    .ok_or("payload out of range")?,
            ),
            Entry::Compact(fields) => BlockRecord::Compact(fields.record_ref(source)?),
        };
        each(index, record);
        payload_at = next;
    }
    if cursor.at != head.envelopes.len() {
        return Err("bytes after the last envelope");
    }
    if payload_at != payloads.len() {
        return Err("bytes after the last payload");
    }
    Ok(())
}

fn materialize_entry(entry: &Entry, source: EntrySource<'_>) -> Result<Vec<u8>, BlockDecodeError> {
    match entry {
        Entry::Opaque { range } => Ok(source
            .payloads
            .get(range.0..range.1)
            .ok_or("payload out of range")?
            .to_vec()),
        Entry::Compact(fields) => {
            let mut out = Vec::with_capacity(fields.raw.1.saturating_sub(fields.raw.0) + 256);
            fields.encode_into(source, &mut out)?;
            Ok(out)
        }
    }
}

/// Incremental access to one record of a columnar block whose raw content arrives in pieces
/// (streaming decompression): call [`OneRecord::step`] with the bytes decompressed so far
/// (always the same buffer, grown) until it returns a result. Envelopes already walked are not
/// decoded again.
#[derive(Debug)]
pub struct OneRecord {
    index: usize,
    /// Envelopes walked so far.
    walked: usize,
    /// Position of the next envelope in the envelope section.
    cursor_at: usize,
    state: DecodeState,
    /// Where the next record's payload starts in the payload section.
    payload_at: usize,
}

/// What [`OneRecord::step`] needs or found.
#[derive(Debug)]
pub enum Step {
    /// At least this many raw bytes are needed before the record can be returned.
    Need(usize),
    /// The record's encoded bytes.
    Found(Vec<u8>),
    /// The block holds fewer records than the index.
    Absent,
}

impl OneRecord {
    /// Looks for the `index`-th record.
    pub fn new(index: usize) -> Self {
        Self {
            index,
            walked: 0,
            cursor_at: 0,
            state: DecodeState::default(),
            payload_at: 0,
        }
    }

    /// Tries to return the record from the raw bytes available so far (`complete` when they
    /// are the whole block).
    ///
    /// # Errors
    /// A description of the damage when the bytes are not a well-formed columnar block.
    pub fn step(&mut self, raw: &[u8], complete: bool) -> Result<Step, BlockDecodeError> {
        let more = |raw: &[u8]| Ok(Step::Need(raw.len() + (64 << 10)));
        let head = match head(raw) {
            Ok(head) => head,
            Err(e) => {
                return if complete || (raw.len() >= BLOCK_MAGIC.len() && !is_columnar(raw)) {
                    Err(e)
                } else {
                    more(raw)
                };
            }
        };
        if self.index >= head.count {
            return Ok(Step::Absent);
        }
        let payloads = &raw[head.payloads_at..];
        while self.walked <= self.index {
            let mut cursor = Cursor {
                buf: head.envelopes,
                at: self.cursor_at,
            };
            let source = EntrySource {
                envelopes: head.envelopes,
                payloads,
                payload_at: self.payload_at,
            };
            let saved = self.state.clone();
            let (entry, next) = match self.state.entry(&mut cursor, source) {
                Err(NO_NEWLINE) if !complete => {
                    self.state = saved;
                    return more(raw);
                }
                other => other?,
            };
            if next > payloads.len() {
                if complete {
                    return Err("payload out of range");
                }
                self.state = saved;
                return Ok(Step::Need(head.payloads_at + next));
            }
            if self.walked == self.index {
                return materialize_entry(&entry, source).map(Step::Found);
            }
            self.walked += 1;
            self.cursor_at = cursor.at;
            self.payload_at = next;
        }
        Ok(Step::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, InternalBody, Origin, PtyBody, PtyKind, Record};

    fn hook(ts: u64, raw: &str, origin: Option<Origin>) -> Record {
        crate::ingest::payload::hook_record(raw.as_bytes().to_vec(), ts, None, origin)
    }

    fn transcript(raw: &str, position: u64) -> Record {
        crate::ingest::payload::transcript_record(
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
                    let decoded: RecordRef<'_> = rmp_serde::from_slice(expected).unwrap();
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
                crate::ingest::payload::parse_timestamp(text),
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
            crate::ingest::payload::parse_timestamp("2025-06-26T11:45:51.979Z")
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
