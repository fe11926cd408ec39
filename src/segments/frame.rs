//! Frame codec: the on-disk envelope of one record (or one piece of a large record).
//!
//! Layout, little-endian (see `docs/format.md`):
//!
//! ```text
//! 0        4        8        12     13         16
//! | magic  |  len   | crc32  | flags| reserved |  payload[len] ...
//! ```
//!
//! - `magic` is [`FRAME_MAGIC`].
//! - `len` is the payload length in bytes, at most the configured frame limit
//!   (checked before anything is allocated).
//! - `crc32` is CRC-32 (IEEE, `crc32fast`) over the `len` bytes, the `flags` byte, the three
//!   reserved bytes and the payload.
//! - `flags` bit 0 ([`FLAG_CONTINUES`]) says the record continues in the next frame: a record
//!   larger than the frame limit is split into a chain of frames, all written with one `write()`.
//!
//! Invariants: a frame is valid iff magic, bound and CRC all hold. A decoder never panics and
//! never allocates more than the frame limit for any input. A partial frame at the end of the
//! input is [`Decoded::Incomplete`] (a torn tail), not an error.

use super::SegmentError;

/// First four bytes of every frame (`"CTF1"` read as a little-endian u32).
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"CTF1");
/// Size of the frame header in bytes.
pub const HEADER_BYTES: usize = 16;
/// Default upper bound of a frame payload in bytes (1 MiB); larger records are chained.
pub const DEFAULT_FRAME_LIMIT_BYTES: u32 = 1 << 20;
/// Hard ceiling for the configurable frame limit in bytes (64 MiB).
pub const MAX_FRAME_LIMIT_BYTES: u32 = 64 << 20;
/// Flag bit: the record continues in the next frame.
pub const FLAG_CONTINUES: u8 = 0x01;
/// Flag bit: this frame continues the record of the previous frame (set on every frame of a
/// chain but the first), so a chain cut short can never absorb the next record's frame.
pub(crate) const FLAG_CONTINUED: u8 = 0x02;
/// Flag bits a valid frame may carry.
const KNOWN_FLAGS: u8 = FLAG_CONTINUES | FLAG_CONTINUED;

/// One decoded frame, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The flags byte.
    pub flags: u8,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Whether the record continues in the next frame.
    pub fn continues(&self) -> bool {
        self.flags & FLAG_CONTINUES != 0
    }

    /// Whether this frame continues the previous frame's record.
    pub fn continued(&self) -> bool {
        self.flags & FLAG_CONTINUED != 0
    }
}

/// Result of decoding one frame at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid frame and its total size in bytes (header + payload).
    Frame(Frame<'a>, usize),
    /// The buffer ends inside a frame whose header is plausible: a torn tail.
    Incomplete,
}

/// Computes the frame CRC over `len`, `flags`, reserved bytes and payload.
fn frame_crc(len_bytes: [u8; 4], flags: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(&[flags, 0, 0, 0]);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one frame carrying `payload` with `flags` to `out`.
///
/// # Errors
/// [`SegmentError::FrameTooLarge`] when `payload` is longer than `limit_bytes`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    flags: u8,
    payload: &[u8],
    limit_bytes: u32,
) -> Result<(), SegmentError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= limit_bytes)
        .ok_or(SegmentError::FrameTooLarge {
            len: payload.len() as u64,
            limit: u64::from(limit_bytes),
        })?;
    let len_bytes = len.to_le_bytes();
    out.reserve(HEADER_BYTES + payload.len());
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&frame_crc(len_bytes, flags, payload).to_le_bytes());
    out.extend_from_slice(&[flags, 0, 0, 0]);
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends a whole record to `out` as one frame, or as a chain of frames when it is longer than
/// `limit_bytes`. Never truncates: every byte of `record` is written.
///
/// # Panics
/// Never: `limit_bytes` of 0 is treated as 1.
pub fn encode_record(out: &mut Vec<u8>, record: &[u8], limit_bytes: u32) {
    let limit = limit_bytes.max(1);
    let chunk = limit as usize;
    if record.len() <= chunk {
        push_frame_unchecked(out, 0, record);
        return;
    }
    let mut pieces = record.chunks(chunk).peekable();
    let mut first = true;
    while let Some(piece) = pieces.next() {
        let mut flags = if pieces.peek().is_some() {
            FLAG_CONTINUES
        } else {
            0
        };
        if !first {
            flags |= FLAG_CONTINUED;
        }
        first = false;
        push_frame_unchecked(out, flags, piece);
    }
}

