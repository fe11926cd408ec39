//! The MANIFEST decoder on arbitrary bytes, and on arbitrary JSON behind a valid header and
//! checksum (so the fuzzer reaches the JSON and structure checks).
#![no_main]

use ctrace::log::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Manifest::decode(data);

    let mut wrapped = b"CTMANIF1".to_vec();
    wrapped.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wrapped.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    wrapped.extend_from_slice(data);
    if let Ok(manifest) = Manifest::decode(&wrapped) {
        // Whatever decodes re-encodes and decodes to the same MANIFEST.
        let again = manifest.encode().unwrap();
        assert_eq!(Manifest::decode(&again).unwrap(), manifest);
    }
});
