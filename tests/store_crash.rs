//! kill -9 at random moments of appending and of sealing (`DESIGN.md` §3 "Recovery", §8 "No
//! acknowledged record is ever lost").
//!
//! The test binary runs itself as the victim: `crash_child` (an ignored test, run with
//! `--ignored --exact crash_child`) reads its role from `CTRACE_CRASH_ROLE`:
//!
//! - `append`: appends records in a loop and prints `ACK <seq>` (flushed) after each append
//!   returned `Ok`;
//! - `seal`: takes the store lock and seals in a loop;
//! - `mixed`: appends a few records (acknowledging each), seals, and again.
//!
//! The parent kills the victims with SIGKILL after a random delay (0–30 ms), then reopens the
//! store, takes the lock (recovery) and checks that every acknowledged record is present
//! exactly once and no record twice; then it seals and checks again, and `verify` must be
//! clean. Cycles kill an appender, a sealer (with records waiting in the inbox), an appender
//! and a sealer running together, or a process that does both.
//!
//! `CTRACE_CRASH_CYCLES=N` changes the number of cycles (default 200, or 1,000 with
//! `CTRACE_STRESS=full`); `CTRACE_CRASH_SEED=N` replays a run (the seed is printed).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctrace::claude::hook_record;
use ctrace::config::Config;
use ctrace::log::{Store, verify};
use ctrace::segments::Offset;

const ROLE_ENV: &str = "CTRACE_CRASH_ROLE";
const STORE_ENV: &str = "CTRACE_CRASH_STORE";
const CYCLE_ENV: &str = "CTRACE_CRASH_CYCLE";
const SIZE_ENV: &str = "CTRACE_CRASH_SIZE";

/// Small blocks and segments so that seals cut blocks, roll segments and re-pack the tail.
fn config() -> Config {
    let mut config = Config::default();
    config.storage.block_bytes = 4096;
    config.storage.segment_bytes = 64 << 10;
    config
}

/// xorshift64*: enough randomness for delays and choices, reproducible from a printed seed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("CTRACE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| ctrace::now_ns() | 1);
        eprintln!("CTRACE_CRASH_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Identity of one record: (cycle, role, seq).
type Key = (u64, String, u64);

/// Record sizes a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    /// At most ~300 bytes, one `write()` of less than a page.
    Small,
    /// Mostly small; every eighth record ~12 KiB (several pages, so a kill can land inside
    /// its `write()`).
    Mixed,
    /// Every record ~256 KiB.
    Big,
}

impl Size {
    fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Mixed => "mixed",
            Size::Big => "big",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "small" => Size::Small,
            "big" => Size::Big,
            _ => Size::Mixed,
        }
    }
}

/// A record whose payload is JSON naming its cycle, writer role and sequence number, padded
/// per `size`. The padding comes last (see [`key_of`]).
fn record(cycle: u64, role: &str, seq: u64, size: Size) -> ctrace::log::Record {
    let pad_len = match size {
        Size::Big => 256 << 10,
        Size::Mixed if seq % 8 == 7 => 12 << 10,
        _ => (seq % 7) as usize * 40,
    };
    let head = format!(
        r#"{{"session_id":"crash-{cycle}","hook_event_name":"Crash","c":{cycle},"r":"{role}","s":{seq}"#
    );
    let mut raw = head.clone().into_bytes();
    raw.extend_from_slice(br#","pad":""#);
    raw.resize(raw.len() + pad_len, b'z');
    raw.extend_from_slice(b"\"}");
    if size == Size::Big {
        // Extract fields from the head only: parsing 256 KiB of JSON is slow in debug builds
        // and would leave the kill little chance to land inside the write.
        let mut record = hook_record(format!("{head}}}").into_bytes(), seq, None, None);
        if let ctrace::log::Body::Hook(hook) = &mut record.body {
            hook.raw = raw;
        }
        record
    } else {
        hook_record(raw, seq, None, None)
    }
}

fn key_of(raw: &[u8]) -> Key {
    // Parse only the head: the padding is last and large (and debug builds parse slowly).
    let head = raw
        .windows(7)
        .position(|w| w == b",\"pad\":")
        .map_or(raw, |end| &raw[..end]);
    let mut json = head.to_vec();
    json.push(b'}');
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "payload does not parse ({e}): {:.200}",
            String::from_utf8_lossy(raw)
        )
    });
    (
        value["c"].as_u64().unwrap(),
        value["r"].as_str().unwrap().to_owned(),
        value["s"].as_u64().unwrap(),
    )
}

