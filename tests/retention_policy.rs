//! Retention (issue 6) through the library with an injected clock and consumer bound: age,
//! store size, per-source age and size (segment rewrite with offsets preserved), pinned
//! sessions, `forget`, the consumers' bound, and bad `[retention]` values.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::path::Path;
use std::time::Duration;

use ctrace::config::{Config, ConfigError};
use ctrace::log::retention::{Pins, Policy, Removal};
use ctrace::log::{Record, Source, Store, verify};
use ctrace::model::{Body, HookBody, PtyBody, PtyKind};
use ctrace::segments::Offset;

const DAY: u64 = 86_400 * 1_000_000_000;
/// Day 0 of the synthetic clock (2026-01-01T00:00:00Z).
const EPOCH: u64 = 1_767_225_600 * 1_000_000_000;

fn config() -> Config {
    let mut config = Config::default();
    // Every seal starts a new segment.
    config.storage.segment_age = Duration::from_nanos(1);
    config.storage.block_bytes = 4096;
    config
}

fn record(day: u64, source: Source, session: &str, n: u64) -> Record {
    let ts = EPOCH + day * DAY + n;
    let body = match source {
        Source::Pty => Body::Pty(PtyBody {
            kind: PtyKind::Output,
            data: format!("output {n} of {session} on day {day}\r\n").into_bytes(),
            command: None,
            cwd: None,
            term: None,
            width: None,
            height: None,
            status: None,
        }),
        _ => Body::Hook(HookBody {
            event: Some("PreToolUse".into()),
            raw: format!(r#"{{"session_id":"{session}","n":{n},"day":{day}}}"#).into_bytes(),
            ..HookBody::default()
        }),
    };
    Record {
        ts,
        source,
        session: Some(session.into()),
        body,
        redactions: 0,
    }
}

/// Appends `records` and seals them as one new segment.
fn seal(store: &Store, records: &[Record]) {
    for record in records {
        store.append(record).unwrap();
    }
    store.lock().unwrap().seal().unwrap();
}

/// Every sealed record with its offset.
fn sealed(store: &Store) -> Vec<(Offset, Record)> {
    let snapshot = store.snapshot().unwrap();
    snapshot
        .scan(Offset(0), Default::default(), false)
        .map(|r| {
            let r = r.unwrap();
            (r.offset.unwrap(), r.record)
        })
        .collect()
}

fn assert_clean(store: &Store) {
    let report = verify(store);
    assert!(report.is_clean(), "{:?}", report.damage);
}

/// Five segments, one per day 0..5, each with 20 hook records of session `s<day>`.
fn five_days(dir: &Path) -> Store {
    let store = Store::open(dir, config()).unwrap();
    for day in 0..5 {
        let records: Vec<Record> = (0..20)
            .map(|n| record(day, Source::Hook, &format!("s{day}"), n))
            .collect();
        seal(&store, &records);
    }
    assert_eq!(store.snapshot().unwrap().manifest().segments.len(), 5);
    store
}

fn policy(toml: &str) -> Policy {
    Policy::from_config(&Config::parse(toml, Path::new("c.toml")).unwrap().retention)
}

#[test]
fn age_deletes_whole_segments_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = five_days(dir.path());
    let before = sealed(&store);
    let policy = policy("[retention]\nmax_age = \"4days\"\n");
    let pins = Pins::default();
    // Day 5 + 12h: records before day 1 + 12h have expired: days 0 and 1 go.
    let now = EPOCH + 5 * DAY + DAY / 2;
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: now,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let dry = lock.apply_retention(&removal, next, true).unwrap();
    assert!(!dry.applied);
    assert_eq!(dry.records, 40);
    assert_eq!(dry.deleted_segments(), 2);
    assert_eq!(sealed(&store), before, "a dry run changes nothing");
    let report = lock.apply_retention(&removal, next, false).unwrap();
    assert!(report.applied);
    assert_eq!(report.records, 40);
    assert_eq!(report.deleted_segments(), 2);
    assert_eq!(report.rewritten_segments(), 0);
    assert_eq!(report.sessions.keys().collect::<Vec<_>>(), ["s0", "s1"]);
    assert!(report.freed_bytes() > 0);
    drop(lock);
    let after = sealed(&store);
    let expected: Vec<_> = before.iter().filter(|(o, _)| o.0 >= 40).cloned().collect();
    assert_eq!(after, expected);
    // Offsets are kept: `get` finds the same records, removed offsets are gone.
    let snapshot = store.snapshot().unwrap();
    assert_eq!(
        snapshot.get(Offset(45)).unwrap(),
        Some(before[45].1.clone())
    );
    assert_eq!(snapshot.get(Offset(5)).unwrap(), None);
    assert_eq!(snapshot.sealed_records(), 60);
    assert_clean(&store);
    // Running again removes nothing more; new records get the next offsets.
    let mut lock = store.lock().unwrap();
    assert_eq!(
        lock.apply_retention(&removal, next, false).unwrap().records,
        0
    );
    drop(lock);
    seal(&store, &[record(6, Source::Hook, "s6", 0)]);
    assert_eq!(sealed(&store).last().unwrap().0, Offset(100));
    assert_clean(&store);
}

