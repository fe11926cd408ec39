//! Fault injection at every write, sync, rename and commit (issue 14, "Fault injection, not
//! just kill -9"): every fault point of `src/fault.rs`, with every fault kind (`eio`, `enospc`,
//! `short` for writes, `crash`), in every workload phase that reaches it.
//!
//! The workload (the `ctrace` binary, as a user runs it) ingests transcripts, runs hooks, seals,
//! builds the index, applies retention with `gc` (one segment deleted whole, one rewritten
//! sparse), compacts (views, index, recompression), runs more hooks and compacts again with
//! the tail segment extended. It is run once without faults (the golden run, which keeps a copy
//! of the store before each phase); then each case copies the store from before its phase, runs
//! the phase with `FAILPOINTS` set, the rest of the workload without, and recovery (`ingest`
//! again, `compact`). Then, for every case:
//!
//! - every acknowledged record is present exactly once: every hook that exited 0 (a hook killed
//!   by a `crash` fault is not acknowledged, and may be present or not, never twice), and every
//!   transcript line, which recovery's `ingest` brings in if the faulted one did not; no
//!   record is present twice, none that retention removed comes back;
//! - `verify` is clean (it compares the views with a re-fold of the log and the index with the
//!   log);
//! - the index holds exactly the log's offsets, and the views and the index checkpoints are at
//!   the log's next offset.
//!
//! A `crash` case must kill its phase (the process dies of `SIGABRT` at the point): that proves
//! the point is reached there, so no case passes by never meeting its fault. And the points
//! tested are exactly the points in the sources (`fault::…("name"` calls).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

/// The store's configuration: a segment per seal, small blocks, `fdatasync` after every append
/// (so the sync points are reached), and transcript lines kept for a week.
const CONFIG: &str = "[storage]\nsegment_age = \"1ns\"\nblock_bytes = 4096\ndurability = \"fsync\"\n\
                      [retention.transcript]\nmax_age = \"168h\"\n";
/// The same, with the tail segment extended by the next seal.
const CONFIG_EXTEND: &str = "[storage]\nsegment_age = \"24h\"\nblock_bytes = 4096\n\
                             durability = \"fsync\"\n[retention.transcript]\nmax_age = \"168h\"\n";

/// Fault kinds of a write point, and of any other point.
const WRITE_KINDS: &[&str] = &["eio", "enospc", "short", "crash"];
const OTHER_KINDS: &[&str] = &["eio", "enospc", "crash"];
const CRASH_KINDS: &[&str] = &["crash"];

/// Points of the seal (`ctrace cat` refreshing, or the seal at the end of `ingest`).
const SEAL_POINTS: &[&str] = &[
    "segment-write",
    "segment-sync",
    "seal-segment-rename",
    "dir-sync",
    "manifest-write",
    "manifest-sync",
    "manifest-rename",
    "manifest-dir-sync",
    "seal-inbox-delete",
];

/// One command of the workload.
#[derive(Debug, Clone)]
enum Step {
    /// `ctrace hook` with a payload carrying this sequence id.
    Hook(String),
    /// `ctrace ARGS` (paths given as they are).
    Run(Vec<String>),
    /// Replaces `config.toml`.
    Config(&'static str),
}

/// A phase of the workload and the points a fault there is tested at.
struct Phase {
    name: &'static str,
    steps: Vec<Step>,
    points: Vec<&'static str>,
}

/// One case: a fault `kind` at `point` during `phase`.
#[derive(Debug, Clone)]
struct Case {
    phase: usize,
    point: &'static str,
    kind: &'static str,
}

impl Case {
    /// The `FAILPOINTS` value. A spool fault is met only after the inbox append failed; the
    /// store's spool then fails once and the fallback spool must take the payload.
    fn failpoints(&self) -> String {
        let action = if self.kind == "crash" {
            "return(crash)".to_owned()
        } else {
            format!("return({})", self.kind)
        };
        if self.point.starts_with("spool-") {
            let once = if self.kind == "crash" { "" } else { "1*" };
            format!(
                "inbox-append-write=return(eio);{}={once}{action}",
                self.point
            )
        } else {
            format!("{}={action}", self.point)
        }
    }
}

fn kinds(point: &str) -> &'static [&'static str] {
    if point.ends_with("-write") {
        WRITE_KINDS
    } else if matches!(
        point,
        "retention-rewritten"
            | "retention-committed"
            | "retention-deleted-one"
            | "recompress-written"
            | "recompress-committed"
    ) {
        CRASH_KINDS
    } else {
        OTHER_KINDS
    }
}