fn ack(out: &mut impl Write, seq: u64) {
    writeln!(out, "ACK {seq}").unwrap();
    out.flush().unwrap();
}

/// The victim process (see the module docs). Not a test by itself: the crash tests run it.
#[test]
#[ignore = "victim process of the crash tests; does nothing unless CTRACE_CRASH_ROLE is set"]
fn crash_child() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let root = std::env::var(STORE_ENV).unwrap();
    let cycle: u64 = std::env::var(CYCLE_ENV).unwrap().parse().unwrap();
    let size = Size::from_name(&std::env::var(SIZE_ENV).unwrap());
    let store = Store::open(Path::new(&root), config()).unwrap();
    let mut out = std::io::stdout().lock();
    let mut seq = 0u64;
    // Bounded so that a victim the parent failed to kill still ends.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match role.as_str() {
            "append" => {
                store.append(&record(cycle, &role, seq, size)).unwrap();
                ack(&mut out, seq);
                seq += 1;
            }
            "seal" => {
                store.lock().unwrap().seal().unwrap();
            }
            "mixed" => {
                for _ in 0..=seq % 8 {
                    store.append(&record(cycle, &role, seq, size)).unwrap();
                    ack(&mut out, seq);
                    seq += 1;
                }
                store.lock().unwrap().seal().unwrap();
            }
            other => panic!("unknown role {other}"),
        }
    }
}

/// A running victim and the thread collecting its acknowledgements.
struct Victim {
    role: &'static str,
    child: Child,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

fn spawn(role: &'static str, root: &Path, cycle: u64, size: Size) -> Victim {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["crash_child", "--exact", "--ignored", "--nocapture", "-q"])
        .env(ROLE_ENV, role)
        .env(STORE_ENV, root)
        .env(CYCLE_ENV, cycle.to_string())
        .env(SIZE_ENV, size.name())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).unwrap();
        bytes
    });
    Victim {
        role,
        child,
        reader,
    }
}

/// Kills the victim with SIGKILL (if it still runs) and returns the acknowledged seqs.
fn kill(mut victim: Victim) -> Vec<u64> {
    let _ = victim.child.kill();
    let status = victim.child.wait().unwrap();
    let mut stderr = String::new();
    victim
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let stdout = victim.reader.join().unwrap();
    // A victim must die by our signal, never by a failure of its own.
    assert!(
        status.code().is_none(),
        "{} victim exited by itself ({status:?}): {stderr}",
        victim.role
    );
    // Only whole lines count: the last one may have been cut by the kill.
    let text = String::from_utf8_lossy(&stdout);
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|line| line.split("ACK ").nth(1))
        .map(|n| n.trim().parse().unwrap())
        .collect()
}

/// Counts each record of a snapshot by key, checking that sealed offsets are dense.
fn census(store: &Store) -> (BTreeMap<Key, u32>, u64) {
    let snapshot = store.snapshot().unwrap();
    let mut counts = BTreeMap::new();
    let mut next = 0u64;
    for stored in snapshot.iter() {
        let stored = stored.unwrap();
        if let Some(offset) = stored.offset {
            assert_eq!(offset, Offset(next), "dense offsets");
            next += 1;
        }
        *counts.entry(key_of(stored.record.raw())).or_insert(0) += 1;
    }
    (counts, snapshot.unsealed_records())
}

/// Every acknowledged record exactly once, no record twice.
fn check(counts: &BTreeMap<Key, u32>, acked: &BTreeSet<Key>, when: &str) {
    let missing: Vec<&Key> = acked.iter().filter(|k| !counts.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{when}: {} acknowledged records lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let doubled: Vec<(&Key, &u32)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "{when}: {} records present more than once, e.g. {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(5)]
    );
}

