//! The asciicast reader (`ingest::asciicast`, `ctrace ingest` of `.cast` files) on arbitrary
//! bytes: errors only, no panic; a cast it accepts becomes records, which encode and decode,
//! and which the asciicast writer (`ctrace export --format asciicast`) writes as a cast that
//! reads back with the same events.
#![no_main]

use ctrace::export::asciicast::write;
use ctrace::ingest::asciicast::{parse, records, session_id};
use ctrace::log::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cast) = parse(data) else {
        return;
    };
    let session = session_id(data);
    let records = records(&cast, &session, 1_700_000_000_000_000_000);
    assert_eq!(
        records.len(),
        cast.events.len() + 1,
        "a start record, then the events"
    );
    for record in &records {
        let bytes = record.encode().unwrap();
        assert_eq!(&Record::decode(&bytes).unwrap(), record);
    }
    for version in [2, 3] {
        let mut out = Vec::new();
        write(&mut out, records.iter(), version).unwrap();
        let again = parse(&out).unwrap_or_else(|e| panic!("written v{version} cast: {e}"));
        assert_eq!(again.events.len(), cast.events.len(), "v{version} events");
    }
});