fn push_frame_unchecked(out: &mut Vec<u8>, flags: u8, payload: &[u8]) {
    // Callers bound `payload` by the frame limit, which is at most u32::MAX.
    let len_bytes = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&frame_crc(len_bytes, flags, payload).to_le_bytes());
    out.extend_from_slice(&[flags, 0, 0, 0]);
    out.extend_from_slice(payload);
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Decodes the frame at the start of `buf`.
///
/// # Errors
/// - [`SegmentError::BadMagic`] when the first four bytes are not [`FRAME_MAGIC`];
/// - [`SegmentError::FrameTooLarge`] when the length field exceeds `limit_bytes`;
/// - [`SegmentError::FrameChecksum`] when the CRC does not match;
/// - [`SegmentError::BadFlags`] when unknown flag or reserved bits are set.
///
/// `position` is only used to name the place in errors.
pub fn decode_frame(
    buf: &[u8],
    limit_bytes: u32,
    position: u64,
) -> Result<Decoded<'_>, SegmentError> {
    if buf.len() < 4 {
        return if FRAME_MAGIC.to_le_bytes().starts_with(buf) {
            Ok(Decoded::Incomplete)
        } else {
            Err(SegmentError::BadMagic { position })
        };
    }
    if read_u32(buf, 0) != Some(FRAME_MAGIC) {
        return Err(SegmentError::BadMagic { position });
    }
    let Some(len) = read_u32(buf, 4) else {
        return Ok(Decoded::Incomplete);
    };
    if len > limit_bytes {
        return Err(SegmentError::FrameTooLarge {
            len: u64::from(len),
            limit: u64::from(limit_bytes),
        });
    }
    if buf.len() < HEADER_BYTES {
        return Ok(Decoded::Incomplete);
    }
    let stored = read_u32(buf, 8).unwrap_or(0);
    let flags = buf[12];
    let total = HEADER_BYTES + len as usize;
    let Some(payload) = buf.get(HEADER_BYTES..total) else {
        return Ok(Decoded::Incomplete);
    };
    let computed = frame_crc(len.to_le_bytes(), flags, payload);
    if stored != computed {
        return Err(SegmentError::FrameChecksum {
            position,
            stored,
            computed,
        });
    }
    if flags & !KNOWN_FLAGS != 0 || buf[13..16] != [0, 0, 0] {
        return Err(SegmentError::BadFlags { position, flags });
    }
    Ok(Decoded::Frame(Frame { flags, payload }, total))
}

/// What a [`Scanner`] yields.
#[derive(Debug)]
pub enum ScanItem {
    /// A whole record (reassembled from its frame chain) and the byte range it occupied.
    Record {
        /// Byte position of the record's first frame.
        position: u64,
        /// Bytes the record's frames occupy.
        len: u64,
        /// The record bytes.
        bytes: Vec<u8>,
    },
    /// Bytes skipped because they did not form valid frames (damage), with the first error.
    Skipped {
        /// Byte position where the damage starts.
        position: u64,
        /// Bytes skipped.
        len: u64,
        /// What was wrong at `position`.
        error: SegmentError,
    },
}

/// Scans a buffer of frames with resynchronisation: after damage it searches forward for the
/// next position where a valid frame decodes, and reports what it skipped.
///
/// Stops at the end of the buffer or at a torn tail; [`Scanner::valid_len`] then tells the
/// length of the prefix that holds whole records (where a writer may truncate to).
#[derive(Debug)]
pub struct Scanner<'a> {
    buf: &'a [u8],
    at: usize,
    limit_bytes: u32,
    base_position: u64,
    valid_len: usize,
    torn: bool,
}

impl<'a> Scanner<'a> {
    /// A scanner over `buf`, whose first byte is at file byte `base_position`.
    pub fn new(buf: &'a [u8], limit_bytes: u32, base_position: u64) -> Self {
        Self {
            buf,
            at: 0,
            limit_bytes,
            base_position,
            valid_len: 0,
            torn: false,
        }
    }

