//! Acceptance: bulk ingest of the shared corpus (`claude-home/`, `transcripts/`, `hooks/`).
//!
//! The expected records are counted here, independently of ctrace: one per non-blank line of a
//! `.jsonl` / `.ndjson` file, one per top-level element of a `.json` array (split structurally,
//! since some arrays hold lone surrogate escapes that strict parsers reject), one per `.json`
//! object. Every stored record is then matched to its source bytes through `body.origin`.
//!
//! Also: re-ingest is idempotent, a grown file adds only its new lines, and an unterminated
//! last line is left pending until it is complete.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{CatRecord, Sandbox, clip, has_surrogate_escape, nonblank_lines};

/// One expected record: where it is in its file, and what ctrace should say about it.
#[derive(Debug)]
struct Expected {
    position: usize,
    len: usize,
    malformed: Option<&'static str>,
}

/// One corpus file and the records it should give.
#[derive(Debug)]
struct SourceFile {
    path: PathBuf,
    kind: &'static str,
    bytes: Vec<u8>,
    records: Vec<Expected>,
}

/// `(start, end)` byte ranges of the top-level elements of a JSON array, found by tracking
/// strings (with escapes) and bracket depth only; the content of strings is not validated.
fn split_array(text: &[u8]) -> Vec<(usize, usize)> {
    let mut elements = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start: Option<usize> = None;
    let mut last_non_ws = 0;
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                last_non_ws = i;
            }
            continue;
        }
        match b {
            b'"' => {
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
                in_string = true;
            }
            b'[' | b'{' => {
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = start.take() {
                        elements.push((s, last_non_ws + 1));
                    }
                    break;
                }
            }
            b',' if depth == 1 => {
                let Some(s) = start.take() else {
                    panic!("a comma without an element before it at byte {i}");
                };
                elements.push((s, last_non_ws + 1));
                continue;
            }
            _ if b.is_ascii_whitespace() => continue,
            _ => {
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
            }
        }
        last_non_ws = i;
    }
    assert!(!in_string && depth == 0, "unterminated array");
    elements
}

#[test]
fn split_array_finds_elements_structurally() {
    let text = br#" [ {"a":"]},\"[{"} , [1,[2]], 3 ,"x\udc8f" ,null]"#;
    let parts: Vec<&[u8]> = split_array(text)
        .into_iter()
        .map(|(s, e)| &text[s..e])
        .collect();
    let expected: Vec<&[u8]> = vec![
        br#"{"a":"]},\"[{"}"#,
        b"[1,[2]]",
        b"3",
        br#""x\udc8f""#,
        b"null",
    ];
    assert_eq!(parts, expected);
    assert!(split_array(b"[]").is_empty());
    assert!(split_array(b"[\n]\n").is_empty());
}

/// What ctrace should flag `raw` as, judged by serde_json (strict) and the surrogate check.
fn expected_malformed(raw: &[u8]) -> Option<&'static str> {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(_)) => None,
        Ok(_) => Some("not_object"),
        Err(_) if has_surrogate_escape(raw) => Some("lone_surrogate"),
        Err(_) => Some("invalid_json"),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The corpus files of `dirs` and their expected records.