#[test]
fn nothing_past_the_consumers_bound_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let store = five_days(dir.path());
    let policy = policy("[retention]\nmax_age = \"1h\"\n");
    let pins = Pins::default();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH + 30 * DAY,
        pins: &pins,
    };
    for (bound, kept_from) in [(0, 0), (39, 20), (40, 40), (59, 40), (100, 100)] {
        let dir = tempfile::tempdir().unwrap();
        let copy = five_days(dir.path());
        let mut lock = copy.lock().unwrap();
        let report = lock
            .apply_retention(&removal, Offset(bound), false)
            .unwrap();
        assert_eq!(report.records, kept_from, "bound {bound}");
        drop(lock);
        let first = sealed(&copy).first().map(|(o, _)| o.0);
        assert_eq!(
            first,
            (kept_from < 100).then_some(kept_from),
            "bound {bound}"
        );
        assert_clean(&copy);
    }
    drop(store);
}

#[test]
fn size_deletes_oldest_segments_until_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = five_days(dir.path());
    let segments = store.snapshot().unwrap().manifest().segments.clone();
    let total: u64 = segments.iter().map(|s| s.file_bytes).sum();
    let three_newest: u64 = segments[2..].iter().map(|s| s.file_bytes).sum();
    let policy = policy(&format!("[retention]\nmax_bytes = {three_newest}\n"));
    let pins = Pins::default();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    assert_eq!(report.bytes_before, total);
    assert_eq!(report.bytes_after, three_newest);
    assert_eq!(report.deleted_segments(), 2);
    drop(lock);
    assert_eq!(sealed(&store).first().unwrap().0, Offset(40));
    assert_clean(&store);
}

#[test]
fn per_source_age_rewrites_segments_keeping_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    // Three segments of interleaved hook and PTY records, days 0, 1, 2.
    for day in 0..3 {
        let records: Vec<Record> = (0..60)
            .map(|n| {
                let source = if n % 3 == 0 {
                    Source::Hook
                } else {
                    Source::Pty
                };
                record(day, source, &format!("d{day}"), n)
            })
            .collect();
        seal(&store, &records);
    }
    let before = sealed(&store);
    let policy = policy("[retention.pty]\nmax_age = \"35h\"\n");
    let pins = Pins::default();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH + 2 * DAY + DAY / 2,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    assert_eq!(report.records, 40 + 40);
    assert_eq!(report.rewritten_segments(), 2);
    assert_eq!(report.deleted_segments(), 0);
    drop(lock);
    let keep =
        |(offset, record): &(Offset, Record)| record.source == Source::Hook || offset.0 >= 120;
    let expected: Vec<_> = before.iter().filter(|r| keep(r)).cloned().collect();
    assert_eq!(sealed(&store), expected);
    let snapshot = store.snapshot().unwrap();
    for (offset, record) in &before {
        let got = snapshot.get(*offset).unwrap();
        if keep(&(*offset, record.clone())) {
            assert_eq!(got.as_ref(), Some(record), "offset {offset}");
        } else {
            assert_eq!(got, None, "offset {offset}");
        }
    }
    // Scans from an offset inside a gap start at the next record kept.
    let from: Vec<_> = snapshot
        .scan(Offset(1), Default::default(), false)
        .map(|r| r.unwrap().offset.unwrap())
        .take(2)
        .collect();
    assert_eq!(from, [Offset(3), Offset(6)]);
    assert_eq!(snapshot.manifest().version, 2);
    assert_clean(&store);
    // Sealing after a rewrite starts a new segment; everything still reads back.
    seal(&store, &[record(3, Source::Pty, "d3", 0)]);
    assert_eq!(sealed(&store).last().unwrap().0, Offset(180));
    assert_clean(&store);
    // A second run on rewritten (sparse) segments: hook records of day 0 go by a store age.
    let policy = policy_all_ages();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH + 2 * DAY + DAY / 2,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    assert_eq!(report.records, 20 + 20);
    drop(lock);
    assert_eq!(sealed(&store).first().unwrap().0, Offset(120));
    assert_clean(&store);
}

