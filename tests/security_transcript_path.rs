//! The transcripts hooks name are untrusted paths (security review, transcript path item): a
//! Stop-like hook's `transcript_path` / `agent_transcript_path` is tailed only when it is an
//! absolute `.jsonl` path resolving to a regular file of ours below Claude Code's projects
//! directories (or a configured root). Anything else is never read, and the hook itself is
//! stored all the same. A transcript that cannot be read is skipped without failing the pass,
//! so later hooks are still folded (by the reading commands and by `ctrace serve`).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Sandbox;
use common::http::Server;
use serde_json::{Value, json};

/// A sandbox with a Claude config directory (`claude/`, its `projects/-work-p/` made) and an
/// empty home, given to every command as `CLAUDE_CONFIG_DIR` and `HOME`.
struct Claude {
    sandbox: Sandbox,
    config: PathBuf,
}

impl Claude {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let config = sandbox.path("claude");
        std::fs::create_dir_all(config.join("projects/-work-p")).unwrap();
        std::fs::create_dir_all(sandbox.path("home")).unwrap();
        Self { sandbox, config }
    }

    /// The project directory transcripts go in.
    fn project(&self) -> PathBuf {
        self.config.join("projects/-work-p")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(args);
        command
            .env("CLAUDE_CONFIG_DIR", &self.config)
            .env("HOME", self.sandbox.path("home"));
        command
    }

    /// `ctrace ARGS`, asserting success; stdout as text.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.command(args).output().unwrap();
        common::assert_success(args, &output);
        String::from_utf8(output.stdout).unwrap()
    }

    /// Pipes `payload` into `ctrace hook` (exit 0, nothing on stdout).
    fn hook(&self, payload: &Value) {
        common::run_hook(&mut self.command(&["hook"]), payload.to_string().as_bytes());
    }

    /// `ctrace sessions --json`, parsed.
    fn sessions(&self) -> Vec<Value> {
        self.ok(&["sessions", "--json"])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// A transcript line of `session` whose prompt is `text`.
fn line(session: &str, text: &str) -> String {
    json!({"type": "user", "sessionId": session, "uuid": format!("u-{session}"),
        "timestamp": "2025-06-01T10:00:00.000Z",
        "message": {"role": "user", "content": text}})
    .to_string()
        + "\n"
}

/// A hook payload of `event` for `session`, with `extra` fields.
fn payload(event: &str, session: &str, extra: Value) -> Value {
    let mut value = json!({"session_id": session, "hook_event_name": event, "cwd": "/work/p"});
    for (key, field) in extra.as_object().unwrap() {
        value[key] = field.clone();
    }
    value
}

/// The row of `session` in `sessions --json` output.
fn row<'a>(sessions: &'a [Value], session: &str) -> Option<&'a Value> {
    sessions.iter().find(|row| row["session"] == session)
}

/// A file of another user, made by chowning one of ours (root only); `None` (with a visible
/// SKIP) when this process cannot.
fn foreign_file(path: &Path, contents: &str) -> Option<PathBuf> {
    std::fs::write(path, contents).unwrap();
    match std::os::unix::fs::chown(path, Some(65534), Some(65534)) {
        Ok(()) => Some(path.to_path_buf()),
        Err(error) => {
            eprintln!(
                "SKIP: cannot make a file owned by another user ({error}); the owner rule is \
                 covered by the unit test of src/ingest/bulk/transcript_path.rs only as far as \
                 its own files go"
            );
            std::fs::remove_file(path).unwrap();
            None
        }
    }
}

