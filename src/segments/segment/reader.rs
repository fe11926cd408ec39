//! Reading a sealed segment: [`SegmentReader`] over a read-only map, and the block reads
//! that check a block's CRC and size before decompressing it.

use std::path::{Path, PathBuf};

use super::format::{header_u32, parse_segment};
use super::stream::{BlockStream, find_record_in_stream};
use super::{
    BlockMeta, COLUMNAR_SPARSE_FORMAT_VERSION, Footer, HEADER_BYTES_MIN, MAX_BLOCK_RAW_BYTES,
    SPARSE_FORMAT_VERSION,
};
use crate::segments::Offset;
use crate::segments::SegmentError;
use crate::segments::SegmentId;
use crate::segments::frame::{ScanItem, Scanner};
use crate::segments::mmap::ReadOnlyMap;

/// An open sealed segment: validated header, index and footer over a read-only map.
#[derive(Debug)]
pub struct SegmentReader {
    id: SegmentId,
    path: PathBuf,
    map: ReadOnlyMap,
    footer: Footer,
    pub(super) blocks: Vec<BlockMeta>,
}

impl SegmentReader {
    /// Opens and validates the segment at `path`.
    ///
    /// # Errors
    /// [`SegmentError::Io`] when the file cannot be opened or mapped; [`SegmentError::Corrupt`],
    /// [`SegmentError::ChecksumMismatch`] or [`SegmentError::Truncated`] when the header, index
    /// or footer are damaged (naming the byte position).
    pub fn open(path: &Path, id: SegmentId) -> Result<Self, SegmentError> {
        let map = ReadOnlyMap::open(path).map_err(|source| SegmentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (footer, blocks) = parse_segment(id, map.bytes())?;
        Ok(Self {
            id,
            path: path.to_path_buf(),
            map,
            footer,
            blocks,
        })
    }

    /// The segment id (its base offset).
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The footer.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The block index.
    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// The format version from the header (1–4).
    pub fn format_version(&self) -> u32 {
        header_u32(self.map.bytes(), 16)
    }

    /// Whether offsets may skip between blocks (format versions 2 and 4).
    pub fn is_sparse(&self) -> bool {
        matches!(
            self.format_version(),
            SPARSE_FORMAT_VERSION | COLUMNAR_SPARSE_FORMAT_VERSION
        )
    }

    /// Decompresses block `index` and returns its records' bytes in offset order.
    ///
    /// # Errors
    /// [`SegmentError::ChecksumMismatch`] when the compressed bytes fail their CRC;
    /// [`SegmentError::Zstd`] when they do not decompress; [`SegmentError::Corrupt`] when the
    /// raw content is not exactly `count` whole frames.
    pub fn read_block(&self, index: usize) -> Result<Vec<Vec<u8>>, SegmentError> {
        let Some(meta) = self.blocks.get(index) else {
            return Err(SegmentError::Corrupt {
                segment: self.id,
                position: 0,
                what: "block number out of range",
            });
        };
        read_block(self.id, self.map.bytes(), meta)
    }

    /// Decompresses block `index` and returns its raw content (`raw_len` bytes), for readers
    /// that walk the records in place (see [`crate::segments::columnar`]).
    ///
    /// # Errors
    /// As [`SegmentReader::read_block`].
    pub fn read_block_raw(&self, index: usize) -> Result<Vec<u8>, SegmentError> {
        let Some(meta) = self.blocks.get(index) else {
            return Err(SegmentError::Corrupt {
                segment: self.id,
                position: 0,
                what: "block number out of range",
            });
        };
        read_block_raw(self.id, self.map.bytes(), meta)
    }

    /// Decompresses block `block` only as far as needed to return its `index`-th record
    /// (streaming zstd, so on average half a block is decompressed).
    ///
    /// # Errors
    /// As [`SegmentReader::read_block`].
    pub fn read_record_in_block(
        &self,
        block: usize,
        index: usize,
    ) -> Result<Option<Vec<u8>>, SegmentError> {
        let segment = self.id;
        let Some(meta) = self.blocks.get(block) else {
            return Ok(None);
        };
        let compressed = checked_block(segment, self.map.bytes(), meta)?;
        let corrupt = |what| SegmentError::Corrupt {
            segment,
            position: meta.position,
            what,
        };
        let mut stream = BlockStream::take(compressed, meta.raw_len as usize)
            .map_err(|source| SegmentError::Zstd { segment, source })?;
        let found = find_record_in_stream(&mut stream, index, corrupt, segment);
        stream.give_back();
        found
    }

    /// One past the last offset present in the segment (the base offset when it is empty).
    /// In a sparse segment (version 2) offsets below it may be missing.
    pub fn end_offset(&self) -> Offset {
        self.blocks.last().map_or(self.footer.base_offset, |b| {
            Offset(b.first_offset.0.saturating_add(u64::from(b.count)))
        })
    }

    /// Index of the block that holds `offset`, if any.
    pub fn block_of(&self, offset: Offset) -> Option<usize> {
        let i = self
            .blocks
            .partition_point(|b| b.first_offset.0 + u64::from(b.count) <= offset.0);
        self.blocks
            .get(i)
            .filter(|b| b.first_offset.0 <= offset.0)
            .map(|_| i)
    }
}

/// Reads and checks one block of a segment held in `file`.
///
/// # Errors
/// As [`SegmentReader::read_block`].
pub fn read_block(
    segment: SegmentId,
    file: &[u8],
    meta: &BlockMeta,
) -> Result<Vec<Vec<u8>>, SegmentError> {
    let raw = read_block_raw(segment, file, meta)?;
    if crate::segments::columnar::is_columnar(&raw) {
        return crate::segments::columnar::decode_block(&raw, meta.count).map_err(|what| {
            SegmentError::Corrupt {
                segment,
                position: meta.position,
                what,
            }
        });
    }
    // The count is checked against the frames below; do not trust it for allocation.
    let mut records =
        Vec::with_capacity((meta.count as usize).min(raw.len() / HEADER_BYTES_MIN + 1));
    let mut scanner = Scanner::new(&raw, MAX_BLOCK_RAW_BYTES, 0);
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record { bytes, .. } => records.push(bytes),
            ScanItem::Skipped { .. } => {
                return Err(SegmentError::Corrupt {
                    segment,
                    position: meta.position,
                    what: "frame inside block",
                });
            }
        }
    }
    if scanner.tail_bytes() != 0 || records.len() != meta.count as usize {
        return Err(SegmentError::Corrupt {
            segment,
            position: meta.position,
            what: "block record count",
        });
    }
    Ok(records)
}

