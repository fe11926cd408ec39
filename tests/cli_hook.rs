//! `ctrace hook`: whatever arrives on stdin, and whatever state the store is in, the hook exits
//! 0, prints nothing on stdout, and the payload is kept byte for byte (`DESIGN.md` §8).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Repr, Sandbox};

/// `.wal` files anywhere under `dir` (recursively).
fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(wal_files(&path));
        } else if path.extension().is_some_and(|e| e == "wal") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn payload(session: &str, event: &str) -> Vec<u8> {
    format!(
        r#"{{"session_id":"{session}","transcript_path":"/nonexistent/{session}.jsonl","cwd":"/tmp/p","hook_event_name":"{event}"}}"#
    )
    .into_bytes()
}

#[test]
fn odd_payloads_exit_0_and_are_stored_raw() {
    let sandbox = Sandbox::new();
    let cases: Vec<(&str, Vec<u8>, Repr, &str)> = vec![
        ("empty", b"".to_vec(), Repr::Text, "empty"),
        ("whitespace", b"  \n\t \r\n".to_vec(), Repr::Text, "empty"),
        (
            "invalid JSON",
            br#"{"session_id":"s-bad","hook_event_name":"Stop","#.to_vec(),
            Repr::Text,
            "invalid_json",
        ),
        (
            "not UTF-8",
            b"{\"session_id\":\"s-bin\",\"x\":\"\xff\xfe\x80\"}\n".to_vec(),
            Repr::Base64,
            "not_utf8",
        ),
        (
            "not an object",
            b"[1,2,3]".to_vec(),
            Repr::Json,
            "not_object",
        ),
    ];
    for (name, bytes, _, _) in &cases {
        let output = sandbox.hook(bytes);
        assert!(output.stdout.is_empty(), "{name}");
    }
    let lone = br#"{"session_id":"s-lone","hook_event_name":"UserPromptSubmit","prompt":"caf\udc8f \ud83d end"}"#;
    sandbox.hook(lone);

    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), cases.len() + 1);
    for (record, (name, bytes, repr, malformed)) in records.iter().zip(&cases) {
        assert_eq!(record.raw, *bytes, "{name}: raw bytes");
        assert_eq!(record.repr, *repr, "{name}: representation");
        assert_eq!(record.malformed.as_deref(), Some(*malformed), "{name}");
        assert_eq!(record.source, "hook");
    }
    let last = &records[cases.len()];
    assert_eq!(last.raw, lone.to_vec());
    assert_eq!(last.malformed.as_deref(), Some("lone_surrogate"));
    // Fields are still extracted from a payload with lone surrogates.
    assert_eq!(last.event.as_deref(), Some("UserPromptSubmit"));
    assert_eq!(last.session.as_deref(), Some("s-lone"));
    // Non-UTF-8 bytes are replaced for field extraction only; the raw bytes stay as they were.
    assert_eq!(records[3].session.as_deref(), Some("s-bin"));

    let verify = sandbox.run(&["verify"]);
    common::assert_success(&["verify"], &verify);
}

/// `cat --json` promises JSON Lines; a payload with lone surrogate escapes embedded verbatim as
/// `payload` makes the line unreadable to strict parsers (serde_json, Go, jq 1.7+ is lenient
/// but many are not). `src/cli/output.rs` documents that such payloads go to `payload_text`.
#[test]
fn lone_surrogate_payload_is_emitted_as_payload_text() {
    let sandbox = Sandbox::new();
    let lone = br#"{"session_id":"s-lone","hook_event_name":"Stop","x":"\udc8f"}"#;
    sandbox.hook(lone);
    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].raw, lone.to_vec());
    serde_json::from_str::<serde_json::Value>(&records[0].line)
        .expect("every cat --json line is strict JSON");
    assert_eq!(records[0].repr, Repr::Text);
}

