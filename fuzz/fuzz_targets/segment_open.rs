//! The sealed segment opener (header, block index, footer) and the block reader on arbitrary
//! bytes: errors only, no panic, no unbounded allocation.
//!
//! Inputs that start with `FIX` get their header, index and footer checksums recomputed first,
//! so that the fuzzer gets past the CRCs to the structural checks and the block reader.
#![no_main]

use ctrace::segments::SegmentId;
use ctrace::segments::segment::{FOOTER_FRAME_BYTES, parse_segment, read_block};
use libfuzzer_sys::fuzz_target;

/// Recomputes the header CRC (bytes 32..36 over 8..32), the footer CRC (last 4 bytes over the
/// footer content) and, when the footer points at a plausible index, the index CRC.
fn fix_checksums(file: &mut [u8]) {
    let len = file.len();
    if len < 40 + FOOTER_FRAME_BYTES {
        return;
    }
    let crc = crc32fast::hash(&file[8..32]);
    file[32..36].copy_from_slice(&crc.to_le_bytes());
    let footer = len - FOOTER_FRAME_BYTES + 8;
    let index_position = u64::from_le_bytes(file[footer..footer + 8].try_into().unwrap());
    let index_len = u32::from_le_bytes(file[footer + 8..footer + 12].try_into().unwrap());
    if let (Ok(start), Ok(index_len)) =
        (usize::try_from(index_position), usize::try_from(index_len))
        && index_len >= 12
        && start.checked_add(index_len) == Some(len - FOOTER_FRAME_BYTES)
    {
        let entries_end = start + index_len - 4;
        let crc = crc32fast::hash(&file[start + 8..entries_end]);
        file[entries_end..entries_end + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&file[footer..len - 4]);
    file[len - 4..].copy_from_slice(&crc.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    if let Some(rest) = data.strip_prefix(b"FIX") {
        file = rest.to_vec();
        fix_checksums(&mut file);
    }
    for id in [SegmentId(0), SegmentId(u64::MAX)] {
        if let Ok((footer, blocks)) = parse_segment(id, &file) {
            assert_eq!(blocks.len() as u64, u64::from(footer.block_count));
            for meta in &blocks {
                if let Ok(records) = read_block(id, &file, meta) {
                    assert_eq!(records.len() as u64, u64::from(meta.count));
                }
            }
        }
    }
});
