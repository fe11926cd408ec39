//! Sealed segment file format: a valid multi-frame zstd stream.
//!
//! ```text
//! +------------------------+  skippable zstd frame 0x184D2A50: segment header (32 bytes)
//! | header                 |
//! +------------------------+
//! | block 0 (zstd frame)   |  raw content = frames of records (see `frame`), ~256 KiB raw
//! | block 1 (zstd frame)   |
//! | ...                    |
//! +------------------------+  skippable zstd frame 0x184D2A51: block index (48 bytes/block + crc)
//! | block index            |
//! +------------------------+  skippable zstd frame 0x184D2A52: footer (64 bytes), last 72 bytes
//! | footer                 |
//! +------------------------+
//! ```
//!
//! Because header, index and footer are zstd *skippable frames*, `zstd -dc FILE.seg` prints the
//! raw framed records. All integers are little-endian. Every byte of the file is covered by a
//! check: the header, index and footer carry their own CRC-32; each block's compressed bytes have
//! a CRC-32 in the index; block positions must tile the file exactly. Byte layouts are drawn in
//! `docs/format.md`.
//!
//! Invariants: a sealed segment is immutable; a reader validates footer, index and header
//! before it hands out blocks; a decoder never panics and never allocates more than
//! [`MAX_BLOCK_RAW_BYTES`] for a block whatever the file says.

use super::Offset;

mod format;
mod reader;
mod stream;
mod writer;

pub use format::{decode_footer, parse_segment};
pub use reader::{SegmentReader, read_block, read_block_raw};
pub use writer::{Finished, SegmentWriter};

/// Skippable-frame magic of the segment header.
pub(crate) const HEADER_FRAME_MAGIC: u32 = 0x184D_2A50;
/// Skippable-frame magic of the block index.
pub(crate) const INDEX_FRAME_MAGIC: u32 = 0x184D_2A51;
/// Skippable-frame magic of the footer.
pub(crate) const FOOTER_FRAME_MAGIC: u32 = 0x184D_2A52;
/// Magic at the start of the header content.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CTRACSEG";
/// Magic near the end of the footer content (`"CTSF"`).
pub(crate) const FOOTER_MAGIC: u32 = u32::from_le_bytes(*b"CTSF");
/// Format version written into the header of segments written by sealing: blocks hold dense,
/// contiguous offsets from the base offset on.
pub const FORMAT_VERSION: u32 = 1;
/// Format version of *sparse* segments, written only when retention rewrites a segment
/// without some of its records: same layout as version 1, but offsets may skip between blocks
/// (each block is still dense), the first block may start after the base offset, and the
/// footer's `record_count` counts the records present. Readers accept both versions.
pub const SPARSE_FORMAT_VERSION: u32 = 2;
/// Format version of dense segments whose blocks may use the columnar layout
/// ([`crate::segments::columnar`]); what sealing writes since ctrace 0.4. A block's layout is told by its
/// first raw bytes (`"CTB3"` columnar, `"CTF1"` frames), so blocks copied from version 1
/// segments stay valid. Readers of versions 1 and 2 reject these segments by version.
pub const COLUMNAR_FORMAT_VERSION: u32 = 3;
/// Sparse segments (as version 2) whose blocks may use the columnar layout.
pub(crate) const COLUMNAR_SPARSE_FORMAT_VERSION: u32 = 4;

/// How a segment writer lays out the raw content of its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockLayout {
    /// Frames of records (format versions 1 and 2): each record framed with magic, length and
    /// CRC-32, as in the inbox; chained frames for records above the frame limit.
    Frames,
    /// The columnar layout of [`crate::segments::columnar`] (format versions 3 and 4): compact envelopes,
    /// then the payloads back to back.
    Columnar,
}
/// Header content size in bytes.
pub const HEADER_CONTENT_BYTES: usize = 32;
/// Index entry size in bytes.
pub const INDEX_ENTRY_BYTES: usize = 48;
/// Footer content size in bytes.
pub(crate) const FOOTER_CONTENT_BYTES: usize = 64;
/// Whole footer frame size in bytes (skippable-frame header + content).
pub const FOOTER_FRAME_BYTES: usize = 8 + FOOTER_CONTENT_BYTES;
/// Upper bound for one block's raw size in bytes that any reader accepts (64 MiB + slack for a
/// single large record chained across frames).
pub const MAX_BLOCK_RAW_BYTES: u32 = 256 << 20;
/// Largest record [`SegmentWriter::add`] accepts, in bytes: [`MAX_BLOCK_RAW_BYTES`] less 1 MiB
/// for framing or the columnar envelope.
pub(crate) const MAX_RECORD_IN_BLOCK_BYTES: usize = (MAX_BLOCK_RAW_BYTES as usize) - (1 << 20);
/// Smallest encoded frame in bytes (header only), used to bound allocations.
const HEADER_BYTES_MIN: usize = super::frame::HEADER_BYTES;
/// Default raw block target in bytes (512 KiB): with the columnar layout, the size at which
/// Claude Code transcripts compress to within 1.2× of whole-file zstd while a record read
/// decompresses ~256 KiB on average (`docs/benchmarks.md`).
pub const DEFAULT_BLOCK_BYTES: usize = 512 << 10;

