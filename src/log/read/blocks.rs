//! The block-level read API: the sealed blocks of a [`Snapshot`] that intersect an offset and
//! time range ([`Snapshot::blocks`], chosen from the block indexes alone, so blocks outside the
//! range are never decompressed), one block read and checked ([`Snapshot::read_block`],
//! [`Snapshot::read_block_selected`], [`Snapshot::for_each_record_in`]) for both block
//! encodings (frames of format versions 1 and 2, columnar blocks of versions 3 and 4), and an
//! order-preserving parallel driver ([`map_blocks`]).
//!
//! Invariants:
//! - [`Snapshot::blocks`] yields blocks in offset order, each with at least one record, and only
//!   blocks the segment's block index says hold offsets in the range and timestamps overlapping
//!   the time range. A sparse segment (records removed by retention) may start with a gap or
//!   have gaps between blocks: only blocks that exist are listed.
//! - A damaged block is a [`DamagedBlock`] naming its file and offset range; nothing of it is
//!   returned. Callers pass over it ([`DamagedBlock::note`]) and go on with the next block.
//! - Unsealed inbox records are not in any block: [`Snapshot::scan`] reads them.

use std::ops::{Bound, ControlFlow, Range, RangeBounds};
use std::path::PathBuf;

use rayon::prelude::*;

use super::{Skipped, Snapshot, TimeRange, note_skipped};
use crate::segments::columnar::{self, BlockRecord};
use crate::segments::frame::{Decoded, HEADER_BYTES, ScanItem, Scanner, decode_frame};
use crate::segments::segment::{MAX_BLOCK_RAW_BYTES, SegmentReader};
use crate::segments::{Offset, SegmentError, SegmentId};

/// One sealed block of a snapshot, as its segment's block index describes it. Valid only with
/// the snapshot that listed it ([`Snapshot::blocks`]); its readers panic otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The segment holding the block (its base offset).
    pub segment: SegmentId,
    /// The block's number in its segment (0-based, in offset order).
    pub number: usize,
    /// Offsets of the block's records: `first..end`, dense inside the block.
    pub first: Offset,
    /// One past the block's last offset.
    pub end: Offset,
    /// Smallest record timestamp in the block, ns since the Unix epoch.
    pub min_ts: u64,
    /// Largest record timestamp in the block, ns since the Unix epoch.
    pub max_ts: u64,
    /// Decompressed size of the block in bytes.
    pub raw_bytes: u32,
    /// Compressed size of the block in bytes (as stored in the segment file).
    pub compressed_bytes: u32,
    /// Index of the segment among the snapshot's open segments.
    reader: usize,
}

impl Block {
    /// A block of no segment, for tests of code that only carries blocks around.
    #[cfg(test)]
    pub(crate) fn detached(first: Offset, end: Offset) -> Self {
        Self {
            segment: SegmentId(first.0),
            number: 0,
            first,
            end,
            min_ts: 0,
            max_ts: 0,
            raw_bytes: 0,
            compressed_bytes: 0,
            reader: usize::MAX,
        }
    }

    /// Number of records in the block.
    pub fn count(&self) -> u64 {
        self.end.0 - self.first.0
    }

    /// The block's offsets as a range.
    pub fn offsets(&self) -> Range<Offset> {
        self.first..self.end
    }
}

/// A block that cannot be read: its compressed bytes fail their CRC, do not decompress, or do
/// not hold exactly the records the block index names. None of its records are returned.
#[derive(Debug, thiserror::Error)]
#[error("damaged block in {} (offsets {first}..{end})", file.display())]
pub struct DamagedBlock {
    /// The segment file.
    pub file: PathBuf,
    /// The block's first offset.
    pub first: Offset,
    /// One past the block's last offset.
    pub end: Offset,
    /// What is wrong, with the byte position in the file.
    #[source]
    pub source: SegmentError,
}

impl DamagedBlock {
    /// The block as a range of passed-over records.
    pub fn skipped(&self) -> Skipped {
        Skipped {
            file: self.file.clone(),
            first: self.first,
            end: self.end,
            reason: self.source.to_string(),
        }
    }

    /// Records that a reader passed over this block ([`note_skipped`]: logged once, and
    /// printed by the CLI when the command ends).
    pub fn note(&self) {
        note_skipped(self.skipped());
    }
}

/// A record of a block offered to the predicate of [`Snapshot::read_block_selected`] before
/// it is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The record's offset.
    pub offset: Offset,
    /// The raw payload (hook payload or transcript line exactly as received) of a record
    /// stored compactly in a columnar block, else the whole encoded record (rmp-serde).
    pub bytes: &'a [u8],
    /// Whether `bytes` is the whole encoded record rather than its payload alone.
    pub encoded: bool,
}

impl<'a> Candidate<'a> {
    fn new(offset: Offset, bytes: &'a [u8], encoded: bool) -> Self {
        Self {
            offset,
            bytes,
            encoded,
        }
    }
}

