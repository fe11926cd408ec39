//! Bulk ingest reads files line by line with a bounded buffer (issue 14 item 9): a line of a
//! few times `storage.max_record_bytes` is stored truncated with the size and SHA-256 of the
//! line in the file, the lines after it are intact, and the cursor moves past the whole line.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

mod common;

use common::{Sandbox, assert_success};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A store whose records are cut past 4 KiB (redaction left on).
fn small_limit_sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nmax_record_bytes = 4096\n",
    )
    .unwrap();
    sandbox
}

/// Issue 14 item 9: a 40 KiB line (10 × the 4 KiB limit) holding a secret is stored as its
/// first 4 KiB, redacted, flagged with the size and SHA-256 of the line as it is in the file
/// (before: the digest of the redacted line, which matches no copy of the file); the lines
/// before and after it are whole, and re-ingesting adds nothing.
#[test]
fn a_line_of_ten_times_the_limit_is_truncated_with_the_digest_of_the_file_line() {
    let sandbox = small_limit_sandbox();
    let long = format!(
        r#"{{"type":"user","sessionId":"s1","uuid":"u2","message":{{"content":"{} password: hunter2hunter2 {}"}}}}"#,
        "a".repeat(1000),
        "b".repeat(40_000)
    );
    let first =
        r#"{"type":"user","sessionId":"s1","uuid":"u1","timestamp":"2025-01-01T00:00:00Z"}"#;
    let after: Vec<String> = (3..6)
        .map(|i| format!(r#"{{"type":"assistant","sessionId":"s1","uuid":"u{i}"}}"#))
        .collect();
    let file = sandbox.path("s1.jsonl");
    std::fs::write(&file, format!("{first}\n{long}\r\n{}\n", after.join("\n"))).unwrap();
    let summary = sandbox.ingest(&[&file]);
    assert_eq!(summary.records, 5);
    let stdout = sandbox.ok_stdout(&["cat", "--json"]);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let big = &lines[1]["body"];
    // The `\r` of the CRLF belongs to the line.
    let in_file = format!("{long}\r");
    assert_eq!(big["truncated"]["total_bytes"], in_file.len() as u64);
    assert_eq!(
        big["truncated"]["sha256"],
        hex(&Sha256::digest(in_file.as_bytes())).as_str(),
        "the digest is of the line in the file, not of its redacted copy"
    );
    let kept = big["payload_text"].as_str().unwrap();
    assert_eq!(kept.len(), 4096);
    assert!(!kept.contains("hunter2"), "the kept head is redacted");
    assert_eq!(big["origin"]["len"], in_file.len() as u64);
    let records = sandbox.cat(&[]);
    assert_eq!(records[0].raw, first.as_bytes());
    for (record, line) in records[2..].iter().zip(&after) {
        assert_eq!(record.raw, line.as_bytes());
        assert!(record.malformed.is_none());
    }
    let again = sandbox.ingest(&[&file]);
    assert_eq!(
        again.records, 0,
        "the cursor moved past the whole long line"
    );
}

/// Issue 14 item 9: a settled file of zeros without a newline (as `head -c N /dev/zero`
/// writes) is one truncated record of the whole size; a line appended later is ingested on
/// its own, from the cursor after the zeros.
#[test]
fn a_file_of_zeros_without_a_newline_is_one_truncated_record() {
    let sandbox = small_limit_sandbox();
    let file = sandbox.path("zeros.jsonl");
    let zeros = vec![0u8; 100_000];
    std::fs::write(&file, &zeros).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let output = sandbox.run(&["ingest", "--quiet", file.to_str().unwrap()]);
    assert_success(&["ingest"], &output);
    let stdout = sandbox.ok_stdout(&["cat", "--json"]);
    let record: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(record["body"]["truncated"]["total_bytes"], 100_000);
    assert_eq!(
        record["body"]["truncated"]["sha256"],
        hex(&Sha256::digest(&zeros)).as_str()
    );
    assert_eq!(record["body"]["origin"]["len"], 100_000);
    let mut more = zeros;
    more.extend_from_slice(b"\n{\"type\":\"user\",\"sessionId\":\"z\",\"uuid\":\"z1\"}\n");
    std::fs::write(&file, &more).unwrap();
    let again = sandbox.ingest(&[&file]);
    assert_eq!(again.records, 1);
    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[1].raw,
        br#"{"type":"user","sessionId":"z","uuid":"z1"}"#
    );
    assert_eq!(records[1].origin.as_ref().unwrap().position, 100_001);
}

/// Issue 14 item 9: a hook log written as one JSON array is split while it streams: an element
/// of ten times the limit holding a secret is stored as its redacted head with the size and
/// SHA-256 of its text in the file, the elements around it are whole, a malformed tail is kept
/// raw, and re-ingesting adds nothing.
#[test]
fn a_json_array_hook_log_streams_with_a_long_element_truncated() {
    let sandbox = small_limit_sandbox();
    let small = |n: u32| {
        format!(
            r#"{{"session_id":"j1","hook_event_name":"PostToolUse","tool_name":"Bash","n":{n}}}"#
        )
    };
    let long = format!(
        r#"{{"session_id":"j1","hook_event_name":"PreToolUse","tool_input":{{"command":"{} password: hunter2hunter2 {}"}}}}"#,
        "a".repeat(1000),
        "b".repeat(40_000)
    );
    let text = format!(
        "[\n  {},\n  {long} ,\n  {}, {{\"session_id\":\"j1\",\"hook_event_name\":",
        small(1),
        small(2)
    );
    let file = sandbox.path("hooks.json");
    std::fs::write(&file, &text).unwrap();
    let summary = sandbox.ingest(&[&file]);
    assert_eq!(summary.records, 4, "three elements and the malformed tail");
    let stdout = sandbox.ok_stdout(&["cat", "--json"]);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let big = lines
        .iter()
        .find(|l| !l["body"]["truncated"].is_null())
        .expect("the long element is flagged truncated");
    assert_eq!(big["body"]["truncated"]["total_bytes"], long.len() as u64);
    assert_eq!(
        big["body"]["truncated"]["sha256"],
        hex(&Sha256::digest(long.as_bytes())).as_str()
    );
    assert_eq!(big["body"]["origin"]["len"], long.len() as u64);
    assert_eq!(
        big["body"]["origin"]["position"],
        text.find(&long).unwrap() as u64
    );
    let records = sandbox.cat(&[]);
    let raws: Vec<&[u8]> = records.iter().map(|r| &r.raw[..]).collect();
    assert!(raws.contains(&small(1).as_bytes()) && raws.contains(&small(2).as_bytes()));
    assert!(
        raws.contains(&&b"{\"session_id\":\"j1\",\"hook_event_name\":"[..]),
        "the malformed tail is kept raw"
    );
    assert!(
        !stdout.contains("hunter2"),
        "the kept head of the long element is redacted"
    );
    assert_eq!(sandbox.ingest(&[&file]).records, 0);
}
