//! Issue 5: the views read columnar blocks in place (`columnar::for_each_record`) instead of
//! through each record's encoded bytes. For every block of real stores (the format 3 fixture,
//! and the shared corpus ingested), the walk must give exactly the records `read_block` gives:
//! a compact record encodes to the same bytes and decodes from them to the same fields, an
//! opaque record is the same bytes.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::path::Path;

use ctrace::model::{BodyRef, RecordRef};
use ctrace::segments::SegmentId;
use ctrace::segments::columnar::{self, BlockRecord};
use ctrace::segments::segment::SegmentReader;

/// Records walked: (compact hook, compact transcript, opaque, malformed).
#[derive(Debug, Default, PartialEq, Eq)]
struct Walked {
    hooks: usize,
    lines: usize,
    opaque: usize,
    malformed: usize,
}

fn check_segments(store: &Path) -> Walked {
    let mut walked = Walked::default();
    let mut files: Vec<_> = std::fs::read_dir(store.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no sealed segment in {}",
        store.display()
    );
    for file in files {
        let reader = SegmentReader::open(&file, SegmentId(0)).unwrap();
        for (block, meta) in reader.blocks().iter().enumerate() {
            let expected = reader.read_block(block).unwrap();
            let raw = reader.read_block_raw(block).unwrap();
            if !columnar::is_columnar(&raw) {
                continue;
            }
            let mut got = Vec::new();
            columnar::for_each_record(&raw, meta.count, |index, record| {
                got.push((index, record));
            })
            .unwrap();
            assert_eq!(
                got.len(),
                expected.len(),
                "{} block {block}",
                file.display()
            );
            for ((index, record), (i, bytes)) in got.iter().zip(expected.iter().enumerate()) {
                let at = format!("{} block {block} record {i}", file.display());
                assert_eq!(*index, i, "{at}");
                match record {
                    BlockRecord::Compact(record) => {
                        let mut again = Vec::new();
                        rmp_serde::encode::write_named(&mut again, record).unwrap();
                        assert_eq!(&again, bytes, "{at}");
                        let decoded = RecordRef::decode(bytes).unwrap();
                        assert_eq!(&decoded, record, "{at}");
                        let malformed = match &record.body {
                            BodyRef::Hook(hook) => {
                                walked.hooks += 1;
                                hook.malformed.is_some()
                            }
                            BodyRef::Transcript(line) => {
                                walked.lines += 1;
                                line.malformed.is_some()
                            }
                            BodyRef::Pty(_) | BodyRef::Internal(_) | BodyRef::Otlp(_) => {
                                panic!("{at}: a compact record is a hook or a transcript line")
                            }
                        };
                        walked.malformed += usize::from(malformed);
                    }
                    BlockRecord::Opaque(got) => {
                        walked.opaque += 1;
                        assert_eq!(got, bytes, "{at}");
                    }
                }
            }
        }
    }
    walked
}

#[test]
fn v3_fixture_blocks_walk_like_read_block() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let walked = check_segments(&root.join("tests/fixtures/v3-store"));
    assert_eq!(walked.hooks + walked.lines + walked.opaque, 6, "{walked:?}");
    assert!(walked.malformed >= 2, "{walked:?}");
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn corpus_blocks_walk_like_read_block() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = common::Sandbox::new();
    sandbox.ingest(&[
        &corpus.join("claude-home"),
        &corpus.join("transcripts"),
        &corpus.join("hooks"),
    ]);
    // Seal the inbox into segments.
    sandbox.ok(&["compact"]);
    let walked = check_segments(&sandbox.store());
    assert!(walked.hooks > 0 && walked.lines > 1000, "{walked:?}");
    assert!(walked.malformed > 0, "{walked:?}");
}