/// Location and summary of one compressed block, as stored in the block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// Byte position of the block's zstd frame in the segment file.
    pub position: u64,
    /// Compressed length in bytes.
    pub compressed_len: u32,
    /// Raw (decompressed) length in bytes.
    pub raw_len: u32,
    /// Offset of the first record in the block.
    pub first_offset: Offset,
    /// Number of records in the block.
    pub count: u32,
    /// CRC-32 of the compressed bytes.
    pub crc32: u32,
    /// Smallest record timestamp in the block, ns since the Unix epoch.
    pub min_ts: u64,
    /// Largest record timestamp in the block, ns since the Unix epoch.
    pub max_ts: u64,
}

/// The footer: a summary of the whole segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Byte position of the block index frame.
    pub index_position: u64,
    /// Length of the block index frame in bytes.
    pub index_len: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Offset of the first record (the segment id).
    pub base_offset: Offset,
    /// Number of records.
    pub record_count: u64,
    /// Smallest record timestamp, ns since the Unix epoch (0 when empty).
    pub min_ts: u64,
    /// Largest record timestamp, ns since the Unix epoch (0 when empty).
    pub max_ts: u64,
    /// Sum of raw block sizes in bytes.
    pub raw_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::SegmentId;
    use std::path::{Path, PathBuf};

    fn write(dir: &Path, records: &[(Vec<u8>, u64)], block_bytes: usize) -> PathBuf {
        let path = dir.join("00000000000000000010.seg");
        let mut writer = SegmentWriter::create(&path, Offset(10), block_bytes, 3, 1 << 20).unwrap();
        for (bytes, ts) in records {
            writer.add(bytes, *ts).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    fn sample() -> Vec<(Vec<u8>, u64)> {
        (0..200u64)
            .map(|i| {
                (
                    format!("record number {i} {}", "x".repeat(i as usize)).into_bytes(),
                    1000 + i,
                )
            })
            .collect()
    }

    #[test]
    fn round_trip_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let path = write(dir.path(), &records, 1024);
        let reader = SegmentReader::open(&path, SegmentId(10)).unwrap();
        assert!(reader.blocks().len() > 5);
        assert_eq!(reader.footer().record_count, 200);
        assert_eq!(reader.footer().min_ts, 1000);
        assert_eq!(reader.footer().max_ts, 1199);
        let mut all = Vec::new();
        for i in 0..reader.blocks().len() {
            all.extend(reader.read_block(i).unwrap());
        }
        let expected: Vec<Vec<u8>> = records.into_iter().map(|(b, _)| b).collect();
        assert_eq!(all, expected);
        assert_eq!(reader.block_of(Offset(10)), Some(0));
        assert_eq!(
            reader.block_of(Offset(209)),
            Some(reader.blocks().len() - 1)
        );
        assert_eq!(reader.block_of(Offset(210)), None);
        assert_eq!(reader.block_of(Offset(9)), None);
    }

    #[test]
    fn read_record_in_block_handles_chained_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chained.seg");
        let records: Vec<Vec<u8>> = (0..12u8)
            .map(|i| vec![i; 1000 + usize::from(i) * 3000])
            .collect();
        let mut writer = SegmentWriter::create(&path, Offset(0), 1 << 20, 3, 4096).unwrap();
        for record in &records {
            writer.add(record, 1).unwrap();
        }
        writer.finish().unwrap();
        let reader = SegmentReader::open(&path, SegmentId(0)).unwrap();
        let mut found = Vec::new();
        for block in 0..reader.blocks().len() {
            for index in 0..reader.blocks()[block].count as usize {
                found.push(reader.read_record_in_block(block, index).unwrap().unwrap());
            }
            let past = reader.blocks()[block].count as usize;
            assert_eq!(reader.read_record_in_block(block, past).unwrap(), None);
        }
        assert_eq!(found, records);
    }

    #[test]
    fn record_reads_match_block_reads_and_survive_lying_indexes() {
        let dir = tempfile::tempdir().unwrap();
        // Big enough for several zstd blocks (128 KiB raw each) per segment block.
        let records: Vec<(Vec<u8>, u64)> = (0..3000u64)
            .map(|i| {
                let text = format!(
                    "{{\"n\":{i},\"pad\":\"{}\"}}",
                    "y".repeat((i % 400) as usize)
                );
                (text.into_bytes(), 1000 + i)
            })
            .collect();
        let path = write(dir.path(), &records, 512 << 10);
        let mut reader = SegmentReader::open(&path, SegmentId(10)).unwrap();
        for block in 0..reader.blocks().len() {
            let whole = reader.read_block(block).unwrap();
            for (index, bytes) in whole.iter().enumerate() {
                let one = reader.read_record_in_block(block, index).unwrap();
                assert_eq!(one.as_ref(), Some(bytes), "block {block} record {index}");
            }
            assert_eq!(
                reader.read_record_in_block(block, whole.len()).unwrap(),
                None
            );
        }
        // An index whose raw length is wrong, or whose compressed length cuts the frame (with
        // a CRC that matches the cut): an error, never a hang, a panic or wrong bytes. (A raw
        // length that is too small may still read right when the thread's buffer has room;
        // `verify` and whole-block reads check it exactly.)
        let good = reader.blocks[0];
        let last = good.count as usize - 1;
        let expected = reader.read_block(0).unwrap().pop();
        for raw_len in [0, 1, good.raw_len / 2, good.raw_len - 1] {
            reader.blocks[0] = BlockMeta { raw_len, ..good };
            match reader.read_record_in_block(0, last) {
                Err(_) => {}
                Ok(found) => assert_eq!(found, expected, "raw_len {raw_len}"),
            }
        }
        for cut in [1, 17, good.compressed_len / 2, good.compressed_len - 1] {
            let start = good.position as usize;
            let crc32 = crc32fast::hash(&reader.bytes()[start..start + cut as usize]);
            reader.blocks[0] = BlockMeta {
                compressed_len: cut,
                crc32,
                ..good
            };
            assert!(
                reader.read_record_in_block(0, last).is_err(),
                "cut at {cut}"
            );
        }
        reader.blocks[0] = good;
        let whole = reader.read_block(0).unwrap();
        assert_eq!(
            reader.read_record_in_block(0, last).unwrap(),
            whole.last().cloned()
        );
    }

    #[test]
    fn segment_is_valid_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &sample(), 1024);
        let bytes = std::fs::read(&path).unwrap();
        // `zstd -dc` gives the blocks' raw content back to back (header, index and footer are
        // skippable frames).
        let raw = zstd::stream::decode_all(&bytes[..]).unwrap();
        let reader = SegmentReader::open(&path, SegmentId(10)).unwrap();
        let raw_len: u64 = reader.blocks().iter().map(|b| u64::from(b.raw_len)).sum();
        assert_eq!(raw.len() as u64, raw_len);
        assert!(super::super::columnar::is_columnar(&raw));
    }

    #[test]
    fn every_byte_flip_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = sample().into_iter().take(20).collect();
        let path = write(dir.path(), &records, 256);
        let bytes = std::fs::read(&path).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            let detected = match parse_segment(SegmentId(10), &damaged) {
                Err(_) => true,
                Ok((_, blocks)) => blocks
                    .iter()
                    .any(|meta| read_block(SegmentId(10), &damaged, meta).is_err()),
            };
            assert!(detected, "flip at byte {at} undetected");
        }
    }

    #[test]
    fn truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &sample(), 1024);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 10, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(parse_segment(SegmentId(10), &bytes[..cut]).is_err());
        }
    }

    /// A sparse segment (version 2) with offsets 10..40 minus every third one and the last five.
    fn write_sparse(dir: &Path) -> (PathBuf, Vec<(Offset, Vec<u8>)>) {
        let path = dir.join("sparse.seg");
        let mut writer = SegmentWriter::create_sparse(&path, Offset(10), 256, 3, 1 << 20).unwrap();
        let mut kept = Vec::new();
        for (i, (bytes, ts)) in sample().into_iter().take(25).enumerate() {
            let offset = Offset(10 + i as u64);
            if i % 3 == 0 {
                continue;
            }
            writer.add_at(offset, &bytes, ts).unwrap();
            kept.push((offset, bytes));
        }
        writer.finish().unwrap();
        (path, kept)
    }

    #[test]
    fn sparse_round_trip_keeps_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (path, kept) = write_sparse(dir.path());
        let reader = SegmentReader::open(&path, SegmentId(10)).unwrap();
        assert_eq!(reader.footer().record_count, kept.len() as u64);
        assert_eq!(reader.end_offset(), Offset(34));
        let mut found = Vec::new();
        for (i, meta) in reader.blocks().iter().enumerate() {
            for (j, bytes) in reader.read_block(i).unwrap().into_iter().enumerate() {
                found.push((Offset(meta.first_offset.0 + j as u64), bytes));
            }
        }
        assert_eq!(found, kept);
        for offset in 0..40 {
            let expected = kept
                .iter()
                .find(|(o, _)| o.0 == offset)
                .map(|(_, b)| b.clone());
            let got = reader.block_of(Offset(offset)).and_then(|block| {
                let first = reader.blocks()[block].first_offset.0;
                reader
                    .read_record_in_block(block, (offset - first) as usize)
                    .unwrap()
            });
            assert_eq!(got, expected, "offset {offset}");
        }
        // A dense (version 1) writer refuses to skip.
        let mut dense =
            SegmentWriter::create(&dir.path().join("d.seg"), Offset(0), 256, 3, 1 << 20).unwrap();
        assert!(dense.add_at(Offset(1), b"x", 1).is_err());
    }

    #[test]
    fn sparse_every_byte_flip_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_sparse(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            let detected = match parse_segment(SegmentId(10), &damaged) {
                Err(_) => true,
                Ok((_, blocks)) => blocks
                    .iter()
                    .any(|meta| read_block(SegmentId(10), &damaged, meta).is_err()),
            };
            assert!(detected, "flip at byte {at} undetected");
        }
    }
}