/// Reads, checks and decompresses one block of a segment held in `file`: its raw content
/// (`meta.raw_len` bytes: frames, or a columnar block per [`crate::segments::columnar`]).
///
/// # Errors
/// [`SegmentError::ChecksumMismatch`] when the compressed bytes fail their CRC;
/// [`SegmentError::Zstd`] when they do not decompress; [`SegmentError::Corrupt`] when the
/// raw length differs from the index.
pub fn read_block_raw(
    segment: SegmentId,
    file: &[u8],
    meta: &BlockMeta,
) -> Result<Vec<u8>, SegmentError> {
    let compressed = checked_block(segment, file, meta)?;
    let raw = zstd::bulk::decompress(compressed, meta.raw_len as usize)
        .map_err(|source| SegmentError::Zstd { segment, source })?;
    if raw.len() != meta.raw_len as usize {
        return Err(SegmentError::Corrupt {
            segment,
            position: meta.position,
            what: "block raw length",
        });
    }
    Ok(raw)
}

/// The compressed bytes of a block after checking position, CRC and size bound.
fn checked_block<'a>(
    segment: SegmentId,
    file: &'a [u8],
    meta: &BlockMeta,
) -> Result<&'a [u8], SegmentError> {
    let start = meta.position as usize;
    let end = start.saturating_add(meta.compressed_len as usize);
    let Some(compressed) = file.get(start..end) else {
        return Err(SegmentError::Corrupt {
            segment,
            position: meta.position,
            what: "block outside file",
        });
    };
    let computed = crc32fast::hash(compressed);
    if computed != meta.crc32 {
        return Err(SegmentError::ChecksumMismatch {
            segment,
            position: meta.position,
            what: "block",
            stored: meta.crc32,
            computed,
        });
    }
    if meta.raw_len > MAX_BLOCK_RAW_BYTES {
        return Err(SegmentError::BlockTooLarge {
            segment,
            len: u64::from(meta.raw_len),
        });
    }
    Ok(compressed)
}
