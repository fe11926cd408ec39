//! asciicast interop (issue 3): every valid cast of the shared corpus survives ingest → export
//! (same header line, same events: times within 1 µs, data byte-identical), in its own version
//! and converted to the other one; `replay --no-timing` prints exactly the output events' data;
//! every deliberately invalid cast is rejected with `FILE:LINE` and leaves no records.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ctrace::ingest::asciicast::{self, Cast};

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

fn corpus_casts() -> Option<PathBuf> {
    let dir = match std::env::var_os("CTRACE_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    let casts = dir.join("casts");
    if casts.is_dir() {
        return Some(casts);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "corpus casts not found at {}",
        casts.display()
    );
    eprintln!("SKIP: corpus casts not found at {}", casts.display());
    None
}

/// Runs `ingest --json` on a path that holds invalid casts: it must exit 1 (refused files).
fn ingest_refusing(store: &Path, path: &Path) -> Output {
    let output = Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(["ingest", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn ctrace(store: &Path, args: &[&str]) -> Output {
    let output = Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ctrace {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Fixtures the corpus marks as invalid on purpose (SOURCES.md).
fn invalid_on_purpose(name: &str) -> bool {
    ["broken", "invalid-", "wrong-event-length"]
        .iter()
        .any(|marker| name.contains(marker))
}

fn assert_same_events(original: &Cast, exported: &Cast, what: &str) {
    assert_eq!(
        original.events.len(),
        exported.events.len(),
        "{what}: event count"
    );
    for (i, (a, b)) in original.events.iter().zip(&exported.events).enumerate() {
        assert_eq!(a.kind, b.kind, "{what}: event {i} kind");
        assert_eq!(a.data, b.data, "{what}: event {i} data");
        assert!(
            a.time_ns.abs_diff(b.time_ns) <= 1_000,
            "{what}: event {i} time {} vs {} ns",
            a.time_ns,
            b.time_ns
        );
    }
}

#[test]
fn every_valid_corpus_cast_round_trips_and_invalid_ones_are_rejected() {
    let Some(casts) = corpus_casts() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&casts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cast"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "only {} casts in the corpus",
        files.len()
    );

    // Invalid casts are refused: the run ingests the valid ones and exits 1.
    let summary = Command::new(BIN)
        .arg("--store")
        .arg(&store)
        .args(["ingest", "--json", casts.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        summary.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&summary.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    let skipped = summary["skipped"].as_array().unwrap();
    let sessions = ctrace(&store, &["sessions", "--json"]);
    let sessions = String::from_utf8(sessions.stdout).unwrap();

    let mut valid = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap();
        let session = asciicast::session_id(&bytes);
        let parsed = asciicast::parse(&bytes);
        assert_eq!(
            parsed.is_err(),
            invalid_on_purpose(&name),
            "{name}: {parsed:?}"
        );
        let Ok(original) = parsed else {
            // Rejected with FILE:LINE and nothing stored.
            let line = asciicast::parse(&bytes).unwrap_err().line();
            let reason = skipped
                .iter()
                .find(|s| s["path"].as_str().is_some_and(|p| p.ends_with(&name)))
                .unwrap_or_else(|| panic!("{name} not listed as skipped: {summary}"))["reason"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                reason.contains(&format!("{name}:{line}: ")),
                "{name}: reason {reason:?}"
            );
            assert!(!sessions.contains(&session), "{name} left a session");
            continue;
        };
        valid += 1;
        assert!(
            sessions.contains(&session),
            "{name}: session {session} missing"
        );

        // Same version: the header line byte for byte, the same events.
        let same = dir.path().join(format!("{name}.same"));
        let mut args = vec![
            "export",
            "--session",
            &session,
            "-o",
            same.to_str().unwrap(),
        ];
        let other_version = if original.header.version == 3 {
            args.push("--v3");
            2
        } else {
            3
        };
        ctrace(&store, &args);
        let exported = asciicast::parse(&std::fs::read(&same).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&exported.header.raw),
            String::from_utf8_lossy(&original.header.raw),
            "{name}: header"
        );
        assert_same_events(&original, &exported, &name);

        // The other version: converted header, the same events (v2 has no exit events).
        let other = dir.path().join(format!("{name}.other"));
        let mut args = vec![
            "export",
            "--session",
            &session,
            "-o",
            other.to_str().unwrap(),
        ];
        if other_version == 3 {
            args.push("--v3");
        }
        ctrace(&store, &args);
        let converted = asciicast::parse(&std::fs::read(&other).unwrap()).unwrap();
        assert_eq!(converted.header.version, other_version, "{name}");
        assert_eq!(
            (converted.header.width, converted.header.height),
            (original.header.width, original.header.height),
            "{name}: size"
        );
        let mut expected = original.clone();
        if other_version == 2 {
            expected
                .events
                .retain(|e| e.kind != ctrace::model::PtyKind::Exit);
        }
        assert_same_events(&expected, &converted, &format!("{name} (v{other_version})"));

        // replay --no-timing prints exactly the output events' bytes.
        let replayed = ctrace(&store, &["replay", "--no-timing", &session]).stdout;
        let output: Vec<u8> = original
            .events
            .iter()
            .filter(|e| e.kind == ctrace::model::PtyKind::Output)
            .flat_map(|e| e.data.iter().copied())
            .collect();
        assert!(replayed == output, "{name}: replay --no-timing differs");
    }
    assert!(valid >= 25, "only {valid} valid casts");
    let verify = ctrace(&store, &["verify"]);
    assert!(String::from_utf8_lossy(&verify.stdout).contains("clean"));

    // Ingesting again adds nothing.
    let again = ingest_refusing(&store, &casts);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["records"], 0, "{again}");
}

#[test]
fn a_rejected_cast_leaves_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let bad = dir.path().join("bad.cast");
    std::fs::write(
        &bad,
        "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"fine\"]\n[1.0, \"o\"]\n",
    )
    .unwrap();
    let output = ingest_refusing(&store, &bad);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["records"], 0, "{summary}");
    let reason = summary["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("bad.cast:3: "), "{reason}");
    let cat = ctrace(&store, &["cat", "--json"]);
    assert!(
        cat.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&cat.stdout)
    );
}
