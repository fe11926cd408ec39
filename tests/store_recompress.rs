//! The compactor's recompression (`ctrace compact` with `storage.compaction_zstd_level`):
//! records and offsets unchanged byte for byte, MANIFEST entries marked with the level, a
//! second run does nothing, and a crash (abort at the fail points) before or after the MANIFEST
//! commit loses nothing and leaves a clean store.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use common::Sandbox;

/// A store of several small segments of hook and transcript records.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[storage]\nsegment_bytes = 65536\nblock_bytes = 8192\n",
    )
    .unwrap();
    let mut lines = String::new();
    for i in 0..400 {
        lines.push_str(&format!(
            "{{\"parentUuid\":\"u-{}\",\"isSidechain\":false,\"sessionId\":\"s-{}\",\"type\":\"assistant\",\
             \"message\":{{\"id\":\"msg_{i}\",\"model\":\"claude-opus-4-5\",\"usage\":{{\"input_tokens\":{i},\"output_tokens\":7}},\
             \"content\":[{{\"type\":\"text\",\"text\":\"step {i} of the plan: {}\"}}]}},\"requestId\":\"req_{i}\",\
             \"uuid\":\"u-{i}\",\"timestamp\":\"2026-11-21T10:{:02}:{:02}.{:03}Z\"}}\n",
            i.max(1) - 1,
            i % 3,
            "lorem ipsum ".repeat(i % 40),
            (i / 60) % 60,
            i % 60,
            i % 1000
        ));
    }
    let file = sandbox.path("t.jsonl");
    std::fs::write(&file, lines).unwrap();
    sandbox.ok(&["ingest", "-q", file.to_str().unwrap()]);
    for i in 0..50 {
        let payload = format!(
            "{{\"session_id\":\"s-1\",\"hook_event_name\":\"PostToolUse\",\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_{i}\",\"tool_response\":{{\"stdout\":\"{}\"}}}}",
            "ok ".repeat(i)
        );
        sandbox.hook(payload.as_bytes());
    }
    sandbox
}

fn manifest(sandbox: &Sandbox) -> serde_json::Value {
    let bytes = std::fs::read(sandbox.store().join("MANIFEST")).unwrap();
    serde_json::from_slice(&bytes[16..]).unwrap()
}

fn cat(sandbox: &Sandbox) -> String {
    sandbox.ok_stdout(&["cat", "--json"])
}

#[test]
fn recompression_keeps_every_record_and_marks_the_level() {
    let sandbox = sandbox();
    sandbox.ok(&["stats"]);
    let before = cat(&sandbox);
    assert_eq!(before.lines().count(), 450);
    let compact = sandbox.ok_stdout(&["compact"]);
    assert!(compact.contains("recompress:"), "{compact}");
    assert_eq!(cat(&sandbox), before);
    let segments = manifest(&sandbox)["segments"].as_array().unwrap().clone();
    assert!(segments.len() > 1);
    assert!(segments.iter().all(|s| s["level"] == 9), "{segments:?}");
    assert!(sandbox.ok_stdout(&["verify"]).contains("clean"));
    // Nothing left to do.
    let again = sandbox.ok_stdout(&["compact"]);
    assert!(!again.contains("recompress:"), "{again}");
}

#[test]
fn recompression_can_be_turned_off() {
    let sandbox = sandbox();
    let config = sandbox.store().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("compaction_zstd_level = 0\n");
    std::fs::write(&config, text).unwrap();
    let compact = sandbox.ok_stdout(&["compact"]);
    assert!(!compact.contains("recompress:"), "{compact}");
    let segments = manifest(&sandbox)["segments"].as_array().unwrap().clone();
    assert!(segments.iter().all(|s| s.get("level").is_none()));
}

#[test]
fn a_crash_at_any_recompression_step_loses_nothing() {
    for point in ["recompress-written", "recompress-committed"] {
        let sandbox = sandbox();
        sandbox.ok(&["stats"]);
        let before = cat(&sandbox);
        let output = sandbox
            .command(&["compact"])
            .env("FAILPOINTS", format!("{point}=return(crash)"))
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "{point}: the fail point must abort"
        );
        // Recovery on the next open, then the same records.
        assert_eq!(cat(&sandbox), before, "{point}");
        let verify = sandbox.ok_stdout(&["verify"]);
        assert!(verify.contains("clean"), "{point}: {verify}");
        // No stray files: every segment file is in the MANIFEST.
        let listed: Vec<String> = manifest(&sandbox)["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["file"].as_str().unwrap().to_owned())
            .collect();
        for entry in std::fs::read_dir(sandbox.store().join("segments")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(listed.contains(&name), "{point}: stray {name}");
        }
        // A later run finishes the job.
        sandbox.ok(&["compact"]);
        assert_eq!(cat(&sandbox), before, "{point}");
        let segments = manifest(&sandbox)["segments"].as_array().unwrap().clone();
        assert!(segments.iter().all(|s| s["level"] == 9), "{point}");
    }
}
