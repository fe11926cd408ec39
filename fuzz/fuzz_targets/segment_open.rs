//! The sealed segment opener (header, block index, footer), the block reader and the columnar
//! block decoder on arbitrary bytes: errors only, no panic, no unbounded allocation.
//!
//! Three kinds of input, by prefix:
//! - none: the bytes are a segment file, as they are;
//! - `FIX`: a segment file whose checksums are recomputed after mutation: the header CRC, each
//!   block's CRC and raw length (from what its zstd frame decompresses to), the index totals,
//!   the index CRC and the footer CRC, so that mutated blocks get past every check to zstd and
//!   the block decoders;
//! - `RAW` + record count (u32 LE) + bytes: the bytes are the raw content of one block (a
//!   columnar `CTB3` block or frames), compressed and wrapped in a valid one-block segment
//!   here, so that every mutation of a columnar block reaches the decoder.
//!
//! Blocks that read are also walked by the in-place readers (`for_each_record`, `OneRecord`),
//! which must agree with the decoder.
#![no_main]

use ctrace::segments::SegmentId;
use ctrace::segments::columnar::{OneRecord, Step, for_each_record};
use ctrace::segments::segment::{
    FOOTER_FRAME_BYTES, HEADER_CONTENT_BYTES, INDEX_ENTRY_BYTES, parse_segment, read_block,
    read_block_raw,
};
use libfuzzer_sys::fuzz_target;

/// Largest raw block the fuzzer builds or fixes up (bytes): keeps runs fast.
const MAX_FUZZ_RAW_BYTES: usize = 4 << 20;

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes every checksum and the raw lengths (see the module docs), where the structure
/// is plausible enough to find them.
fn fix_checksums(file: &mut [u8]) {
    let len = file.len();
    let header_end = 8 + HEADER_CONTENT_BYTES;
    if len < header_end + FOOTER_FRAME_BYTES {
        return;
    }
    let crc = crc32fast::hash(&file[8..32]);
    put_u32(file, 32, crc);
    let footer = len - FOOTER_FRAME_BYTES + 8;
    let index_position = le_u64(file, footer);
    let index_len = le_u32(file, footer + 8) as usize;
    if let Ok(start) = usize::try_from(index_position)
        && index_len >= 12
        && start >= header_end
        && start.checked_add(index_len) == Some(len - FOOTER_FRAME_BYTES)
    {
        let entries_end = start + index_len - 4;
        let (mut records, mut raw_total) = (0u64, 0u64);
        for entry in (start + 8..entries_end).step_by(INDEX_ENTRY_BYTES) {
            if entry + INDEX_ENTRY_BYTES > entries_end {
                break;
            }
            let position = le_u64(file, entry) as usize;
            let compressed_len = le_u32(file, entry + 8) as usize;
            records += u64::from(le_u32(file, entry + 24));
            let Some(end) = position.checked_add(compressed_len) else {
                continue;
            };
            if position < header_end || end > start {
                continue;
            }
            let crc = crc32fast::hash(&file[position..end]);
            put_u32(file, entry + 28, crc);
            if let Ok(raw) = zstd::bulk::decompress(&file[position..end], MAX_FUZZ_RAW_BYTES) {
                put_u32(file, entry + 12, raw.len() as u32);
            }
            raw_total += u64::from(le_u32(file, entry + 12));
        }
        put_u64(file, footer + 24, records);
        put_u64(file, footer + 48, raw_total);
        let crc = crc32fast::hash(&file[start + 8..entries_end]);
        put_u32(file, entries_end, crc);
    }
    let crc = crc32fast::hash(&file[footer..len - 4]);
    put_u32(file, len - 4, crc);
}