#[test]
fn five_mib_payload_is_stored_whole_in_chained_frames() {
    let sandbox = Sandbox::new();
    let mut text = String::with_capacity(5 << 20);
    let mut i = 0u64;
    while text.len() < 5 << 20 {
        text.push_str(&format!(
            "line {i} of a long tool output {:x}\\n",
            i * 2654435761
        ));
        i += 1;
    }
    let big = format!(
        r#"{{"session_id":"s-big","hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"toolu_big","tool_response":{{"stdout":"{text}"}}}}"#
    )
    .into_bytes();
    assert!(big.len() > 5 << 20);
    sandbox.hook(&big);

    // On disk, before any reader seals it: a chain of valid frames, each within the 1 MiB limit,
    // all but the last flagged "continues".
    let wal = fs::read(sandbox.store().join("inbox/active.wal")).unwrap();
    let mut at = 0;
    let mut frames = Vec::new();
    let mut record = Vec::new();
    while at < wal.len() {
        let header = &wal[at..at + 16];
        assert_eq!(&header[0..4], b"CTF1", "frame magic at byte {at}");
        let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(header[8..12].try_into().unwrap());
        let flags = header[12];
        assert!(
            len <= 1 << 20,
            "frame of {len} bytes exceeds the 1 MiB limit"
        );
        let body = &wal[at + 16..at + 16 + len];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header[4..8]);
        hasher.update(&header[12..16]);
        hasher.update(body);
        assert_eq!(hasher.finalize(), crc, "frame CRC at byte {at}");
        frames.push(flags);
        record.extend_from_slice(body);
        at += 16 + len;
    }
    assert_eq!(at, wal.len());
    assert!(frames.len() >= 6, "{} frames", frames.len());
    assert!(frames[..frames.len() - 1].iter().all(|f| f & 1 == 1));
    assert_eq!(frames[frames.len() - 1] & 1, 0);
    let start = record
        .windows(64)
        .position(|w| w == &big[..64])
        .expect("payload bytes inside the record");
    assert_eq!(&record[start..start + big.len()], big.as_slice());

    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].raw.len(), big.len());
    assert!(records[0].raw == big, "5 MiB payload not byte-identical");
    assert_eq!(records[0].event.as_deref(), Some("PostToolUse"));
    assert_eq!(records[0].tool_use_id.as_deref(), Some("toolu_big"));
    let verify = sandbox.run(&["verify", "--json"]);
    common::assert_success(&["verify"], &verify);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["records"], 1);
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Inbox made read-only (needs enforced permissions, so not as root): the payload is spooled,
/// and the next reading command seals it once the store is writable again.
#[test]
fn read_only_inbox_spools_and_next_reader_seals() {
    let sandbox = Sandbox::new();
    if !common::permissions_enforced(sandbox.root()) {
        eprintln!(
            "SKIP: read_only_inbox_spools_and_next_reader_seals: file permissions are not enforced for this user (root?); see the *_not_a_directory tests"
        );
        return;
    }
    let before = payload("s-ro", "SessionStart");
    let during = payload("s-ro", "Stop");
    let during_root = payload("s-ro", "SessionEnd");
    sandbox.hook(&before);
    // Seal, so that `inbox/active.wal` is gone and would have to be created.
    assert_eq!(sandbox.cat(&[]).len(), 1);
    let inbox = sandbox.store().join("inbox");
    assert!(wal_files(&inbox).is_empty());

    set_mode(&inbox, 0o500);
    sandbox.hook(&during);
    assert!(
        wal_files(&inbox).is_empty(),
        "nothing written to the read-only inbox"
    );
    assert_eq!(wal_files(&sandbox.store().join("spool")).len(), 1);
    // The store's spool/ read-only too: the fallback spool under $TMPDIR takes the payload.
    let spool = sandbox.store().join("spool");
    set_mode(&spool, 0o500);
    sandbox.hook(&during_root);
    assert_eq!(wal_files(&spool).len(), 1);
    set_mode(&spool, 0o700);
    set_mode(&inbox, 0o700);

    let spooled: Vec<PathBuf> = wal_files(&sandbox.store().join("spool"))
        .into_iter()
        .chain(wal_files(&sandbox.tmp()))
        .collect();
    assert_eq!(spooled.len(), 2, "spool files: {spooled:?}");
    assert_eq!(wal_files(&sandbox.tmp()).len(), 1, "fallback spool used");

    let raws: Vec<Vec<u8>> = sandbox.cat(&[]).into_iter().map(|r| r.raw).collect();
    assert_eq!(raws.len(), 3);
    for p in [&before, &during, &during_root] {
        assert_eq!(raws.iter().filter(|r| r == &p).count(), 1);
    }
    for file in spooled {
        assert!(!file.exists(), "{} not consumed", file.display());
    }
    assert_eq!(sandbox.cat(&[]).len(), 3, "sealed exactly once");
}

/// Puts a regular file where the directory `dir` was (it must be empty), so nothing can be
/// created inside it, whatever the user's privileges.
fn block_dir(dir: &Path) {
    if dir.exists() {
        fs::remove_dir(dir).unwrap();
    }
    fs::write(dir, b"not a directory").unwrap();
}

fn unblock_dir(dir: &Path) {
    fs::remove_file(dir).unwrap();
    fs::create_dir(dir).unwrap();
}

