//! Archive format version 1 fixture (`tests/fixtures/archive-v1.tar.zst`, the v1 fixture store
//! exported by ctrace 0.1.0) must stay importable, giving the fixture store's records; and
//! exporting the fixture store again must give the same record chunk, byte for byte (STYLE.md §4).

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::Path;
use std::process::Command;

use ctrace::config::Config;
use ctrace::export::archive;
use ctrace::log::Store;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn ctrace(store: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env("CTRACE_HOME", store)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ctrace {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

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
fn v1_archive_imports_the_fixture_records() {
    let file = fixtures().join("archive-v1.tar.zst");
    let manifest = archive::verify(&file, Box::new(|_| {})).unwrap();
    assert_eq!(manifest.format_version, 1);
    assert_eq!(manifest.records, 3);
    assert_eq!(manifest.sessions, 1);

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ctrace(&store, &["import", "-q", file.to_str().unwrap()]);
    let stdout = String::from_utf8(ctrace(&store, &["cat", "--json"]).stdout).unwrap();
    let expected = std::fs::read_to_string(fixtures().join("v1-store.expected.jsonl")).unwrap();
    // Compare as JSON values: key order of the output is not part of the format.
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    assert_eq!(parse(&stdout), parse(&expected));
    let snapshot = Store::open(&store, Config::default())
        .unwrap()
        .snapshot()
        .unwrap();
    let record = snapshot.get(ctrace::segments::Offset(2)).unwrap().unwrap();
    assert_eq!(record.raw(), b"not json \xff");
}

#[test]
fn exporting_the_fixture_store_gives_the_same_record_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_dir(&fixtures().join("v1-store"), &store);
    let file = dir.path().join("again.tar.zst");
    ctrace(&store, &["export", "-q", "-o", file.to_str().unwrap()]);
    let again = archive::verify(&file, Box::new(|_| {})).unwrap();
    let fixture =
        archive::verify(&fixtures().join("archive-v1.tar.zst"), Box::new(|_| {})).unwrap();
    assert_eq!(again.members.len(), 2);
    // The header names the ctrace version, which moves on; the record chunk must not.
    assert_eq!(again.members[1..], fixture.members[1..]);
    assert_eq!(again.records, fixture.records);
    assert_eq!(
        (again.min_ts, again.max_ts),
        (fixture.min_ts, fixture.max_ts)
    );
}