fn expected_files(corpus: &Path, dirs: &[&str]) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    for dir in dirs {
        walk(&corpus.join(dir), &mut paths);
    }
    let mut files = Vec::new();
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let kind = if path.starts_with(corpus.join("hooks")) {
            "hook"
        } else {
            "transcript"
        };
        let bytes = fs::read(&path).unwrap();
        let ranges: Vec<(usize, usize)> = match ext {
            "jsonl" | "ndjson" => nonblank_lines(&bytes)
                .into_iter()
                .map(|(at, line)| (at, line.len()))
                .collect(),
            "json" => {
                let first = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap();
                if bytes[first] == b'[' {
                    let elements = split_array(&bytes);
                    if let Ok(serde_json::Value::Array(array)) =
                        serde_json::from_slice::<serde_json::Value>(&bytes)
                    {
                        assert_eq!(array.len(), elements.len(), "{}", path.display());
                    }
                    elements.into_iter().map(|(s, e)| (s, e - s)).collect()
                } else {
                    let end = bytes
                        .iter()
                        .rposition(|b| !b.is_ascii_whitespace())
                        .unwrap();
                    vec![(first, end + 1 - first)]
                }
            }
            // .cast files are not ingested by this version; nothing else is in these dirs.
            _ => continue,
        };
        let records = ranges
            .into_iter()
            .map(|(position, len)| Expected {
                position,
                len,
                malformed: expected_malformed(&bytes[position..position + len]),
            })
            .collect();
        files.push(SourceFile {
            path: path.canonicalize().unwrap(),
            kind,
            bytes,
            records,
        });
    }
    files
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn ingest_whole_corpus() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let started = Instant::now();
    let files = expected_files(&corpus, &["claude-home", "transcripts", "hooks"]);
    let expected_total: usize = files.iter().map(|f| f.records.len()).sum();
    let expected_hooks: usize = files
        .iter()
        .filter(|f| f.kind == "hook")
        .map(|f| f.records.len())
        .sum();
    let mut expected_malformed: BTreeMap<String, u64> = BTreeMap::new();
    for record in files.iter().flat_map(|f| &f.records) {
        if let Some(kind) = record.malformed {
            *expected_malformed.entry(kind.to_owned()).or_default() += 1;
        }
    }
    eprintln!(
        "corpus: {} files, {expected_total} records expected ({expected_hooks} hook), malformed {expected_malformed:?}",
        files.len()
    );

    // The deliberately broken inputs are really in the corpus and counted above.
    let edge = files
        .iter()
        .find(|f| {
            f.path
                .ends_with("claude-code-log--test_data--edge_cases.jsonl")
        })
        .expect("edge_cases.jsonl in the corpus");
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            edge.bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let not_object_positions: BTreeSet<usize> =
        [13, 15, 16].iter().map(|n| line_starts[n - 1]).collect();
    let flagged: BTreeSet<usize> = edge
        .records
        .iter()
        .filter(|r| r.malformed == Some("not_object"))
        .map(|r| r.position)
        .collect();
    assert_eq!(flagged, not_object_positions);
    let surrogate_files: BTreeSet<String> = files
        .iter()
        .filter(|f| {
            f.records
                .iter()
                .any(|r| r.malformed == Some("lone_surrogate"))
        })
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in [
        "home-assistant-green-button--logs--pre_tool_use.json",
        "home-assistant-green-button--logs--permission_request.json",
        "home-assistant-green-button--all-payloads.derived.ndjson",
    ] {
        assert!(
            surrogate_files.contains(name),
            "{name}: {surrogate_files:?}"
        );
    }

    let sandbox = Sandbox::without_redaction();
    let dirs: Vec<PathBuf> = ["claude-home", "transcripts", "hooks"]
        .iter()
        .map(|d| corpus.join(d))
        .collect();
    let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let t = Instant::now();
    let summary = sandbox.ingest(&dir_refs);
    let ingest_time = t.elapsed();
    assert_eq!(summary.records, expected_total as u64, "{summary:?}");
    assert_eq!(summary.hook_records, expected_hooks as u64);
    assert_eq!(
        summary.transcript_records,
        (expected_total - expected_hooks) as u64
    );
    assert_eq!(summary.files, files.len() as u64);
    assert_eq!(summary.unchanged_files, 0);
    assert_eq!(summary.malformed, expected_malformed);
    assert_eq!(summary.malformed.get("not_object"), Some(&3));
    assert!(
        summary
            .malformed
            .get("lone_surrogate")
            .is_some_and(|n| *n > 0)
    );
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    assert_eq!(summary.pending_tail_bytes, 0);

    // Every record, matched to its source bytes.
    let t = Instant::now();
    let records = sandbox.cat(&[]);
    let cat_time = t.elapsed();
    assert_eq!(records.len(), expected_total);
    let offsets: Vec<u64> = records.iter().map(|r| r.offset.expect("sealed")).collect();
    assert_eq!(offsets, (0..expected_total as u64).collect::<Vec<_>>());
    let mut by_file: BTreeMap<&str, BTreeMap<u64, &CatRecord>> = BTreeMap::new();
    for record in &records {
        let origin = record
            .origin
            .as_ref()
            .unwrap_or_else(|| panic!("ingested record without origin: {}", clip(&record.line)));
        let previous = by_file
            .entry(origin.file.as_str())
            .or_default()
            .insert(origin.position, record);
        assert!(previous.is_none(), "two records from {origin:?}");
    }
    assert_eq!(by_file.len(), files.len());
    for file in &files {
        let key = file.path.to_str().unwrap();
        let stored = by_file
            .get(key)
            .unwrap_or_else(|| panic!("no records from {key}"));
        let positions: Vec<u64> = stored.keys().copied().collect();
        let expected_positions: Vec<u64> = file.records.iter().map(|r| r.position as u64).collect();
        assert_eq!(positions, expected_positions, "record positions of {key}");
        for expected in &file.records {
            let record = stored[&(expected.position as u64)];
            let source = &file.bytes[expected.position..expected.position + expected.len];
            let origin = record.origin.as_ref().unwrap();
            assert_eq!(
                origin.len, expected.len as u64,
                "{key} @{}",
                expected.position
            );
            assert!(
                record.raw == source,
                "payload of {key} @{} is not byte-identical to the source:\n  stored {}\n  source {}",
                expected.position,
                clip(&String::from_utf8_lossy(&record.raw)),
                clip(&String::from_utf8_lossy(source)),
            );
            assert_eq!(record.source, file.kind, "{key} @{}", expected.position);
            assert_eq!(record.kind, file.kind);
            assert_eq!(
                record.malformed.as_deref(),
                expected.malformed,
                "{key} @{}",
                expected.position
            );
            if file.kind == "hook"
                && let Some(map) = common::parse_lenient(source)
            {
                let event = map.get("hook_event_name").and_then(|v| v.as_str());
                assert_eq!(
                    record.event.as_deref(),
                    event,
                    "{key} @{}",
                    expected.position
                );
                let session = map.get("session_id").and_then(|v| v.as_str());
                assert_eq!(record.session.as_deref(), session);
            }
        }
    }

    // Idempotent: nothing new the second time.
    let again = sandbox.ingest(&dir_refs);
    assert_eq!(again.records, 0, "{again:?}");
    assert_eq!(again.files, files.len() as u64);
    assert_eq!(again.unchanged_files, files.len() as u64);
    assert!(again.malformed.is_empty());
    let stats: serde_json::Value =
        serde_json::from_str(&sandbox.ok_stdout(&["stats", "--json"])).unwrap();
    assert_eq!(stats["records"], expected_total as u64);
    assert_eq!(stats["unsealed_records"], 0);

    let verify = sandbox.run(&["verify", "--json"]);
    common::assert_success(&["verify"], &verify);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["records"], expected_total as u64);

    eprintln!(
        "ingest_whole_corpus: {expected_total} records; ingest {ingest_time:.2?}, cat {cat_time:.2?}, total {:.2?}",
        started.elapsed()
    );
}