    /// Length in bytes of the prefix that ends after the last whole record seen so far.
    pub fn valid_len(&self) -> usize {
        self.valid_len
    }

    /// Whether the scan stopped at a torn tail (an incomplete frame at the end).
    pub fn torn_tail(&self) -> bool {
        self.torn
    }

    /// Bytes after [`Scanner::valid_len`] that are not part of a whole record.
    pub fn tail_bytes(&self) -> usize {
        self.buf.len() - self.valid_len
    }

    /// Tries to decode a whole record (frame chain) at `at`. Returns the record and its end,
    /// `Ok(None)` on a torn tail, or the error at the first bad frame.
    fn record_at(&self, at: usize) -> Result<Option<(Vec<u8>, usize)>, SegmentError> {
        let mut cursor = at;
        let mut bytes = Vec::new();
        loop {
            let position = self.base_position + cursor as u64;
            match decode_frame(&self.buf[cursor..], self.limit_bytes, position)? {
                Decoded::Incomplete => return Ok(None),
                Decoded::Frame(frame, size) => {
                    // A chain starts with a frame that is not a continuation, and every later
                    // frame of it is one.
                    if frame.continued() != (cursor != at) {
                        return Err(SegmentError::BrokenChain { position });
                    }
                    bytes.extend_from_slice(frame.payload);
                    cursor += size;
                    if !frame.continues() {
                        return Ok(Some((bytes, cursor)));
                    }
                    if cursor >= self.buf.len() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The first position at or after `from` where a whole, valid record starts.
    fn next_whole_record(&self, from: usize) -> Option<usize> {
        let magic = FRAME_MAGIC.to_le_bytes();
        let mut search = from;
        while search < self.buf.len() {
            let candidate = search + find(&self.buf[search..], &magic)?;
            if let Ok(Some(_)) = self.record_at(candidate) {
                return Some(candidate);
            }
            search = candidate + 1;
        }
        None
    }

    /// Finds the next position after `from` where a whole valid record starts, if any.
    fn resync(&self, from: usize) -> Option<usize> {
        let magic = FRAME_MAGIC.to_le_bytes();
        let mut search = from;
        while let Some(found) = find(&self.buf[search..], &magic) {
            let candidate = search + found;
            match self.record_at(candidate) {
                Ok(Some(_)) => return Some(candidate),
                // A plausible frame cut by the end of the buffer: a torn tail after damage.
                Ok(None) => return Some(candidate),
                Err(_) => search = candidate + 1,
            }
        }
        None
    }
}

/// Position of the first occurrence of `needle` (a frame magic) in `haystack`; SIMD search, so
/// resynchronisation over damaged bytes runs at memory speed.
fn find(haystack: &[u8], needle: &[u8; 4]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

impl Iterator for Scanner<'_> {
    type Item = ScanItem;

    fn next(&mut self) -> Option<ScanItem> {
        if self.at >= self.buf.len() || self.torn {
            return None;
        }
        let position = self.base_position + self.at as u64;
        match self.record_at(self.at) {
            Ok(Some((bytes, end))) => {
                let len = (end - self.at) as u64;
                self.at = end;
                self.valid_len = end;
                Some(ScanItem::Record {
                    position,
                    len,
                    bytes,
                })
            }
            Ok(None) => {
                // An incomplete frame is a torn tail only if no whole record follows it; a frame
                // cut short in the middle of a file (damage) must not hide the records after it.
                match self.next_whole_record(self.at + 1) {
                    Some(next) => {
                        let len = (next - self.at) as u64;
                        self.at = next;
                        Some(ScanItem::Skipped {
                            position,
                            len,
                            error: SegmentError::FrameCutShort { position },
                        })
                    }
                    None => {
                        self.torn = true;
                        None
                    }
                }
            }
            Err(error) => {
                let next = self.resync(self.at + 1).unwrap_or(self.buf.len());
                let len = (next - self.at) as u64;
                self.at = next;
                Some(ScanItem::Skipped {
                    position,
                    len,
                    error,
                })
            }
        }
    }
}

/// Bytes a [`StreamScanner`] reads at a time (1 MiB).
const STREAM_READ_BYTES: usize = 1 << 20;

/// A [`Scanner`] over a reader rather than a buffer: it holds the bytes of the record being
/// decoded plus one read (1 MiB), not the whole input, and yields the same records, skipped
/// ranges (damage may be reported in several pieces, of the same total) and torn tail as a
/// [`Scanner`] over the whole input. Memory: the largest frame chain in the input (a frame is
/// at most `limit_bytes`) plus 1 MiB.
#[derive(Debug)]
pub struct StreamScanner<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already yielded.
    at: usize,
    /// Input position of `buf[0]`.
    base: u64,
    eof: bool,
    torn: bool,
    limit_bytes: u32,
    /// Input position after the last whole record.
    valid_end: u64,
}

impl<R: std::io::Read> StreamScanner<R> {
    /// A scanner over `reader` from its current position (input position 0).
    pub fn new(reader: R, limit_bytes: u32) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            at: 0,
            base: 0,
            eof: false,
            torn: false,
            limit_bytes,
            valid_end: 0,
        }
    }

    /// Bytes read so far that are not part of a whole record, after the last whole record
    /// (as [`Scanner::tail_bytes`] once the scan has ended).
    pub fn tail_bytes(&self) -> u64 {
        (self.base + self.buf.len() as u64).saturating_sub(self.valid_end)
    }

    /// Reads up to 1 MiB more, first dropping the bytes already yielded. Sets `eof` when
    /// nothing more comes.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.base += self.at as u64;
            self.at = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + STREAM_READ_BYTES, 0);
        let read = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + read);
        self.eof = read == 0;
        Ok(())
    }

    /// Skips `len` bytes from the current position as damage.
    fn skip(&mut self, len: usize, error: SegmentError) -> ScanItem {
        let position = self.base + self.at as u64;
        self.at += len;
        ScanItem::Skipped {
            position,
            len: len as u64,
            error,
        }
    }

    /// The next record or skipped range; `Ok(None)` at the end of the input or at a torn tail.
    ///
    /// # Errors
    /// The reader's I/O error.
    pub fn next_item(&mut self) -> std::io::Result<Option<ScanItem>> {
        loop {
            if self.torn {
                return Ok(None);
            }
            if self.at >= self.buf.len() {
                if self.eof {
                    return Ok(None);
                }
                self.fill()?;
                continue;
            }
            let position = self.base + self.at as u64;
            let scanner = Scanner::new(&self.buf[self.at..], self.limit_bytes, position);
            match scanner.record_at(0) {
                Ok(Some((bytes, end))) => {
                    self.at += end;
                    self.valid_end = position + end as u64;
                    return Ok(Some(ScanItem::Record {
                        position,
                        len: end as u64,
                        bytes,
                    }));
                }
                // Maybe only cut by the end of what was read so far.
                Ok(None) if !self.eof => self.fill()?,
                Ok(None) => match scanner.next_whole_record(1) {
                    Some(next) => {
                        return Ok(Some(
                            self.skip(next, SegmentError::FrameCutShort { position }),
                        ));
                    }
                    None => {
                        self.torn = true;
                        return Ok(None);
                    }
                },
                Err(error) => {
                    let window = self.buf.len() - self.at;
                    let next = match scanner.resync(1) {
                        Some(next) => next,
                        None if self.eof => window,
                        // The last bytes may start a magic that the next read completes.
                        None => window
                            .saturating_sub(FRAME_MAGIC.to_le_bytes().len() - 1)
                            .max(1),
                    };
                    return Ok(Some(self.skip(next, error)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(records: &[&[u8]], limit: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for record in records {
            encode_record(&mut out, record, limit);
        }
        out
    }

    fn records(buf: &[u8], limit: u32) -> (Vec<Vec<u8>>, u64) {
        let mut found = Vec::new();
        let mut skipped = 0;
        for item in Scanner::new(buf, limit, 0) {
            match item {
                ScanItem::Record { bytes, .. } => found.push(bytes),
                ScanItem::Skipped { len, .. } => skipped += len,
            }
        }
        (found, skipped)
    }

    #[test]
    fn round_trip_including_chained_records() {
        let big = vec![7u8; 10_000];
        let buf = framed(&[b"one", b"", &big, b"four"], 4096);
        let (found, skipped) = records(&buf, 4096);
        assert_eq!(skipped, 0);
        assert_eq!(found, vec![b"one".to_vec(), vec![], big, b"four".to_vec()]);
    }

    #[test]
    fn every_cut_yields_whole_records_before_it() {
        let inputs: Vec<Vec<u8>> = (0..6).map(|i| vec![i as u8; i * 7]).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let buf = framed(&refs, 16);
        let mut ends = Vec::new();
        let mut pos = 0;
        for record in &refs {
            let mut one = Vec::new();
            encode_record(&mut one, record, 16);
            pos += one.len();
            ends.push(pos);
        }
        for cut in 0..=buf.len() {
            let (found, skipped) = records(&buf[..cut], 16);
            let whole = ends.iter().filter(|end| **end <= cut).count();
            assert_eq!(skipped, 0, "cut {cut}");
            assert_eq!(found.len(), whole, "cut {cut}");
            assert_eq!(found[..], inputs[..whole]);
        }
    }

    #[test]
    fn every_byte_flip_is_detected() {
        let buf = framed(&[b"hello", b"world!"], 1024);
        for at in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[at] ^= 1 << bit;
                let (found, skipped) = records(&damaged, 1024);
                let intact = skipped == 0 && found == vec![b"hello".to_vec(), b"world!".to_vec()];
                assert!(!intact, "flip at {at} bit {bit} undetected");
            }
        }
    }

    #[test]
    fn resync_skips_garbage_and_keeps_later_records() {
        let mut buf = framed(&[b"first"], 1024);
        buf.extend_from_slice(b"garbage CTF1 garbage");
        buf.extend_from_slice(&framed(&[b"second"], 1024));
        let (found, skipped) = records(&buf, 1024);
        assert_eq!(found, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(skipped, 20);
    }

    #[test]
    fn length_over_limit_is_rejected_before_allocation() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        assert!(matches!(
            decode_frame(&buf, 1024, 0),
            Err(SegmentError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn checksum_and_flag_variants() {
        let buf = framed(&[b"abc"], 1024);
        let mut bad_crc = buf.clone();
        bad_crc[HEADER_BYTES] ^= 1;
        assert!(matches!(
            decode_frame(&bad_crc, 1024, 0),
            Err(SegmentError::FrameChecksum { .. })
        ));
        let mut bad_magic = buf.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(
            decode_frame(&bad_magic, 1024, 0),
            Err(SegmentError::BadMagic { .. })
        ));
    }

    /// Issue 14 item 9: a stream scan read in small pieces yields the records, skipped
    /// bytes and torn tail of a scan of the whole buffer.
    #[test]
    fn stream_scanner_matches_the_buffer_scanner() {
        let big = vec![7u8; 5000];
        let mut input = framed(&[b"one", &big, b"three"], 1024);
        let damaged_at = input.len();
        input.extend_from_slice(b"garbage CTF1 more garbage");
        input.extend_from_slice(&framed(&[b"four"], 1024));
        let mut torn = framed(&[b"five is torn"], 1024);
        torn.truncate(torn.len() - 3);
        input.extend_from_slice(&torn);
        let summary = |items: Vec<ScanItem>| {
            let mut records = Vec::new();
            let mut skipped = 0;
            for item in items {
                match item {
                    ScanItem::Record {
                        position, bytes, ..
                    } => records.push((position, bytes)),
                    ScanItem::Skipped { len, .. } => skipped += len,
                }
            }
            (records, skipped)
        };
        let mut whole = Scanner::new(&input, 1024, 0);
        let expected = summary(whole.by_ref().collect());
        /// A reader that returns at most 5 bytes per read.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(out.len()).min(5);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut stream = StreamScanner::new(Trickle(&input), 1024);
        let mut items = Vec::new();
        while let Some(item) = stream.next_item().unwrap() {
            items.push(item);
        }
        let got = summary(items);
        assert_eq!(got, expected);
        assert_eq!(got.0.len(), 4);
        assert!(got.1 > 0 && damaged_at > 0);
        assert_eq!(stream.tail_bytes(), whole.tail_bytes() as u64);
    }
}
