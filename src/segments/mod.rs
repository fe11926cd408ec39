//! Bytes on disk: the frame codec, the sealed segment file format and read-only maps.
//!
//! Records are byte strings with a timestamp here, with one exception: the columnar block
//! layout (`columnar`) understands hook and transcript records well enough to store their
//! envelopes as references into their payloads. See `docs/format.md` for the byte diagrams.

pub mod columnar;
pub mod frame;
pub mod mmap;
pub mod segment;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A dense logical record number in the log (never a byte position).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Offset(pub u64);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifies a sealed segment by its base offset (the offset of its first record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SegmentId(pub u64);

impl SegmentId {
    /// The segment's file name: the base offset as 20 decimal digits, then `.seg`.
    pub fn file_name(self) -> String {
        format!("{:020}.seg", self.0)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:020}", self.0)
    }
}

/// Errors of the frame codec and the segment file format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// No frame magic at a place where a frame must start.
    #[error("no frame magic at byte {position}")]
    BadMagic {
        /// Byte position in the file.
        position: u64,
    },
    /// A frame's length field is above the limit.
    #[error("frame of {len} bytes exceeds limit of {limit} bytes")]
    FrameTooLarge {
        /// Length the frame claims, in bytes.
        len: u64,
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// A frame's CRC does not match its content.
    #[error(
        "frame crc mismatch at byte {position}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    FrameChecksum {
        /// Byte position of the frame.
        position: u64,
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the frame.
        computed: u32,
    },
    /// A frame runs past whole records that follow it (damage, not a torn tail).
    #[error("frame at byte {position} is cut short: whole records follow it")]
    FrameCutShort {
        /// Byte position of the frame.
        position: u64,
    },
    /// A continuation frame without its start, or a chain interrupted by a new record.
    #[error("frame at byte {position} breaks a continuation chain")]
    BrokenChain {
        /// Byte position of the frame.
        position: u64,
    },
    /// A frame sets unknown flag or reserved bits.
    #[error("frame at byte {position} has unknown flags {flags:#04x} or reserved bits set")]
    BadFlags {
        /// Byte position of the frame.
        position: u64,
        /// The flags byte.
        flags: u8,
    },
    /// A checksum over a part of a sealed segment does not match.
    #[error(
        "crc mismatch in segment {segment} {what} at byte {position}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// The segment.
        segment: SegmentId,
        /// Byte position of the damaged part.
        position: u64,
        /// Which part: `header`, `block`, `block index`, `footer`.
        what: &'static str,
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed from the bytes.
        computed: u32,
    },
    /// A structural field of a sealed segment is wrong.
    #[error("segment {segment} is corrupt at byte {position}: bad {what}")]
    Corrupt {
        /// The segment.
        segment: SegmentId,
        /// Byte position of the damaged part.
        position: u64,
        /// Which field.
        what: &'static str,
    },
    /// The file is shorter than the smallest valid segment.
    #[error("segment {segment} is truncated: {len} bytes")]
    Truncated {
        /// The segment.
        segment: SegmentId,
        /// File length in bytes.
        len: u64,
    },
    /// A block is larger than any reader accepts.
    #[error("segment {segment} has a block of {len} bytes, above the block limit")]
    BlockTooLarge {
        /// The segment.
        segment: SegmentId,
        /// Block length in bytes.
        len: u64,
    },
    /// The header names a format version this build cannot read.
    #[error("segment {segment} has format version {version}, this build reads versions 1 and 2")]
    UnsupportedVersion {
        /// The segment.
        segment: SegmentId,
        /// The version found.
        version: u32,
    },
    /// zstd failed to compress or decompress a block.
    #[error("zstd failed on segment {segment}")]
    Zstd {
        /// The segment.
        segment: SegmentId,
        /// The zstd error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error on a segment file.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
