//! The byte layout of a segment's header, block index and footer: encoding, decoding and
//! the validation of a whole file before any block is handed out.

use super::{
    BlockMeta, COLUMNAR_SPARSE_FORMAT_VERSION, FOOTER_CONTENT_BYTES, FOOTER_FRAME_BYTES,
    FOOTER_FRAME_MAGIC, FOOTER_MAGIC, FORMAT_VERSION, Footer, HEADER_CONTENT_BYTES,
    HEADER_FRAME_MAGIC, INDEX_ENTRY_BYTES, INDEX_FRAME_MAGIC, SEGMENT_MAGIC, SPARSE_FORMAT_VERSION,
};
use crate::segments::Offset;
use crate::segments::SegmentError;
use crate::segments::SegmentId;

impl BlockMeta {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.first_offset.0.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
        out.extend_from_slice(&self.min_ts.to_le_bytes());
        out.extend_from_slice(&self.max_ts.to_le_bytes());
    }

    pub(super) fn decode(buf: &[u8]) -> Self {
        let mut r = LeReader(buf);
        Self {
            position: r.u64(),
            compressed_len: r.u32(),
            raw_len: r.u32(),
            first_offset: Offset(r.u64()),
            count: r.u32(),
            crc32: r.u32(),
            min_ts: r.u64(),
            max_ts: r.u64(),
        }
    }
}

/// Reads little-endian integers from a slice whose length the caller has checked.
pub(super) struct LeReader<'a>(&'a [u8]);

impl LeReader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

pub(super) fn skippable_header(magic: u32, len: usize) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&magic.to_le_bytes());
    out[4..].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    out
}

