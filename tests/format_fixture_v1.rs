//! Format version 1 fixture: a store written by ctrace 0.1.0 must stay readable byte for byte
//! (STYLE.md §4: a format change needs a version bump and a new fixture).

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::Path;

use ctrace::config::Config;
use ctrace::log::{Store, verify};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn v1_store_reads_back_exactly() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let store = Store::open(dir.path(), Config::default()).unwrap();
    let report = verify(&store);
    assert!(report.is_clean(), "{:?}", report.damage);
    assert_eq!(report.records, 3);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(dir.path())
        .args(["cat", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let expected = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store.expected.jsonl"),
    )
    .unwrap();
    // Compare as JSON values: key order of the output is not part of the format.
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(parse(&stdout), parse(&expected));
    // The payload is written verbatim.
    assert!(
        stdout.contains(r#""payload":{"session_id":"fixture-1","hook_event_name":"PreToolUse""#)
    );

    let snapshot = store.snapshot().unwrap();
    let record = snapshot.get(ctrace::segments::Offset(2)).unwrap().unwrap();
    assert_eq!(record.raw(), b"not json \xff");
}
