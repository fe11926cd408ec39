//! A record that does not decode, in a store written by an older build (or damaged in a way
//! its checksums do not see), is reported by `verify` with its offset and removed by
//! `ctrace forget --offset N` without losing the rest (issue 14 item 3).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use common::{Sandbox, assert_success};
use ctrace::log::manifest::{Manifest, SegmentEntry};
use ctrace::model::{Body, HookBody, Record, Source};
use ctrace::segments::segment::SegmentWriter;
use ctrace::segments::{Offset, SegmentId};

fn hook(i: u64) -> Vec<u8> {
    Record {
        ts: 1_760_000_000_000_000_000 + i,
        source: Source::Hook,
        session: Some(format!("s{i}")),
        body: Body::Hook(HookBody {
            event: Some("Stop".into()),
            raw: format!(r#"{{"hook_event_name":"Stop","session_id":"s{i}"}}"#).into_bytes(),
            ..HookBody::default()
        }),
        redactions: 0,
    }
    .encode()
    .unwrap()
}

/// A store of 6 records whose record at offset 3 is valid frames but not a record.
fn store_with_undecodable(sandbox: &Sandbox) {
    let store = sandbox.store();
    std::fs::create_dir_all(store.join("segments")).unwrap();
    let name = "00000000000000000000-00000000000000000006.seg";
    let path = store.join("segments").join(name);
    let mut writer = SegmentWriter::create(&path, Offset(0), 4096, 3, 1 << 20).unwrap();
    for i in 0..6u64 {
        let bytes = if i == 3 {
            b"\xc1 not a record".to_vec()
        } else {
            hook(i)
        };
        writer.add(&bytes, 1_760_000_000_000_000_000 + i).unwrap();
    }
    let finished = writer.finish().unwrap();
    Manifest {
        version: 1,
        generation: 1,
        next_offset: Offset(6),
        segments: vec![SegmentEntry {
            id: SegmentId(0),
            file: name.into(),
            record_count: 6,
            min_ts: finished.footer.min_ts,
            max_ts: finished.footer.max_ts,
            raw_bytes: finished.footer.raw_bytes,
            file_bytes: finished.file_bytes,
            crc32: finished.crc32,
            created_ns: 1,
            end: None,
            level: None,
        }],
        ..Manifest::default()
    }
    .commit(&store.join("MANIFEST"))
    .unwrap();
}

#[test]
fn an_undecodable_record_is_reported_and_forgotten_alone() {
    let sandbox = Sandbox::new();
    store_with_undecodable(&sandbox);
    let verify = sandbox.run(&["verify"]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("offset 3 does not decode"), "{stdout}");
    // Readers go on, with one warning.
    let cat = sandbox.run(&["cat"]);
    assert_success(&["cat"], &cat);
    assert!(String::from_utf8_lossy(&cat.stderr).contains("offsets 3..4"));

    assert_success(&["forget"], &sandbox.run(&["forget", "--offset", "3"]));
    assert_success(&["verify"], &sandbox.run(&["verify"]));
    let offsets: Vec<u64> = sandbox
        .ok_stdout(&["cat", "--json"])
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, [0, 1, 2, 4, 5]);
    // Nothing left to forget at that offset.
    assert_eq!(
        sandbox.run(&["forget", "--offset", "3"]).status.code(),
        Some(1)
    );
}
