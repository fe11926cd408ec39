//! The fallback spool under `$TMPDIR/ctrace-spool-<uid>/<hash>/` cannot be planted (issue 14
//! item 5): a symlinked or foreign or world-writable spool directory is neither written to by
//! the hook nor read or sealed by readers, files in it that are not our own regular files are
//! skipped, and the spool is keyed by the canonical store path (`--store X/` and `--store X`
//! share it).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::Sandbox;

fn euid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").unwrap().uid()
}

/// `(ctrace-spool-<uid>, <hash>)` for the sandbox's store: the CRC-32 of its canonical path
/// (docs/format.md, "Spool").
fn spool_levels(sandbox: &Sandbox) -> [String; 2] {
    fs::create_dir_all(sandbox.store()).unwrap();
    let canonical = sandbox.store().canonicalize().unwrap();
    let hash = crc32fast::hash(canonical.as_os_str().as_encoded_bytes());
    [format!("ctrace-spool-{}", euid()), format!("{hash:08x}")]
}

/// Writes one forged hook record (session `forged`) as a spool file in `dir`.
fn plant_record(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let raw = br#"{"session_id":"forged","hook_event_name":"Stop"}"#.to_vec();
    let record = ctrace::claude::hook_record(raw, 1_700_000_000_000_000_000, None, None);
    ctrace::log::inbox::spool(dir, &record.encode().unwrap(), 1 << 20).unwrap()
}

fn sessions_named(sandbox: &Sandbox, name: &str) -> usize {
    sandbox
        .sessions()
        .iter()
        .filter(|s| s["session"] == name)
        .count()
}

/// Makes the store unwritable for the hook (as root too): `inbox` and `spool` are regular
/// files, so the hook must use the fallback spool.
fn block_store(sandbox: &Sandbox) {
    fs::create_dir_all(sandbox.store()).unwrap();
    for name in ["inbox", "spool"] {
        let _ = fs::remove_dir_all(sandbox.store().join(name));
    }
    fs::write(sandbox.store().join("inbox"), b"").unwrap();
    fs::write(sandbox.store().join("spool"), b"").unwrap();
}

fn unblock_store(sandbox: &Sandbox) {
    fs::remove_file(sandbox.store().join("inbox")).unwrap();
    fs::remove_file(sandbox.store().join("spool")).unwrap();
}

/// Issue 14 item 5: a symlink planted at `$TMPDIR/ctrace-spool-<uid>` pointing at a directory
/// full of forged records: readers and the sealer do not take them in, and the hook does not
/// write through it.
#[test]
fn planted_symlink_spool_is_neither_read_nor_written() {
    let sandbox = Sandbox::new();
    sandbox.hook(br#"{"session_id":"genuine","hook_event_name":"Stop"}"#);
    let [top, hash] = spool_levels(&sandbox);
    let evil = sandbox.path("evil");
    let planted = plant_record(&evil.join(&hash));
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o777)).unwrap();
    symlink(&evil, sandbox.tmp().join(&top)).unwrap();

    assert_eq!(
        sessions_named(&sandbox, "forged"),
        0,
        "a planted record was read"
    );
    assert_eq!(sessions_named(&sandbox, "genuine"), 1);
    assert!(planted.exists(), "the planted file must not be consumed");

    // The hook, with the store blocked, must not write through the planted symlink.
    block_store(&sandbox);
    let out = sandbox.hook(br#"{"session_id":"blocked","hook_event_name":"Stop"}"#);
    assert!(out.stderr.is_empty());
    let written: Vec<_> = fs::read_dir(evil.join(&hash)).unwrap().collect();
    assert_eq!(
        written.len(),
        1,
        "the hook wrote into the planted directory"
    );
}

/// Issue 14 item 5: a world-writable spool directory (mode 0777) is refused: records in it
/// are not sealed.
#[test]
fn world_writable_spool_dir_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.hook(br#"{"session_id":"genuine","hook_event_name":"Stop"}"#);
    let [top, hash] = spool_levels(&sandbox);
    let dir = sandbox.tmp().join(&top).join(&hash);
    plant_record(&dir);
    fs::set_permissions(sandbox.tmp().join(&top), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        sessions_named(&sandbox, "forged"),
        0,
        "a planted record was read"
    );
    assert_eq!(sessions_named(&sandbox, "genuine"), 1);
}

/// Issue 14 item 5: a spool directory owned by another user (as root: `nobody`), and another
/// user's file in our own spool directory, are refused. Skipped (visibly) when not root.
#[test]
fn other_owners_spool_dir_and_files_are_refused() {
    if euid() != 0 {
        eprintln!("SKIP: chown to another user needs root");
        return;
    }
    let nobody = 65534;
    let sandbox = Sandbox::new();
    sandbox.hook(br#"{"session_id":"genuine","hook_event_name":"Stop"}"#);
    let [top, hash] = spool_levels(&sandbox);
    let dir = sandbox.tmp().join(&top).join(&hash);
    let planted = plant_record(&dir);
    for path in [sandbox.tmp().join(&top), dir.clone(), planted.clone()] {
        std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).unwrap();
    }
    assert_eq!(
        sessions_named(&sandbox, "forged"),
        0,
        "another user's dir was read"
    );
    // Our own directories, another user's file inside.
    for path in [sandbox.tmp().join(&top), dir.clone()] {
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    }
    assert_eq!(
        sessions_named(&sandbox, "forged"),
        0,
        "another user's file was read"
    );
    assert!(planted.exists());
    // A symlink to a genuine-looking spool file elsewhere is not followed either.
    std::os::unix::fs::chown(&planted, Some(0), Some(0)).unwrap();
    let elsewhere = sandbox.path("elsewhere.wal");
    fs::rename(&planted, &elsewhere).unwrap();
    symlink(&elsewhere, dir.join("spool-1-1.wal")).unwrap();
    assert_eq!(
        sessions_named(&sandbox, "forged"),
        0,
        "a symlinked file was read"
    );
}

/// Issue 14 item 5: the spool is keyed by the canonical store path: a payload spooled by a
/// hook run with `--store DIR/` is read by a command run with `--store DIR`.
#[test]
fn trailing_slash_store_path_shares_the_spool() {
    let sandbox = Sandbox::new();
    block_store(&sandbox);
    let slashed = format!("{}/", sandbox.store().display());
    let mut hook = sandbox.command_in(Path::new(&slashed), &["hook"]);
    let output = hook
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(br#"{"session_id":"slashed","hook_event_name":"Stop"}"#)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    unblock_store(&sandbox);
    assert_eq!(
        sessions_named(&sandbox, "slashed"),
        1,
        "the record spooled under `--store DIR/` is not seen with `--store DIR`"
    );
    // Sealed once: the spool file is consumed and a second read still sees one record.
    assert_eq!(sessions_named(&sandbox, "slashed"), 1);
    assert_eq!(sandbox.cat(&[]).len(), 1);
}
