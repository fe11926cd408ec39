//! Streaming decompression of one block, pulling only as much raw content as a record read
//! needs, with a per-thread buffer kept between calls.

use super::MAX_BLOCK_RAW_BYTES;
use crate::segments::SegmentError;
use crate::segments::SegmentId;

/// Finds the `index`-th record of the block being decompressed by `stream`, pulling only as
/// much raw content as it needs.
pub(super) fn find_record_in_stream(
    stream: &mut BlockStream<'_>,
    index: usize,
    corrupt: impl Fn(&'static str) -> SegmentError + Copy,
    segment: SegmentId,
) -> Result<Option<Vec<u8>>, SegmentError> {
    use crate::segments::frame::{Decoded, decode_frame};
    let mut eof = false;
    // Frames are decoded incrementally: `cursor` is the next frame to decode, `payload` the
    // record assembled so far (frames already checked are never decoded twice).
    let mut cursor = 0usize;
    let mut seen = 0usize;
    let mut in_chain = false;
    let mut payload: Vec<u8> = Vec::new();
    // Columnar blocks: known once the first bytes are in; `need` is how many raw bytes the
    // record's envelope and payload need.
    let mut columnar: Option<crate::segments::columnar::OneRecord> = None;
    let mut need = 0usize;
    loop {
        if columnar.is_none()
            && stream.buf.len() >= crate::segments::columnar::BLOCK_MAGIC.len()
            && crate::segments::columnar::is_columnar(&stream.buf)
        {
            columnar = Some(crate::segments::columnar::OneRecord::new(index));
        }
        if let Some(one) = &mut columnar {
            if stream.buf.len() >= need || eof {
                use crate::segments::columnar::Step;
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
        if stream.buf.len() < crate::segments::columnar::BLOCK_MAGIC.len() && !eof {
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
pub(super) const KEPT_STREAM_BUFFER_BYTES: usize = 4 << 20;

thread_local! {
    /// Each thread's zstd decompression context and raw buffer for record reads, reused so that
    /// a read neither allocates a context and window nor faults in fresh pages.
    static STREAM_STATE: std::cell::RefCell<Option<StreamState>> =
        const { std::cell::RefCell::new(None) };
}

/// Largest zstd frame header (bytes; `ZSTD_FRAMEHEADERSIZE_MAX` in zstd.h).
pub(super) const FRAME_HEADER_MAX_BYTES: usize = 18;

/// A reusable zstd context plus output buffer.
pub(super) struct StreamState {
    pub(super) dctx: zstd::zstd_safe::DCtx<'static>,
    pub(super) buf: Vec<u8>,
}

/// Streaming decompression of one block (a single zstd frame) into a raw buffer sized from the
/// block index: each [`BlockStream::more`] offers zstd the next compressed block it asks for
/// and so decodes about one zstd block (≤ 128 KiB raw) straight into the buffer's spare
/// capacity; a reader stops as soon as it has the bytes it needs (on average half the block).
pub(super) struct BlockStream<'a> {
    pub(super) dctx: zstd::zstd_safe::DCtx<'static>,
    /// Raw content decoded so far.
    pub(super) buf: Vec<u8>,
    pub(super) compressed: &'a [u8],
    /// Compressed bytes consumed so far.
    pub(super) consumed: usize,
    /// Compressed bytes to offer on the next call (zstd's hint: the next block and header).
    pub(super) next_in: usize,
    pub(super) done: bool,
}

impl<'a> BlockStream<'a> {
    /// Starts decompressing `compressed`, with room for `raw_len` raw bytes (the block index's
    /// figure; a block that turns out larger grows the buffer, up to the raw limit checked by
    /// the caller). Takes the thread's context and buffer when it has them.
    ///
    /// # Errors
    /// The zstd error when the context cannot be reset.
    pub(super) fn take(compressed: &'a [u8], raw_len: usize) -> std::io::Result<Self> {
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
    pub(super) fn more(&mut self) -> std::io::Result<bool> {
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
    pub(super) fn give_back(self) {
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
pub(super) fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}
