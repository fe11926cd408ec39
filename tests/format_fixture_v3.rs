//! Format version 3 fixture (columnar blocks, a segment recompressed by the compactor): a store
//! written by ctrace 0.4 must stay readable byte for byte (STYLE.md §4: a format change needs a
//! version bump and a new fixture). The records cover each envelope case: a transcript `ts`
//! taken from the payload, one stored as a delta, usage, a lone-surrogate and an invalid line,
//! a hook payload from a file and a pretty-printed one (with newlines) from `ctrace hook`.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::Path;

use ctrace::config::Config;
use ctrace::log::{Store, verify};
use ctrace::segments::columnar;
use ctrace::segments::segment::{COLUMNAR_FORMAT_VERSION, SegmentReader};
use ctrace::segments::{Offset, SegmentId};

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
fn v3_store_reads_back_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("tests/fixtures/v3-store"), dir.path());
    let store = Store::open(dir.path(), Config::default()).unwrap();
    let report = verify(&store);
    assert!(report.is_clean(), "{:?}", report.damage);
    assert_eq!(report.records, 6);

    // The segment is format 3 and its block is columnar.
    let segments = dir.path().join("segments");
    let file = std::fs::read_dir(&segments)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let reader = SegmentReader::open(&file.path(), SegmentId(0)).unwrap();
    assert_eq!(reader.format_version(), COLUMNAR_FORMAT_VERSION);
    let raw = zstd::stream::decode_all(reader.bytes()).unwrap();
    assert!(columnar::is_columnar(&raw));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(dir.path())
        .args(["cat", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let expected =
        std::fs::read_to_string(root.join("tests/fixtures/v3-store.expected.jsonl")).unwrap();
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    assert_eq!(
        parse(&String::from_utf8(output.stdout).unwrap()),
        parse(&expected)
    );

    // Every record by offset (streaming path) equals the same record from the whole block.
    let snapshot = store.snapshot().unwrap();
    let block = reader.read_block(0).unwrap();
    for (i, bytes) in block.iter().enumerate() {
        let one = reader.read_record_in_block(0, i).unwrap().unwrap();
        assert_eq!(&one, bytes, "record {i}");
        let record = snapshot.get(Offset(i as u64)).unwrap().unwrap();
        assert_eq!(&record.encode().unwrap(), bytes);
    }
    let last = snapshot.get(Offset(5)).unwrap().unwrap();
    assert!(
        last.raw().contains(&b'\n'),
        "the pretty-printed payload keeps its newlines"
    );
    assert_eq!(
        snapshot.get(Offset(3)).unwrap().unwrap().raw(),
        b"not json at all"
    );
}