/// Transcript lines land in the session their `sessionId` names (subagent files included).
#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn corpus_sessions_group_main_and_subagent_files() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let session = "4d5611e5-241a-462a-8d15-5122611a9569";
    let dir = corpus.join("claude-home/projects/spotter");
    let main = dir.join(format!("{session}.jsonl"));
    let subagents = dir.join(session);
    let sandbox = Sandbox::without_redaction();
    let summary = sandbox.ingest(&[&main, &subagents]);
    let mut lines = 0;
    for file in [
        main.clone(),
        subagents.join("subagents/agent-a2898e3.jsonl"),
        subagents.join("subagents/agent-acompact-e1f845.jsonl"),
    ] {
        lines += nonblank_lines(&fs::read(file).unwrap()).len() as u64;
    }
    assert_eq!(summary.records, lines);
    let sessions = sandbox.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(s["session"], session);
    assert_eq!(s["records"]["transcript"], lines);
    let models: BTreeSet<&str> = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        BTreeSet::from(["claude-opus-4-6", "claude-sonnet-4-5-20250929"])
    );
    assert!(s["tool_calls"].as_u64().unwrap() > 0);
    assert_eq!(s["malformed"], 0);
}

/// Writes `bytes` to the end of `path`.
/// Sets the mtime of `path` to now: the file was "just modified", so ctrace must not treat an
/// unterminated last line as settled (it waits `SETTLED_AFTER`, 5 s), however slow the machine.
/// Makes `path` look still written to: its mtime a day ahead, so it is not settled however
/// long the next ingest takes to look at it.
fn touch(path: &Path) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(86_400))
        .unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn grown_file_adds_only_new_lines() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let source = fs::read(corpus.join("transcripts/spotter--tool_heavy.jsonl")).unwrap();
    let lines = nonblank_lines(&source);
    assert!(source.ends_with(b"\n"));
    let half = lines.len() / 2;
    let cut = lines[half].0;
    let sandbox = Sandbox::without_redaction();
    let dir = sandbox.path("projects/p");
    fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("grown.jsonl");
    fs::write(&copy, &source[..cut]).unwrap();

    let first = sandbox.ingest(&[&copy]);
    assert_eq!(first.records, half as u64, "{first:?}");
    assert_eq!(first.pending_tail_bytes, 0);

    append(&copy, &source[cut..]);
    let second = sandbox.ingest(&[&copy]);
    assert_eq!(second.records, (lines.len() - half) as u64, "{second:?}");
    assert_eq!(second.unchanged_files, 0);

    let third = sandbox.ingest(&[&copy]);
    assert_eq!(third.records, 0);
    assert_eq!(third.unchanged_files, 1);

    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), lines.len());
    let canonical = copy.canonicalize().unwrap();
    for (record, (at, line)) in records.iter().zip(&lines) {
        let origin = record.origin.as_ref().unwrap();
        assert_eq!(origin.file, canonical.to_str().unwrap());
        assert_eq!(origin.position, *at as u64);
        assert_eq!(record.raw, *line);
    }
}

