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

use std::fs::File;
use std::path::{Path, PathBuf};

use super::frame::{self, ScanItem, Scanner};
use super::mmap::ReadOnlyMap;
use super::{Offset, SegmentError, SegmentId};

/// Skippable-frame magic of the segment header.
pub const HEADER_FRAME_MAGIC: u32 = 0x184D_2A50;
/// Skippable-frame magic of the block index.
pub const INDEX_FRAME_MAGIC: u32 = 0x184D_2A51;
/// Skippable-frame magic of the footer.
pub const FOOTER_FRAME_MAGIC: u32 = 0x184D_2A52;
/// Magic at the start of the header content.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CTRACSEG";
/// Magic near the end of the footer content (`"CTSF"`).
pub const FOOTER_MAGIC: u32 = u32::from_le_bytes(*b"CTSF");
/// Format version written into the header of segments written by sealing: blocks hold dense,
/// contiguous offsets from the base offset on.
pub const FORMAT_VERSION: u32 = 1;
/// Format version of *sparse* segments, written only when retention rewrites a segment
/// without some of its records: same layout as version 1, but offsets may skip between blocks
/// (each block is still dense), the first block may start after the base offset, and the
/// footer's `record_count` counts the records present. Readers accept both versions.
pub const SPARSE_FORMAT_VERSION: u32 = 2;
/// Format version of dense segments whose blocks may use the columnar layout
/// ([`super::columnar`]); what sealing writes since ctrace 0.4. A block's layout is told by its
/// first raw bytes (`"CTB3"` columnar, `"CTF1"` frames), so blocks copied from version 1
/// segments stay valid. Readers of versions 1 and 2 reject these segments by version.
pub const COLUMNAR_FORMAT_VERSION: u32 = 3;
/// Sparse segments (as version 2) whose blocks may use the columnar layout.
pub const COLUMNAR_SPARSE_FORMAT_VERSION: u32 = 4;

/// How a segment writer lays out the raw content of its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockLayout {
    /// Frames of records (format versions 1 and 2): each record framed with magic, length and
    /// CRC-32, as in the inbox; chained frames for records above the frame limit.
    Frames,
    /// The columnar layout of [`super::columnar`] (format versions 3 and 4): compact envelopes,
    /// then the payloads back to back.
    Columnar,
}
/// Header content size in bytes.
pub const HEADER_CONTENT_BYTES: usize = 32;
/// Index entry size in bytes.
pub const INDEX_ENTRY_BYTES: usize = 48;
/// Footer content size in bytes.
pub const FOOTER_CONTENT_BYTES: usize = 64;
/// Whole footer frame size in bytes (skippable-frame header + content).
pub const FOOTER_FRAME_BYTES: usize = 8 + FOOTER_CONTENT_BYTES;
/// Upper bound for one block's raw size in bytes that any reader accepts (64 MiB + slack for a
/// single large record chained across frames).
pub const MAX_BLOCK_RAW_BYTES: u32 = 256 << 20;
/// Largest record [`SegmentWriter::add`] accepts, in bytes: [`MAX_BLOCK_RAW_BYTES`] less 1 MiB
/// for framing or the columnar envelope.
pub const MAX_RECORD_IN_BLOCK_BYTES: usize = (MAX_BLOCK_RAW_BYTES as usize) - (1 << 20);
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

impl BlockMeta {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.first_offset.0.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
        out.extend_from_slice(&self.min_ts.to_le_bytes());
        out.extend_from_slice(&self.max_ts.to_le_bytes());
    }

    fn decode(buf: &[u8]) -> Self {
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

/// Reads little-endian integers from a slice whose length the caller has checked.
struct LeReader<'a>(&'a [u8]);

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

fn skippable_header(magic: u32, len: usize) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&magic.to_le_bytes());
    out[4..].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    out
}

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
            super::columnar::encode_block(records, &mut self.scratch);
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

