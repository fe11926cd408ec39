//! Issue 3, acceptance 1 (second half): the real asciinema player (`asciinema cat`, version
//! 2.4.0) prints exactly the bytes that `ctrace replay --no-timing` prints for the same session.
//!
//! The player is found through `CTRACE_ASCIINEMA` (a path) or `asciinema` on `PATH`; `.ci/run`
//! installs it with pip into a virtualenv. Without it the test skips with a message, except under
//! `CI=true`, where a missing player is a failure.

#![expect(clippy::unwrap_used, reason = "test setup panics on failure")]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

fn player() -> Option<PathBuf> {
    let candidate = std::env::var_os("CTRACE_ASCIINEMA")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("asciinema"), PathBuf::from);
    let works = Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "asciinema player not found (set CTRACE_ASCIINEMA); required under CI=true"
    );
    eprintln!("SKIP: asciinema player not found (set CTRACE_ASCIINEMA or put asciinema on PATH)");
    None
}

fn corpus_casts() -> Option<PathBuf> {
    let dir = std::env::var_os("CTRACE_CORPUS")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
            PathBuf::from,
        );
    let casts = dir.join("casts");
    if casts.is_dir() {
        return Some(casts);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus not found at {}; required under CI=true",
        casts.display()
    );
    eprintln!("SKIP: corpus not found at {}", casts.display());
    None
}

fn ctrace(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn asciinema_cat_prints_what_replay_no_timing_prints() {
    let (Some(player), Some(casts)) = (player(), corpus_casts()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Invalid casts in the directory make ingest exit 1; the valid ones are ingested.
    let ingest = ctrace(&store, &["ingest", "--json", casts.to_str().unwrap()]);
    assert!(matches!(ingest.status.code(), Some(0 | 1)));
    let sessions = ctrace(&store, &["sessions", "--json"]);
    assert!(sessions.status.success());
    let ids: Vec<String> = String::from_utf8(sessions.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["session"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        ids.len() >= 20,
        "expected the corpus casts as sessions, got {}",
        ids.len()
    );
    let mut differing = Vec::new();
    for id in &ids {
        let file = dir.path().join(format!("{id}.cast"));
        let export = ctrace(
            &store,
            &[
                "export",
                "--format",
                "asciicast",
                "--session",
                id,
                "-o",
                file.to_str().unwrap(),
            ],
        );
        assert!(
            export.status.success(),
            "{}",
            String::from_utf8_lossy(&export.stderr)
        );
        let played = Command::new(&player)
            .arg("cat")
            .arg(&file)
            .output()
            .unwrap();
        assert!(played.status.success(), "asciinema cat {}", file.display());
        let replayed = ctrace(&store, &["replay", "--no-timing", id]);
        assert!(replayed.status.success());
        if played.stdout != replayed.stdout {
            differing.push(id.clone());
        }
    }
    assert!(
        differing.is_empty(),
        "{} of {} sessions differ: {differing:?}",
        differing.len(),
        ids.len()
    );
}