#[test]
fn unterminated_invalid_last_line_waits_until_complete() {
    let sandbox = Sandbox::without_redaction();
    let path = sandbox.path("session.jsonl");
    let complete = [
        r#"{"type":"user","sessionId":"s-tail","uuid":"u1","timestamp":"2026-01-02T03:04:05.000Z","message":{"role":"user","content":"hi"}}"#,
        r#"{"type":"assistant","sessionId":"s-tail","uuid":"u2","timestamp":"2026-01-02T03:04:06.000Z","message":{"id":"m1","model":"claude-opus-4-6","content":[{"type":"text","text":"hello"}]}}"#,
    ];
    let last = r#"{"type":"user","sessionId":"s-tail","uuid":"u3","timestamp":"2026-01-02T03:04:07.000Z","message":{"role":"user","content":"more"}}"#;
    let split = 40;
    let mut text = complete.join("\n") + "\n";
    text.push_str(&last[..split]);
    fs::write(&path, &text).unwrap();

    touch(&path);
    let first = sandbox.ingest(&[&path]);
    assert_eq!(first.records, 2, "{first:?}");
    assert_eq!(first.pending_tail_bytes, split as u64);
    assert!(first.malformed.is_empty(), "{first:?}");
    assert_eq!(sandbox.cat(&[]).len(), 2);

    // Still incomplete: still pending, still not stored.
    touch(&path);
    let again = sandbox.ingest(&[&path]);
    assert_eq!(again.records, 0);
    assert_eq!(again.pending_tail_bytes, split as u64);

    append(&path, format!("{}\n", &last[split..]).as_bytes());
    let second = sandbox.ingest(&[&path]);
    assert_eq!(second.records, 1, "{second:?}");
    assert_eq!(second.pending_tail_bytes, 0);
    assert!(second.malformed.is_empty());
    let third = sandbox.ingest(&[&path]);
    assert_eq!(third.records, 0);

    let records = sandbox.cat(&[]);
    let raws: Vec<&[u8]> = records.iter().map(|r| r.raw.as_slice()).collect();
    let expected: Vec<&[u8]> = vec![
        complete[0].as_bytes(),
        complete[1].as_bytes(),
        last.as_bytes(),
    ];
    assert_eq!(raws, expected);
    assert!(records.iter().all(|r| r.malformed.is_none()));
    assert_eq!(
        records[2].origin.as_ref().unwrap().position,
        text.len() as u64 - split as u64
    );
}

#[test]
fn unterminated_valid_last_line_is_taken_once() {
    let sandbox = Sandbox::without_redaction();
    let path = sandbox.path("session.jsonl");
    let a = r#"{"type":"user","sessionId":"s-valid","uuid":"a"}"#;
    let b = r#"{"type":"user","sessionId":"s-valid","uuid":"b"}"#;
    fs::write(&path, a).unwrap();
    let first = sandbox.ingest(&[&path]);
    assert_eq!(
        first.records, 1,
        "valid JSON without newline is taken: {first:?}"
    );
    assert_eq!(first.pending_tail_bytes, 0);
    // The writer then finishes the line and writes another.
    append(&path, format!("\n{b}\n").as_bytes());
    let second = sandbox.ingest(&[&path]);
    assert_eq!(second.records, 1, "{second:?}");
    let raws: Vec<Vec<u8>> = sandbox.cat(&[]).into_iter().map(|r| r.raw).collect();
    assert_eq!(raws, vec![a.as_bytes().to_vec(), b.as_bytes().to_vec()]);
}

#[test]
fn settled_unterminated_invalid_line_is_stored_flagged() {
    let sandbox = Sandbox::without_redaction();
    let path = sandbox.path("old.jsonl");
    let good = r#"{"type":"user","sessionId":"s-old","uuid":"a"}"#;
    let torn = r#"{"type":"user","sessionId":"s-o"#;
    fs::write(&path, format!("{good}\n{torn}")).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let summary = sandbox.ingest(&[&path]);
    assert_eq!(summary.records, 2, "{summary:?}");
    assert_eq!(summary.pending_tail_bytes, 0);
    assert_eq!(summary.malformed.get("invalid_json"), Some(&1));
    let records = sandbox.cat(&[]);
    assert_eq!(records[1].raw, torn.as_bytes());
    assert_eq!(records[1].malformed.as_deref(), Some("invalid_json"));
    assert_eq!(records[1].repr, common::Repr::Text);
}

/// `bytes` in the summary is "source bytes consumed"; a re-ingest that adds nothing should
/// consume nothing. JSON array / object files are re-read whole and counted again.
#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn reingest_of_unchanged_files_consumes_no_bytes() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::without_redaction();
    let hooks = corpus.join("hooks");
    let first = sandbox.ingest(&[&hooks]);
    assert!(first.records > 0);
    let again = sandbox.ingest(&[&hooks]);
    assert_eq!(again.records, 0);
    assert_eq!(again.bytes, 0, "{again:?}");
}
