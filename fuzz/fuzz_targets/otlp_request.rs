//! OTLP request bodies as `ctrace serve` receives them (any bytes, as protobuf and as JSON, of
//! each signal, gzip or not): no panic, decompression bounded, every item of a decoded request
//! becomes one record that encodes, decodes and reads back as a one-item request.
#![no_main]

use ctrace::ingest::redact::Redactor;
use ctrace::log::Record;
use ctrace::otlp::{Encoding, Request, Signal, decompress, receive, telemetry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let redactor = Redactor::new(&Default::default());
    let _ = decompress(Some("gzip"), data.to_vec(), 1 << 20);
    for signal in [Signal::Logs, Signal::Metrics, Signal::Traces] {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let Ok(request) = Request::decode(signal, encoding, data) else {
                continue;
            };
            let items = receive::item_count(&request);
            let records = receive::records(request, 7, &redactor);
            assert_eq!(records.len(), items);
            for record in &records {
                let bytes = record.encode().unwrap();
                assert_eq!(&Record::decode(&bytes).unwrap(), record);
                let one = Request::from_raw(signal, record.raw()).unwrap();
                assert_eq!(receive::item_count(&one), 1);
                let _ = telemetry::Event::from_raw(record.raw());
                let _ = ctrace::otlp::summary(signal, record.raw());
            }
        }
    }
});
