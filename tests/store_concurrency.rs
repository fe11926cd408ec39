//! Many `ctrace hook` processes append while the store is sealed in a loop (`DESIGN.md` §3
//! "Multi-writer append" and "Sealing", §8).
//!
//! 16 writer threads each run `ctrace --store DIR hook` as a new process, one payload at a
//! time (writer id and sequence number in the JSON); meanwhile a thread of this process takes
//! the store lock and seals in a loop (flock is per open file description, so a thread is as
//! good as a process), and another takes snapshots. Afterwards every record is sealed exactly
//! once, none is torn, each writer's records are in its order, and `verify` is clean.
//!
//! Size: by default the acceptance size, 16 × 2,000 hooks (~70 s for a debug build on an idle
//! 2-core machine; each debug `ctrace hook` process costs ~3.5 ms of CPU). `CTRACE_STRESS=quick`
//! runs 16 × 250 (~10 s); `CTRACE_STRESS_HOOKS=N` sets the hooks per writer directly.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ctrace::claude::hook_record;
use ctrace::config::Config;
use ctrace::log::{Record, SealReport, Store, verify};
use ctrace::segments::Offset;

const WRITERS: u64 = 16;

fn hooks_per_writer() -> u64 {
    if let Some(n) = std::env::var("CTRACE_STRESS_HOOKS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return n;
    }
    match std::env::var("CTRACE_STRESS").as_deref() {
        Ok("quick") => 250,
        _ => 2_000,
    }
}

fn payload(writer: u64, seq: u64) -> Vec<u8> {
    format!(
        r#"{{"session_id":"writer-{writer}","hook_event_name":"Stress","w":{writer},"s":{seq}}}"#
    )
    .into_bytes()
}

/// The (writer, seq) a payload carries.
fn parse(raw: &[u8]) -> (u64, u64) {
    let value: serde_json::Value = serde_json::from_slice(raw)
        .unwrap_or_else(|e| panic!("payload {:?}: {e}", String::from_utf8_lossy(raw)));
    (value["w"].as_u64().unwrap(), value["s"].as_u64().unwrap())
}

