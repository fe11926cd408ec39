//! `config.toml` parsing on arbitrary text: an error or a configuration whose values are in
//! range, never a panic.
#![no_main]

use std::path::Path;

use ctrace::config::{Config, parse_bytes};
use ctrace::segments::frame::MAX_FRAME_LIMIT_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_bytes(text);
    for candidate in [text.to_owned(), format!("[storage]\n{text}")] {
        if let Ok(config) = Config::parse(&candidate, Path::new("config.toml")) {
            let s = &config.storage;
            assert!((1..=22).contains(&s.zstd_level));
            assert!((4096..=64 << 20).contains(&s.block_bytes));
            assert!(s.segment_bytes >= s.block_bytes);
            assert!((4096..=u64::from(MAX_FRAME_LIMIT_BYTES)).contains(&s.frame_limit));
            assert!(!s.segment_age.is_zero());
        }
    }
});
