//! Inputs larger than a record may be (issue 14 items 2 and 9): a payload far above
//! `storage.max_record_bytes` through `ctrace hook`, a transcript line above it through
//! `ctrace ingest`, and an oversized record already in the inbox are stored as truncated
//! records (first bytes, whole size, SHA-256), and the records around them stay readable.

mod common;

use std::io::Write;

use common::{Sandbox, assert_success};
use ctrace::config::Config;
use ctrace::log::Store;
use ctrace::log::read::TimeRange;
use ctrace::model::{Body, HookBody, Record, Source};
use sha2::{Digest, Sha256};

const SMALL: &str = r#"{"hook_event_name":"Stop","session_id":"s1"}"#;

/// A payload of `len` bytes: a JSON object whose `tool_response` is one long string.
fn big_payload_chunks(len: usize) -> impl Iterator<Item = Vec<u8>> {
    let head = br#"{"hook_event_name":"PostToolUse","session_id":"s1","tool_name":"Read","tool_response":""#.to_vec();
    let tail = b"\"}".to_vec();
    let body = len - head.len() - tail.len();
    let chunk = 1 << 20;
    std::iter::once(head)
        .chain((0..body.div_ceil(chunk)).map(move |i| vec![b'x'; chunk.min(body - i * chunk)]))
        .chain(std::iter::once(tail))
}

/// Issue 14 items 2 and 9: 300 MiB through `ctrace hook` (today: a block above every reader's
/// limit, and the whole segment unreadable) is kept as its first `max_record_bytes` bytes with
/// the whole size and SHA-256; the records before and after it read back.
#[test]
fn a_300_mib_hook_payload_is_truncated_and_the_store_stays_readable() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nmax_record_bytes = \"1MiB\"\nblock_bytes = 65536\n",
    )
    .unwrap();
    assert_success(&["hook"], &sandbox.hook(SMALL.as_bytes()));
    let len = 300 << 20;
    let (output, digest) = common::run_feeding(&mut sandbox.command(&["hook"]), |mut stdin| {
        let mut hasher = Sha256::new();
        for chunk in big_payload_chunks(len) {
            hasher.update(&chunk);
            stdin.write_all(&chunk).unwrap();
        }
        hasher.finalize()
    });
    assert_success(&["hook"], &output);
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    let digest: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_success(&["hook"], &sandbox.hook(SMALL.as_bytes()));
    assert_success(&["compact"], &sandbox.run(&["compact"]));

    let stdout = sandbox.ok_stdout(&["cat", "--json"]);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "every record reads back");
    let big = &lines[1]["body"];
    assert_eq!(big["truncated"]["total_bytes"], len as u64, "{big:.200}");
    assert_eq!(big["truncated"]["sha256"], digest.as_str());
    let kept = big["payload_text"].as_str().unwrap();
    assert_eq!(kept.len(), 1 << 20);
    assert!(kept.starts_with(r#"{"hook_event_name":"PostToolUse""#));
    assert_eq!(
        big["event"], "PostToolUse",
        "fields come from the kept head"
    );
    for small in [&lines[0], &lines[2]] {
        assert_eq!(small["body"]["payload"]["hook_event_name"], "Stop");
    }
    assert_success(&["verify"], &sandbox.run(&["verify"]));
    assert_success(&["sessions"], &sandbox.run(&["sessions"]));
}

/// Issue 14 item 9: a transcript line above the limit is stored truncated and counted.
#[test]
fn a_transcript_line_above_the_limit_is_truncated_and_reported() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nmax_record_bytes = 8192\n",
    )
    .unwrap();
    let long = format!(
        r#"{{"type":"user","sessionId":"s2","uuid":"u2","message":{{"content":"{}"}}}}"#,
        "y".repeat(100_000)
    );
    let file = sandbox.path("s2.jsonl");
    let short = r#"{"type":"user","sessionId":"s2","uuid":"u1"}"#;
    std::fs::write(&file, format!("{short}\n{long}\n{short}\n")).unwrap();
    let output = sandbox.run(&["ingest", file.to_str().unwrap()]);
    assert_success(&["ingest"], &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("truncated: 1"), "{stdout}");
    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), 3);
    let stdout = sandbox.ok_stdout(&["cat", "--json"]);
    let big: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(big["body"]["truncated"]["total_bytes"], long.len() as u64);
    assert_eq!(big["body"]["payload_text"].as_str().unwrap().len(), 8192);
    // Re-ingesting adds nothing: the cursor moved past the whole line.
    let again = sandbox.ingest(&[&file]);
    assert_eq!(again.records, 0);
}

/// Issue 14 item 2: a record above the limit that is already in the inbox (written by another
/// build, or by a library user) is sealed truncated, in a block of its own; a record that does
/// not decode is sealed as an `internal` record that keeps its bytes.
#[test]
fn the_sealer_cuts_oversized_inbox_records_and_wraps_undecodable_ones() {
    let sandbox = Sandbox::new();
    let mut config = Config::default();
    config.storage.max_record_bytes = 4096;
    config.storage.block_bytes = 4096;
    let store = Store::open(&sandbox.store(), config).unwrap();
    let hook = |raw: Vec<u8>| Record {
        ts: 1_760_000_000_000_000_000,
        source: Source::Hook,
        session: Some("s3".into()),
        body: Body::Hook(HookBody {
            event: Some("PostToolUse".into()),
            raw,
            ..HookBody::default()
        }),
        redactions: 0,
    };
    store.append(&hook(SMALL.as_bytes().to_vec())).unwrap();
    let big = vec![b'z'; 3 << 20];
    store.append(&hook(big.clone())).unwrap();
    ctrace::log::inbox::append_shared(
        &store.paths().inbox,
        b"\xc1 not a record",
        1 << 20,
        ctrace::config::Durability::None,
    )
    .unwrap();
    store.append(&hook(SMALL.as_bytes().to_vec())).unwrap();
    let report = store.refresh().unwrap().unwrap();
    assert_eq!((report.truncated, report.undecodable), (1, 1));
    let snapshot = store.snapshot().unwrap();
    let records: Vec<_> = snapshot.iter().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    let cut = records[1].record.truncated().unwrap();
    assert_eq!(cut.total_bytes, big.len() as u64);
    assert_eq!(cut.sha256, Sha256::digest(&big).to_vec());
    assert_eq!(records[1].record.raw().len(), 4096);
    match &records[2].record.body {
        Body::Internal(internal) => {
            assert_eq!(internal.event, "undecodable_record");
            assert_eq!(internal.data, b"\xc1 not a record");
        }
        other => panic!("{other:?}"),
    }
    let big = records[1].offset.unwrap();
    let blocks = snapshot.blocks(big..=big, TimeRange::default());
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].count(), 1, "own block");
}