/// A valid columnar segment (format 3) at offset 0 holding one block: `raw`, of `count`
/// records.
fn one_block_segment(raw: &[u8], count: u32) -> Option<Vec<u8>> {
    let compressed = zstd::bulk::compress(raw, 1).ok()?;
    let mut file = Vec::new();
    file.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    file.extend_from_slice(&(HEADER_CONTENT_BYTES as u32).to_le_bytes());
    file.extend_from_slice(b"CTRACSEG");
    file.extend_from_slice(&3u32.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&0u64.to_le_bytes());
    let crc = crc32fast::hash(&file[8..32]);
    file.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    let position = file.len() as u64;
    file.extend_from_slice(&compressed);
    let index_position = file.len() as u64;
    let mut entry = Vec::new();
    entry.extend_from_slice(&position.to_le_bytes());
    entry.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    entry.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    entry.extend_from_slice(&0u64.to_le_bytes());
    entry.extend_from_slice(&count.to_le_bytes());
    entry.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
    entry.extend_from_slice(&1u64.to_le_bytes());
    entry.extend_from_slice(&2u64.to_le_bytes());
    let index_len = 8 + entry.len() + 4;
    file.extend_from_slice(&0x184D_2A51u32.to_le_bytes());
    file.extend_from_slice(&((index_len - 8) as u32).to_le_bytes());
    file.extend_from_slice(&entry);
    file.extend_from_slice(&crc32fast::hash(&entry).to_le_bytes());
    let footer_at = file.len();
    file.extend_from_slice(&0x184D_2A52u32.to_le_bytes());
    file.extend_from_slice(&64u32.to_le_bytes());
    file.extend_from_slice(&index_position.to_le_bytes());
    file.extend_from_slice(&(index_len as u32).to_le_bytes());
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&0u64.to_le_bytes());
    file.extend_from_slice(&u64::from(count).to_le_bytes());
    file.extend_from_slice(&1u64.to_le_bytes());
    file.extend_from_slice(&2u64.to_le_bytes());
    file.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    file.extend_from_slice(b"CTSF");
    let crc = crc32fast::hash(&file[footer_at + 8..]);
    file.extend_from_slice(&crc.to_le_bytes());
    Some(file)
}

fuzz_target!(|data: &[u8]| {
    let file = if let Some(rest) = data.strip_prefix(b"FIX") {
        let mut file = rest.to_vec();
        fix_checksums(&mut file);
        file
    } else if let Some(rest) = data.strip_prefix(b"RAW") {
        if rest.len() < 4 || rest.len() > MAX_FUZZ_RAW_BYTES {
            return;
        }
        // At least one record: the opener refuses empty blocks before any decoding.
        let count = le_u32(rest, 0).max(1);
        match one_block_segment(&rest[4..], count) {
            Some(file) => {
                // The wrapper is valid, so only the block's content can be refused.
                assert!(parse_segment(SegmentId(0), &file).is_ok());
                file
            }
            None => return,
        }
    } else {
        data.to_vec()
    };
    for id in [SegmentId(0), SegmentId(u64::MAX)] {
        let Ok((footer, blocks)) = parse_segment(id, &file) else {
            continue;
        };
        assert_eq!(blocks.len() as u64, u64::from(footer.block_count));
        for meta in &blocks {
            let decoded = read_block(id, &file, meta);
            if let Ok(records) = &decoded {
                assert_eq!(records.len() as u64, u64::from(meta.count));
            }
            let Ok(raw) = read_block_raw(id, &file, meta) else {
                assert!(decoded.is_err());
                continue;
            };
            if !ctrace::segments::columnar::is_columnar(&raw) {
                continue;
            }
            // The in-place walk sees what the decoder decodes (or fails where it fails).
            let mut walked = 0usize;
            let walk = for_each_record(&raw, meta.count, |_, _| walked += 1);
            if let Ok(records) = &decoded {
                assert!(walk.is_ok(), "the walk refuses a block the decoder accepts");
                assert_eq!(walked, records.len());
            }
            // Single-record reads agree with the decoder.
            if let Ok(records) = &decoded {
                for (i, expected) in records.iter().enumerate().take(4) {
                    match OneRecord::new(i).step(&raw, true) {
                        Ok(Step::Found(bytes)) => assert_eq!(&bytes, expected),
                        other => panic!("record {i}: decoder found it, OneRecord gave {other:?}"),
                    }
                }
            }
        }
    }
});