/// The parent's own appends (acknowledged when `append` returns).
fn prefill(store: &Store, cycle: u64, count: u64, size: Size, acked: &mut BTreeSet<Key>) {
    for seq in 0..count {
        store.append(&record(cycle, "parent", seq, size)).unwrap();
        acked.insert((cycle, "parent".to_owned(), seq));
    }
}

#[derive(Debug, Default)]
struct Stats {
    cycles: u64,
    acked: u64,
    torn_bytes: u64,
    torn_seals: u64,
    /// Bytes of writes cut by a kill that later records followed (skipped by the seal).
    cut_short_bytes: u64,
    recovered_segments: u32,
    recovered_inbox: u32,
    leftover_sealing_files: u64,
}

/// What the cycles of a run do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Rotate: kill an appender; a sealer (records waiting); an appender and a sealer; a
    /// process that appends and seals. Mixed record sizes.
    Rotate,
    /// Only appenders: even cycles append ~256 KiB records, odd cycles small ones, so a
    /// write cut by a kill is followed by small acknowledged records.
    TornThenSmall,
}

/// Runs `cycles` kill cycles. With `seal_every_cycle`, the parent recovers and seals after
/// each one (as the design's recovery does); without, it only takes the lock (recovery) and
/// reads, so that the next victims meet the leftovers of the previous crash, and seals every
/// 10th cycle.
fn run_cycles(cycles: u64, seal_every_cycle: bool, plan: Plan) -> Stats {
    let mut rng = Rng::from_env();
    let mut stats = Stats::default();
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeSet<Key> = BTreeSet::new();
    for cycle in 0..cycles {
        // A fresh store every 10 cycles keeps the checks cheap.
        if cycle % 10 == 0 && cycle > 0 {
            dir = tempfile::tempdir().unwrap();
            acked.clear();
        }
        let root = dir.path().join("store");
        let store = Store::open(&root, config()).unwrap();
        let mut victims = Vec::new();
        match plan {
            Plan::TornThenSmall => {
                let size = if cycle % 2 == 0 {
                    Size::Big
                } else {
                    Size::Small
                };
                victims.push(spawn("append", &root, cycle, size));
            }
            Plan::Rotate => {
                let size = Size::Mixed;
                match cycle % 4 {
                    0 => victims.push(spawn("append", &root, cycle, size)),
                    1 => {
                        prefill(&store, cycle, 20 + rng.below(150), size, &mut acked);
                        victims.push(spawn("seal", &root, cycle, size));
                    }
                    2 => {
                        prefill(&store, cycle, rng.below(50), size, &mut acked);
                        victims.push(spawn("append", &root, cycle, size));
                        victims.push(spawn("seal", &root, cycle, size));
                    }
                    _ => victims.push(spawn("mixed", &root, cycle, size)),
                }
            }
        }
        // Kill each victim at its own random moment.
        let mut delays: Vec<(u64, usize)> =
            (0..victims.len()).map(|i| (rng.below(30_001), i)).collect();
        delays.sort();
        let started = Instant::now();
        let mut slots: Vec<Option<Victim>> = victims.into_iter().map(Some).collect();
        for (delay_us, i) in delays {
            let at = started + Duration::from_micros(delay_us);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let victim = slots[i].take().unwrap();
            let role = victim.role;
            for seq in kill(victim) {
                acked.insert((cycle, role.to_owned(), seq));
            }
        }

        // Recovery, then the invariant on the unsealed + sealed view.
        {
            let lock = store.lock().unwrap();
            stats.recovered_segments += lock.recovery().orphan_segments_removed;
            stats.recovered_inbox += lock.recovery().consumed_inbox_removed;
        }
        stats.leftover_sealing_files += std::fs::read_dir(root.join("inbox"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("sealing-")
            })
            .count() as u64;
        let (counts, _) = census(&store);
        check(&counts, &acked, &format!("cycle {cycle} after recovery"));

        if seal_every_cycle || cycle % 10 == 9 || cycle + 1 == cycles {
            let report = store.lock().unwrap().seal().unwrap();
            stats.torn_bytes += report.torn_bytes;
            stats.torn_seals += u64::from(report.torn_bytes > 0);
            stats.cut_short_bytes += report.skipped_bytes;
            let (counts, unsealed) = census(&store);
            assert_eq!(unsealed, 0, "cycle {cycle}: everything sealed");
            check(
                &counts,
                &acked,
                &format!("cycle {cycle} after recovery and seal"),
            );
            let report = verify(&store);
            assert!(report.is_clean(), "cycle {cycle}: {:?}", report.damage);
        }
        stats.cycles += 1;
    }
    stats.acked = acked.len() as u64;
    stats
}

