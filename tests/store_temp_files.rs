//! Recovery (taken with the store lock) and the temp files of writers that do not hold the
//! lock: the forwarder replaces `forward.checkpoint` through `forward.checkpoint.*.tmp` while a
//! compactor pass or any `ctrace` command may take the lock. Recovery used to remove every
//! `*.tmp` of the store root, so a checkpoint being written could vanish before its rename: the
//! step failed and the batch, already delivered, was sent again.

use std::time::{Duration, SystemTime};

use ctrace::config::Config;
use ctrace::log::Store;

fn age(path: &std::path::Path, by: Duration) -> std::io::Result<()> {
    let file = std::fs::File::options().write(true).open(path)?;
    file.set_modified(SystemTime::now() - by)
}

#[test]
fn recovery_keeps_another_writers_fresh_temp_file_and_removes_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root, Config::default()).unwrap();
    drop(store.lock().unwrap());

    let checkpoint = root.join("forward.checkpoint.Ab12Cd.tmp");
    let manifest = root.join("MANIFEST.Xy34Zw.tmp");
    let pins = root.join("PINS.Qr56St.tmp");
    let segment = root
        .join("segments")
        .join("00000000000000000000.seg.Uv78Wx.tmp");
    for path in [&checkpoint, &manifest, &pins, &segment] {
        std::fs::write(path, b"half").unwrap();
    }
    let report = store.lock().unwrap().recovery().clone();
    // The lock holders' own temp files are leftovers of a holder that died: removed at once.
    assert!(!manifest.exists() && !pins.exists() && !segment.exists());
    assert_eq!(report.temp_files_removed, 3);
    // Another writer's may be being written: kept while it is fresh.
    assert!(
        checkpoint.exists(),
        "a fresh forward checkpoint temp file was removed"
    );

    age(
        &checkpoint,
        ctrace::log::STALE_TEMP_AFTER - Duration::from_secs(60),
    )
    .unwrap();
    drop(store.lock().unwrap());
    assert!(checkpoint.exists());
    age(
        &checkpoint,
        ctrace::log::STALE_TEMP_AFTER + Duration::from_secs(60),
    )
    .unwrap();
    let report = store.lock().unwrap().recovery().clone();
    assert!(!checkpoint.exists(), "a stale temp file was kept");
    assert_eq!(report.temp_files_removed, 1);
}