fn run_args(args: &[&str]) -> Step {
    Step::Run(args.iter().map(|s| (*s).to_owned()).collect())
}

fn hooks(prefix: &str, n: usize) -> Vec<Step> {
    (0..n)
        .map(|i| Step::Hook(format!("{prefix}-{i}")))
        .collect()
}

fn phases(mixed: &Path) -> Vec<Phase> {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let mut compact2 = vec![Step::Config(CONFIG_EXTEND)];
    compact2.extend(hooks("h2", 3));
    compact2.push(run_args(&["compact"]));
    vec![
        Phase {
            name: "ingest",
            steps: vec![Step::Run(vec![
                "ingest".into(),
                "--quiet".into(),
                path(mixed),
            ])],
            points: [
                &["inbox-producer-write", "inbox-producer-sync"][..],
                SEAL_POINTS,
            ]
            .concat(),
        },
        Phase {
            name: "hook",
            steps: hooks("h1", 4),
            points: vec![
                "inbox-append-write",
                "inbox-append-sync",
                "spool-write",
                "spool-sync",
            ],
        },
        Phase {
            name: "seal",
            steps: vec![run_args(&["cat"])],
            points: [&["seal-inbox-rename"][..], SEAL_POINTS].concat(),
        },
        Phase {
            name: "reindex",
            steps: vec![run_args(&["reindex"])],
            points: vec!["index-commit"],
        },
        Phase {
            name: "gc",
            steps: vec![run_args(&["gc"])],
            points: vec![
                "removal-mark",
                "segment-write",
                "segment-sync",
                "retention-rename",
                "retention-rewritten",
                "dir-sync",
                "manifest-write",
                "manifest-sync",
                "manifest-rename",
                "manifest-dir-sync",
                "retention-committed",
                "retention-delete",
                "retention-deleted-one",
                "index-commit",
                "removal-clear",
            ],
        },
        Phase {
            name: "compact",
            steps: vec![run_args(&["compact"])],
            points: vec![
                "views-rebuild-rename",
                "segment-write",
                "segment-sync",
                "recompress-rename",
                "recompress-written",
                "dir-sync",
                "manifest-write",
                "manifest-sync",
                "manifest-rename",
                "manifest-dir-sync",
                "recompress-committed",
                "recompress-delete",
            ],
        },
        Phase {
            name: "compact2",
            steps: compact2,
            points: vec!["seal-tail-delete", "views-commit", "index-commit"],
        },
    ]
}