#[test]
fn inbox_not_a_directory_spools_into_store_spool() {
    let sandbox = Sandbox::new();
    let before = payload("s-spool", "SessionStart");
    let during = payload("s-spool", "UserPromptSubmit");
    sandbox.hook(&before);
    assert_eq!(sandbox.cat(&[]).len(), 1, "seals and empties the inbox");
    let inbox = sandbox.store().join("inbox");
    assert!(wal_files(&inbox).is_empty());

    block_dir(&inbox);
    sandbox.hook(&during);
    let spooled = wal_files(&sandbox.store().join("spool"));
    assert_eq!(spooled.len(), 1);
    assert!(wal_files(&sandbox.tmp()).is_empty());
    unblock_dir(&inbox);

    let records = sandbox.cat(&[]);
    let raws: Vec<&[u8]> = records.iter().map(|r| r.raw.as_slice()).collect();
    assert_eq!(raws, vec![before.as_slice(), during.as_slice()]);
    assert!(!spooled[0].exists());
    let verify = sandbox.run(&["verify"]);
    common::assert_success(&["verify"], &verify);
}

#[test]
fn unwritable_store_uses_fallback_spool_under_tmpdir() {
    let sandbox = Sandbox::new();
    let before = payload("s-fallback", "SessionStart");
    let during = payload("s-fallback", "Notification");
    sandbox.hook(&before);
    assert_eq!(sandbox.cat(&[]).len(), 1);
    let inbox = sandbox.store().join("inbox");
    let spool = sandbox.store().join("spool");
    block_dir(&inbox);
    block_dir(&spool);
    sandbox.hook(&during);

    let fallback = wal_files(&sandbox.tmp());
    assert_eq!(fallback.len(), 1, "{fallback:?}");
    // $TMPDIR/ctrace-spool-<uid>/<hash>/<file>.wal
    let probe = sandbox.path("uid-probe");
    fs::write(&probe, b"").unwrap();
    let uid = fs::metadata(&probe).unwrap().uid();
    let relative = fallback[0].strip_prefix(sandbox.tmp()).unwrap();
    let top = relative.components().next().unwrap();
    assert_eq!(
        top.as_os_str().to_str().unwrap(),
        format!("ctrace-spool-{uid}")
    );
    assert_eq!(relative.components().count(), 3, "{}", relative.display());

    unblock_dir(&inbox);
    unblock_dir(&spool);
    let raws: Vec<Vec<u8>> = sandbox.cat(&[]).into_iter().map(|r| r.raw).collect();
    assert_eq!(raws, vec![before.clone(), during.clone()]);
    assert!(!fallback[0].exists(), "fallback spool file consumed");
    assert_eq!(sandbox.cat(&[]).len(), 2, "sealed exactly once");
}

#[test]
fn bad_config_does_not_stop_the_hook() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.store()).unwrap();
    fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nzstd_levle = 3\n",
    )
    .unwrap();
    let p = payload("s-config", "SessionStart");
    sandbox.hook(&p);

    let sessions = sandbox.run(&["sessions"]);
    assert!(!sessions.status.success());
    assert_ne!(sessions.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&sessions.stderr);
    assert!(stderr.contains("zstd_levle"), "{stderr}");
    assert!(sessions.stdout.is_empty());

    // The problem went to ctrace's runtime log, not to Claude Code.
    let logs: String = fs::read_dir(sandbox.store().join("logs"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(logs.contains("zstd_levle"), "runtime log: {logs}");

    let good = sandbox.path("good.toml");
    fs::write(&good, "").unwrap();
    let output = sandbox.run(&["--config", good.to_str().unwrap(), "cat", "--json"]);
    common::assert_success(&["cat"], &output);
    let records = common::parse_cat(&output.stdout);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].raw, p);
}

#[test]
fn concurrent_hooks_and_readers_store_each_payload_once() {
    let sandbox = Sandbox::new();
    let writers = 8;
    let per_writer = 8;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let sandbox = &sandbox;
            scope.spawn(move || {
                for i in 0..per_writer {
                    let p = format!(
                        r#"{{"session_id":"s-conc","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t-{w}-{i}"}}"#
                    );
                    sandbox.hook(p.as_bytes());
                }
            });
        }
        // Readers seal while hooks append.
        for _ in 0..2 {
            let sandbox = &sandbox;
            scope.spawn(move || {
                for _ in 0..4 {
                    sandbox.ok(&["cat", "--json"]);
                }
            });
        }
    });
    let records = sandbox.cat(&[]);
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r.tool_use_id.clone().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..writers)
        .flat_map(|w| (0..per_writer).map(move |i| format!("t-{w}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let offsets: Vec<u64> = records.iter().map(|r| r.offset.unwrap()).collect();
    assert_eq!(offsets, (0..records.len() as u64).collect::<Vec<_>>());
    let verify = sandbox.run(&["verify"]);
    common::assert_success(&["verify"], &verify);
}