impl Snapshot {
    /// The sealed blocks holding offsets in `offsets` whose timestamps overlap `time`, in offset
    /// order, chosen from the block indexes alone (nothing is decompressed). A block is listed
    /// whole even when the range starts or ends inside it.
    pub fn blocks(&self, offsets: impl RangeBounds<Offset>, time: TimeRange) -> Vec<Block> {
        let offsets = offset_range(&offsets);
        let mut out = Vec::new();
        let first = self
            .segments
            .partition_point(|s| s.end_offset() <= offsets.start);
        for (reader, segment) in self.segments.iter().enumerate().skip(first) {
            let metas = segment.blocks();
            let start = metas.partition_point(|b| {
                b.first_offset.0.saturating_add(u64::from(b.count)) <= offsets.start.0
            });
            for (number, meta) in metas.iter().enumerate().skip(start) {
                if meta.first_offset >= offsets.end {
                    return out;
                }
                if meta.count == 0 || !time.overlaps(meta.min_ts, meta.max_ts) {
                    continue;
                }
                out.push(Block {
                    segment: segment.id(),
                    number,
                    first: meta.first_offset,
                    end: Offset(meta.first_offset.0.saturating_add(u64::from(meta.count))),
                    min_ts: meta.min_ts,
                    max_ts: meta.max_ts,
                    raw_bytes: meta.raw_len,
                    compressed_bytes: meta.compressed_len,
                    reader,
                });
            }
        }
        out
    }

    /// The first offset of the first sealed segment that opened (records below it were removed
    /// by retention), or `None` when no segment is live.
    pub fn first_sealed_offset(&self) -> Option<Offset> {
        self.segments
            .first()
            .map(|s| Offset(s.footer().base_offset.0))
    }

    /// The encoded bytes (rmp-serde, [`crate::model::Record::decode`]) of every record of
    /// `block`, in offset order.
    ///
    /// # Errors
    /// [`DamagedBlock`] when the block does not read back whole.
    pub fn read_block(&self, block: &Block) -> Result<Vec<Vec<u8>>, DamagedBlock> {
        let segment = self.reader_of(block);
        segment
            .read_block(block.number)
            .map_err(|source| damaged(segment, block, source))
    }

