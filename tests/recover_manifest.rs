//! A lost or corrupt MANIFEST (issue 14 item 1): no command deletes a sealed segment, `verify`
//! reports the damage (exit 1), and `ctrace recover` rebuilds the MANIFEST from the segments
//! (dry run first), after which every record is back at its offset and re-ingesting adds
//! nothing. Also item 14: a torn inbox tail is a note, not damage.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use std::path::Path;

use common::{Sandbox, assert_success};

/// A store of several small segments: hook payloads and an ingested transcript.
fn build(sandbox: &Sandbox) -> std::path::PathBuf {
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nsegment_bytes = \"4KiB\"\nblock_bytes = 4096\ncompaction_zstd_level = 0\n",
    )
    .unwrap();
    let transcript = sandbox.path("s1.jsonl");
    let mut lines = String::new();
    for i in 0..200 {
        lines.push_str(&format!(
            r#"{{"type":"user","sessionId":"s1","uuid":"u{i}","timestamp":"2026-01-01T00:00:{:02}Z","message":{{"content":"line {i} {}"}}}}"#,
            i % 60,
            "z".repeat(50)
        ));
        lines.push('\n');
    }
    std::fs::write(&transcript, lines).unwrap();
    assert_success(
        &["ingest"],
        &sandbox.run(&["ingest", "-q", transcript.to_str().unwrap()]),
    );
    for i in 0..5 {
        let payload = format!(r#"{{"hook_event_name":"Stop","session_id":"s{i}"}}"#);
        assert_success(&["hook"], &sandbox.hook(payload.as_bytes()));
    }
    assert_success(&["compact"], &sandbox.run(&["compact"]));
    transcript
}

fn segments(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

/// Runs every kind of command against a store whose MANIFEST is gone or damaged, then checks
/// that no segment was deleted, and that `recover` restores every record at its offset.
fn damaged_manifest_is_recovered(damage: impl Fn(&Path)) {
    let sandbox = Sandbox::new();
    let transcript = build(&sandbox);
    let store = sandbox.store();
    let before = sandbox.ok_stdout(&["cat", "--json"]);
    let files = segments(&store);
    assert!(files.len() > 2, "several segments: {files:?}");
    damage(&store.join("MANIFEST"));
    for args in [
        &["sessions"][..],
        &["cat"],
        &["stats"],
        &["compact"],
        &["ingest", "-q", transcript.to_str().unwrap()],
    ] {
        let output = sandbox.run(args);
        assert_ne!(
            output.status.code(),
            Some(0),
            "{args:?} ran on a lost MANIFEST"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("ctrace recover"), "{args:?}: {stderr}");
        assert_eq!(segments(&store), files, "{args:?} deleted segments");
    }
    // With no retention policy, `gc` has nothing to do; it must not delete anything either.
    let _ = sandbox.run(&["gc"]);
    assert_eq!(segments(&store), files, "gc deleted segments");
    assert_success(
        &["hook"],
        &sandbox.hook(br#"{"hook_event_name":"Stop","session_id":"late"}"#),
    );
    assert_eq!(segments(&store), files, "the hook deleted segments");
    let verify = sandbox.run(&["verify"]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "verify must report a lost MANIFEST"
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("MANIFEST"));

    let dry = sandbox.run(&["recover"]);
    assert_eq!(dry.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would write"));
    assert_eq!(segments(&store), files);
    assert_success(
        &["recover", "--apply"],
        &sandbox.run(&["recover", "--apply"]),
    );
    assert_success(&["verify"], &sandbox.run(&["verify"]));
    // The late hook was sealed after the rebuilt records, with the next offset.
    let after = sandbox.ok_stdout(&["cat", "--json"]);
    let after: Vec<&str> = after.lines().collect();
    let before: Vec<&str> = before.lines().collect();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "records and offsets are back"
    );
    assert_eq!(after.len(), before.len() + 1);
    let again = sandbox.run(&["ingest", "--json", "-q", transcript.to_str().unwrap()]);
    assert_success(&["ingest"], &again);
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["records"], 0, "ingest cursors were rebuilt");
}

/// Issue 14 item 1: `rm MANIFEST`.
#[test]
fn a_missing_manifest_deletes_nothing_and_recover_rebuilds_it() {
    damaged_manifest_is_recovered(|manifest| std::fs::remove_file(manifest).unwrap());
}

/// Issue 14 item 1: a MANIFEST whose checksum no longer matches.
#[test]
fn a_corrupt_manifest_deletes_nothing_and_recover_rebuilds_it() {
    damaged_manifest_is_recovered(|manifest| {
        let mut bytes = std::fs::read(manifest).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(manifest, bytes).unwrap();
    });
}

/// Issue 14 item 14: what a killed hook leaves at the end of `active.wal` is a note.
#[test]
fn a_torn_inbox_tail_is_a_note_not_damage() {
    let sandbox = Sandbox::new();
    assert_success(
        &["hook"],
        &sandbox.hook(br#"{"hook_event_name":"Stop","session_id":"a"}"#),
    );
    let wal = sandbox.store().join("inbox/active.wal");
    let bytes = std::fs::read(&wal).unwrap();
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[..20]);
    std::fs::write(&wal, torn).unwrap();
    let output = sandbox.run(&["verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("torn tail"), "{stdout}");
    // Damage inside the file still is damage.
    let mut damaged = bytes.clone();
    damaged.extend_from_slice(b"garbage that is not a frame at all, long enough to matter");
    damaged.extend_from_slice(&bytes);
    std::fs::write(&wal, damaged).unwrap();
    assert_eq!(sandbox.run(&["verify"]).status.code(), Some(1));
}
