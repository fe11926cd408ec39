//! Reading a store that cannot be written (issue 14 item 11): on a read-only mount, and on a
//! full disk with data waiting in the inbox, every reading command works without writing (the
//! sealed segments plus the inbox scanned in memory, the views folded in memory, the index
//! searched as it is), with one note on stderr; a seal that fails on a full disk leaves no temp
//! file behind.
//!
//! The read-only mount and the full disk are real: a private mount namespace (`unshare -m`,
//! which needs root or user namespaces) with a read-only bind mount or a tiny tmpfs. Where
//! `unshare` is not available the tests skip visibly (they fail under `CI=true`).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Sandbox, parse_cat};

/// Whether `unshare -m` can mount here (root, or unprivileged user namespaces).
fn namespaces_work() -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_ok_and(|v| v != "true") || std::env::var("CI").is_err(),
            "`unshare -m` is required under CI=true"
        );
        eprintln!("SKIP: `unshare -m` cannot mount here (needs root or user namespaces)");
    }
    ok
}

/// `sh -c SCRIPT` in a private mount namespace, with the sandbox's environment; `$S` is the
/// store, `$B` the binary, `$O` a directory for outputs.
fn in_namespace(sandbox: &Sandbox, script: &str) -> Output {
    let inner = sandbox.command(&[]);
    let mut command = Command::new("unshare");
    command
        .args(["-m", "sh", "-c", script])
        .current_dir(sandbox.root())
        .env("S", sandbox.store())
        .env("B", BIN)
        .env("O", sandbox.path("out"));
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    fs::create_dir_all(sandbox.path("out")).unwrap();
    command.output().unwrap()
}

/// Runs `ctrace ARGS` with the store mounted read-only.
fn read_only(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut quoted = String::new();
    for arg in args {
        quoted.push_str(&format!(" '{arg}'"));
    }
    let script = format!(
        "mount --bind \"$S\" \"$S\" && mount -o remount,ro,bind \"$S\" \"$S\" && \
         exec \"$B\" --store \"$S\"{quoted} <&0"
    );
    in_namespace(sandbox, &script)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Issue 14 item 11: on a read-only store with records sealed and others waiting in the inbox,
/// the reading commands exit 0, see every record, and write nothing.
#[test]
fn reading_commands_work_on_a_read_only_store() {
    if !namespaces_work() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.hook(
        br#"{"session_id":"s1","hook_event_name":"UserPromptSubmit","prompt":"hello sealed"}"#,
    );
    sandbox.ok(&["compact"]);
    sandbox.ok(&["reindex"]);
    sandbox.hook(
        br#"{"session_id":"s2","hook_event_name":"UserPromptSubmit","prompt":"hello waiting"}"#,
    );
    let before = snapshot_of(&sandbox.store());

    let cat = read_only(&sandbox, &["cat", "--json"]);
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    assert_eq!(parse_cat(&cat.stdout).len(), 2, "sealed + inbox records");
    let note = String::from_utf8_lossy(&cat.stderr);
    assert_eq!(
        note.matches("cannot be written").count(),
        1,
        "one note: {note}"
    );

    for args in [
        &["sessions"][..],
        &["stats"],
        &["show", "s2"],
        &["cost"],
        &["tree", "s1"],
        &["search", "hello"],
        &["verify"],
        &["export", "--format", "jsonl"],
    ] {
        let out = read_only(&sandbox, args);
        assert!(
            out.status.success(),
            "`ctrace {}` on a read-only store: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sessions = read_only(&sandbox, &["sessions", "--json"]);
    assert_eq!(String::from_utf8_lossy(&sessions.stdout).lines().count(), 2);
    assert_eq!(snapshot_of(&sandbox.store()), before, "the store changed");
}

/// Paths and sizes of everything under `dir`.
fn snapshot_of(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(snapshot_of(&entry.path()));
        } else {
            out.push((entry.path().display().to_string(), meta.len()));
        }
    }
    out.sort();
    out
}

/// Issue 14 items 11 and 12: on a full disk with records waiting in the inbox, the hook stays
/// silent and keeps its payload, reading commands see every record, the failed seal leaves no
/// temp file and no empty spool file, and once space is back everything is sealed exactly once.
#[test]
fn full_disk_reads_and_hooks() {
    if !namespaces_work() {
        return;
    }
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.store()).unwrap();
    let script = r#"
        set -u
        mount -t tmpfs -o size=512k,mode=0700 tmpfs "$S" || exit 90
        for i in 1 2; do
            printf '{"session_id":"s%s","hook_event_name":"Stop"}' $i | "$B" --store "$S" hook || exit 91
        done
        dd if=/dev/zero of="$S/filler" bs=4k 2>/dev/null
        printf '{"session_id":"s3","hook_event_name":"Stop"}' | "$B" --store "$S" hook 2>"$O/hook.err" >"$O/hook.out"
        echo $? >"$O/hook.rc"
        "$B" --store "$S" cat --json >"$O/cat.out" 2>"$O/cat.err"; echo $? >"$O/cat.rc"
        "$B" --store "$S" sessions --json >"$O/sessions.out" 2>"$O/sessions.err"; echo $? >"$O/sessions.rc"
        find "$S" -name '*.tmp' >"$O/tmp.txt"
        find "$S" -name 'spool-*' -size 0 >"$O/empty.txt"
        rm "$S/filler"
        "$B" --store "$S" cat --json >"$O/cat2.out" 2>"$O/cat2.err"; echo $? >"$O/cat2.rc"
        "$B" --store "$S" verify >"$O/verify.out" 2>&1; echo $? >"$O/verify.rc"
    "#;
    let out = in_namespace(&sandbox, script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = sandbox.path("out");
    assert_eq!(read(&o.join("hook.rc")).trim(), "0");
    assert_eq!(read(&o.join("hook.err")), "", "the hook printed on stderr");
    assert_eq!(read(&o.join("hook.out")), "", "the hook printed on stdout");
    assert_eq!(
        read(&o.join("cat.rc")).trim(),
        "0",
        "{}",
        read(&o.join("cat.err"))
    );
    assert_eq!(parse_cat(read(&o.join("cat.out")).as_bytes()).len(), 3);
    assert_eq!(
        read(&o.join("sessions.rc")).trim(),
        "0",
        "{}",
        read(&o.join("sessions.err"))
    );
    assert_eq!(read(&o.join("sessions.out")).lines().count(), 3);
    assert_eq!(
        read(&o.join("tmp.txt")),
        "",
        "a failed seal left temp files"
    );
    assert_eq!(read(&o.join("empty.txt")), "", "empty spool files left");
    assert_eq!(
        read(&o.join("cat2.rc")).trim(),
        "0",
        "{}",
        read(&o.join("cat2.err"))
    );
    let records = parse_cat(read(&o.join("cat2.out")).as_bytes());
    assert_eq!(records.len(), 3, "every record sealed exactly once");
    assert!(records.iter().all(|r| r.offset.is_some()), "all sealed");
    assert_eq!(
        read(&o.join("verify.rc")).trim(),
        "0",
        "{}",
        read(&o.join("verify.out"))
    );
}