fn policy_all_ages() -> Policy {
    policy("[retention]\nmax_age = \"35h\"\n")
}

#[test]
fn per_source_size_removes_oldest_records_of_that_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    for day in 0..3 {
        let records: Vec<Record> = (0..30)
            .map(|n| {
                let source = if n % 2 == 0 {
                    Source::Hook
                } else {
                    Source::Pty
                };
                record(day, source, "s", n)
            })
            .collect();
        seal(&store, &records);
    }
    let before = sealed(&store);
    let pty_bytes = |records: &[(Offset, Record)]| -> u64 {
        records
            .iter()
            .filter(|(_, r)| r.source == Source::Pty)
            .map(|(_, r)| r.encode().unwrap().len() as u64)
            .sum()
    };
    let limit = pty_bytes(&before) / 2;
    let policy = policy(&format!("[retention.pty]\nmax_bytes = {limit}\n"));
    let pins = Pins::default();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    drop(lock);
    let after = sealed(&store);
    assert!(pty_bytes(&after) <= limit);
    assert!(report.records > 0);
    // Only PTY records went, the oldest ones: every remaining PTY record is newer than every
    // removed one, and every hook record is still there.
    let removed: Vec<Offset> = report.removed_offsets();
    for offset in &removed {
        let (_, record) = before.iter().find(|(o, _)| o == offset).unwrap();
        assert_eq!(record.source, Source::Pty);
    }
    let kept_pty = after.iter().filter(|(_, r)| r.source == Source::Pty);
    assert!(kept_pty.clone().all(|(o, _)| o > removed.last().unwrap()));
    assert_eq!(
        after
            .iter()
            .filter(|(_, r)| r.source == Source::Hook)
            .count(),
        45
    );
    assert_clean(&store);
}

#[test]
fn pinned_sessions_are_kept_and_forget_removes_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    for day in 0..2 {
        let records: Vec<Record> = (0..40)
            .map(|n| {
                record(
                    day,
                    Source::Hook,
                    if n % 4 == 0 { "keep" } else { "other" },
                    n,
                )
            })
            .collect();
        seal(&store, &records);
    }
    let mut pins = Pins::load(store.paths()).unwrap();
    assert!(pins.insert("keep"));
    pins.save(store.paths()).unwrap();
    let pins = Pins::load(store.paths()).unwrap();
    assert!(pins.contains("keep"));
    let policy = policy("[retention]\nmax_age = \"1h\"\nmax_bytes = 1\n");
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH + 10 * DAY,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    assert_eq!(report.records, 60);
    assert_eq!(report.sessions.keys().collect::<Vec<_>>(), ["other"]);
    drop(lock);
    let left = sealed(&store);
    assert_eq!(left.len(), 20);
    assert!(
        left.iter()
            .all(|(_, r)| r.session.as_deref() == Some("keep"))
    );
    assert_clean(&store);
    // forget ignores pins at this level (the CLI refuses pinned sessions).
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock
        .apply_retention(&Removal::Session("keep"), next, false)
        .unwrap();
    assert_eq!(report.records, 20);
    assert_eq!(report.deleted_segments(), 2);
    drop(lock);
    assert!(sealed(&store).is_empty());
    assert_clean(&store);
    seal(&store, &[record(3, Source::Hook, "new", 0)]);
    assert_eq!(sealed(&store)[0].0, Offset(80));
    assert_clean(&store);
}

#[test]
fn forget_rewrites_mixed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = five_days(dir.path());
    seal(
        &store,
        &(0..10)
            .map(|n| record(5, Source::Hook, if n % 2 == 0 { "s1" } else { "s5" }, n))
            .collect::<Vec<_>>(),
    );
    let before = sealed(&store);
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock
        .apply_retention(&Removal::Session("s1"), next, false)
        .unwrap();
    assert_eq!(report.records, 25);
    assert_eq!(report.deleted_segments(), 1);
    assert_eq!(report.rewritten_segments(), 1);
    drop(lock);
    let expected: Vec<_> = before
        .into_iter()
        .filter(|(_, r)| r.session.as_deref() != Some("s1"))
        .collect();
    assert_eq!(sealed(&store), expected);
    assert_clean(&store);
}

