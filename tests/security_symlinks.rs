//! Symlinks inside the store are never followed (issue 14 item 6): a symlinked
//! `inbox/active.wal`, `inbox/`, `logs/`, `views/` or `index/` makes ctrace refuse (with an
//! error naming the path, or, for the hook, by spooling elsewhere), and nothing is written
//! outside the store.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::Sandbox;

const PAYLOAD: &[u8] =
    br#"{"session_id":"s1","hook_event_name":"UserPromptSubmit","prompt":"hello words"}"#;

/// Every file under `dir`, recursively (symlinks not followed).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_under(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// A store with one sealed record, and an empty directory `outside/` next to it.
fn store_with_outside() -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::new();
    sandbox.hook(PAYLOAD);
    sandbox.ok(&["sessions"]);
    let outside = sandbox.path("outside");
    fs::create_dir(&outside).unwrap();
    (sandbox, outside)
}

/// Issue 14 item 6: a symlinked `inbox/active.wal` is not appended through; the payload is
/// kept (spooled in the store) and reading commands refuse, naming the file.
#[test]
fn symlinked_active_wal_is_not_followed() {
    let (sandbox, outside) = store_with_outside();
    let target = outside.join("victim");
    fs::write(&target, b"").unwrap();
    symlink(&target, sandbox.store().join("inbox/active.wal")).unwrap();
    let out = sandbox.hook(PAYLOAD);
    assert!(out.stderr.is_empty());
    assert_eq!(
        fs::read(&target).unwrap(),
        b"",
        "the hook wrote through the symlink"
    );
    let spooled = fs::read_dir(sandbox.store().join("spool")).unwrap().count();
    assert_eq!(spooled, 1, "the payload must be spooled in the store");
    let read = sandbox.run(&["cat", "--json"]);
    assert_eq!(read.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&read.stderr);
    assert!(stderr.contains("active.wal"), "{stderr}");
    assert_eq!(fs::read(&target).unwrap(), b"");
}

/// Issue 14 item 6: a symlinked `inbox/` directory is not written through by the hook.
#[test]
fn symlinked_inbox_dir_is_not_followed() {
    let (sandbox, outside) = store_with_outside();
    fs::remove_dir_all(sandbox.store().join("inbox")).unwrap();
    symlink(&outside, sandbox.store().join("inbox")).unwrap();
    let out = sandbox.hook(PAYLOAD);
    assert!(out.stderr.is_empty());
    assert!(
        files_under(&outside).is_empty(),
        "written outside the store"
    );
    let read = sandbox.run(&["sessions"]);
    assert_eq!(read.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&read.stderr).contains("inbox"));
    assert!(
        files_under(&outside).is_empty(),
        "written outside the store"
    );
}

/// Issue 14 item 6: a symlinked `logs/` receives no runtime log.
#[test]
fn symlinked_logs_dir_is_not_followed() {
    let (sandbox, outside) = store_with_outside();
    fs::remove_dir_all(sandbox.store().join("logs")).unwrap();
    symlink(&outside, sandbox.store().join("logs")).unwrap();
    sandbox.hook(PAYLOAD);
    sandbox.ok(&["sessions"]);
    sandbox.ok(&["compact"]);
    assert!(
        files_under(&outside).is_empty(),
        "the runtime log was written outside"
    );
}

/// Issue 14 item 6: a symlinked log file inside `logs/` is not written through.
#[test]
fn symlinked_log_file_is_not_followed() {
    let (sandbox, outside) = store_with_outside();
    let logs = sandbox.store().join("logs");
    for entry in fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        fs::remove_file(&path).unwrap();
        let target = outside.join("victim");
        fs::write(&target, b"").unwrap();
        symlink(&target, &path).unwrap();
    }
    sandbox.ok(&["compact"]);
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"");
}

/// Issue 14 item 6: a symlinked `views/` is refused with an error naming it.
#[test]
fn symlinked_views_dir_is_refused() {
    let (sandbox, outside) = store_with_outside();
    // `sessions` (the setup) reads the views, so they exist already.
    let _ = fs::remove_dir_all(sandbox.store().join("views"));
    symlink(&outside, sandbox.store().join("views")).unwrap();
    let out = sandbox.run(&["cost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("views"));
    assert!(
        files_under(&outside).is_empty(),
        "views written outside the store"
    );
}

/// Issue 14 item 6: a symlinked `views/views.sqlite` is refused.
#[test]
fn symlinked_views_file_is_refused() {
    let (sandbox, outside) = store_with_outside();
    sandbox.ok(&["compact"]);
    let db = sandbox.store().join("views/views.sqlite");
    fs::rename(&db, outside.join("views.sqlite")).unwrap();
    symlink(outside.join("views.sqlite"), &db).unwrap();
    let before = fs::read(outside.join("views.sqlite")).unwrap();
    sandbox.hook(PAYLOAD);
    let out = sandbox.run(&["cost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs::read(outside.join("views.sqlite")).unwrap(), before);
    assert!(!outside.join("views.sqlite-wal").exists());
}

/// Issue 14 item 6: a symlinked `index/` is refused with an error naming it; `reindex`
/// replaces it with a real directory.
#[test]
fn symlinked_index_dir_is_refused() {
    let (sandbox, outside) = store_with_outside();
    symlink(&outside, sandbox.store().join("index")).unwrap();
    let out = sandbox.run(&["search", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("index"));
    assert!(
        files_under(&outside).is_empty(),
        "index written outside the store"
    );
    // `reindex` deletes the index (here: the symlink itself) and builds a real directory.
    sandbox.ok(&["reindex"]);
    assert!(
        files_under(&outside).is_empty(),
        "index written outside the store"
    );
    assert!(
        !fs::symlink_metadata(sandbox.store().join("index"))
            .unwrap()
            .is_symlink()
    );
}

/// Issue 14 item 6: a symlinked `ctrace.lock` is not opened.
#[test]
fn symlinked_lock_file_is_refused() {
    let (sandbox, outside) = store_with_outside();
    let lock = sandbox.store().join("ctrace.lock");
    fs::remove_file(&lock).unwrap();
    symlink(outside.join("lock"), &lock).unwrap();
    let out = sandbox.run(&["compact"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ctrace.lock"));
    assert!(
        files_under(&outside).is_empty(),
        "lock created outside the store"
    );
}

/// Issue 14 item 6: the store root itself may be a symlink (the user's choice of
/// `CTRACE_HOME`): it is followed, and everything works through it.
#[test]
fn symlinked_store_root_is_allowed() {
    let sandbox = Sandbox::new();
    let real = sandbox.path("real-store");
    fs::create_dir(&real).unwrap();
    symlink(&real, sandbox.store()).unwrap();
    sandbox.hook(PAYLOAD);
    assert_eq!(sandbox.sessions().len(), 1);
    sandbox.ok(&["compact"]);
    assert!(real.join("MANIFEST").exists());
}