pub(super) fn encode_footer(footer: &Footer) -> Vec<u8> {
    let mut out = Vec::with_capacity(FOOTER_FRAME_BYTES);
    out.extend_from_slice(&skippable_header(FOOTER_FRAME_MAGIC, FOOTER_CONTENT_BYTES));
    out.extend_from_slice(&footer.index_position.to_le_bytes());
    out.extend_from_slice(&footer.index_len.to_le_bytes());
    out.extend_from_slice(&footer.block_count.to_le_bytes());
    out.extend_from_slice(&footer.base_offset.0.to_le_bytes());
    out.extend_from_slice(&footer.record_count.to_le_bytes());
    out.extend_from_slice(&footer.min_ts.to_le_bytes());
    out.extend_from_slice(&footer.max_ts.to_le_bytes());
    out.extend_from_slice(&footer.raw_bytes.to_le_bytes());
    out.extend_from_slice(&FOOTER_MAGIC.to_le_bytes());
    let crc = crc32fast::hash(&out[8..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and checks the footer at the end of `file` (the whole segment's bytes).
///
/// # Errors
/// [`SegmentError::Truncated`] when the file is too short; [`SegmentError::Corrupt`] naming
/// the footer when magic or CRC fail.
pub fn decode_footer(segment: SegmentId, file: &[u8]) -> Result<Footer, SegmentError> {
    let len = file.len();
    let min = 8 + HEADER_CONTENT_BYTES + FOOTER_FRAME_BYTES;
    if len < min {
        return Err(SegmentError::Truncated {
            segment,
            len: len as u64,
        });
    }
    let at = len - FOOTER_FRAME_BYTES;
    let buf = &file[at..];
    let corrupt = |what: &'static str| SegmentError::Corrupt {
        segment,
        position: at as u64,
        what,
    };
    if buf[..8] != skippable_header(FOOTER_FRAME_MAGIC, FOOTER_CONTENT_BYTES) {
        return Err(corrupt("footer frame header"));
    }
    let content = &buf[8..];
    let mut r = LeReader(content);
    let footer = Footer {
        index_position: r.u64(),
        index_len: r.u32(),
        block_count: r.u32(),
        base_offset: Offset(r.u64()),
        record_count: r.u64(),
        min_ts: r.u64(),
        max_ts: r.u64(),
        raw_bytes: r.u64(),
    };
    if r.u32() != FOOTER_MAGIC {
        return Err(corrupt("footer magic"));
    }
    let stored = r.u32();
    let computed = crc32fast::hash(&content[..FOOTER_CONTENT_BYTES - 4]);
    if stored != computed {
        return Err(SegmentError::ChecksumMismatch {
            segment,
            position: at as u64,
            what: "footer",
            stored,
            computed,
        });
    }
    Ok(footer)
}

/// A little-endian u32 of a validated segment's header at byte `at` of the file.
pub(super) fn header_u32(file: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    if let Some(src) = file.get(at..at + 4) {
        bytes.copy_from_slice(src);
    }
    u32::from_le_bytes(bytes)
}

/// Validates header, index and footer of a whole segment file and returns footer and index.
///
/// # Errors
/// As [`SegmentReader::open`](super::SegmentReader::open).
pub fn parse_segment(
    segment: SegmentId,
    file: &[u8],
) -> Result<(Footer, Vec<BlockMeta>), SegmentError> {
    let footer = decode_footer(segment, file)?;
    let version = check_header(segment, file, &footer)?;
    let blocks = read_index(segment, file, &footer)?;
    check_tiling(segment, version, &footer, &blocks)?;
    Ok((footer, blocks))
}

/// Checks the segment header of `file` against `footer`; returns the format version.
///
/// # Errors
/// [`SegmentError::Corrupt`], [`SegmentError::ChecksumMismatch`] or
/// [`SegmentError::UnsupportedVersion`], naming the byte position.
fn check_header(segment: SegmentId, file: &[u8], footer: &Footer) -> Result<u32, SegmentError> {
    let corrupt = |position: u64, what: &'static str| SegmentError::Corrupt {
        segment,
        position,
        what,
    };
    let header = &file[..8 + HEADER_CONTENT_BYTES];
    if header[..8] != skippable_header(HEADER_FRAME_MAGIC, HEADER_CONTENT_BYTES) {
        return Err(corrupt(0, "header frame header"));
    }
    let content = &header[8..];
    if content[..8] != SEGMENT_MAGIC {
        return Err(corrupt(8, "segment magic"));
    }
    let mut r = LeReader(&content[8..]);
    let version = r.u32();
    let reserved = r.u32();
    let base = r.u64();
    let stored = r.u32();
    let pad = r.u32();
    let computed = crc32fast::hash(&content[..24]);
    if stored != computed {
        return Err(SegmentError::ChecksumMismatch {
            segment,
            position: 8,
            what: "header",
            stored,
            computed,
        });
    }
    if !(FORMAT_VERSION..=COLUMNAR_SPARSE_FORMAT_VERSION).contains(&version) {
        return Err(SegmentError::UnsupportedVersion { segment, version });
    }
    if reserved != 0 || pad != 0 {
        return Err(corrupt(8, "header reserved bytes"));
    }
    if base != footer.base_offset.0 || (segment.0 != base && segment.0 != u64::MAX) {
        return Err(corrupt(24, "base offset"));
    }
    Ok(version)
}

/// Reads the block index that `footer` locates in `file` and checks its frame and CRC.
///
/// # Errors
/// [`SegmentError::Corrupt`] or [`SegmentError::ChecksumMismatch`], naming the byte position.
fn read_index(
    segment: SegmentId,
    file: &[u8],
    footer: &Footer,
) -> Result<Vec<BlockMeta>, SegmentError> {
    let corrupt = |position: u64, what: &'static str| SegmentError::Corrupt {
        segment,
        position,
        what,
    };
    let footer_at = (file.len() - FOOTER_FRAME_BYTES) as u64;
    let index_end = footer
        .index_position
        .checked_add(u64::from(footer.index_len));
    if index_end != Some(footer_at) {
        return Err(corrupt(footer_at, "index position"));
    }
    let expected_len = 8 + footer.block_count as usize * INDEX_ENTRY_BYTES + 4;
    if footer.index_len as usize != expected_len {
        return Err(corrupt(footer_at, "index length"));
    }
    let index = &file[footer.index_position as usize..footer_at as usize];
    if index[..8] != skippable_header(INDEX_FRAME_MAGIC, expected_len - 8) {
        return Err(corrupt(footer.index_position, "index frame header"));
    }
    let entries = &index[8..expected_len - 4];
    let stored = u32::from_le_bytes([
        index[expected_len - 4],
        index[expected_len - 3],
        index[expected_len - 2],
        index[expected_len - 1],
    ]);
    let computed = crc32fast::hash(entries);
    if stored != computed {
        return Err(SegmentError::ChecksumMismatch {
            segment,
            position: footer.index_position,
            what: "block index",
            stored,
            computed,
        });
    }
    let blocks: Vec<BlockMeta> = entries
        .chunks_exact(INDEX_ENTRY_BYTES)
        .map(BlockMeta::decode)
        .collect();
    Ok(blocks)
}

/// Checks that `blocks` tile the file between header and index, with the offsets format
/// `version` allows, and add up to the footer's totals.
///
/// # Errors
/// [`SegmentError::Corrupt`] naming the first block entry that does not fit.
fn check_tiling(
    segment: SegmentId,
    version: u32,
    footer: &Footer,
    blocks: &[BlockMeta],
) -> Result<(), SegmentError> {
    let corrupt = |position: u64, what: &'static str| SegmentError::Corrupt {
        segment,
        position,
        what,
    };
    // Blocks must tile the file between header and index, with dense offsets (version 1) or
    // ascending, non-overlapping dense runs (version 2).
    let sparse = version == SPARSE_FORMAT_VERSION || version == COLUMNAR_SPARSE_FORMAT_VERSION;
    let mut position = (8 + HEADER_CONTENT_BYTES) as u64;
    let mut offset = footer.base_offset.0;
    let mut raw = 0u64;
    let mut records = 0u64;
    for block in blocks {
        let offset_ok = if sparse {
            block.first_offset.0 >= offset
        } else {
            block.first_offset.0 == offset
        };
        if block.position != position || !offset_ok || block.count == 0 {
            return Err(corrupt(block.position, "block index entry"));
        }
        position += u64::from(block.compressed_len);
        offset = block
            .first_offset
            .0
            .checked_add(u64::from(block.count))
            .ok_or(corrupt(block.position, "block offsets overflow"))?;
        raw += u64::from(block.raw_len);
        records += u64::from(block.count);
    }
    if position != footer.index_position
        || records != footer.record_count
        || raw != footer.raw_bytes
    {
        return Err(corrupt(footer.index_position, "block index totals"));
    }
    Ok(())
}