fn invalid_key(toml: &str) -> &'static str {
    match Config::parse(toml, Path::new("c.toml")).unwrap_err() {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn bad_retention_values_name_the_key() {
    assert_eq!(
        invalid_key("[retention]\nmax_age = \"30 parsecs\"\n"),
        "retention.max_age"
    );
    assert_eq!(
        invalid_key("[retention]\nmax_bytes = \"5 GiBs\"\n"),
        "retention.max_bytes"
    );
    assert_eq!(
        invalid_key("[retention]\nmax_age = \"0s\"\n"),
        "retention.max_age"
    );
    assert_eq!(
        invalid_key("[retention]\nmax_bytes = 0\n"),
        "retention.max_bytes"
    );
    assert_eq!(
        invalid_key("[retention.pty]\nmax_age = \"soon\"\n"),
        "retention.pty.max_age"
    );
    assert_eq!(
        invalid_key("[retention.transcript]\nmax_bytes = \"-1\"\n"),
        "retention.transcript.max_bytes"
    );
    for unknown in [
        "[retention]\nmax_agee = \"1d\"\n",
        "[retention.ptty]\nmax_age = \"1d\"\n",
        "[retention.pty]\nkeep = true\n",
        "[retention]\nmax_age = 30\n",
    ] {
        let err = Config::parse(unknown, Path::new("c.toml")).unwrap_err();
        assert!(
            matches!(err, ConfigError::Parse { .. }),
            "{unknown}: {err:?}"
        );
    }
    let config = Config::parse(
        "[retention]\nmax_age = \"30d\"\nmax_bytes = \"5GiB\"\n[retention.pty]\nmax_age = \"7d\"\n",
        Path::new("c.toml"),
    )
    .unwrap();
    let policy = Policy::from_config(&config.retention);
    assert_eq!(policy.max_age, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(policy.max_bytes, Some(5 << 30));
    assert_eq!(
        policy.sources[&Source::Pty].max_age,
        Some(Duration::from_secs(7 * 86_400))
    );
    assert!(Policy::from_config(&Config::default().retention).is_empty());
}

#[test]
fn store_wide_age_takes_whole_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    // One segment spanning days 0 and 3, one of day 1 only.
    seal(
        &store,
        &[
            record(0, Source::Hook, "x", 0),
            record(3, Source::Hook, "x", 1),
        ],
    );
    seal(&store, &[record(1, Source::Hook, "y", 0)]);
    let policy = policy("[retention]\nmax_age = \"2days\"\n");
    let pins = Pins::default();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH + 4 * DAY,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    // The day-0 record is old, but its segment also holds a young one: nothing is rewritten.
    assert_eq!(report.records, 1);
    assert_eq!(report.deleted_segments(), 1);
    assert_eq!(report.rewritten_segments(), 0);
    drop(lock);
    let left: Vec<u64> = sealed(&store).iter().map(|(o, _)| o.0).collect();
    assert_eq!(left, [0, 1]);
    assert_clean(&store);
}

/// Views folded (or rebuilt, e.g. after a schema change) after retention rewrote a segment
/// sparse fold every record it kept: the block walk of the fold used to jump from a gap at the
/// start of a segment to the segment's end and skip its surviving records.
#[test]
fn views_fold_every_record_a_sparse_segment_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    // One segment: 30 PTY records of day 0, then 30 hook records of day 2.
    let mut records: Vec<Record> = (0..30).map(|n| record(0, Source::Pty, "old", n)).collect();
    records.extend((0..30).map(|n| record(2, Source::Hook, &format!("new{}", n % 3), n)));
    seal(&store, &records);
    let policy = policy("[retention.pty]\nmax_age = \"35h\"\n");
    let pins = Pins::default();
    let removal = Removal::Policy {
        policy: &policy,
        now_ns: EPOCH + 2 * DAY + DAY / 2,
        pins: &pins,
    };
    let mut lock = store.lock().unwrap();
    let next = lock.manifest().next_offset;
    let report = lock.apply_retention(&removal, next, false).unwrap();
    drop(lock);
    assert_eq!((report.records, report.rewritten_segments()), (30, 1));
    assert_eq!(sealed(&store).first().unwrap().0, Offset(30));

    let views = ctrace::views::rebuild(&store).unwrap();
    assert_eq!(views.applied_records, 30);
    assert_eq!(views.applied, Offset(60));
    let db = ctrace::views::ViewsDb::open(store.paths()).unwrap();
    let sessions: i64 = db
        .conn()
        .query_row(
            "SELECT count(*) FROM sessions WHERE session LIKE 'new%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(sessions, 3);
}
