//! The archive reader returns an error on any input and never panics (STYLE.md §5): arbitrary
//! bytes, arbitrary bytes behind the zstd magic, and valid archives with random bytes
//! overwritten or cut short. A mutated archive that still verifies must hold exactly the
//! original content.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

use std::path::Path;
use std::sync::OnceLock;

use ctrace::config::Config;
use ctrace::export::archive::{self, ArchiveWriter, Selection};
use ctrace::log::Store;
use ctrace::log::read::TimeRange;
use ctrace::model::{Body, HookBody, Record, Source};
use proptest::prelude::*;

/// A small valid archive of 50 records, built once.
fn valid_archive() -> &'static Vec<u8> {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), Config::default()).unwrap();
        for i in 0..50u64 {
            store
                .append(&Record {
                    ts: 1_700_000_000_000_000_000 + i,
                    source: Source::Hook,
                    session: Some(format!("s{}", i % 3)),
                    body: Body::Hook(HookBody {
                        event: Some("PreToolUse".into()),
                        raw: format!("{{\"n\":{i}}}").into_bytes(),
                        ..HookBody::default()
                    }),
                    redactions: 0,
                })
                .unwrap();
        }
        store.refresh().unwrap();
        let snapshot = store.snapshot().unwrap();
        let mut out = Vec::new();
        let mut writer =
            ArchiveWriter::new(&mut out, Path::new("mem"), Selection::default()).unwrap();
        archive::export(
            &snapshot,
            TimeRange::default(),
            |_| true,
            &mut writer,
            |_| {},
        )
        .unwrap();
        let (manifest, _) = writer.finish().unwrap();
        assert_eq!(manifest.records, 50);
        out
    })
}

fn verify_bytes(bytes: &[u8]) -> Result<archive::ArchiveManifest, archive::ArchiveError> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    archive::verify(file.path(), Box::new(|_| {}))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(verify_bytes(&bytes).is_err());
        let mut zstd_like = vec![0x28, 0xb5, 0x2f, 0xfd];
        zstd_like.extend_from_slice(&bytes);
        prop_assert!(verify_bytes(&zstd_like).is_err());
    }

    #[test]
    fn mutated_archives_are_refused_or_unchanged(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let original = valid_archive();
        let mut bytes = original.clone();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(manifest) = verify_bytes(&bytes) {
            prop_assert_eq!(manifest.records, 50);
            prop_assert_eq!(
                zstd::decode_all(&bytes[..]).unwrap(),
                zstd::decode_all(&original[..]).unwrap()
            );
        }
    }
}
