//! Issue 4, acceptance 1: for 30+ single words drawn from the corpus (common and rare, `error`,
//! tool names, CJK words), the records `ctrace search WORD` returns are exactly the records
//! whose extracted text (`ctrace::index::extract`) contains WORD as a whole word, found by an
//! independent case-insensitive scan (no tantivy, no ctrace tokenizer). The corpus has no CJK
//! text, so a few synthetic hook payloads in Chinese, Japanese and Korean are added.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup step should fail the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Sandbox;
use ctrace::config::Config;
use ctrace::index::{PtyCarry, extract};
use ctrace::log::Store;

const CJK_PAYLOADS: &[&str] = &[
    r#"{"session_id":"cjk-1","hook_event_name":"UserPromptSubmit","prompt":"请检查数据库连接错误，然后修复它"}"#,
    r#"{"session_id":"cjk-1","hook_event_name":"UserPromptSubmit","prompt":"数据库迁移已完成"}"#,
    r#"{"session_id":"cjk-2","hook_event_name":"UserPromptSubmit","prompt":"テストが失敗しました。エラーを確認してください"}"#,
    r#"{"session_id":"cjk-3","hook_event_name":"UserPromptSubmit","prompt":"한국어 테스트 오류를 고쳐 주세요"}"#,
    r#"{"session_id":"cjk-3","hook_event_name":"Notification","message":"数据 and テスト mixed with error text"}"#,
];

fn is_cjk(c: char) -> bool {
    // Written independently of the index tokenizer, from Unicode script properties.
    static SCRIPTS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = SCRIPTS.get_or_init(|| {
        regex::Regex::new(r"^[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]$").unwrap()
    });
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// Whole words of `text`, lowercased: maximal runs of alphanumeric, non-CJK characters.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric() || is_cjk(c))
        .filter(|w| !w.is_empty() && w.len() <= 64)
        .map(str::to_lowercase)
        .collect()
}

/// Whether `text` holds `word`: as a whole word for alphabetic words, as a substring for CJK
/// words (those scripts do not separate words by spaces).
fn contains_word(text: &str, lower_words: &BTreeSet<String>, word: &str) -> bool {
    if word.chars().all(is_cjk) {
        text.to_lowercase().contains(word)
    } else {
        lower_words.contains(&word.to_lowercase())
    }
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn search_equals_whole_word_scan_of_extracted_text() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    for payload in CJK_PAYLOADS {
        sandbox.hook(payload.as_bytes());
    }
    let dirs: Vec<std::path::PathBuf> = ["hooks", "transcripts", "claude-home", "casts"]
        .iter()
        .map(|d| corpus.join(d))
        .filter(|d| d.exists())
        .collect();
    let mut args = vec!["ingest", "--quiet"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    // The corpus holds deliberately invalid casts, which ingest refuses (exit 1); the rest is
    // ingested.
    let output = sandbox.run(&args);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "ingest: {output:?}"
    );
    sandbox.ok(&["reindex", "--quiet"]);

    // The independent scan: every sealed record, in offset order, through the extraction
    // function, then split into words without the index tokenizer.
    let store = Store::open(&sandbox.store(), Config::default()).unwrap();
    let snapshot = store.snapshot().unwrap();
    let mut carry = PtyCarry::new();
    let mut texts: Vec<(u64, String, BTreeSet<String>)> = Vec::new();
    let mut doc_freq: BTreeMap<String, usize> = BTreeMap::new();
    let mut sources = BTreeSet::new();
    for stored in snapshot.iter() {
        let stored = stored.unwrap();
        let Some(offset) = stored.offset else {
            continue;
        };
        sources.insert(stored.record.source.as_str());
        let text = extract(&stored.record, &mut carry).text;
        let w = words(&text);
        for word in &w {
            *doc_freq.entry(word.clone()).or_default() += 1;
        }
        texts.push((offset.0, text, w));
    }
    assert!(sources.contains("pty"), "the corpus casts give PTY records");
    assert!(
        texts.len() > 1000,
        "corpus store has {} records",
        texts.len()
    );

    // Words: fixed ones (error, tool names), then words spread over the frequency range,
    // from the most common to ones found in a single record.
    let mut chosen: Vec<String> = [
        "error",
        "Bash",
        "Read",
        "Edit",
        "Write",
        "Grep",
        "TodoWrite",
        "Task",
        "test",
        "cargo",
    ]
    .iter()
    .map(|w| (*w).to_owned())
    .collect();
    let mut by_freq: Vec<(&String, &usize)> = doc_freq
        .iter()
        .filter(|(w, _)| w.len() >= 3 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    by_freq.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let step = (by_freq.len() / 20).max(1);
    for (word, _) in by_freq.iter().step_by(step).take(20) {
        if !chosen.iter().any(|c| c.eq_ignore_ascii_case(word)) {
            chosen.push((*word).clone());
        }
    }
    if let Some((rare, _)) = by_freq.last() {
        chosen.push((*rare).clone());
    }
    chosen.extend(["数据库", "数据", "テスト", "한국어", "오류"].map(str::to_owned));
    assert!(chosen.len() >= 30, "only {} words chosen", chosen.len());

    let mut checked = 0;
    for word in &chosen {
        let expected: BTreeSet<u64> = texts
            .iter()
            .filter(|(_, text, w)| contains_word(text, w, word))
            .map(|(offset, _, _)| *offset)
            .collect();
        let stdout = sandbox.ok_stdout(&["search", word, "-n", "1000000", "--json"]);
        let found: BTreeSet<u64> = stdout
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["offset"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            found,
            expected,
            "word {word:?}: search found {} records, the scan {}; only in search: {:?}; only in scan: {:?}",
            found.len(),
            expected.len(),
            found.difference(&expected).take(5).collect::<Vec<_>>(),
            expected.difference(&found).take(5).collect::<Vec<_>>()
        );
        assert!(
            !expected.is_empty(),
            "word {word:?} was drawn from the corpus"
        );
        eprintln!("{word:?}: {} records", expected.len());
        checked += 1;
    }
    eprintln!(
        "checked {checked} words against the scan of {} records",
        texts.len()
    );
}
