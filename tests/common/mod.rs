//! Helpers shared by the CLI integration tests: a throwaway store in a temp dir, running the
//! `ctrace` binary against it as a subprocess, reading `cat --json` output losslessly, and
//! locating the shared corpus.
//!
//! Every command gets `--store <dir>/store`, `CTRACE_HOME=<dir>/store` and `TMPDIR=<dir>/tmp`, so
//! tests never touch the user's store, each other's stores, or each other's fallback spools.

#![allow(
    dead_code,
    reason = "each test crate uses a different subset of these helpers"
)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use tempfile::TempDir;

pub mod browser;
pub mod http;
pub mod otlp;
pub mod tmux;

/// The `ctrace` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

/// The shared corpus: `$CTRACE_CORPUS`, else `../shared/corpus` next to the crate.
///
/// Returns `None` (after printing a visible SKIP line on stderr) when it is missing, except
/// under `CI=true`, where a missing corpus is a failure.
pub fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("CTRACE_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    if dir.join("hooks").is_dir() && dir.join("transcripts").is_dir() {
        return Some(dir.canonicalize().unwrap_or(dir));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "corpus not found at {} (CI=true: the corpus is required; set CTRACE_CORPUS)",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: corpus not found at {} (set CTRACE_CORPUS to run the corpus tests)",
        dir.display()
    );
    None
}

/// A temp dir holding `store/` (the ctrace store) and `tmp/` (`TMPDIR` of every command).
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh sandbox; `store/` itself is left for ctrace to create.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Self { dir }
    }

    /// A fresh sandbox whose store has redaction turned off (`[redaction] defaults = false`),
    /// for tests that check stored payloads are byte-identical to their sources: with the
    /// default rules on, corpus lines holding `password: ...` or `token=...` are (rightly)
    /// redacted before they are written. Redaction itself is tested in `tests/redaction_*.rs`.
    pub fn without_redaction() -> Self {
        let sandbox = Self::new();
        std::fs::create_dir_all(sandbox.store()).unwrap();
        std::fs::write(
            sandbox.store().join("config.toml"),
            "[redaction]\ndefaults = false\n",
        )
        .unwrap();
        sandbox
    }

    /// The temp dir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The store directory.
    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// The `TMPDIR` commands see.
    pub fn tmp(&self) -> PathBuf {
        self.path("tmp")
    }

    /// `ctrace --store <store> ARGS` with the sandbox's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(&self.store(), args)
    }

    /// `ctrace --store STORE ARGS` with the sandbox's environment, for a store elsewhere (the
    /// demo's).
    pub fn command_in(&self, store: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--store")
            .arg(store)
            .args(args)
            .current_dir(self.root())
            .env("CTRACE_HOME", store)
            .env("TMPDIR", self.tmp())
            .env_remove("CTRACE_LOG")
            .env_remove("CTRACE_PTY_SESSION")
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::null());
        command
    }

    /// A store written by `ctrace demo` (an agent session through the hook path, with its
    /// transcript and terminal recording): its path.
    pub fn demo_store(&self) -> PathBuf {
        let stdout = self.ok_stdout(&["demo"]);
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("store:"))
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or_else(|| panic!("no store line:\n{stdout}"))
    }

    /// `ctrace --store STORE ARGS`, asserting success, its stdout read as JSON Lines.
    pub fn json_lines_in(&self, store: &Path, args: &[&str]) -> Vec<serde_json::Value> {
        let output = self.command_in(store, args).output().unwrap();
        assert_success(args, &output);
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `ctrace --store STORE ARGS`, asserting success, its stdout read as one JSON document.
    pub fn json_in(&self, store: &Path, args: &[&str]) -> serde_json::Value {
        let output = self.command_in(store, args).output().unwrap();
        assert_success(args, &output);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Runs `ctrace ARGS` with empty stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `ctrace ARGS` with `input` on stdin (see [`run_with_stdin`]).
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        run_with_stdin(&mut self.command(args), input)
    }

    /// Runs `ctrace ARGS` and asserts exit 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert_success(args, &output);
        output
    }

    /// Runs `ctrace ARGS`, asserts exit 0, returns stdout as text.
    pub fn ok_stdout(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args).stdout).unwrap()
    }

    /// Pipes `payload` into `ctrace hook` and asserts the hook contract (see [`run_hook`]).
    pub fn hook(&self, payload: &[u8]) -> Output {
        run_hook(&mut self.command(&["hook"]), payload)
    }

    /// The text of every file of the store's runtime log (`logs/`, all days); empty when there
    /// is none.
    pub fn runtime_log(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.store().join("logs")) {
            for entry in entries {
                text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
            }
        }
        text
    }

    /// Takes the store's lock (`ctrace.lock`, which must exist) as another ctrace process
    /// would hold it: nothing is sealed until the returned file is dropped.
    pub fn lock_store(&self) -> std::fs::File {
        let lock = std::fs::File::options()
            .read(true)
            .write(true)
            .open(self.store().join("ctrace.lock"))
            .unwrap();
        lock.lock().unwrap();
        lock
    }

    /// `ctrace ingest PATHS --json`, parsed.
    pub fn ingest(&self, paths: &[&Path]) -> IngestSummary {
        let mut args: Vec<&str> = vec!["ingest", "--json", "--quiet"];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        let stdout = self.ok_stdout(&args);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("ingest summary is not JSON ({e}): {stdout}"))
    }

    /// `ctrace cat --json EXTRA`, every line parsed.
    pub fn cat(&self, extra: &[&str]) -> Vec<CatRecord> {
        let mut args = vec!["cat", "--json"];
        args.extend_from_slice(extra);
        let output = self.ok(&args);
        parse_cat(&output.stdout)
    }

    /// `ctrace sessions --json`, every line parsed.
    pub fn sessions(&self) -> Vec<serde_json::Value> {
        let stdout = self.ok_stdout(&["sessions", "--json"]);
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// Runs `command` with stdout and stderr captured and `feed` writing its stdin from a thread
/// of its own, so a child that stops reading cannot deadlock the test; stdin is closed when
/// `feed` returns. Returns the output and what `feed` returned.
pub fn run_feeding<T: Send>(
    command: &mut Command,
    feed: impl FnOnce(ChildStdin) -> T + Send,
) -> (Output, T) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || feed(stdin));
        let output = child.wait_with_output().unwrap();
        let fed = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (output, fed)
    })
}

