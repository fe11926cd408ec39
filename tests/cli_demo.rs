//! `ctrace demo`: plays one agent session through the real hook path, inside a terminal
//! recording, into a store of its own under `$TMPDIR`, then prints `sessions`, the timeline,
//! `search error`, `cost`, `tree`, the recording's replay and `verify`; `--serve` then serves
//! the store.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::Sandbox;
use serde_json::Value;

/// What one demo run printed and where its store is.
struct Demo {
    store: PathBuf,
    session: String,
}

fn check_output(output: &Output) -> Demo {
    common::assert_success(&["demo"], output);
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let store = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("store:"))
        .map(|s| PathBuf::from(s.trim()))
        .unwrap_or_else(|| panic!("no store line:\n{stdout}"));
    let lines: Vec<&str> = stdout.lines().collect();
    // The sessions table: a header, then the demo session's row.
    let header = lines
        .iter()
        .position(|l| l.starts_with("SESSION") && l.contains("STATUS"))
        .unwrap_or_else(|| panic!("no sessions table:\n{stdout}"));
    // Two rows: the agent session and the terminal recording it ran in.
    let rows = &lines[header + 1..header + 3];
    let row = rows
        .iter()
        .find(|l| l.starts_with("demo-"))
        .unwrap_or_else(|| panic!("no demo session row:\n{stdout}"));
    let session = row.split_whitespace().next().unwrap().to_owned();
    assert!(row.contains("ended"), "{stdout}");
    assert!(
        rows.iter()
            .any(|l| !l.starts_with("demo-") && l.contains("ended") && l.contains(&session[..8])),
        "the terminal recording is listed:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("$ ctrace show {session}")),
        "{stdout}"
    );
    let timeline: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("PreToolUse") && l.contains("Bash"))
        .collect();
    assert!(timeline.len() >= 4, "{stdout}");
    assert!(timeline.iter().any(|l| l.contains(" ok]")), "{stdout}");
    assert!(timeline.iter().any(|l| l.contains(" error]")), "{stdout}");
    assert!(
        lines.iter().any(|l| l.contains("Z    SubagentStart")),
        "subagent items are indented under the Task call:\n{stdout}"
    );
    // The tour: search hits point into replay, cost and tree print, the recording replays.
    let search = stdout
        .split("$ ctrace search error")
        .nth(1)
        .unwrap_or_else(|| panic!("no search step:\n{stdout}"));
    assert!(
        search.contains(&format!("ctrace replay {session} --at ")),
        "{stdout}"
    );
    assert!(stdout.contains("\n$ ctrace cost\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("$ ctrace tree {session}")),
        "{stdout}"
    );
    let replay = stdout
        .split(" --no-timing\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no replay step:\n{stdout}"));
    assert!(
        replay.contains("● Bash(ls -la)") && replay.contains("error: exit code"),
        "the replay shows the recorded terminal:\n{stdout}"
    );
    assert!(lines.contains(&"clean"), "{stdout}");
    assert!(stdout.contains("Try next"), "{stdout}");
    Demo { store, session }
}

/// Reads the demo's store with the CLI and checks what the demo claims.
fn check_store(sandbox: &Sandbox, demo: &Demo) {
    let run = |args: &[&str]| {
        let output = sandbox.command_in(&demo.store, args).output().unwrap();
        common::assert_success(args, &output);
        String::from_utf8(output.stdout).unwrap()
    };
    let sessions = run(&["sessions", "--json"]);
    let sessions: Vec<Value> = sessions
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let s = sessions
        .iter()
        .find(|s| s["session"] == demo.session.as_str())
        .unwrap();
    let recording = sessions
        .iter()
        .find(|s| s["session"] != demo.session.as_str())
        .unwrap();
    assert!(s["records"]["hook"].as_u64().unwrap() >= 10, "{s}");
    assert!(s["records"]["transcript"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["status"], "ended");
    assert_eq!(s["malformed"], 0);
    // The hooks ran inside the recording: the two are linked both ways.
    assert!(
        recording["records"]["pty"].as_u64().unwrap() > 0,
        "{recording}"
    );
    assert_eq!(recording["status"], "ended");
    assert_eq!(s["linked_sessions"][0], recording["session"]);
    assert_eq!(recording["linked_sessions"][0], s["session"]);

    let items: Vec<Value> = serde_json::from_str(&run(&["show", &demo.session, "--json"])).unwrap();
    let Some(task) = items.iter().find(|i| i["tool"] == "Task") else {
        panic!("no Task call in the demo timeline: {items:#?}");
    };
    assert_eq!(task["status"], "ok");
    let children = task["children"].as_array().unwrap();
    assert!(children.iter().any(|c| c["event"] == "SubagentStart"));
    assert!(
        children
            .iter()
            .any(|c| c["event"] == "PreToolUse" && c["status"] == "ok")
    );
    let verify = run(&["verify"]);
    assert!(verify.lines().any(|l| l == "clean"), "{verify}");
}

#[test]
fn demo_records_shows_and_verifies_a_session() {
    let sandbox = Sandbox::new();
    let demo = check_output(&sandbox.run(&["demo"]));
    assert!(
        demo.store.starts_with(sandbox.tmp()),
        "the demo store goes under $TMPDIR: {}",
        demo.store.display()
    );
    check_store(&sandbox, &demo);
    // Without --into-store, the configured store is left alone.
    assert!(sandbox.sessions().is_empty());
}

#[test]
fn two_demos_at_once_do_not_collide() {
    let sandbox = Sandbox::new();
    let children: Vec<_> = (0..2)
        .map(|_| {
            sandbox
                .command(&["demo"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let demos: Vec<Demo> = children
        .into_iter()
        .map(|c| check_output(&c.wait_with_output().unwrap()))
        .collect();
    assert_ne!(demos[0].store, demos[1].store);
    assert_ne!(demos[0].session, demos[1].session);
    for demo in &demos {
        check_store(&sandbox, demo);
    }
}

#[test]
fn demo_into_store_records_into_the_given_store() {
    let sandbox = Sandbox::new();
    let demo = check_output(&sandbox.run(&["demo", "--into-store"]));
    assert_eq!(demo.store, sandbox.store());
    let sessions = sandbox.sessions();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .any(|s| s["session"] == demo.session.as_str())
    );
    check_store(&sandbox, &demo);
}

/// Issue 16 (the demo shows the whole product): `demo --serve` serves the demo store after the
/// tour and prints the dashboard's URL; the API there has the demo's sessions.
#[test]
fn demo_serve_prints_the_dashboard_url_and_serves_the_store() {
    use std::io::{BufRead, BufReader, Read, Write};
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command(&["demo", "--serve", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("dashboard: http://") {
            url = Some(rest.split('/').next().unwrap().to_owned());
            break;
        }
    }
    let addr = url.expect("demo --serve printed no dashboard URL");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/sessions HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"session\":\"demo-"), "{response}");
    assert!(response.contains("\"records\":{\"pty\":"), "{response}");
}