fn cycles(default: u64) -> u64 {
    std::env::var("CTRACE_CRASH_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(match std::env::var("CTRACE_STRESS").as_deref() {
            Ok("full") => default * 5,
            _ => default,
        })
}

/// ≥ 200 kill cycles, each followed by recovery and a seal.
#[test]
fn kill9_at_random_moments_of_appending_and_sealing() {
    let cycles = cycles(200);
    let started = Instant::now();
    let stats = run_cycles(cycles, true, Plan::Rotate);
    eprintln!("{stats:?} in {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(stats.cycles, cycles);
    // The kills did land where they matter: records were acknowledged, and seals were
    // interrupted (leaving a renamed inbox file or an uncommitted segment to recover).
    assert!(stats.acked > 0);
    if cycles >= 200 {
        assert!(
            stats.leftover_sealing_files + u64::from(stats.recovered_segments) > 0,
            "no kill interrupted a seal: {stats:?}"
        );
    }
}

/// Crashes in a row with no seal in between: the next sealer meets the `sealing-*.wal` file
/// an earlier killed sealer left, and the next appender appends after a write cut by a kill.
#[test]
fn kill9_repeatedly_before_any_recovery_seal() {
    let cycles = cycles(100);
    let started = Instant::now();
    let stats = run_cycles(cycles, false, Plan::Rotate);
    eprintln!("{stats:?} in {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(stats.cycles, cycles);
}

/// A kill inside the `write()` of a ~256 KiB record leaves part of its frame (Linux stops
/// copying at a page boundary once SIGKILL is pending); the next appender's small records
/// land after it and are acknowledged. No sealer runs, so only the torn write is in play.
/// (The inbox scanner used to take such a frame for a torn tail and drop what followed.)
#[test]
fn kill9_inside_a_large_write_then_small_appends() {
    let cycles = cycles(100);
    let started = Instant::now();
    let stats = run_cycles(cycles, false, Plan::TornThenSmall);
    eprintln!("{stats:?} in {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(stats.cycles, cycles);
}

/// The same rename-over without a kill: a seal that fails after renaming `active.wal` aside
/// (here: `segments/` replaced by a file) leaves `sealing-<generation>.wal`; a second failed
/// seal at the same generation renames the new `active.wal` over it. Every acknowledged record
/// must still be there once the fault is gone.
#[test]
fn two_failed_seals_in_a_row_lose_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root, config()).unwrap();
    let mut acked = BTreeSet::new();
    prefill(&store, 0, 10, Size::Small, &mut acked);
    store.lock().unwrap().seal().unwrap();
    let segments = root.join("segments");
    for round in 1..=2u64 {
        prefill(&store, round, 10, Size::Small, &mut acked);
        let mut lock = store.lock().unwrap();
        std::fs::rename(&segments, root.join("segments.away")).unwrap();
        std::fs::write(&segments, b"not a directory").unwrap();
        assert!(lock.seal().is_err(), "round {round}: the seal fails");
        drop(lock);
        std::fs::remove_file(&segments).unwrap();
        std::fs::rename(root.join("segments.away"), &segments).unwrap();
    }
    store.lock().unwrap().seal().unwrap();
    let (counts, _) = census(&store);
    check(&counts, &acked, "after two failed seals and a good one");
    assert_eq!(counts.len(), 30);
}