/// Security review, transcript path item: Stop and SubagentStop hooks naming a secret file, a
/// `.jsonl` outside the projects directories, a symlink inside them to a file outside, a
/// `..` path out of them, a non-`.jsonl` file inside them and (as root) a file of another user
/// are all stored, and none of those files is read; a transcript under
/// `$CLAUDE_CONFIG_DIR/projects` is still tailed. Each refusal is logged, naming the path and
/// the rule.
#[test]
fn hooks_naming_files_outside_the_projects_directories_are_stored_but_not_read() {
    let claude = Claude::new();
    let project = claude.project();
    let secret = claude.sandbox.path("dot-env");
    std::fs::write(&secret, "AWS_SECRET=MARKER_SECRET_DOTENV\n").unwrap();
    let outside = claude.sandbox.path("outside.jsonl");
    std::fs::write(&outside, line("outside", "MARKER_SECRET_OUTSIDE")).unwrap();
    let target = claude.sandbox.path("target.jsonl");
    std::fs::write(&target, line("target", "MARKER_SECRET_SYMLINK")).unwrap();
    let link = project.join("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let dot_dot = project.join("../../../up.jsonl");
    std::fs::write(
        claude.sandbox.path("up.jsonl"),
        line("up", "MARKER_SECRET_DOTDOT"),
    )
    .unwrap();
    let notes = project.join("notes.txt");
    std::fs::write(&notes, line("notes", "MARKER_SECRET_NOTES")).unwrap();
    let mut refused: Vec<(&str, PathBuf)> = vec![
        ("dot-env", secret),
        ("outside", outside),
        ("link", link),
        ("dot-dot", dot_dot),
        ("notes", notes),
    ];
    if let Some(foreign) = foreign_file(
        &project.join("foreign.jsonl"),
        &line("foreign", "MARKER_SECRET_FOREIGN"),
    ) {
        refused.push(("foreign", foreign));
    }
    for (name, path) in &refused {
        claude.hook(&payload(
            "Stop",
            &format!("evil-{name}"),
            json!({"transcript_path": path}),
        ));
    }
    // The agent transcript field too.
    claude.hook(&payload(
        "SubagentStop",
        "evil-agent",
        json!({"transcript_path": project.join("none.jsonl"),
            "agent_transcript_path": refused[1].1}),
    ));
    // And a transcript where it belongs.
    let good = project.join("good-1.jsonl");
    std::fs::write(&good, line("good-1", "MARKER_GOOD_TRANSCRIPT")).unwrap();
    claude.hook(&payload("Stop", "good-1", json!({"transcript_path": good})));

    let cat = claude.ok(&["cat", "--json"]);
    assert!(
        !cat.contains("MARKER_SECRET"),
        "a refused file was read:\n{cat}"
    );
    assert!(cat.contains("MARKER_GOOD_TRANSCRIPT"), "{cat}");
    let search = claude.ok(&["search", "MARKER_SECRET_OUTSIDE"]);
    assert!(!search.contains("MARKER_SECRET"), "{search}");
    let sessions = claude.sessions();
    for (name, _) in &refused {
        let session = format!("evil-{name}");
        let row = row(&sessions, &session).unwrap_or_else(|| panic!("{session}: {sessions:?}"));
        assert_eq!(row["records"]["hook"], 1, "{row}");
        assert!(row["records"].get("transcript").is_none(), "{row}");
    }
    assert!(row(&sessions, "evil-agent").is_some(), "{sessions:?}");
    let good_row = row(&sessions, "good-1").unwrap();
    assert_eq!(good_row["records"]["transcript"], 1, "{good_row}");

    let log = claude.sandbox.runtime_log();
    for (name, path) in &refused {
        let warned = log
            .lines()
            .filter(|l| l.contains("transcript named by a hook not read"))
            .filter(|l| l.contains(&*path.to_string_lossy()))
            .count();
        assert_eq!(warned, 1, "{name}: {}\n{log}", path.display());
    }
}

/// Security review, transcript path item: a configured `[ingest] transcript_roots` entry is a
/// root too (a transcript below it is tailed), and `ctrace ingest` of a file the user names is
/// not restricted.
#[test]
fn configured_roots_and_named_files_are_read() {
    let claude = Claude::new();
    let elsewhere = claude.sandbox.path("synced/projects/-p");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(claude.sandbox.store()).unwrap();
    std::fs::write(
        claude.sandbox.store().join("config.toml"),
        format!(
            "[ingest]\ntranscript_roots = [{:?}]\n",
            claude.sandbox.path("synced/projects")
        ),
    )
    .unwrap();
    let synced = elsewhere.join("synced-1.jsonl");
    std::fs::write(&synced, line("synced-1", "MARKER_SYNCED")).unwrap();
    claude.hook(&payload(
        "Stop",
        "synced-1",
        json!({"transcript_path": synced}),
    ));
    // Tailed by the reading command's refresh.
    claude.sessions();
    let named = claude.sandbox.path("named-1.jsonl");
    std::fs::write(&named, line("named-1", "MARKER_NAMED")).unwrap();
    claude.ok(&["ingest", "--quiet", named.to_str().unwrap()]);
    let cat = claude.ok(&["cat", "--json"]);
    assert!(cat.contains("MARKER_SYNCED"), "{cat}");
    assert!(cat.contains("MARKER_NAMED"), "{cat}");
}

/// A transcript named by a Stop hook is tailed when `ctrace ingest` (of anything) is what
/// seals that hook, as when a reading command's refresh does: before, the ingest sealed the
/// hook and no later refresh saw it name the transcript again. The ingest's summary counts only
/// what it was given.
#[test]
fn an_ingest_that_seals_a_hook_tails_its_transcript() {
    let claude = Claude::new();
    let transcript = claude.project().join("sealed-by-ingest.jsonl");
    std::fs::write(&transcript, line("sealed-by-ingest", "MARKER_TAILED")).unwrap();
    claude.hook(&payload(
        "Stop",
        "sealed-by-ingest",
        json!({"transcript_path": transcript}),
    ));
    let named = claude.sandbox.path("named-2.jsonl");
    std::fs::write(&named, line("named-2", "MARKER_NAMED_2")).unwrap();
    let summary: Value =
        serde_json::from_str(&claude.ok(&["ingest", "--json", named.to_str().unwrap()])).unwrap();
    assert_eq!(summary["records"], 1, "{summary}");
    let cat = claude.ok(&["cat", "--json"]);
    assert!(cat.contains("MARKER_NAMED_2"), "{cat}");
    assert!(
        cat.contains("MARKER_TAILED"),
        "the transcript the hook named: {cat}"
    );
}

/// Transcript paths that cannot be read: `/proc/self/mem` (a regular file whose read at 0
/// fails, for root too: what made every pass fail before the rules, now refused as outside the
/// projects directories), a directory named like a transcript below `project`, and a file of
/// mode 000 there when permissions are enforced (a visible SKIP as root).
fn untailable_transcripts(project: &Path, scratch: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let folder = project.join("folder.jsonl");
    std::fs::create_dir(&folder).unwrap();
    let mut paths = vec![PathBuf::from("/proc/self/mem"), folder];
    if common::permissions_enforced(scratch) {
        let locked = project.join("locked.jsonl");
        std::fs::write(&locked, line("locked", "x")).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        paths.push(locked);
    } else {
        eprintln!(
            "SKIP: permissions are not enforced for this user (root): the mode-000 transcript \
             case is not run; the directory named folder.jsonl still is"
        );
    }
    paths
}

/// Security review, transcript path item: hooks naming transcripts under the projects
/// directory that cannot be opened do not fail the reading commands' refresh, and a later
/// good hook and its transcript are folded.
#[test]
fn an_unreadable_transcript_does_not_stop_later_passes() {
    let claude = Claude::new();
    let project = claude.project();
    for (n, path) in untailable_transcripts(&project, &claude.sandbox.tmp())
        .iter()
        .enumerate()
    {
        claude.hook(&payload(
            "Stop",
            &format!("bad-{n}"),
            json!({"transcript_path": path}),
        ));
        let sessions = claude.sessions();
        assert!(
            row(&sessions, &format!("bad-{n}")).is_some(),
            "{sessions:?}"
        );
    }
    let good = project.join("good-2.jsonl");
    std::fs::write(&good, line("good-2", "fine")).unwrap();
    claude.hook(&payload("Stop", "good-2", json!({"transcript_path": good})));
    let sessions = claude.sessions();
    let good_row = row(&sessions, "good-2").unwrap_or_else(|| panic!("{sessions:?}"));
    assert_eq!(good_row["records"]["transcript"], 1, "{good_row}");
}

/// Security review, transcript path item: in `ctrace serve`, a transcript that cannot be read
/// is not queued again for every pass (which made every later pass fail and the views stop):
/// the next hook and its transcript are folded; and a hook over HTTP naming a file outside the
/// projects directories is stored without the file.
#[test]
fn serve_goes_on_after_an_unreadable_transcript() {
    let claude = Claude::new();
    let project = claude.project();
    let server = Server::spawn(claude.command(&["serve", "--bind", "127.0.0.1:0"]));
    let has = |session: String| {
        move |rows: &Value| {
            rows["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|row| row["session"] == session.as_str())
        }
    };
    for (n, path) in untailable_transcripts(&project, &claude.sandbox.tmp())
        .iter()
        .enumerate()
    {
        let body = payload(
            "Stop",
            &format!("bad-{n}"),
            json!({"transcript_path": path}),
        );
        assert_eq!(server.post_hook(body.to_string().as_bytes()).status, 200);
        server.wait_for("/api/sessions", has(format!("bad-{n}")));
    }
    let secret = claude.sandbox.path("netrc");
    std::fs::write(&secret, "machine x login y password MARKER_SECRET_NETRC\n").unwrap();
    let body = payload("Stop", "evil-http", json!({"transcript_path": secret}));
    assert_eq!(server.post_hook(body.to_string().as_bytes()).status, 200);

    let good = project.join("good-3.jsonl");
    std::fs::write(&good, line("good-3", "fine")).unwrap();
    let body = payload("Stop", "good-3", json!({"transcript_path": good}));
    assert_eq!(server.post_hook(body.to_string().as_bytes()).status, 200);
    server.wait_for("/api/sessions", |rows| {
        rows["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["session"] == "good-3" && row["records"]["transcript"] == 1)
    });
    server.wait_for("/api/sessions", has("evil-http".to_owned()));
    assert_eq!(server.terminate(), Some(0));
    let cat = claude.ok(&["cat", "--json"]);
    assert!(!cat.contains("MARKER_SECRET"), "{cat}");
}