    /// The records of `block` that `keep` accepts, as `(offset, encoded bytes)` in offset
    /// order. `keep` sees each record before it is decoded: a columnar block's compact records
    /// offer their payload alone (no record is built for a rejected one), others their encoded
    /// bytes (no copy is made of a rejected one). `keep` may be asked twice about a record of a
    /// frame block that holds a record chained across frames.
    ///
    /// # Errors
    /// [`DamagedBlock`] when the block does not read back whole.
    pub fn read_block_selected(
        &self,
        block: &Block,
        keep: impl Fn(Candidate<'_>) -> bool,
    ) -> Result<Vec<(Offset, Vec<u8>)>, DamagedBlock> {
        let (raw, count) = self.raw_block(block)?;
        let at = |index: usize| Offset(block.first.0 + index as u64);
        if columnar::is_columnar(&raw) {
            let selected = columnar::decode_block_selected(&raw, count, |index, bytes, compact| {
                keep(Candidate::new(at(index), bytes, !compact))
            })
            .map_err(|what| self.corrupt(block, what))?;
            return Ok(selected.into_iter().map(|(i, b)| (at(i), b)).collect());
        }
        let mut out = Vec::new();
        let simple = for_each_simple_frame(&raw, count, |index, bytes| {
            if keep(Candidate::new(at(index), bytes, true)) {
                out.push((at(index), bytes.to_vec()));
            }
        });
        if simple {
            return Ok(out);
        }
        // A record chained across frames, or damage: the scanner reassembles or names it.
        let records = frames_of(&raw, count).map_err(|what| self.corrupt(block, what))?;
        Ok(records
            .into_iter()
            .enumerate()
            .filter(|(index, bytes)| keep(Candidate::new(at(*index), bytes, true)))
            .map(|(index, bytes)| (at(index), bytes))
            .collect())
    }

    /// Calls `each` with every record of `block` in offset order, borrowed from the
    /// decompressed block: a columnar block's records in place ([`BlockRecord::Compact`] or
    /// [`BlockRecord::Opaque`]), a frame block's as their encoded bytes
    /// ([`BlockRecord::Opaque`]). `each` may have been called for records before the damage
    /// when this fails: a caller that must not use part of a damaged block drops what it got.
    ///
    /// # Errors
    /// [`DamagedBlock`] when the block does not read back whole.
    pub fn for_each_record_in(
        &self,
        block: &Block,
        mut each: impl FnMut(Offset, BlockRecord<'_>),
    ) -> Result<(), DamagedBlock> {
        let (raw, count) = self.raw_block(block)?;
        let at = |index: usize| Offset(block.first.0 + index as u64);
        if columnar::is_columnar(&raw) {
            return columnar::for_each_record(&raw, count, |index, record| {
                each(at(index), record);
            })
            .map_err(|what| self.corrupt(block, what));
        }
        // Frames: checked whole first (chained records, count), then given in order.
        let records = frames_of(&raw, count).map_err(|what| self.corrupt(block, what))?;
        for (index, bytes) in records.iter().enumerate() {
            each(at(index), BlockRecord::Opaque(bytes));
        }
        Ok(())
    }

    /// The decompressed, checked content of `block` and its record count.
    fn raw_block(&self, block: &Block) -> Result<(Vec<u8>, u32), DamagedBlock> {
        let segment = self.reader_of(block);
        let raw = segment
            .read_block_raw(block.number)
            .map_err(|source| damaged(segment, block, source))?;
        let count =
            u32::try_from(block.count()).map_err(|_| self.corrupt(block, "block record count"))?;
        Ok((raw, count))
    }

    /// `block` is damaged: `what` is wrong with its content.
    fn corrupt(&self, block: &Block, what: &'static str) -> DamagedBlock {
        let segment = self.reader_of(block);
        let position = segment.blocks().get(block.number).map_or(0, |m| m.position);
        damaged(
            segment,
            block,
            SegmentError::Corrupt {
                segment: segment.id(),
                position,
                what,
            },
        )
    }

    /// The open segment of `block`.
    ///
    /// # Panics
    /// When `block` was listed by a snapshot of other segments (a caller's bug: blocks are
    /// only valid with the snapshot that listed them).
    fn reader_of(&self, block: &Block) -> &SegmentReader {
        match self.segments.get(block.reader) {
            Some(reader) if reader.id() == block.segment => reader,
            _ => panic!(
                "block {}..{} of segment {:?} read through a snapshot that did not list it",
                block.first.0, block.end.0, block.segment
            ),
        }
    }
}

/// Maps `map` over `blocks` on the rayon pool, `batch` blocks at a time, and hands the results
/// to `each` in block order; stops early when `each` breaks, returning its value.
/// Memory is bounded by one batch of results.
pub fn map_blocks<T: Send, B>(
    blocks: &[Block],
    batch: usize,
    map: impl Fn(&Block) -> T + Sync,
    mut each: impl FnMut(T) -> ControlFlow<B>,
) -> ControlFlow<B> {
    for round in blocks.chunks(batch.max(1)) {
        let results: Vec<T> = round.par_iter().map(&map).collect();
        for result in results {
            each(result)?;
        }
    }
    ControlFlow::Continue(())
}

/// `offsets` as a half-open range (unbounded ends become 0 and `u64::MAX`).
fn offset_range(offsets: &impl RangeBounds<Offset>) -> Range<Offset> {
    let start = match offsets.start_bound() {
        Bound::Included(o) => o.0,
        Bound::Excluded(o) => o.0.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match offsets.end_bound() {
        Bound::Included(o) => o.0.saturating_add(1),
        Bound::Excluded(o) => o.0,
        Bound::Unbounded => u64::MAX,
    };
    Offset(start)..Offset(end)
}

fn damaged(segment: &SegmentReader, block: &Block, source: SegmentError) -> DamagedBlock {
    DamagedBlock {
        file: segment.path().to_path_buf(),
        first: block.first,
        end: block.end,
        source,
    }
}

/// Walks the frames of a frame block in place and calls `each` with every record's index and
/// encoded bytes. Returns false, having perhaps called `each` for some records, when a frame is
/// chained, damaged, or the block does not hold exactly `count` records; the caller then reads
/// the block with the full reader.
fn for_each_simple_frame(raw: &[u8], count: u32, mut each: impl FnMut(usize, &[u8])) -> bool {
    let mut at = 0usize;
    let mut index = 0usize;
    while at < raw.len() {
        match decode_frame(&raw[at..], MAX_BLOCK_RAW_BYTES, at as u64) {
            Ok(Decoded::Frame(frame, len)) if frame.flags == 0 => {
                each(index, frame.payload);
                index += 1;
                at += len;
            }
            _ => return false,
        }
    }
    index == count as usize
}

/// The records of a frame block (format versions 1 and 2, or a block copied from such a
/// segment), chained records reassembled.
///
/// # Errors
/// What is wrong when the content is not exactly `count` whole records.
fn frames_of(raw: &[u8], count: u32) -> Result<Vec<Vec<u8>>, &'static str> {
    // The count is checked below; it is not trusted for the allocation.
    let mut records = Vec::with_capacity((count as usize).min(raw.len() / HEADER_BYTES + 1));
    let mut scanner = Scanner::new(raw, MAX_BLOCK_RAW_BYTES, 0);
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record { bytes, .. } => records.push(bytes),
            ScanItem::Skipped { .. } => return Err("frame inside block"),
        }
    }
    if scanner.tail_bytes() != 0 || records.len() != count as usize {
        return Err("block record count");
    }
    Ok(records)
}