/// Transcript lines: `n` lines of session `session`, `age` old, ids `<prefix>-<i>`.
fn transcript(path: &Path, session: &str, lines: &[(&str, Duration)]) {
    let mut text = String::new();
    for (i, (uuid, age)) in lines.iter().enumerate() {
        let at = humantime::format_rfc3339_millis(SystemTime::now() - *age);
        let line = serde_json::json!({
            "type": if i % 2 == 0 { "user" } else { "assistant" },
            "uuid": uuid,
            "sessionId": session,
            "timestamp": at.to_string(),
            "message": {"role": if i % 2 == 0 { "user" } else { "assistant" },
                        "content": format!("line {uuid} of the fault workload")},
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// A case's directory: the store and the `TMPDIR` of its commands.
struct Dir {
    root: PathBuf,
}

impl Dir {
    fn store(&self) -> PathBuf {
        self.root.join("store")
    }

    fn command(&self, args: &[String], failpoints: Option<&str>) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--store")
            .arg(self.store())
            .args(args)
            .current_dir(&self.root)
            .env("CTRACE_HOME", self.store())
            .env("TMPDIR", self.root.join("tmp"))
            .env_remove("CTRACE_LOG")
            .env_remove("CTRACE_PTY_SESSION")
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null());
        if let Some(failpoints) = failpoints {
            command.env("FAILPOINTS", failpoints);
        }
        command
    }

    fn hook(&self, seq: &str, failpoints: Option<&str>) -> Output {
        let payload = serde_json::json!({
            "session_id": "hooks",
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_use_id": format!("toolu_{seq}"),
            "tool_input": {"command": format!("echo {seq}")},
            "tool_response": {"stdout": seq},
            "seq": seq,
        });
        common::run_with_stdin(
            &mut self.command(&["hook".to_owned()], failpoints),
            payload.to_string().as_bytes(),
        )
    }

    /// Runs `step`; returns the output and, for a hook, its sequence id.
    fn step(&self, step: &Step, failpoints: Option<&str>) -> Option<(Output, Option<String>)> {
        match step {
            Step::Hook(seq) => Some((self.hook(seq, failpoints), Some(seq.clone()))),
            Step::Run(args) => Some((self.command(args, failpoints).output().unwrap(), None)),
            Step::Config(text) => {
                std::fs::write(self.store().join("config.toml"), text).unwrap();
                None
            }
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn describe(args: &str, output: &Output) -> String {
    format!(
        "`{args}` exited {:?}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Recovery after the fault cleared: ingest again (idempotent), then compact.
fn recover(dir: &Dir, sources: &[&Path]) -> Result<(), String> {
    let mut ingest = vec!["ingest".to_owned(), "--quiet".to_owned()];
    ingest.extend(sources.iter().map(|p| p.to_str().unwrap().to_owned()));
    for args in [ingest, vec!["compact".to_owned()]] {
        let output = dir.command(&args, None).output().unwrap();
        if !output.status.success() {
            return Err(format!("recovery {}", describe(&args.join(" "), &output)));
        }
    }
    Ok(())
}

/// The records of the store, counted by their id (`seq` of hooks, `uuid` of transcript
/// lines), and their offsets.
fn records(dir: &Dir) -> Result<(BTreeMap<String, u32>, BTreeSet<u64>), String> {
    let output = dir
        .command(&["cat".to_owned(), "--json".to_owned()], None)
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(describe("cat --json", &output));
    }
    let mut ids = BTreeMap::new();
    let mut offsets = BTreeSet::new();
    for record in common::parse_cat(&output.stdout) {
        offsets.insert(record.offset.unwrap());
        let payload: serde_json::Value = serde_json::from_slice(&record.raw).unwrap_or_default();
        let id = payload
            .get("seq")
            .or_else(|| payload.get("uuid"))
            .and_then(|v| v.as_str())
            .map_or_else(
                || format!("unexpected record: {}", record.line),
                str::to_owned,
            );
        *ids.entry(id).or_insert(0) += 1;
    }
    Ok((ids, offsets))
}

/// The checks of the module docs; `unacknowledged` hooks may be missing.
fn check(
    dir: &Dir,
    golden: &BTreeSet<String>,
    unacknowledged: &BTreeSet<String>,
) -> Result<(), String> {
    let verify = dir.command(&["verify".to_owned()], None).output().unwrap();
    if !verify.status.success() || !String::from_utf8_lossy(&verify.stdout).contains("clean") {
        return Err(format!("verify: {}", describe("verify", &verify)));
    }
    let (ids, offsets) = records(dir)?;
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        return Err(format!("records present more than once: {twice:?}"));
    }
    let unexpected: Vec<_> = ids.keys().filter(|id| !golden.contains(*id)).collect();
    if !unexpected.is_empty() {
        return Err(format!("records that should not be there: {unexpected:?}"));
    }
    let lost: Vec<_> = golden
        .iter()
        .filter(|id| !ids.contains_key(*id) && !unacknowledged.contains(*id))
        .collect();
    if !lost.is_empty() {
        return Err(format!("acknowledged records lost: {lost:?}"));
    }
    let paths = ctrace::log::StorePaths::new(&dir.store());
    let indexed: BTreeSet<u64> = ctrace::index::indexed_offsets(&paths)
        .map_err(|e| format!("index: {e}"))?
        .into_iter()
        .collect();
    if indexed != offsets {
        return Err(format!(
            "index documents {} differ from the log's {} records",
            indexed.len(),
            offsets.len()
        ));
    }
    let next = ctrace::log::load_manifest(&paths)
        .map_err(|e| format!("MANIFEST: {e}"))?
        .next_offset;
    let views = ctrace::views::applied_offset(&paths).map_err(|e| format!("views: {e}"))?;
    let index = ctrace::index::applied_offset(&paths).map_err(|e| format!("index: {e}"))?;
    if views != Some(next) || index != Some(next) {
        return Err(format!(
            "checkpoints: views {views:?}, index {index:?}, log next offset {next:?}"
        ));
    }
    Ok(())
}

/// Outcome of one case.
struct Outcome {
    /// The faulted phase was killed by the injected crash.
    crashed: bool,
    /// Problems found (empty: the case passed).
    problem: Option<String>,
}

fn run_case(
    case: &Case,
    phases: &[Phase],
    snapshots: &Path,
    work: &Path,
    sources: &[&Path],
    golden: &BTreeSet<String>,
) -> Outcome {
    let dir = Dir {
        root: work.to_path_buf(),
    };
    std::fs::create_dir_all(dir.root.join("tmp")).unwrap();
    copy_tree(&snapshots.join(case.phase.to_string()), &dir.store());
    let failpoints = case.failpoints();
    let mut crashed = false;
    let mut unacknowledged = BTreeSet::new();
    let mut problem = None;
    for (i, phase) in phases.iter().enumerate().skip(case.phase) {
        let faulted = i == case.phase;
        for step in &phase.steps {
            let Some((output, seq)) = dir.step(step, faulted.then_some(failpoints.as_str())) else {
                continue;
            };
            if output.status.signal() == Some(libc::SIGABRT) {
                crashed = true;
            }
            match seq {
                Some(seq) if !output.status.success() => {
                    unacknowledged.insert(seq);
                }
                Some(_) => {}
                // Commands after the fault cleared must work.
                None if !faulted && !output.status.success() && problem.is_none() => {
                    problem = Some(format!(
                        "after the fault: {}",
                        describe(&format!("{step:?}"), &output)
                    ));
                }
                None => {}
            }
        }
    }
    let problem = problem
        .map(Err)
        .unwrap_or(Ok(()))
        .and_then(|()| recover(&dir, sources))
        .and_then(|()| check(&dir, golden, &unacknowledged))
        .err();
    Outcome { crashed, problem }
}

/// The fault points named in the sources.
fn points_in_sources() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let pattern =
        regex::Regex::new(r#"fault(?:::|_)(?:point|write_all|crash|sqlite)\(\s*"([a-z0-9-]+)""#)
            .unwrap();
    let replace = regex::Regex::new(r"ReplacePoints \{([^}]*)\}").unwrap();
    let quoted = regex::Regex::new(r#""([a-z0-9-]+)""#).unwrap();
    // The point before a new segment file is renamed into place (`manifest::NewSegment`).
    let segment = regex::Regex::new(r#"fault_point: "([a-z0-9-]+)""#).unwrap();
    for entry in walkdir::WalkDir::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
        let entry = entry.unwrap();
        if entry.path().extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for capture in pattern.captures_iter(&text) {
                found.insert(capture[1].to_owned());
            }
            for capture in segment.captures_iter(&text) {
                found.insert(capture[1].to_owned());
            }
            // Points named as data: the steps of an atomic replacement (`fs::ReplacePoints`).
            for block in replace.captures_iter(&text) {
                for name in quoted.captures_iter(&block[1]) {
                    found.insert(name[1].to_owned());
                }
            }
        }
    }
    found
}

/// Issue 14, "Fault injection": every point × every fault kind, see the module docs.
#[test]
fn every_fault_at_every_point_loses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let sources = scratch.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let old_path = sources.join("old.jsonl");
    let mixed_path = sources.join("mixed.jsonl");
    let day = Duration::from_secs(86_400);
    let old_ids: Vec<String> = (0..8).map(|i| format!("old-{i}")).collect();
    transcript(
        &old_path,
        "old",
        &old_ids
            .iter()
            .map(|id| (id.as_str(), day * 10))
            .collect::<Vec<_>>(),
    );
    // Old and new lines in one segment: retention rewrites it sparse.
    let mixed_ids: Vec<(String, Duration)> = (0..12)
        .map(|i| {
            if i % 3 == 0 {
                (format!("mixed-old-{i}"), day * 10)
            } else {
                (format!("mixed-new-{i}"), Duration::from_secs(600))
            }
        })
        .collect();
    transcript(
        &mixed_path,
        "mixed",
        &mixed_ids
            .iter()
            .map(|(id, age)| (id.as_str(), *age))
            .collect::<Vec<_>>(),
    );
    let phases = phases(&mixed_path);
    let source_list = [old_path.as_path(), mixed_path.as_path()];

    // The golden run: the store before each phase, and the records at the end.
    let snapshots = scratch.path().join("snapshots");
    let golden_dir = Dir {
        root: scratch.path().join("golden"),
    };
    std::fs::create_dir_all(golden_dir.root.join("tmp")).unwrap();
    std::fs::create_dir_all(golden_dir.store()).unwrap();
    std::fs::write(golden_dir.store().join("config.toml"), CONFIG).unwrap();
    let first = golden_dir
        .command(
            &[
                "ingest".into(),
                "--quiet".into(),
                old_path.to_str().unwrap().into(),
            ],
            None,
        )
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", describe("ingest", &first));
    for (i, phase) in phases.iter().enumerate() {
        copy_tree(&golden_dir.store(), &snapshots.join(i.to_string()));
        for step in &phase.steps {
            if let Some((output, _)) = golden_dir.step(step, None) {
                assert!(
                    output.status.success(),
                    "golden {}: {}",
                    phase.name,
                    describe(&format!("{step:?}"), &output)
                );
            }
        }
    }
    recover(&golden_dir, &source_list).unwrap();
    let (golden_ids, _) = records(&golden_dir).unwrap();
    let golden: BTreeSet<String> = golden_ids.keys().cloned().collect();
    // The workload did what the cases rely on: retention removed the old lines, kept the rest.
    let expected: BTreeSet<String> = mixed_ids
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| id.starts_with("mixed-new"))
        .chain(
            phases
                .iter()
                .flat_map(|p| &p.steps)
                .filter_map(|s| match s {
                    Step::Hook(seq) => Some(seq.clone()),
                    _ => None,
                }),
        )
        .collect();
    assert_eq!(golden, expected, "the golden run");
    assert!(golden_ids.values().all(|n| *n == 1));
    check(&golden_dir, &golden, &BTreeSet::new()).unwrap();

    // Every point in the sources is tested.
    let tested: BTreeSet<String> = phases
        .iter()
        .flat_map(|p| p.points.iter().map(|s| (*s).to_owned()))
        .collect();
    assert_eq!(
        tested,
        points_in_sources(),
        "points tested vs points in src/"
    );

    let cases: Vec<Case> = phases
        .iter()
        .enumerate()
        .flat_map(|(phase, p)| {
            p.points.iter().flat_map(move |point| {
                kinds(point)
                    .iter()
                    .map(move |kind| Case { phase, point, kind })
            })
        })
        .collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let work = scratch.path().join(format!("case-{i}"));
                    let outcome = run_case(case, &phases, &snapshots, &work, &source_list, &golden);
                    if outcome.problem.is_none() {
                        let _ = std::fs::remove_dir_all(&work);
                    }
                    results.lock().unwrap().push((i, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut failures = Vec::new();
    for (i, outcome) in &results {
        let case = &cases[*i];
        let label = format!(
            "phase {} point {} kind {} (FAILPOINTS={:?})",
            phases[case.phase].name,
            case.point,
            case.kind,
            case.failpoints()
        );
        if case.kind == "crash" && !outcome.crashed {
            failures.push(format!("{label}: the point was never reached"));
        }
        if let Some(problem) = &outcome.problem {
            failures.push(format!("{label}: {problem}"));
        }
    }
    eprintln!(
        "fault injection: {} cases ({} points, {} phase × point pairs), {} failed",
        cases.len(),
        tested.len(),
        phases.iter().map(|p| p.points.len()).sum::<usize>(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
