//! The inbox frame decoder and the resynchronising scanner on arbitrary bytes: no panic, no
//! allocation beyond the input, and the scanner's items tile its input.
#![no_main]

use ctrace::segments::frame::{
    Decoded, HEADER_BYTES, MAX_FRAME_LIMIT_BYTES, ScanItem, Scanner, decode_frame, encode_frame,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the frame limit, so that small limits (chains, FrameTooLarge) are
    // reached as often as the real ones.
    let Some((&pick, buf)) = data.split_first() else {
        return;
    };
    let limit = match pick % 5 {
        0 => u32::from(pick),
        1 => 16,
        2 => 4096,
        3 => MAX_FRAME_LIMIT_BYTES,
        _ => u32::MAX,
    };

    if let Ok(Decoded::Frame(frame, size)) = decode_frame(buf, limit, 0) {
        assert_eq!(size, HEADER_BYTES + frame.payload.len());
        let mut again = Vec::new();
        encode_frame(&mut again, frame.flags, frame.payload, limit).unwrap();
        assert_eq!(&again[..], &buf[..size], "accepted frames are canonical");
    }

    let mut scanner = Scanner::new(buf, limit, 0);
    let mut at = 0u64;
    let mut last_record_end = 0u64;
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record {
                position,
                len,
                bytes,
            } => {
                assert_eq!(position, at);
                assert!(bytes.len() as u64 + HEADER_BYTES as u64 <= len);
                at += len;
                last_record_end = at;
            }
            ScanItem::Skipped { position, len, .. } => {
                assert_eq!(position, at);
                assert!(len > 0);
                at += len;
            }
        }
    }
    assert!(at as usize == buf.len() || scanner.torn_tail());
    assert_eq!(scanner.valid_len() as u64, last_record_end);
});
