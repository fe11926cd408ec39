//! `ctrace replay` of a PTY session (issue 3): `--from` / `--to` as times or marker labels,
//! `--at OFFSET`, `--events` (the linked Claude session's hook events as markers), and the
//! link between a recording and the Claude session whose hooks ran inside it in `sessions` and
//! `show`. Subprocess runs without a terminal: markers go to stderr.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

fn ctrace(store: &Path, args: &[&str]) -> Output {
    let output = Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ctrace {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A store holding one ingested cast: output at 0.5 s, marker `chapter 2` at 1 s, output at
/// 1.5 s and at 95 s. Returns the session id.
fn cast_store(dir: &Path) -> (std::path::PathBuf, String) {
    let store = dir.join("store");
    let cast = dir.join("demo.cast");
    std::fs::write(
        &cast,
        concat!(
            "{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": 1700000000}\n",
            "[0.5, \"o\", \"one\\r\\n\"]\n",
            "[1.0, \"m\", \"chapter 2\"]\n",
            "[1.5, \"o\", \"two\\r\\n\"]\n",
            "[95.0, \"o\", \"three\\r\\n\"]\n",
        ),
    )
    .unwrap();
    ctrace(&store, &["ingest", cast.to_str().unwrap()]);
    let sessions = stdout(&ctrace(&store, &["sessions", "--json"]));
    let v: serde_json::Value = serde_json::from_str(sessions.lines().next().unwrap()).unwrap();
    (store, v["session"].as_str().unwrap().to_owned())
}

#[test]
fn to_stops_at_a_time_or_a_marker() {
    let dir = tempfile::tempdir().unwrap();
    let (store, session) = cast_store(dir.path());
    let all = ctrace(&store, &["replay", "--no-timing", &session]);
    assert_eq!(stdout(&all), "one\r\ntwo\r\nthree\r\n");
    assert_eq!(
        stderr(&all),
        "",
        "no markers without --events in --no-timing"
    );
    let by_prefix = ctrace(&store, &["replay", "--no-timing", &session[..10]]);
    assert_eq!(by_prefix.stdout, all.stdout);
    for to in ["1.2", "1200ms", "chapter 2"] {
        let part = ctrace(&store, &["replay", "--no-timing", "--to", to, &session]);
        assert_eq!(stdout(&part), "one\r\n", "--to {to}");
    }
    let most = ctrace(
        &store,
        &["replay", "--no-timing", "--to", "1m30s", &session],
    );
    assert_eq!(stdout(&most), "one\r\ntwo\r\n");
    let unknown = Command::new(BIN)
        .arg("--store")
        .arg(&store)
        .args(["replay", "--no-timing", "--to", "no such marker", &session])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("chapter 2"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn from_writes_what_came_before_at_once_then_plays() {
    let dir = tempfile::tempdir().unwrap();
    let (store, session) = cast_store(dir.path());
    // Timed: everything before 90 s is written at once, `three` (95 s) is the start point.
    let started = Instant::now();
    let late = ctrace(&store, &["replay", "--from", "90", &session]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(stdout(&late), "one\r\ntwo\r\nthree\r\n");
    assert_eq!(
        stderr(&late),
        "",
        "markers passed while seeking are not shown"
    );
    // From a marker: it is shown (stderr, stdout is not a terminal), then the rest plays.
    let started = Instant::now();
    let chapter = ctrace(
        &store,
        &[
            "replay",
            "--from",
            "chapter 2",
            "--idle-limit",
            "0.2",
            &session,
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(stdout(&chapter), "one\r\ntwo\r\nthree\r\n");
    assert_eq!(stderr(&chapter), "ctrace: marker at 1.000s: chapter 2\n");
    // `--from` with `--to`.
    let window = ctrace(
        &store,
        &["replay", "--from", "chapter 2", "--to", "2", &session],
    );
    assert_eq!(stdout(&window), "one\r\ntwo\r\n");
}

#[test]
fn at_starts_at_a_log_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (store, session) = cast_store(dir.path());
    let records = stdout(&ctrace(&store, &["cat", "--json", "--source", "pty"]));
    let three = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["body"]["kind"] == "output" && v.to_string().contains("three"))
        .unwrap_or_else(|| panic!("no `three` record in {records}"));
    let offset = three["offset"].as_u64().unwrap().to_string();
    // Played with timing from `three`: nothing waits (a full replay would take 95 s).
    let started = Instant::now();
    let at = ctrace(&store, &["replay", "--at", &offset, &session]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(stdout(&at), "one\r\ntwo\r\nthree\r\n");
}

#[test]
fn hooks_inside_a_recording_link_the_sessions_and_replay_as_markers() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let hook = format!(
        "printf '{{\"session_id\":\"s1\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_use_id\":\"t1\"}}' | {BIN} --store {s} hook; \
         echo working; \
         printf '{{\"session_id\":\"s1\",\"hook_event_name\":\"Stop\"}}' | {BIN} --store {s} hook; echo done",
        s = store.display()
    );
    let recorded = ctrace(&store, &["record", "-q", "--", "sh", "-c", &hook]);
    let sessions: Vec<serde_json::Value> = stdout(&ctrace(&store, &["sessions", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let claude = sessions.iter().find(|s| s["session"] == "s1").unwrap();
    let pty = sessions.iter().find(|s| s["session"] != "s1").unwrap();
    let pty_id = pty["session"].as_str().unwrap();
    assert_eq!(claude["linked_sessions"], serde_json::json!([pty_id]));
    assert_eq!(pty["linked_sessions"], serde_json::json!(["s1"]));
    let table = stdout(&ctrace(&store, &["sessions"]));
    assert!(table.contains("LINKED"), "{table}");
    assert!(table.contains(&pty_id[..8]), "{table}");

    let show_claude = stdout(&ctrace(&store, &["show", "s1"]));
    assert!(
        show_claude.contains(&format!("terminal recording: {pty_id}")),
        "{show_claude}"
    );
    let show_pty = stdout(&ctrace(&store, &["show", pty_id]));
    assert!(show_pty.contains("Claude session: s1"), "{show_pty}");

    // Replay with the hook events as markers (stderr: stdout is not a terminal).
    let plain = ctrace(&store, &["replay", "--no-timing", pty_id]);
    assert_eq!(plain.stdout, recorded.stdout);
    assert_eq!(stderr(&plain), "");
    let with_events = ctrace(&store, &["replay", "--no-timing", "--events", pty_id]);
    assert_eq!(with_events.stdout, recorded.stdout);
    let markers: Vec<&str> = std::str::from_utf8(&with_events.stderr)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(markers.len(), 2, "{markers:?}");
    assert!(markers[0].ends_with(": PreToolUse Bash"), "{markers:?}");
    assert!(markers[1].ends_with(": Stop"), "{markers:?}");
    // Timed, from the `Stop` event: the output before it is written at once.
    let from_stop = ctrace(&store, &["replay", "--events", "--from", "Stop", pty_id]);
    assert_eq!(from_stop.stdout, recorded.stdout);
    assert!(
        stderr(&from_stop).ends_with(": Stop\n"),
        "{}",
        stderr(&from_stop)
    );
    // A search hit in the Claude session (`replay s1 --at N`) plays the recording it ran in
    // from that point; `--json` keeps the session's timeline.
    let stop = stdout(&ctrace(&store, &["cat", "--json", "--session", "s1"]))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r.to_string().contains("\"Stop\""))
        .unwrap()["offset"]
        .as_u64()
        .unwrap()
        .to_string();
    let hit = ctrace(&store, &["replay", "s1", "--at", &stop, "--no-timing"]);
    assert_eq!(hit.stdout, recorded.stdout);
    assert!(
        stderr(&hit).contains(&format!("replaying terminal recording {pty_id}")),
        "{}",
        stderr(&hit)
    );
    let timeline = stdout(&ctrace(&store, &["replay", "s1", "--at", &stop, "--json"]));
    assert!(timeline.trim_start().starts_with('['), "{timeline}");
    let elsewhere = Command::new(BIN)
        .arg("--store")
        .arg(&store)
        .args(["replay", "s1", "--at", "999999", "--no-timing"])
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(2), "{}", stderr(&elsewhere));
}
