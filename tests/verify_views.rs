//! `verify` covers the views (issue 14 item 13): a value changed in place inside
//! `views/views.sqlite` (which SQLite's structure checks cannot see) is found by comparing the
//! tables with a re-fold of the log, reported as damage (exit 1) with the repair, and
//! `compact --rebuild` repairs it; a damaged index file fails tantivy's checksum and `reindex`
//! repairs it.

mod common;

use common::{Sandbox, assert_success};

#[test]
fn a_changed_value_in_the_views_is_damage_and_rebuild_repairs_it() {
    let sandbox = Sandbox::new();
    let transcript = sandbox.path("s1.jsonl");
    let mut lines = String::new();
    for i in 0..20 {
        lines.push_str(&format!(
            r#"{{"type":"assistant","sessionId":"s1","uuid":"u{i}","requestId":"req_{i:04}QQQQ","timestamp":"2026-01-01T00:00:{i:02}Z","message":{{"id":"msg_{i:04}","model":"claude-sonnet-4-5-20250929","usage":{{"input_tokens":{},"output_tokens":7,"cache_read_input_tokens":16600744}}}}}}"#,
            100 + i
        ));
        lines.push('\n');
    }
    std::fs::write(&transcript, lines).unwrap();
    assert_success(
        &["ingest"],
        &sandbox.run(&["ingest", "-q", transcript.to_str().unwrap()]),
    );
    assert_success(&["compact"], &sandbox.run(&["compact"]));
    let clean = sandbox.run(&["verify"]);
    assert_success(&["verify"], &clean);
    assert!(String::from_utf8_lossy(&clean.stdout).contains("rows match a re-fold"));

    let db = sandbox.store().join("views/views.sqlite");
    // Make sure the pages are in the main file, not only in the write-ahead log.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"req_0007QQQQ";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the request id is stored");
    bytes[at + 8] = b'R';
    std::fs::write(&db, bytes).unwrap();

    let output = sandbox.run(&["verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("views.sqlite") && stdout.contains("compact --rebuild"),
        "{stdout}"
    );

    assert_success(&["compact"], &sandbox.run(&["compact", "--rebuild"]));
    assert_success(&["verify"], &sandbox.run(&["verify"]));

    // The index: a flipped byte in one of its files fails tantivy's checksum.
    assert_success(&["reindex"], &sandbox.run(&["reindex"]));
    let file = std::fs::read_dir(sandbox.store().join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let output = sandbox.run(&["verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("reindex"), "{stdout}");
    assert_success(&["reindex"], &sandbox.run(&["reindex"]));
    assert_success(&["verify"], &sandbox.run(&["verify"]));
}
