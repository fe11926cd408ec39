//! Writing a sealed segment: blocks cut at a raw size target, copies of existing blocks, then
//! index and footer.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::format::{encode_footer, skippable_header};
use super::{
    BlockLayout, BlockMeta, COLUMNAR_FORMAT_VERSION, COLUMNAR_SPARSE_FORMAT_VERSION,
    FORMAT_VERSION, Footer, HEADER_CONTENT_BYTES, HEADER_FRAME_MAGIC, INDEX_ENTRY_BYTES,
    INDEX_FRAME_MAGIC, MAX_RECORD_IN_BLOCK_BYTES, SEGMENT_MAGIC, SPARSE_FORMAT_VERSION,
};
use crate::segments::Offset;
use crate::segments::SegmentError;
use crate::segments::SegmentId;
use crate::segments::frame;

/// Writes one sealed segment. Records are added in offset order; blocks are cut at the target
/// raw size. Durable after [`SegmentWriter::finish`] returns.
pub struct SegmentWriter {
    path: PathBuf,
    file: File,
    base_offset: Offset,
    next_offset: Offset,
    position: u64,
    block: Vec<u8>,
    block_first: Offset,
    block_count: u32,
    block_min_ts: u64,
    block_max_ts: u64,
    blocks: Vec<BlockMeta>,
    block_bytes: usize,
    frame_limit: u32,
    raw_bytes: u64,
    /// Records added (equals `next_offset - base_offset` unless sparse).
    records: u64,
    sparse: bool,
    layout: BlockLayout,
    /// Columnar layout: where each pending record ends in `block` (which then holds the
    /// records' bytes back to back).
    ends: Vec<usize>,
    /// Columnar layout: the encoded block, reused.
    scratch: Vec<u8>,
    /// The compressed block, reused (a fresh buffer per block costs page faults).
    compressed: Vec<u8>,
    file_crc: crc32fast::Hasher,
    compressor: zstd::bulk::Compressor<'static>,
}

impl SegmentWriter {
    /// Creates the segment file at `path` (which must not exist) for records starting at
    /// `base_offset`.
    ///
    /// # Errors
    /// [`SegmentError::Io`] when the file cannot be created or written; [`SegmentError::Zstd`]
    /// when the compressor cannot be set up for `level`.
    pub fn create(
        path: &Path,
        base_offset: Offset,
        block_bytes: usize,
        level: i32,
        frame_limit: u32,
    ) -> Result<Self, SegmentError> {
        Self::create_layout(
            path,
            base_offset,
            block_bytes,
            level,
            frame_limit,
            false,
            BlockLayout::Columnar,
        )
    }

    /// Creates a sparse segment file (format version [`SPARSE_FORMAT_VERSION`]): records are
    /// added with [`SegmentWriter::add_at`] and their offsets may skip.
    ///
    /// # Errors
    /// As [`SegmentWriter::create`].
    pub fn create_sparse(
        path: &Path,
        base_offset: Offset,
        block_bytes: usize,
        level: i32,
        frame_limit: u32,
    ) -> Result<Self, SegmentError> {
        Self::create_layout(
            path,
            base_offset,
            block_bytes,
            level,
            frame_limit,
            true,
            BlockLayout::Columnar,
        )
    }

    /// Creates a segment with an explicit block layout: [`BlockLayout::Frames`] writes format
    /// version 1 (2 when `sparse`), as ctrace before 0.4 did; [`BlockLayout::Columnar`] writes
    /// version 3 (4 when `sparse`). `frame_limit` (bytes) applies to the frame layout only.
    ///
    /// # Errors
    /// As [`SegmentWriter::create`].
    pub fn create_layout(
        path: &Path,
        base_offset: Offset,
        block_bytes: usize,
        level: i32,
        frame_limit: u32,
        sparse: bool,
        layout: BlockLayout,
    ) -> Result<Self, SegmentError> {
        let version = match (layout, sparse) {
            (BlockLayout::Frames, false) => FORMAT_VERSION,
            (BlockLayout::Frames, true) => SPARSE_FORMAT_VERSION,
            (BlockLayout::Columnar, false) => COLUMNAR_FORMAT_VERSION,
            (BlockLayout::Columnar, true) => COLUMNAR_SPARSE_FORMAT_VERSION,
        };
        let io = |source| SegmentError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = create_private(path).map_err(io)?;
        let mut header = Vec::with_capacity(8 + HEADER_CONTENT_BYTES);
        header.extend_from_slice(&skippable_header(HEADER_FRAME_MAGIC, HEADER_CONTENT_BYTES));
        let content_start = header.len();
        header.extend_from_slice(&SEGMENT_MAGIC);
        header.extend_from_slice(&version.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&base_offset.0.to_le_bytes());
        let crc = crc32fast::hash(&header[content_start..]);
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        crate::fault::write_all("segment-write", &mut file, &header).map_err(io)?;
        let mut file_crc = crc32fast::Hasher::new();
        file_crc.update(&header);
        let compressor =
            zstd::bulk::Compressor::new(level).map_err(|source| SegmentError::Zstd {
                segment: SegmentId(base_offset.0),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            base_offset,
            next_offset: base_offset,
            position: header.len() as u64,
            block: Vec::with_capacity(block_bytes + 4096),
            block_first: base_offset,
            block_count: 0,
            block_min_ts: u64::MAX,
            block_max_ts: 0,
            blocks: Vec::new(),
            block_bytes: block_bytes.max(1),
            frame_limit,
            raw_bytes: 0,
            records: 0,
            sparse,
            layout,
            ends: Vec::new(),
            scratch: Vec::new(),
            compressed: Vec::new(),
            file_crc,
            compressor,
        })
    }