fn encode_footer(footer: &Footer) -> Vec<u8> {
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

/// An open sealed segment: validated header, index and footer over a read-only map.
#[derive(Debug)]
pub struct SegmentReader {
    id: SegmentId,
    path: PathBuf,
    map: ReadOnlyMap,
    footer: Footer,
    blocks: Vec<BlockMeta>,
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
    /// that walk the records in place (see [`super::columnar`]).
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

/// Finds the `index`-th record of the block being decompressed by `stream`, pulling only as
/// much raw content as it needs.
fn find_record_in_stream(
    stream: &mut BlockStream<'_>,
    index: usize,
    corrupt: impl Fn(&'static str) -> SegmentError + Copy,
    segment: SegmentId,
) -> Result<Option<Vec<u8>>, SegmentError> {
    use super::frame::{Decoded, decode_frame};
    let mut eof = false;
    // Frames are decoded incrementally: `cursor` is the next frame to decode, `payload` the
    // record assembled so far (frames already checked are never decoded twice).
    let mut cursor = 0usize;
    let mut seen = 0usize;
    let mut in_chain = false;
    let mut payload: Vec<u8> = Vec::new();
    // Columnar blocks: known once the first bytes are in; `need` is how many raw bytes the
    // record's envelope and payload need.
    let mut columnar: Option<super::columnar::OneRecord> = None;
    let mut need = 0usize;
    loop {
        if columnar.is_none()
            && stream.buf.len() >= super::columnar::BLOCK_MAGIC.len()
            && super::columnar::is_columnar(&stream.buf)
        {
            columnar = Some(super::columnar::OneRecord::new(index));
        }
        if let Some(one) = &mut columnar {
            if stream.buf.len() >= need || eof {
                use super::columnar::Step;
                match one.step(&stream.buf, eof).map_err(corrupt)? {
                    Step::Found(bytes) => return Ok(Some(bytes)),
                    Step::Absent => return Ok(None),
                    Step::Need(n) => need = n,
                }
            }
            if eof {
                return Err(corrupt("block raw length"));
            }
            if stream.buf.len() > MAX_BLOCK_RAW_BYTES as usize {
                return Err(corrupt("block raw length"));
            }
            eof = stream
                .more()
                .map_err(|source| SegmentError::Zstd { segment, source })?;
            continue;
        }
        if stream.buf.len() < super::columnar::BLOCK_MAGIC.len() && !eof {
            eof = stream
                .more()
                .map_err(|source| SegmentError::Zstd { segment, source })?;
            continue;
        }
        match decode_frame(&stream.buf[cursor..], MAX_BLOCK_RAW_BYTES, cursor as u64) {
            Ok(Decoded::Frame(frame, size)) => {
                if frame.continued() != in_chain {
                    return Err(corrupt("frame chain inside block"));
                }
                if seen == index {
                    payload.extend_from_slice(frame.payload);
                }
                cursor += size;
                in_chain = frame.continues();
                if !in_chain {
                    if seen == index {
                        return Ok(Some(payload));
                    }
                    seen += 1;
                }
                continue;
            }
            Ok(Decoded::Incomplete) => {}
            Err(_) => return Err(corrupt("frame inside block")),
        }
        if eof {
            return if cursor == stream.buf.len() && !in_chain {
                Ok(None)
            } else {
                Err(corrupt("frame inside block"))
            };
        }
        if stream.buf.len() > MAX_BLOCK_RAW_BYTES as usize {
            return Err(corrupt("block raw length"));
        }
        eof = stream
            .more()
            .map_err(|source| SegmentError::Zstd { segment, source })?;
    }
}

/// Raw capacity a thread keeps for block reads between calls (bytes); a read of a larger
/// block frees its buffer afterwards.
const KEPT_STREAM_BUFFER_BYTES: usize = 4 << 20;

thread_local! {
    /// Each thread's zstd decompression context and raw buffer for record reads, reused so that
    /// a read neither allocates a context and window nor faults in fresh pages.
    static STREAM_STATE: std::cell::RefCell<Option<StreamState>> =
        const { std::cell::RefCell::new(None) };
}

/// Largest zstd frame header (bytes; `ZSTD_FRAMEHEADERSIZE_MAX` in zstd.h).
const FRAME_HEADER_MAX_BYTES: usize = 18;

/// A reusable zstd context plus output buffer.
struct StreamState {
    dctx: zstd::zstd_safe::DCtx<'static>,
    buf: Vec<u8>,
}

/// Streaming decompression of one block (a single zstd frame) into a raw buffer sized from the
/// block index: each [`BlockStream::more`] offers zstd the next compressed block it asks for
/// and so decodes about one zstd block (≤ 128 KiB raw) straight into the buffer's spare
/// capacity; a reader stops as soon as it has the bytes it needs (on average half the block).
struct BlockStream<'a> {
    dctx: zstd::zstd_safe::DCtx<'static>,
    /// Raw content decoded so far.
    buf: Vec<u8>,
    compressed: &'a [u8],
    /// Compressed bytes consumed so far.
    consumed: usize,
    /// Compressed bytes to offer on the next call (zstd's hint: the next block and header).
    next_in: usize,
    done: bool,
}

impl<'a> BlockStream<'a> {
    /// Starts decompressing `compressed`, with room for `raw_len` raw bytes (the block index's
    /// figure; a block that turns out larger grows the buffer, up to the raw limit checked by
    /// the caller). Takes the thread's context and buffer when it has them.
    ///
    /// # Errors
    /// The zstd error when the context cannot be reset.
    fn take(compressed: &'a [u8], raw_len: usize) -> std::io::Result<Self> {
        let state = STREAM_STATE.with(|cell| cell.borrow_mut().take());
        let StreamState { mut dctx, mut buf } = match state {
            Some(state) => state,
            None => StreamState {
                dctx: zstd::zstd_safe::DCtx::create(),
                buf: Vec::new(),
            },
        };
        dctx.reset(zstd::zstd_safe::ResetDirective::SessionOnly)
            .map_err(zstd_error)?;
        // The output buffer stays put (capacity for the whole block, never grown), so zstd
        // decodes straight into it instead of into its own window buffer and copying.
        dctx.set_parameter(zstd::zstd_safe::DParameter::StableOutBuffer(true))
            .map_err(zstd_error)?;
        buf.clear();
        buf.reserve(raw_len.min(MAX_BLOCK_RAW_BYTES as usize));
        Ok(Self {
            dctx,
            buf,
            compressed,
            consumed: 0,
            // Only the frame header at first: offered the whole frame with room for all of
            // it, zstd would decode it in one pass, never stopping early.
            next_in: FRAME_HEADER_MAX_BYTES,
            done: false,
        })
    }

    /// Decodes the next piece into `buf`; returns whether the block is exhausted.
    ///
    /// # Errors
    /// The zstd error for damaged input; `UnexpectedEof` when the compressed bytes end inside
    /// the frame.
    fn more(&mut self) -> std::io::Result<bool> {
        if self.done {
            return Ok(true);
        }
        let before = (self.consumed, self.buf.len());
        let end = self
            .consumed
            .saturating_add(self.next_in.max(1))
            .min(self.compressed.len());
        let mut input = zstd::zstd_safe::InBuffer {
            src: &self.compressed[..end],
            pos: self.consumed,
        };
        let len = self.buf.len();
        let mut output = zstd::zstd_safe::OutBuffer::around_pos(&mut self.buf, len);
        let hint = self
            .dctx
            .decompress_stream(&mut output, &mut input)
            .map_err(zstd_error)?;
        self.consumed = input.pos;
        self.next_in = hint;
        if hint == 0 {
            self.done = true;
        } else if (self.consumed, self.buf.len()) == before {
            // Offered input and room, zstd made no progress: the frame is cut short (or
            // larger than the block index says).
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "block ends inside its zstd frame",
            ));
        }
        Ok(self.done)
    }

    /// Returns the context and buffer to the thread for the next read.
    fn give_back(self) {
        let mut buf = self.buf;
        if buf.capacity() > KEPT_STREAM_BUFFER_BYTES {
            buf = Vec::new();
        }
        let state = StreamState {
            dctx: self.dctx,
            buf,
        };
        STREAM_STATE.with(|cell| *cell.borrow_mut() = Some(state));
    }
}

