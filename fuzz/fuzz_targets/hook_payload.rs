//! Hook payloads and transcript lines as received (any bytes), and record decoding: no panic,
//! raw bytes kept exactly, and the record encoding round-trips.
#![no_main]

use ctrace::claude::{hook_record, transcript_record};
use ctrace::log::Record;
use ctrace::model::{Origin, RecordRef};
use libfuzzer_sys::fuzz_target;

fn round_trip(record: &Record, raw: &[u8]) {
    assert_eq!(record.raw(), raw, "raw bytes kept");
    let bytes = record.encode().unwrap();
    assert_eq!(&Record::decode(&bytes).unwrap(), record);
    assert_eq!(RecordRef::decode(&bytes).unwrap().ts, record.ts);
}

fuzz_target!(|data: &[u8]| {
    round_trip(&hook_record(data.to_vec(), 7, None, None), data);
    let origin = Origin {
        file: "/logs/hooks.jsonl".into(),
        position: 3,
        len: data.len() as u64,
    };
    round_trip(
        &hook_record(data.to_vec(), 7, None, Some(origin.clone())),
        data,
    );
    round_trip(
        &transcript_record(data.to_vec(), origin, 7, Some("s")),
        data,
    );

    // The same bytes as a stored record.
    if let Ok(record) = Record::decode(data) {
        let again = record.encode().unwrap();
        assert_eq!(Record::decode(&again).unwrap(), record);
    }
    let _ = RecordRef::decode(data);
});