/// Runs `ctrace --store root hook` with `payload` on stdin; it must exit 0 and print nothing.
fn run_hook(root: &Path, payload: &[u8]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(root)
        .arg("hook")
        .env_remove("CTRACE_PTY_SESSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "hook exited {:?}", output.status);
    assert!(output.stdout.is_empty(), "hook printed on stdout");
    assert!(
        output.stderr.is_empty(),
        "hook reported a problem: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Totals of the seals done while the writers ran.
#[derive(Debug, Default)]
struct SealTotals {
    seals: u64,
    records: u64,
    skipped_bytes: u64,
    torn_bytes: u64,
    undecodable: u64,
}

impl SealTotals {
    fn add(&mut self, report: &SealReport) {
        self.seals += 1;
        self.records += report.records;
        self.skipped_bytes += report.skipped_bytes;
        self.torn_bytes += report.torn_bytes;
        self.undecodable += report.undecodable;
    }
}

/// Checks one snapshot taken while writers append and the sealer seals: sealed records have
/// dense offsets, no (writer, seq) appears twice, and each writer's records are in its order.
/// Returns the number of writers whose visible sequence numbers have a gap (a record
/// acknowledged before a visible one is missing from the view).
fn check_snapshot(store: &Store) -> u64 {
    let snapshot = store.snapshot().unwrap();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen_per_writer: BTreeMap<u64, u64> = BTreeMap::new();
    let mut next_offset = snapshot.first_sealed_offset().map_or(0, |o| o.0);
    for stored in snapshot.iter() {
        let stored = stored.unwrap();
        if let Some(offset) = stored.offset {
            assert_eq!(offset, Offset(next_offset), "dense offsets in a snapshot");
            next_offset += 1;
        }
        let (writer, seq) = parse(stored.record.raw());
        if let Some(previous) = last.insert(writer, seq) {
            assert!(
                seq > previous,
                "snapshot shows writer {writer} seq {seq} after seq {previous}"
            );
        }
        *seen_per_writer.entry(writer).or_default() += 1;
    }
    // Seq k+1 is only sent after seq k was acknowledged, so a view that shows seq m should
    // show all of 0..=m.
    last.iter()
        .filter(|(writer, max)| seen_per_writer[*writer] != **max + 1)
        .count() as u64
}

fn spool_files(store: &Store) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [store.paths().spool.clone(), store.paths().fallback_spool()] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            found.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    found
}

#[test]
fn sixteen_hook_processes_append_while_the_store_seals_in_a_loop() {
    let per_writer = hooks_per_writer();
    let total = WRITERS * per_writer;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root, Config::default()).unwrap();
    let done = AtomicBool::new(false);
    let totals = Mutex::new(SealTotals::default());
    let snapshots = AtomicU64::new(0);
    let gapped_snapshots = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let sealer = Store::open(&root, Config::default()).unwrap();
            while !done.load(Ordering::Acquire) {
                let report = sealer.lock().unwrap().seal().unwrap();
                totals.lock().unwrap().add(&report);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if check_snapshot(&store) > 0 {
                    gapped_snapshots.fetch_add(1, Ordering::Relaxed);
                }
                snapshots.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let root = &root;
                scope.spawn(move || {
                    for seq in 0..per_writer {
                        run_hook(root, &payload(writer, seq));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    let appended = started.elapsed();
    let report = store.lock().unwrap().seal().unwrap();
    let mut totals = totals.into_inner().unwrap();
    totals.add(&report);
    eprintln!(
        "{WRITERS} writers x {per_writer} hooks: {:.1}s; {} seals; {} snapshots checked, {} with a \
         gap",
        appended.as_secs_f64(),
        totals.seals,
        snapshots.load(Ordering::Relaxed),
        gapped_snapshots.load(Ordering::Relaxed),
    );

    // Nothing torn, skipped or undecodable; every record sealed once.
    assert_eq!(totals.records, total, "{totals:?}");
    assert_eq!(totals.skipped_bytes, 0, "{totals:?}");
    assert_eq!(totals.torn_bytes, 0, "{totals:?}");
    assert_eq!(totals.undecodable, 0, "{totals:?}");
    assert!(totals.seals > 1, "the sealer ran while writers appended");
    assert!(spool_files(&store).is_empty(), "no hook had to spool");

    // Exactly `total` records at dense offsets, each (writer, seq) once, each writer in order.
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.unsealed_records(), 0);
    assert_eq!(snapshot.sealed_records(), total);
    let mut next: BTreeMap<u64, u64> = (0..WRITERS).map(|w| (w, 0)).collect();
    let mut count = 0u64;
    for (i, stored) in snapshot.iter().enumerate() {
        let stored = stored.unwrap();
        assert_eq!(stored.offset, Some(Offset(i as u64)));
        let Record { body, .. } = &stored.record;
        let ctrace::log::Body::Hook(hook) = body else {
            panic!("offset {i}: not a hook record");
        };
        assert_eq!(hook.malformed, None);
        let (writer, seq) = parse(&hook.raw);
        assert_eq!(hook.raw, payload(writer, seq), "payload kept byte for byte");
        assert_eq!(
            stored.record.session.as_deref(),
            Some(&*format!("writer-{writer}"))
        );
        let expected = next.get_mut(&writer).unwrap();
        assert_eq!(
            seq, *expected,
            "offset {i}: writer {writer} seq {seq}, expected seq {expected} (order or \
             exactly-once violated)"
        );
        *expected += 1;
        count += 1;
    }
    assert_eq!(count, total);
    assert!(next.values().all(|n| *n == per_writer), "{next:?}");

    // verify: clean, every record checked.
    let check = verify(&store);
    assert!(check.is_clean(), "{:?}", check.damage);
    assert_eq!(check.records, total);
    assert_eq!(check.inbox_records, 0);

    // The CLI agrees: `verify` exits 0, `cat --json` prints every record once, in order.
    let status = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(&root)
        .arg("verify")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ctrace verify: {status:?}");
    let output = Command::new(env!("CARGO_BIN_EXE_ctrace"))
        .arg("--store")
        .arg(&root)
        .args(["cat", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let mut lines = 0u64;
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    for (i, line) in output.stdout.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(value["offset"].as_u64(), Some(i as u64));
        let payload = &value["body"]["payload"];
        let (writer, seq) = (
            payload["w"].as_u64().unwrap(),
            payload["s"].as_u64().unwrap(),
        );
        let expected = next.entry(writer).or_default();
        assert_eq!(seq, *expected);
        *expected += 1;
        lines += 1;
    }
    assert_eq!(lines, total);
}

/// Snapshots taken while writers append and a sealer seals show every record acknowledged
/// before the snapshot started: a view never shows a writer's seq k+1 without its seq k.
///
/// A long-running producer (bulk ingest) holds a large, locked inbox file, which every
/// snapshot reads between listing `inbox/` and reading `active.wal`; writers append in
/// process (`Store::append`) so that many appends race with each seal.
#[test]
fn snapshots_never_miss_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root, Config::default()).unwrap();
    let mut producer = store.producer("bulk").unwrap();
    let pad = "p".repeat(2_000);
    for seq in 0..1_000u64 {
        let raw = format!(r#"{{"w":99,"s":{seq},"pad":"{pad}"}}"#).into_bytes();
        let record = hook_record(raw, seq, None, None);
        producer.append(&record.encode().unwrap()).unwrap();
    }
    producer.flush().unwrap();
    let done = AtomicBool::new(false);
    let gapped = AtomicU64::new(0);
    let snapshots = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                store.lock().unwrap().seal().unwrap();
            }
        });
        for writer in 0..2u64 {
            let (store, done) = (&store, &done);
            scope.spawn(move || {
                let mut seq = 0;
                while !done.load(Ordering::Acquire) {
                    let record = hook_record(payload(writer, seq), seq, None, None);
                    store.append(&record).unwrap();
                    seq += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
        while snapshots.load(Ordering::Relaxed) < 200 && Instant::now() < deadline {
            gapped.fetch_add(check_snapshot(&store).min(1), Ordering::Relaxed);
            snapshots.fetch_add(1, Ordering::Relaxed);
        }
        done.store(true, Ordering::Release);
    });
    drop(producer);
    let gapped = gapped.into_inner();
    let snapshots = snapshots.into_inner();
    eprintln!("{gapped} of {snapshots} snapshots missed an acknowledged record");
    assert_eq!(
        gapped, 0,
        "{gapped} of {snapshots} snapshots missed an acknowledged record"
    );
}