/// A zstd error code as an I/O error with zstd's description.
fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}

/// A little-endian u32 of a validated segment's header at byte `at` of the file.
fn header_u32(file: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    if let Some(src) = file.get(at..at + 4) {
        bytes.copy_from_slice(src);
    }
    u32::from_le_bytes(bytes)
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
    if super::columnar::is_columnar(&raw) {
        return super::columnar::decode_block(&raw, meta.count).map_err(|what| {
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
/// (`meta.raw_len` bytes: frames, or a columnar block per [`super::columnar`]).
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

/// Validates header, index and footer of a whole segment file and returns footer and index.
///
/// # Errors
/// As [`SegmentReader::open`].
pub fn parse_segment(
    segment: SegmentId,
    file: &[u8],
) -> Result<(Footer, Vec<BlockMeta>), SegmentError> {
    let footer = decode_footer(segment, file)?;
    let corrupt = |position: u64, what: &'static str| SegmentError::Corrupt {
        segment,
        position,
        what,
    };
    // Header.
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
    // Index.
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
    // Blocks must tile the file between header and index, with dense offsets (version 1) or
    // ascending, non-overlapping dense runs (version 2).
    let sparse = version == SPARSE_FORMAT_VERSION || version == COLUMNAR_SPARSE_FORMAT_VERSION;
    let mut position = (8 + HEADER_CONTENT_BYTES) as u64;
    let mut offset = footer.base_offset.0;
    let mut raw = 0u64;
    let mut records = 0u64;
    for block in &blocks {
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
    Ok((footer, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

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
