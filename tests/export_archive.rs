//! Export archive round trip and bad input (issue 6): `ctrace export -o FILE` then
//! `ctrace import FILE` gives the same records (bytes, times, sources, sessions) apart from
//! offsets; importing again adds nothing; a damaged, truncated, foreign or newer-format archive
//! is refused naming the member, and the store's files are byte-identical afterwards.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use common::{Sandbox, assert_success};
use ctrace::config::Config;
use ctrace::export::archive::{self, ArchiveError};
use ctrace::log::Store;
use ctrace::model::{
    Body, HookBody, InternalBody, Origin, PtyBody, PtyKind, Record, Source, TranscriptBody,
};

const T0: u64 = 1_760_000_000_000_000_000;

fn hook(ts: u64, session: &str, raw: &[u8]) -> Record {
    Record {
        ts,
        source: Source::Hook,
        session: Some(session.into()),
        body: Body::Hook(HookBody {
            event: Some("PreToolUse".into()),
            tool_name: Some("Bash".into()),
            tool_use_id: Some(format!("toolu_{ts}")),
            raw: raw.to_vec(),
            ..HookBody::default()
        }),
        redactions: 0,
    }
}

/// A store with every source, a non-UTF-8 payload, a record without a session, a redaction
/// count, and two records that are identical byte for byte.
fn build_store(store: &Path) {
    let store = Store::open(store, Config::default()).unwrap();
    let mut first = hook(
        T0,
        "s1",
        br#"{"hook_event_name":"PreToolUse","session_id":"s1"}"#,
    );
    if let Body::Hook(body) = &mut first.body {
        body.cwd = Some("/srv/app".into());
    }
    let mut records = vec![
        first,
        hook(T0 + 1, "s1", b"\xff\xfe not utf-8 \x00"),
        Record {
            ts: T0 + 2,
            source: Source::Transcript,
            session: Some("s2".into()),
            body: Body::Transcript(TranscriptBody {
                line_type: Some("assistant".into()),
                uuid: Some("u1".into()),
                origin: Origin {
                    file: "/nonexistent/ctrace-test/s2.jsonl".into(),
                    position: 0,
                    len: 20,
                },
                raw: br#"{"type":"assistant","sessionId":"s2","cwd":"/srv/other"}"#.to_vec(),
                ..TranscriptBody::default()
            }),
            redactions: 2,
        },
        Record {
            ts: T0 + 3,
            source: Source::Pty,
            session: Some("cast-1".into()),
            body: Body::Pty(PtyBody {
                kind: PtyKind::Output,
                data: b"\x1b[1mhello\r\n".to_vec(),
                command: None,
                cwd: None,
                term: None,
                width: None,
                height: None,
                status: None,
            }),
            redactions: 0,
        },
        Record {
            ts: T0 + 4,
            source: Source::Internal,
            session: None,
            body: Body::Internal(InternalBody {
                event: "note".into(),
                detail: "no session".into(),
                data: Vec::new(),
            }),
            redactions: 0,
        },
    ];
    let twin = hook(T0 + 5, "s2", br#"{"same":true}"#);
    records.push(twin.clone());
    records.push(twin);
    for (i, ts) in (0..40u64).map(|i| (i, T0 + 1_000_000_000 * (i + 10))) {
        let session = if i % 2 == 0 { "s1" } else { "s2" };
        records.push(hook(ts, session, format!("{{\"n\":{i}}}").as_bytes()));
    }
    for record in &records {
        store.append(record).unwrap();
    }
    // Half sealed, half left in the inbox: export must take both.
    store.refresh().unwrap();
    store
        .append(&hook(T0 + 999_000_000_000, "s3", b"{\"late\":1}"))
        .unwrap();
}

/// `cat --json` lines without their offsets.
fn records_without_offsets(sandbox: &Sandbox, store: &Path) -> Vec<String> {
    let output = sandbox
        .command_in(store, &["cat", "--json"])
        .output()
        .unwrap();
    assert_success(&["cat", "--json"], &output);
    common::parse_cat(&output.stdout)
        .into_iter()
        .map(|r| {
            let mut value: serde_json::Value = serde_json::from_str(&r.line).unwrap();
            value.as_object_mut().unwrap().remove("offset");
            value.to_string()
        })
        .collect()
}

fn run_in(sandbox: &Sandbox, store: &Path, args: &[&str]) -> std::process::Output {
    sandbox.command_in(store, args).output().unwrap()
}

fn ok_in(sandbox: &Sandbox, store: &Path, args: &[&str]) -> std::process::Output {
    let output = run_in(sandbox, store, args);
    assert_success(args, &output);
    output
}

fn import_json(sandbox: &Sandbox, store: &Path, file: &Path) -> serde_json::Value {
    let args = ["import", "--json", "--quiet", file.to_str().unwrap()];
    let output = ok_in(sandbox, store, &args);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every file of a store except the runtime log, with its bytes.
fn store_files(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(store) {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(store)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().is_file() && !rel.starts_with("logs") {
            files.insert(rel, std::fs::read(entry.path()).unwrap());
        }
    }
    files
}

#[test]
fn round_trip_keeps_every_record_and_reimport_adds_nothing() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    let b = sandbox.path("b");
    build_store(&a);
    let file = sandbox.path("all.tar.zst");
    ok_in(&sandbox, &a, &["export", "-o", file.to_str().unwrap()]);
    let original = records_without_offsets(&sandbox, &a);
    assert_eq!(original.len(), 48);

    let first = import_json(&sandbox, &b, &file);
    assert_eq!(first["added"], 48);
    assert_eq!(first["already_present"], 0);
    let imported = records_without_offsets(&sandbox, &b);
    assert_eq!(imported, original, "cat --json differs apart from offsets");
    // Offsets are dense from 0 in the new store.
    let offsets: Vec<u64> = common::parse_cat(&ok_in(&sandbox, &b, &["cat", "--json"]).stdout)
        .iter()
        .map(|r| r.offset.unwrap())
        .collect();
    assert_eq!(offsets, (0..48).collect::<Vec<_>>());

    let before = store_files(&b);
    let again = import_json(&sandbox, &b, &file);
    assert_eq!(again["added"], 0);
    assert_eq!(again["already_present"], 48);
    assert_eq!(store_files(&b), before, "re-import changed the store");
    // Importing into the store it came from adds nothing either.
    let home = import_json(&sandbox, &a, &file);
    assert_eq!(home["added"], 0);
    assert_eq!(records_without_offsets(&sandbox, &a), original);

    // The same archive imported into a store holding one of the twins adds only the other.
    let c = sandbox.path("c");
    let store = Store::open(&c, Config::default()).unwrap();
    store
        .append(&hook(T0 + 5, "s2", br#"{"same":true}"#))
        .unwrap();
    let partial = import_json(&sandbox, &c, &file);
    assert_eq!(partial["added"], 47);
    assert_eq!(partial["already_present"], 1);
    let mut got = records_without_offsets(&sandbox, &c);
    let mut want = original.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // The archive verifies on its own and describes itself.
    let manifest = archive::verify(&file, Box::new(|_| {})).unwrap();
    assert_eq!(manifest.records, 48);
    assert_eq!(manifest.format_version, archive::FORMAT_VERSION);
    assert_eq!(manifest.sources.get("hook"), Some(&45));
    assert_eq!(manifest.min_ts, Some(T0));
    assert_eq!(manifest.first_offset, Some(0));
    assert_eq!(manifest.members[0].name, archive::HEADER_MEMBER);
    assert!(
        manifest.members[1..]
            .iter()
            .all(|m| m.name.starts_with("records/") && m.sha256.len() == 64)
    );
}

#[test]
fn filters_select_sessions_and_time() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let all = records_without_offsets(&sandbox, &a);

    let file = sandbox.path("s1.tar.zst");
    ok_in(
        &sandbox,
        &a,
        &["export", "--session", "s1", "-o", file.to_str().unwrap()],
    );
    let b = sandbox.path("b");
    import_json(&sandbox, &b, &file);
    let want: Vec<String> = all
        .iter()
        .filter(|line| line.contains(r#""session":"s1""#))
        .cloned()
        .collect();
    assert_eq!(want.len(), 22);
    assert_eq!(records_without_offsets(&sandbox, &b), want);

    // A time window: the records from T0 + 10 s to T0 + 19 s, every session.
    let since = "2025-10-09T08:53:30Z";
    let until = "2025-10-09T08:53:39Z";
    assert_eq!(T0 / 1_000_000_000 + 10, 1_760_000_010);
    let file = sandbox.path("window.jsonl");
    ok_in(
        &sandbox,
        &a,
        &[
            "export",
            "--since",
            since,
            "--until",
            until,
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let lines = std::fs::read_to_string(&file).unwrap();
    let records = common::parse_cat(lines.as_bytes());
    assert_eq!(records.len(), 10, "{lines}");
    assert!(
        records
            .iter()
            .all(|r| (T0 + 10_000_000_000..=T0 + 19_000_000_000).contains(&r.ts))
    );
}

#[test]
fn project_filter_selects_sessions_below_a_directory() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let count = |project: &str| {
        let stdout = ok_in(
            &sandbox,
            &a,
            &["export", "--format", "jsonl", "--project", project],
        )
        .stdout;
        let records = common::parse_cat(&stdout);
        let mut sessions: Vec<String> =
            records.iter().map(|r| r.session.clone().unwrap()).collect();
        sessions.sort();
        sessions.dedup();
        (records.len(), sessions)
    };
    assert_eq!(count("/srv/app"), (22, vec!["s1".to_owned()]));
    assert_eq!(count("/srv/app/").0, 22);
    assert_eq!(count("/srv/other"), (23, vec!["s2".to_owned()]));
    assert_eq!(count("/srv").0, 45);
    assert_eq!(
        count("/sr").0,
        0,
        "a prefix that is not a directory matches nothing"
    );
    // Combined with --session: the intersection.
    let stdout = ok_in(
        &sandbox,
        &a,
        &[
            "export",
            "--format",
            "jsonl",
            "--project",
            "/srv",
            "--session",
            "s2",
        ],
    )
    .stdout;
    assert_eq!(common::parse_cat(&stdout).len(), 23);
}

#[test]
fn jsonl_is_cat_json() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let cat = ok_in(&sandbox, &a, &["cat", "--json"]).stdout;
    let stdout = ok_in(&sandbox, &a, &["export", "--format", "jsonl"]).stdout;
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(cat).unwrap()
    );
}

fn write_tar_zst(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let encoder = zstd::stream::write::Encoder::new(file, 3).unwrap();
    let mut tar = tar::Builder::new(encoder);
    for (name, content) in members {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        tar.append_data(&mut header, name, *content).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

#[test]
fn damaged_and_truncated_archives_are_refused_naming_the_member() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let file = sandbox.path("all.tar.zst");
    ok_in(&sandbox, &a, &["export", "-o", file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();

    // The target store already holds something, so "unchanged" means something.
    let b = sandbox.path("b");
    let store = Store::open(&b, Config::default()).unwrap();
    store.append(&hook(T0 - 1, "other", b"{}")).unwrap();
    store.refresh().unwrap();
    let before = store_files(&b);

    let bad = sandbox.path("bad.tar.zst");
    let mut tried = 0;
    let step = (bytes.len() / 40).max(1);
    for at in (4..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x04;
        std::fs::write(&bad, &damaged).unwrap();
        let error = match archive::verify(&bad, Box::new(|_| {})) {
            Err(error) => error,
            Ok(_) => {
                // Accepted only when the flip changed no content (an unused bit of the zstd
                // frame, or its checksum flag): every member's SHA-256 matched.
                assert_eq!(
                    zstd::decode_all(&damaged[..]).unwrap(),
                    zstd::decode_all(&bytes[..]).unwrap(),
                    "flip at {at} accepted with different content"
                );
                continue;
            }
        };
        assert!(
            matches!(
                error,
                ArchiveError::ChecksumMismatch { .. }
                    | ArchiveError::Damaged { .. }
                    | ArchiveError::Truncated { .. }
                    | ArchiveError::BadMember { .. }
                    | ArchiveError::MissingMember { .. }
                    | ArchiveError::UnexpectedMember { .. }
            ),
            "flip at {at}: {error:?}"
        );
        let output = run_in(&sandbox, &b, &["import", bad.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "flip at {at}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("member"), "flip at {at}: {stderr}");
        tried += 1;
    }
    for cut in (1..bytes.len()).step_by(step) {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let error = archive::verify(&bad, Box::new(|_| {})).unwrap_err();
        assert!(
            matches!(
                error,
                ArchiveError::Truncated { .. }
                    | ArchiveError::MissingMember { .. }
                    | ArchiveError::Damaged { .. }
                    | ArchiveError::NotArchive { .. }
            ),
            "cut at {cut}: {error:?}"
        );
        let output = run_in(&sandbox, &b, &["import", bad.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "cut at {cut}");
        tried += 1;
    }
    assert!(tried > 60, "only {tried} damaged archives were refused");
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );
}

#[test]
fn foreign_and_newer_format_files_are_refused() {
    let sandbox = Sandbox::new();
    let b = sandbox.path("b");
    let store = Store::open(&b, Config::default()).unwrap();
    store.append(&hook(T0, "other", b"{}")).unwrap();
    store.refresh().unwrap();
    let before = store_files(&b);

    let text = sandbox.path("notes.txt");
    std::fs::write(&text, "not an archive\n").unwrap();
    let empty = sandbox.path("empty.tar.zst");
    std::fs::write(&empty, b"").unwrap();
    let plain = sandbox.path("plain.zst");
    std::fs::write(&plain, zstd::encode_all(&b"just text"[..], 3).unwrap()).unwrap();
    let other_tar = sandbox.path("other.tar.zst");
    write_tar_zst(&other_tar, &[("README", b"hello")]);
    let newer = sandbox.path("newer.tar.zst");
    let header = br#"{"format":"ctrace-archive","format_version":2,"ctrace_version":"9.0.0"}"#;
    write_tar_zst(
        &newer,
        &[
            (archive::HEADER_MEMBER, header),
            ("records/00000000.bin", b"future"),
        ],
    );
    for path in [&text, &empty, &plain, &other_tar] {
        let error = archive::verify(path, Box::new(|_| {})).unwrap_err();
        assert!(
            matches!(error, ArchiveError::NotArchive { .. }),
            "{}: {error:?}",
            path.display()
        );
    }
    let error = archive::verify(&newer, Box::new(|_| {})).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::NewerFormat {
                found: 2,
                supported: 1
            }
        ),
        "{error:?}"
    );
    for path in [&text, &empty, &plain, &other_tar, &newer] {
        let output = run_in(&sandbox, &b, &["import", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{}", path.display());
    }
    let missing = sandbox.path("missing.tar.zst");
    let output = run_in(&sandbox, &b, &["import", missing.to_str().unwrap()]);
    assert_ne!(output.status.code(), Some(0));
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );
}
