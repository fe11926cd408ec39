//! Acceptance: every captured hook payload of the corpus piped through `ctrace hook`, one
//! process per payload, as Claude Code would run it. Each must exit 0 with empty stdout, and
//! `cat --json --source hook` must give back every payload byte for byte, in order.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use common::{Sandbox, clip, nonblank_lines};

/// The payload files: `hooks/*--all-payloads.derived.ndjson` and the official docs examples.
fn payload_files(corpus: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus.join("hooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with("--all-payloads.derived.ndjson")
                || name == "official-docs--hook-input-examples.derived.ndjson"
        })
        .collect();
    files.sort();
    files
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn every_corpus_payload_through_ctrace_hook() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let started = Instant::now();
    let files = payload_files(&corpus);
    assert!(
        files.len() >= 3,
        "expected the all-payloads files and the docs examples: {files:?}"
    );
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for file in &files {
        let bytes = fs::read(file).unwrap();
        payloads.extend(nonblank_lines(&bytes).into_iter().map(|(_, l)| l.to_vec()));
    }

    let sandbox = Sandbox::without_redaction();
    for payload in &payloads {
        sandbox.hook(payload);
    }
    let hook_time = started.elapsed();

    let records = sandbox.cat(&["--source", "hook"]);
    assert_eq!(records.len(), payloads.len());
    let mut surrogates = 0;
    for (i, (record, payload)) in records.iter().zip(&payloads).enumerate() {
        assert!(
            record.raw == *payload,
            "payload {i} is not byte-identical:\n  stored {}\n  input  {}",
            clip(&String::from_utf8_lossy(&record.raw)),
            clip(&String::from_utf8_lossy(payload))
        );
        assert_eq!(record.source, "hook");
        assert!(record.origin.is_none(), "a live hook has no file origin");
        let map = common::parse_lenient(payload)
            .unwrap_or_else(|| panic!("corpus payload {i} is not an object"));
        let event = map["hook_event_name"].as_str().unwrap();
        assert_eq!(record.event.as_deref(), Some(event), "payload {i}");
        assert_eq!(
            record.session.as_deref(),
            map.get("session_id").and_then(|v| v.as_str()),
            "payload {i}"
        );
        assert_eq!(
            record.tool_name.as_deref(),
            map.get("tool_name").and_then(|v| v.as_str())
        );
        assert_eq!(
            record.tool_use_id.as_deref(),
            map.get("tool_use_id").and_then(|v| v.as_str())
        );
        assert_eq!(
            record.agent_id.as_deref(),
            map.get("agent_id").and_then(|v| v.as_str())
        );
        match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(_) => assert_eq!(record.malformed, None, "payload {i}"),
            Err(_) => {
                surrogates += 1;
                assert_eq!(record.malformed.as_deref(), Some("lone_surrogate"));
            }
        }
    }
    // Arrival order is capture order.
    assert!(records.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(
        surrogates > 0,
        "the home-assistant payloads hold lone surrogates"
    );

    let verify = sandbox.run(&["verify"]);
    common::assert_success(&["verify"], &verify);
    eprintln!(
        "every_corpus_payload_through_ctrace_hook: {} payloads from {} files ({surrogates} with lone surrogates); hooks {hook_time:.2?}, total {:.2?}",
        payloads.len(),
        files.len(),
        started.elapsed()
    );
}