/// Runs `command` with `input` on stdin (see [`run_feeding`]); what a child that stops reading
/// leaves of `input` is dropped.
pub fn run_with_stdin(command: &mut Command, input: &[u8]) -> Output {
    run_feeding(command, |mut stdin| {
        let _ = stdin.write_all(input);
    })
    .0
}

/// Runs `command` (a `ctrace hook`) with `payload` on stdin and asserts the hook contract:
/// exit 0, empty stdout.
pub fn run_hook(command: &mut Command, payload: &[u8]) -> Output {
    let output = run_with_stdin(command, payload);
    assert_eq!(
        output.status.code(),
        Some(0),
        "ctrace hook must exit 0; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout.is_empty(),
        "ctrace hook must print nothing on stdout, printed {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

/// A `UserPromptSubmit` hook payload of `session` whose prompt is `prompt {n}`.
pub fn hook_payload(session: &str, n: u64) -> Vec<u8> {
    format!(
        r#"{{"hook_event_name":"UserPromptSubmit","session_id":"{session}","cwd":"/tmp/p","prompt":"prompt {n}"}}"#
    )
    .into_bytes()
}

/// A `UserPromptSubmit` hook payload of `session` whose prompt is `n`, a space and `size`
/// bytes of letters.
pub fn sized_hook(session: &str, n: u64, size: usize) -> Vec<u8> {
    let prompt: String = (0..size)
        .map(|i| char::from(b'a' + ((i as u64 * 7 + n) % 26) as u8))
        .collect();
    format!(
        r#"{{"hook_event_name":"UserPromptSubmit","session_id":"{session}","cwd":"/tmp/p","prompt":"{n} {prompt}"}}"#
    )
    .into_bytes()
}

/// Asserts exit 0, showing stderr otherwise.
pub fn assert_success(args: &[&str], output: &Output) {
    assert!(
        output.status.success(),
        "ctrace {args:?} failed with {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `ingest --json` summary.
#[derive(Debug, Deserialize)]
pub struct IngestSummary {
    pub files: u64,
    pub unchanged_files: u64,
    pub records: u64,
    pub hook_records: u64,
    pub transcript_records: u64,
    pub bytes: u64,
    pub malformed: BTreeMap<String, u64>,
    pub skipped: Vec<Skipped>,
    pub pending_tail_bytes: u64,
}

/// A skipped file in the ingest summary.
#[derive(Debug, Deserialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// `body.origin` of a record read from a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Origin {
    pub file: String,
    pub position: u64,
    pub len: u64,
}

#[derive(Deserialize)]
struct Line {
    offset: Option<u64>,
    ts: u64,
    time: String,
    source: String,
    session: Option<String>,
    body: Box<RawValue>,
}

/// The fields of `body` the tests look at. The payload fields are read without re-encoding:
/// `payload` stays the exact JSON text ctrace printed.
#[derive(Deserialize)]
struct BodyFields {
    event: Option<String>,
    tool_name: Option<String>,
    tool_use_id: Option<String>,
    agent_id: Option<String>,
    malformed: Option<String>,
    origin: Option<Origin>,
    payload: Option<Box<RawValue>>,
    payload_text: Option<String>,
    payload_base64: Option<String>,
}

/// Which field of `body` carried the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// `payload`: verbatim JSON.
    Json,
    /// `payload_text`: a JSON string.
    Text,
    /// `payload_base64`.
    Base64,
}

/// One line of `cat --json`, with the raw payload bytes reconstructed.
#[derive(Debug)]
pub struct CatRecord {
    pub offset: Option<u64>,
    pub ts: u64,
    pub time: String,
    pub source: String,
    pub session: Option<String>,
    pub kind: String,
    pub event: Option<String>,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub agent_id: Option<String>,
    pub malformed: Option<String>,
    pub origin: Option<Origin>,
    pub repr: Repr,
    /// The payload bytes as reconstructed from whichever field carried them.
    pub raw: Vec<u8>,
    /// The whole output line.
    pub line: String,
}

/// Parses `cat --json` output; asserts every line has exactly one payload field.
pub fn parse_cat(stdout: &[u8]) -> Vec<CatRecord> {
    let text = std::str::from_utf8(stdout).expect("cat --json output is UTF-8");
    text.lines().map(parse_cat_line).collect()
}

fn parse_cat_line(line: &str) -> CatRecord {
    let parsed: Line = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("cat line does not parse ({e}): {}", clip(line)));
    let body: BodyFields = serde_json::from_str(parsed.body.get())
        .unwrap_or_else(|e| panic!("cat body does not parse ({e}): {}", clip(line)));
    let (repr, raw) = match (body.payload, body.payload_text, body.payload_base64) {
        (Some(json), None, None) => (Repr::Json, json.get().as_bytes().to_vec()),
        (None, Some(text), None) => (Repr::Text, text.into_bytes()),
        (None, None, Some(b64)) => (
            Repr::Base64,
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("payload_base64 is valid base64"),
        ),
        _ => panic!(
            "exactly one of payload / payload_text / payload_base64 must be set: {}",
            clip(line)
        ),
    };
    CatRecord {
        offset: parsed.offset,
        ts: parsed.ts,
        time: parsed.time,
        source: parsed.source.clone(),
        session: parsed.session,
        kind: parsed.source,
        event: body.event,
        tool_name: body.tool_name,
        tool_use_id: body.tool_use_id,
        agent_id: body.agent_id,
        malformed: body.malformed,
        origin: body.origin,
        repr,
        raw,
        line: line.to_owned(),
    }
}

/// The first 300 characters of `text`, for failure messages.
pub fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// Non-blank lines of `bytes` as `(position, line)`, the line without its `\n`. A line is
/// blank when it holds only ASCII whitespace.
pub fn nonblank_lines(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push((at, line));
        }
        at += line.len() + 1;
    }
    out
}

/// Whether `text` holds a `\uD800`–`\uDFFF` escape (paired or not).
pub fn has_surrogate_escape(text: &[u8]) -> bool {
    text.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2].eq_ignore_ascii_case(&b'd')
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    })
}

/// Parses a JSON object the way a lenient reader would: every surrogate escape is replaced by
/// `\uFFFD` first, so payloads with lone surrogates still yield their other fields.
pub fn parse_lenient(raw: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut fixed = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut last = 0;
    while i + 6 <= bytes.len() {
        if bytes[i] == b'\\' && bytes[i + 1] == b'u' && has_surrogate_escape(&bytes[i..i + 4]) {
            fixed.push_str(&text[last..i]);
            fixed.push_str("\\uFFFD");
            i += 6;
            last = i;
        } else if bytes[i] == b'\\' {
            i += 2;
        } else {
            i += 1;
        }
    }
    fixed.push_str(&text[last..]);
    match serde_json::from_str(&fixed) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Whether the file-system permissions of this process are enforced (false for root or with
/// `CAP_DAC_OVERRIDE`): tries to create a file in a directory made read-only.
pub fn permissions_enforced(scratch: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.join("perm-probe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let denied = std::fs::write(dir.join("x"), b"x").is_err();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    denied
}
