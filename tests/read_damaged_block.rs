//! One damaged block costs only its own records (issue 14 item 4): reading commands go on with
//! every intact record and warn once on stderr naming the file and the offsets passed over;
//! `verify` names the damage (exit 1); `ctrace recover --apply` copies the intact blocks into
//! a new segment, quarantines the damaged file, and `verify` is clean again. A segment that the
//! MANIFEST names but that is gone is reported as missing, not as a snapshot race.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use std::path::{Path, PathBuf};

use common::{Sandbox, assert_success};

/// A store of many small segments of several blocks each.
fn build(sandbox: &Sandbox) {
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nsegment_bytes = \"16KiB\"\nblock_bytes = 4096\ncompaction_zstd_level = 0\n",
    )
    .unwrap();
    let transcript = sandbox.path("s1.jsonl");
    let mut lines = String::new();
    for i in 0..400 {
        lines.push_str(&format!(
            r#"{{"type":"user","sessionId":"s1","uuid":"u{i}","timestamp":"2026-01-01T00:{:02}:{:02}Z","message":{{"content":"line {i} {}"}}}}"#,
            i / 60,
            i % 60,
            "q".repeat(40 + i % 13)
        ));
        lines.push('\n');
    }
    std::fs::write(&transcript, lines).unwrap();
    assert_success(
        &["ingest"],
        &sandbox.run(&["ingest", "-q", transcript.to_str().unwrap()]),
    );
}

fn segment_files(store: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(store.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn offsets(sandbox: &Sandbox) -> Vec<u64> {
    sandbox
        .ok_stdout(&["cat", "--json"])
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_flipped_byte_in_one_block_costs_only_that_block() {
    let sandbox = Sandbox::new();
    build(&sandbox);
    let store = sandbox.store();
    let all = offsets(&sandbox);
    assert_eq!(all.len(), 400);
    let files = segment_files(&store);
    assert!(files.len() > 3, "{files:?}");
    // A byte inside the first block of the second segment (after its 40-byte header).
    let victim = files[1].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[60] ^= 0x20;
    std::fs::write(&victim, bytes).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();

    for args in [
        &["sessions"][..],
        &["show", "s1"],
        &["stats"],
        &["cat"],
        &["search", "line"],
        &["grep", "line", "-c"],
        &["export", "-o", "out.tar.zst"],
    ] {
        let output = sandbox.run(args);
        assert_success(args, &output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("warning: skipped"))
            .collect();
        assert_eq!(warnings.len(), 1, "{args:?}: {stderr}");
        assert!(warnings[0].contains(&name), "{args:?}: {stderr}");
    }
    let left = offsets(&sandbox);
    assert!(
        left.len() < all.len() && left.len() > all.len() - 100,
        "{}",
        left.len()
    );
    assert!(left.iter().all(|o| all.contains(o)));

    let verify = sandbox.run(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).contains(&name));

    let dry = sandbox.run(&["recover"]);
    assert_eq!(dry.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would salvage"));
    assert_success(
        &["recover", "--apply"],
        &sandbox.run(&["recover", "--apply"]),
    );
    assert!(
        store.join("quarantine").join(&name).exists(),
        "the damaged file is kept"
    );
    assert_success(&["verify"], &sandbox.run(&["verify"]));
    let output = sandbox.run(&["cat"]);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        offsets(&sandbox),
        left,
        "every intact record, at its offset"
    );
    // New records still seal after the salvaged segment.
    assert_success(
        &["hook"],
        &sandbox.hook(br#"{"hook_event_name":"Stop","session_id":"s9"}"#),
    );
    assert_eq!(offsets(&sandbox).len(), left.len() + 1);
}

#[test]
fn a_missing_segment_is_reported_not_a_snapshot_race() {
    let sandbox = Sandbox::new();
    build(&sandbox);
    let files = segment_files(&sandbox.store());
    std::fs::remove_file(&files[1]).unwrap();
    let output = sandbox.run(&["cat"]);
    assert_success(&["cat"], &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(!stderr.contains("kept changing"), "{stderr}");
    assert_eq!(sandbox.run(&["verify"]).status.code(), Some(1));
}
