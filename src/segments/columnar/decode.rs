//! Decoding a columnar block: envelopes into entries, payload timestamps, whole-block decoding,
//! the in-place walk of [`for_each_record`] and the one-record stream of [`OneRecord`].

use memchr::memmem;

use super::{
    BLOCK_MAGIC, BlockDecodeError, Cursor, KIND_HOOK, KIND_OPAQUE, KIND_TRANSCRIPT,
    KIND_TS_FROM_PAYLOAD, SLOT_FILE, SLOT_SESSION, SLOTS, STR_LIT, STR_NONE, STR_REF, STR_REF_END,
    STR_SAME, is_columnar, malformed_from, unzigzag,
};
use crate::model::Usage;
use crate::model::{Malformed, RecordRef};

/// Where a decoded string lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loc {
    /// In the envelope section at this range.
    Envelope(usize, usize),
    /// In the payload section: absolute range within the payload section.
    Payload(usize, usize),
}

/// The sections a [`Loc`] points into, and where the current record's payload starts.
#[derive(Clone, Copy)]
pub(super) struct EntrySource<'a> {
    pub(super) envelopes: &'a [u8],
    pub(super) payloads: &'a [u8],
    /// Where this record's payload starts in the payload section.
    pub(super) payload_at: usize,
}

impl<'a> EntrySource<'a> {
    pub(super) fn resolve(&self, loc: Loc) -> Result<&'a [u8], BlockDecodeError> {
        let (buf, start, end) = match loc {
            Loc::Envelope(s, e) => (self.envelopes, s, e),
            Loc::Payload(s, e) => (self.payloads, s, e),
        };
        buf.get(start..end).ok_or("string reference out of range")
    }
}

/// Per-block decoder state: the previous envelope's values.
#[derive(Debug, Clone, Default)]
pub(super) struct DecodeState {
    pub(super) ts: u64,
    pub(super) slots: [Option<Loc>; SLOTS],
    pub(super) origin_end: Option<u64>,
}

/// The decoded fields of a compact envelope, with strings as locations.
#[derive(Debug, Clone)]
pub(super) struct Fields {
    pub(super) kind: u8,
    /// `None`: the payload's `"timestamp"` (see [`payload_ts`]).
    pub(super) ts: Option<u64>,
    pub(super) redactions: u32,
    pub(super) strings: [Option<Loc>; SLOTS],
    pub(super) malformed: Option<Malformed>,
    pub(super) usage: Option<Usage>,
    pub(super) is_sidechain: Option<bool>,
    pub(super) origin: Option<(Loc, u64, u64)>,
    /// The payload's range in the payload section (absolute).
    pub(super) raw: (usize, usize),
}

pub(super) enum Entry {
    Opaque { range: (usize, usize) },
    Compact(Box<Fields>),
}

/// The error [`DecodeState::entry`] gives when a newline-terminated payload's newline is not
/// in the bytes available (more are needed, or the block is damaged).
pub(super) const NO_NEWLINE: BlockDecodeError = "payload without its newline";

/// Decodes a transcript envelope's usage: a presence flag, then six varints in
/// `model::Usage` field order.
fn decode_usage(cursor: &mut Cursor<'_>) -> Result<Option<Usage>, BlockDecodeError> {
    if cursor.u8()? != 1 {
        return Ok(None);
    }
    let mut n = [0u64; 6];
    for v in &mut n {
        *v = cursor.varint()?;
    }
    Ok(Some(Usage {
        input_tokens: n[0],
        output_tokens: n[1],
        cache_creation_input_tokens: n[2],
        cache_read_input_tokens: n[3],
        ephemeral_5m_input_tokens: n[4],
        ephemeral_1h_input_tokens: n[5],
    }))
}

impl DecodeState {
    /// Decodes a string field whose payload occupies `raw` (absolute range in the payload
    /// section).
    pub(super) fn string(
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
    pub(super) fn entry(
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
            usage = decode_usage(cursor)?;
            is_sidechain = match cursor.u8()? {
                0 => None,
                1 => Some(false),
                2 => Some(true),
                _ => return Err("unknown isSidechain code"),
            };
            self.string(cursor, 17, raw)?;
            malformed = malformed_from(cursor.u8()?)?;
        }
        let origin = self.origin(cursor, raw)?;
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

    /// Decodes an envelope's origin: the file string, then position and length deltas (the
    /// length relative to the payload length, whose range is `raw`).
    fn origin(
        &mut self,
        cursor: &mut Cursor<'_>,
        raw: (usize, usize),
    ) -> Result<Option<(Loc, u64, u64)>, BlockDecodeError> {
        match cursor.u8()? {
            0 => {
                self.slots[SLOT_FILE] = None;
                self.origin_end = None;
                Ok(None)
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
                Ok(Some((file, position, len)))
            }
            _ => Err("unknown origin flag"),
        }
    }
}

/// The record time a payload gives: its last `"timestamp":"…"` value, when that is exactly
/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (RFC 3339 in UTC, as Claude Code writes transcript lines),
/// in ns since the Unix epoch. The rule is part of the format: the writer leaves `ts` out only
/// when this gives it back exactly.
pub(super) fn payload_ts(raw: &[u8]) -> Option<u64> {
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
pub(super) fn parse_utc(text: &[u8]) -> Option<u64> {
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

/// The parsed head of a columnar block.
pub(super) struct Head<'a> {
    pub(super) count: usize,
    pub(super) envelopes: &'a [u8],
    /// Byte position of the payload section in the raw content.
    pub(super) payloads_at: usize,
}

pub(super) fn head(raw: &[u8]) -> Result<Head<'_>, BlockDecodeError> {
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
