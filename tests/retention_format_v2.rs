//! Format version 2 fixture (issue 6): a store whose segment was rewritten by `ctrace forget`
//! (a sparse segment, segment format 2, MANIFEST version 2) must stay readable byte for byte,
//! and sealing more records after it must keep offsets and versions right.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::Path;

use ctrace::config::Config;
use ctrace::log::{Store, verify};
use ctrace::segments::Offset;
use ctrace::segments::segment::{SPARSE_FORMAT_VERSION, parse_segment};

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

fn cat(store: &Path) -> Vec<serde_json::Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(store)
        .args(["cat", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn v2_sparse_store_reads_back_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("v2-sparse-store"), dir.path());
    let store = Store::open(dir.path(), Config::default()).unwrap();
    let report = verify(&store);
    assert!(report.is_clean(), "{:?}", report.damage);
    assert_eq!(report.records, 2);

    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.manifest().version, 2);
    let entry = &snapshot.manifest().segments[0];
    assert_eq!((entry.record_count, entry.end()), (2, Offset(4)));
    let bytes = std::fs::read(dir.path().join("segments").join(&entry.file)).unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
        SPARSE_FORMAT_VERSION
    );
    let (footer, blocks) = parse_segment(entry.id, &bytes).unwrap();
    assert_eq!(footer.record_count, 2);
    assert_eq!(
        blocks
            .iter()
            .map(|b| (b.first_offset.0, b.count))
            .collect::<Vec<_>>(),
        [(0, 1), (2, 1)]
    );
    for (offset, present) in [(0, true), (1, false), (2, true), (3, false), (4, false)] {
        assert_eq!(
            snapshot.get(Offset(offset)).unwrap().is_some(),
            present,
            "offset {offset}"
        );
    }

    let expected: Vec<serde_json::Value> =
        std::fs::read_to_string(root.join("v2-sparse-store.expected.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    assert_eq!(cat(dir.path()), expected);

    // New records continue at the MANIFEST's next offset, in a new segment.
    store
        .append(&ctrace::log::Record {
            ts: 1,
            source: ctrace::log::Source::Internal,
            session: None,
            body: ctrace::log::Body::Internal(ctrace::model::InternalBody {
                event: "test".into(),
                detail: String::new(),
                data: Vec::new(),
            }),
            redactions: 0,
        })
        .unwrap();
    store.lock().unwrap().seal().unwrap();
    let offsets: Vec<u64> = cat(dir.path())
        .iter()
        .map(|v| v["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 2, 4]);
    assert!(verify(&store).is_clean());
}