    /// The offset the next added record gets.
    pub fn next_offset(&self) -> Offset {
        self.next_offset
    }

    /// Bytes written to the file so far (compressed blocks and header).
    pub fn file_bytes(&self) -> u64 {
        self.position
    }

    /// Raw record bytes added so far (framed, before compression).
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes + self.block.len() as u64
    }

    /// Appends one encoded record with timestamp `ts` (ns) and returns its offset.
    ///
    /// # Errors
    /// [`SegmentError::Io`] / [`SegmentError::Zstd`] when a full block cannot be written.
    pub fn add(&mut self, record: &[u8], ts: u64) -> Result<Offset, SegmentError> {
        // A record that cannot fit a block every reader accepts is refused before anything is
        // written: it must never make the segment unreadable (the sealer cuts such records).
        if record.len() > MAX_RECORD_IN_BLOCK_BYTES {
            return Err(SegmentError::BlockTooLarge {
                segment: SegmentId(self.base_offset.0),
                len: record.len() as u64,
            });
        }
        // A record of a block's size or more gets a block of its own, so the block's other
        // records stay small to read and no block grows past the target by more than one
        // record.
        if self.block_count > 0 && self.block.len() + record.len() > self.block_bytes {
            self.flush_block()?;
        }
        if self.block_count == 0 {
            self.block_first = self.next_offset;
        }
        match self.layout {
            BlockLayout::Frames => frame::encode_record(&mut self.block, record, self.frame_limit),
            BlockLayout::Columnar => {
                self.block.extend_from_slice(record);
                self.ends.push(self.block.len());
            }
        }
        self.block_count += 1;
        self.block_min_ts = self.block_min_ts.min(ts);
        self.block_max_ts = self.block_max_ts.max(ts);
        let offset = self.next_offset;
        self.next_offset = Offset(offset.0 + 1);
        self.records += 1;
        if self.block.len() >= self.block_bytes {
            self.flush_block()?;
        }
        Ok(offset)
    }

    /// Appends one encoded record at `offset` of a sparse segment; offsets between the last
    /// record and `offset` are left out (the current block is closed so each block stays dense).
    ///
    /// # Errors
    /// [`SegmentError::Corrupt`] when the segment is not sparse and `offset` skips, or when
    /// `offset` is below the next offset; otherwise as [`SegmentWriter::add`].
    pub fn add_at(&mut self, offset: Offset, record: &[u8], ts: u64) -> Result<(), SegmentError> {
        if offset < self.next_offset || (offset > self.next_offset && !self.sparse) {
            return Err(SegmentError::Corrupt {
                segment: SegmentId(self.base_offset.0),
                position: self.position,
                what: "record offset out of order",
            });
        }
        if offset > self.next_offset {
            self.flush_block()?;
            self.next_offset = offset;
        }
        self.add(record, ts).map(|_| ())
    }

    fn flush_block(&mut self) -> Result<(), SegmentError> {
        if self.block_count == 0 {
            return Ok(());
        }
        let segment = SegmentId(self.base_offset.0);
        if self.layout == BlockLayout::Columnar {
            let mut start = 0;
            let records = self.ends.iter().map(|&end| {
                let bytes = &self.block[start..end];
                start = end;
                bytes
            });
            self.scratch.clear();
            crate::segments::columnar::encode_block(records, &mut self.scratch);
            std::mem::swap(&mut self.block, &mut self.scratch);
            self.ends.clear();
        }
        self.compressed.clear();
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(self.block.len()));
        self.compressor
            .compress_to_buffer(&self.block, &mut self.compressed)
            .map_err(|source| SegmentError::Zstd { segment, source })?;
        let compressed = &self.compressed;
        crate::fault::write_all("segment-write", &mut self.file, compressed).map_err(|source| {
            SegmentError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        // One pass over the compressed bytes: the block's CRC, folded into the file's.
        let crc32 = crc32fast::hash(compressed);
        self.file_crc
            .combine(&crc32fast::Hasher::new_with_initial_len(
                crc32,
                compressed.len() as u64,
            ));
        let too_big = |len: usize| SegmentError::BlockTooLarge {
            segment,
            len: len as u64,
        };
        self.blocks.push(BlockMeta {
            position: self.position,
            compressed_len: u32::try_from(compressed.len())
                .map_err(|_| too_big(compressed.len()))?,
            raw_len: u32::try_from(self.block.len()).map_err(|_| too_big(self.block.len()))?,
            first_offset: self.block_first,
            count: self.block_count,
            crc32,
            min_ts: self.block_min_ts,
            max_ts: self.block_max_ts,
        });
        self.position += compressed.len() as u64;
        self.raw_bytes += self.block.len() as u64;
        self.block.clear();
        self.block_count = 0;
        self.block_min_ts = u64::MAX;
        self.block_max_ts = 0;
        Ok(())
    }

    /// Writes the last block, the block index and the footer, and syncs the file.
    ///
    /// Returns the footer, the file length in bytes and the CRC-32 of the whole file.
    ///
    /// # Errors
    /// [`SegmentError::Io`] on write or sync failure.
    pub fn finish(mut self) -> Result<Finished, SegmentError> {
        self.flush_block()?;
        let io = |path: &Path, source| SegmentError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut index = Vec::with_capacity(8 + self.blocks.len() * INDEX_ENTRY_BYTES + 4);
        index.extend_from_slice(&skippable_header(
            INDEX_FRAME_MAGIC,
            self.blocks.len() * INDEX_ENTRY_BYTES + 4,
        ));
        for block in &self.blocks {
            block.encode(&mut index);
        }
        let crc = crc32fast::hash(&index[8..]);
        index.extend_from_slice(&crc.to_le_bytes());
        let footer = Footer {
            index_position: self.position,
            index_len: u32::try_from(index.len()).unwrap_or(u32::MAX),
            block_count: u32::try_from(self.blocks.len()).unwrap_or(u32::MAX),
            base_offset: self.base_offset,
            record_count: self.records,
            min_ts: self.blocks.iter().map(|b| b.min_ts).min().unwrap_or(0),
            max_ts: self.blocks.iter().map(|b| b.max_ts).max().unwrap_or(0),
            raw_bytes: self.raw_bytes,
        };
        let mut tail = index;
        tail.extend_from_slice(&encode_footer(&footer));
        crate::fault::write_all("segment-write", &mut self.file, &tail)
            .map_err(|e| io(&self.path, e))?;
        (crate::fault::point("segment-sync").and_then(|()| self.file.sync_all()))
            .map_err(|e| io(&self.path, e))?;
        self.file_crc.update(&tail);
        Ok(Finished {
            footer,
            file_bytes: self.position + tail.len() as u64,
            crc32: self.file_crc.finalize(),
        })
    }

    /// Copies an already compressed block (from another segment with the same offsets) without
    /// recompressing it. Flushes the pending block first.
    ///
    /// # Errors
    /// [`SegmentError::Corrupt`] when `meta.first_offset` is not the next offset (or, in a
    /// sparse segment, below it) or the bytes fail their CRC; [`SegmentError::Io`] on write failure.
    pub fn copy_block(&mut self, meta: &BlockMeta, compressed: &[u8]) -> Result<(), SegmentError> {
        self.flush_block()?;
        let segment = SegmentId(self.base_offset.0);
        let offset_ok = meta.first_offset == self.next_offset
            || (self.sparse && meta.first_offset > self.next_offset);
        if !offset_ok
            || compressed.len() != meta.compressed_len as usize
            || crc32fast::hash(compressed) != meta.crc32
        {
            return Err(SegmentError::Corrupt {
                segment,
                position: meta.position,
                what: "copied block",
            });
        }
        crate::fault::write_all("segment-write", &mut self.file, compressed).map_err(|source| {
            SegmentError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        self.file_crc.update(compressed);
        self.blocks.push(BlockMeta {
            position: self.position,
            ..*meta
        });
        self.position += compressed.len() as u64;
        self.raw_bytes += u64::from(meta.raw_len);
        self.next_offset = Offset(meta.first_offset.0 + u64::from(meta.count));
        self.records += u64::from(meta.count);
        Ok(())
    }
}

/// What [`SegmentWriter::finish`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The footer written.
    pub footer: Footer,
    /// File length in bytes.
    pub file_bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.path)
            .field("base_offset", &self.base_offset)
            .field("next_offset", &self.next_offset)
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

/// Creates a new file with mode 0600 that must not exist yet.
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}
