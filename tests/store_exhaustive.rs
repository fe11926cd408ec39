//! Exhaustive damage tests of the inbox and of sealed segments (`DESIGN.md` §3, §8).
//!
//! - An inbox file cut at every byte position seals exactly the whole records before the cut.
//! - Every single-byte flip (xor `0x01` and xor `0xff`, at every position) of an inbox file and
//!   of a sealed segment is reported as damage by `verify`.
//! - A damaged or torn record in the middle of an inbox file costs at most that record when the
//!   file is sealed: the records after it were acknowledged to their writers and must survive.
//!   These two check every frame-header byte and a sample of payload bytes by default, every
//!   byte with `CTRACE_STRESS=full`.
//!
//! The inbox holds ~20 varied records (valid JSON, empty, whitespace, non-UTF-8, invalid JSON,
//! lone surrogates, a JSON array, the frame magic inside a payload, a transcript line, and one
//! record larger than the 4 KiB frame limit, chained over continuation frames).
//!
//! Stores live on `/dev/shm` when it exists (fsync is free there, and thousands of seals run
//! here), else in the default temp dir; `CTRACE_TEST_TMPDIR` overrides both.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

use std::path::{Path, PathBuf};

use ctrace::claude::{hook_record, transcript_record};
use ctrace::config::Config;
use ctrace::log::manifest::Manifest;
use ctrace::log::{Record, Store, verify};
use ctrace::model::Origin;
use ctrace::segments::frame::{Decoded, HEADER_BYTES, decode_frame, encode_record};
use ctrace::segments::segment::{parse_segment, read_block};
use tempfile::TempDir;

const FRAME_LIMIT: u32 = 4096;
const BASE_TS: u64 = 1_750_000_000_000_000_000;

/// A temp dir on tmpfs when possible (see the module docs).
fn scratch() -> TempDir {
    let preferred = std::env::var_os("CTRACE_TEST_TMPDIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()));
    if let Some(dir) = preferred
        && let Ok(temp) = tempfile::Builder::new()
            .prefix("ctrace-exhaustive-")
            .tempdir_in(dir)
    {
        return temp;
    }
    tempfile::tempdir().unwrap()
}

fn config() -> Config {
    let mut config = Config::default();
    config.storage.frame_limit = u64::from(FRAME_LIMIT);
    config.storage.block_bytes = 4096;
    config.storage.segment_bytes = 16384;
    config
}

/// ~20 varied records, one of them chained across three frames.
fn sample_records() -> Vec<Record> {
    let big_output = "x".repeat(8000);
    let payloads: Vec<Vec<u8>> = vec![
        br#"{"session_id":"s1","hook_event_name":"SessionStart","cwd":"/work","source":"startup"}"#
            .to_vec(),
        br#"{"session_id":"s1","hook_event_name":"UserPromptSubmit","prompt":"list files","prompt_id":"p1"}"#
            .to_vec(),
        Vec::new(),
        b"  \n\t ".to_vec(),
        b"not json at all".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80, b'{', 0xc3],
        br#"{"session_id":"s1","hook_event_name":"Notification","message":"lone \ud800 surrogate"}"#
            .to_vec(),
        b"[1,2,3]".to_vec(),
        b"CTF1CTF1 the frame magic inside a payload CTF1".to_vec(),
        br#"{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"ls"}}"#
            .to_vec(),
        format!(
            r#"{{"session_id":"s1","hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"t1","tool_response":{{"stdout":"{big_output}"}}}}"#
        )
        .into_bytes(),
        br#"{"session_id":"s2","hook_event_name":"SubagentStop","agent_id":"a1","agent_type":"Explore"}"#
            .to_vec(),
        "{\"session_id\":\"s1\",\"hook_event_name\":\"Stop\",\n  \"pretty\": true\n}".into(),
        br#"{"session_id":"s1","hook_event_name":"UnknownFutureEvent","x":[{"y":null}]}"#.to_vec(),
        "{\"session_id\":\"s\u{e9}\",\"hook_event_name\":\"Notification\",\"message\":\"caf\u{e9} \u{1f980}\"}"
            .into(),
        b"{".to_vec(),
        vec![0u8; 300],
        br#"{"session_id":"s1","hook_event_name":"SessionEnd","reason":"exit"}"#.to_vec(),
        br#"{"session_id":"s3","hook_event_name":"PreCompact","trigger":"auto","transcript_path":"/t/s3.jsonl"}"#
            .to_vec(),
        b"null".to_vec(),
    ];
    let mut records: Vec<Record> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, raw)| hook_record(raw, BASE_TS + i as u64 * 1_000, None, None))
        .collect();
    let line = br#"{"type":"assistant","uuid":"u1","sessionId":"s1","timestamp":"2025-06-26T11:45:51.979Z","message":{"id":"m1","model":"claude-x","usage":{"input_tokens":3,"output_tokens":5}}}"#;
    records.insert(
        5,
        transcript_record(
            line.to_vec(),
            Origin {
                file: "/home/u/.claude/projects/p/s1.jsonl".into(),
                position: 0,
                len: line.len() as u64,
            },
            BASE_TS,
            Some("s1"),
        ),
    );
    records
}

/// One record's frames as `Store::append` writes them.
fn framed(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(&mut out, &record.encode().unwrap(), FRAME_LIMIT);
    out
}

/// Appends `records` through the store API and returns `inbox/active.wal`'s bytes and the
/// byte position where each record ends.
fn inbox_bytes(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let dir = scratch();
    let store = Store::open(dir.path(), config()).unwrap();
    for record in records {
        store.append(record).unwrap();
    }
    let bytes = std::fs::read(dir.path().join("inbox/active.wal")).unwrap();
    let mut ends = Vec::new();
    let mut expected = Vec::new();
    for record in records {
        expected.extend_from_slice(&framed(record));
        ends.push(expected.len());
    }
    assert_eq!(
        bytes, expected,
        "the inbox holds exactly the records' frames"
    );
    (bytes, ends)
}

/// A fresh store at `root` whose `inbox/active.wal` holds `bytes`.
fn store_with_inbox(root: &Path, bytes: &[u8]) -> Store {
    let store = Store::open(root, config()).unwrap();
    std::fs::write(root.join("inbox/active.wal"), bytes).unwrap();
    store
}

/// What a seal left in the store.
struct Sealed {
    report: ctrace::log::SealReport,
    /// The records that decode, in offset order.
    records: Vec<Record>,
    /// Sealed records whose bytes do not decode as a record.
    undecodable: usize,
}

/// Seals everything and reads it back: every record must be sealed, at dense offsets from 0.
fn seal_and_read(store: &Store) -> Sealed {
    let report = store.lock().unwrap().seal().unwrap();
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.unsealed_records(), 0);
    assert_eq!(snapshot.sealed_records(), report.next_offset.0);
    let mut records = Vec::new();
    let mut undecodable = 0;
    for stored in snapshot.iter() {
        match stored {
            Ok(stored) => {
                assert!(stored.offset.is_some());
                records.push(stored.record);
            }
            Err(ctrace::log::LogError::RecordDecode { .. }) => undecodable += 1,
            Err(e) => panic!("reading sealed records: {e}"),
        }
    }
    assert_eq!(
        (records.len() + undecodable) as u64,
        snapshot.sealed_records()
    );
    Sealed {
        report,
        records,
        undecodable,
    }
}

/// Runs `f` on every item of `items`, split over two threads.
fn par_for_each<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let f = &f;
    std::thread::scope(|scope| {
        for half in items.chunks(items.len().div_ceil(2).max(1)) {
            scope.spawn(move || half.iter().for_each(f));
        }
    });
}

#[test]
fn sample_has_a_chained_record() {
    let records = sample_records();
    assert!(records.len() >= 20);
    let chained = records
        .iter()
        .filter(|r| r.encode().unwrap().len() > FRAME_LIMIT as usize)
        .count();
    assert_eq!(chained, 1);
    let (bytes, ends) = inbox_bytes(&records);
    assert_eq!(*ends.last().unwrap(), bytes.len());
}

#[test]
fn inbox_cut_at_every_byte_seals_exactly_the_whole_records_before_it() {
    let records = sample_records();
    let (bytes, ends) = inbox_bytes(&records);
    let base = scratch();
    let cuts: Vec<usize> = (0..=bytes.len()).collect();
    par_for_each(&cuts, |&cut| {
        let root = base.path().join(format!("cut-{cut}"));
        let store = store_with_inbox(&root, &bytes[..cut]);
        let whole = ends.iter().filter(|end| **end <= cut).count();
        let whole_end = if whole == 0 { 0 } else { ends[whole - 1] };
        let Sealed {
            report,
            records: sealed,
            undecodable,
        } = seal_and_read(&store);
        assert_eq!(undecodable, 0, "cut at byte {cut}");
        assert_eq!(sealed, records[..whole], "cut at byte {cut}");
        assert_eq!(report.records, whole as u64, "cut at byte {cut}");
        assert_eq!(report.skipped_bytes, 0, "cut at byte {cut}");
        assert_eq!(
            report.torn_bytes,
            (cut - whole_end) as u64,
            "cut at byte {cut}"
        );
        let check = verify(&store);
        assert!(check.is_clean(), "cut at byte {cut}: {:?}", check.damage);
        assert_eq!(check.records, whole as u64);
        std::fs::remove_dir_all(&root).unwrap();
    });
}

#[test]
fn every_byte_flip_in_an_inbox_file_is_reported_by_verify() {
    let records = sample_records();
    let (bytes, _) = inbox_bytes(&records);
    let base = scratch();
    let positions: Vec<usize> = (0..bytes.len()).collect();
    let halves: Vec<PathBuf> = (0..2)
        .map(|i| base.path().join(format!("half-{i}")))
        .collect();
    std::thread::scope(|scope| {
        for (half, root) in positions.chunks(positions.len().div_ceil(2)).zip(&halves) {
            let bytes = &bytes;
            scope.spawn(move || {
                let store = store_with_inbox(root, bytes);
                assert!(verify(&store).is_clean(), "undamaged inbox is clean");
                let wal = root.join("inbox/active.wal");
                for &at in half {
                    for mask in [0x01u8, 0xff] {
                        let mut damaged = bytes.clone();
                        damaged[at] ^= mask;
                        std::fs::write(&wal, &damaged).unwrap();
                        let report = verify(&store);
                        // A flip in the last frame's header can make it read as a torn tail
                        // (a longer frame cut short), which is what a killed writer leaves and
                        // so is a note, not damage (issue 14 item 14); it is still reported.
                        let torn_note = report.notes.iter().any(|n| n.contains("torn tail"));
                        assert!(
                            !report.damage.is_empty() || torn_note,
                            "flip {mask:#04x} at inbox byte {at} not reported"
                        );
                    }
                }
            });
        }
    });
}

/// The records that fit one frame, three times over (different timestamps), so that they
/// fill several 4 KiB blocks but stay below `segment_bytes` (one segment file).
fn small_records_thrice(records: Vec<Record>) -> Vec<Record> {
    let small: Vec<Record> = records
        .into_iter()
        .filter(|r| r.encode().unwrap().len() <= FRAME_LIMIT as usize)
        .collect();
    (0..3u64)
        .flat_map(|round| {
            small.iter().cloned().map(move |mut r| {
                r.ts += round * 1_000_000;
                r
            })
        })
        .collect()
}

/// Seals `records` into one segment (several blocks) and returns the store dir, the segment
/// path and the MANIFEST.
fn sealed_store(records: &[Record]) -> (TempDir, PathBuf, Manifest) {
    let dir = scratch();
    let store = Store::open(dir.path(), config()).unwrap();
    for record in records {
        store.append(record).unwrap();
    }
    let report = store.lock().unwrap().seal().unwrap();
    assert_eq!(report.records, records.len() as u64);
    let manifest = Manifest::load(&store.paths().manifest).unwrap();
    assert_eq!(manifest.segments.len(), 1, "one segment");
    let path = store.paths().segments.join(&manifest.segments[0].file);
    (dir, path, manifest)
}

#[test]
fn every_byte_flip_in_a_sealed_segment_is_reported_by_verify() {
    let records = small_records_thrice(sample_records());
    let (dir, path, manifest) = sealed_store(&records);
    let store = Store::open(dir.path(), config()).unwrap();
    assert!(verify(&store).is_clean());
    let bytes = std::fs::read(&path).unwrap();
    let (_, blocks) = parse_segment(manifest.segments[0].id, &bytes).unwrap();
    assert!(blocks.len() >= 2, "several blocks ({} bytes)", bytes.len());
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            std::fs::write(&path, &damaged).unwrap();
            let report = verify(&store);
            assert!(
                !report.damage.is_empty(),
                "flip {mask:#04x} at segment byte {at} not reported"
            );
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    assert!(verify(&store).is_clean());
}

/// The MANIFEST's whole-file CRC catches every flip by itself; this checks that the segment's
/// own checks (header, block CRCs, index, footer) catch each one too, by updating the MANIFEST
/// to the damaged file's CRC before verifying.
#[test]
fn every_byte_flip_in_a_sealed_segment_is_caught_by_the_segment_own_checks() {
    let records = small_records_thrice(sample_records());
    let (dir, path, manifest) = sealed_store(&records);
    let store = Store::open(dir.path(), config()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let id = manifest.segments[0].id;
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            let detected = match parse_segment(id, &damaged) {
                Err(_) => true,
                Ok((_, blocks)) => blocks
                    .iter()
                    .any(|meta| read_block(id, &damaged, meta).is_err()),
            };
            assert!(detected, "flip {mask:#04x} at segment byte {at} undetected");
            let mut fixed = manifest.clone();
            fixed.segments[0].crc32 = crc32fast::hash(&damaged);
            fixed.commit(&store.paths().manifest).unwrap();
            std::fs::write(&path, &damaged).unwrap();
            let report = verify(&store);
            assert!(
                !report.damage.is_empty(),
                "flip {mask:#04x} at segment byte {at} not reported with a matching MANIFEST crc"
            );
        }
    }
}

/// Whether to test every byte position (`CTRACE_STRESS=full`) rather than every byte of the
/// frame headers and a sample of the payload bytes.
fn every_byte() -> bool {
    std::env::var("CTRACE_STRESS").as_deref() == Ok("full")
}

/// Byte positions where the frames of `bytes` (whole, valid frames) start.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        starts.push(at);
        match decode_frame(&bytes[at..], FRAME_LIMIT, at as u64) {
            Ok(Decoded::Frame(_, size)) => at += size,
            other => panic!("not a whole frame at byte {at}: {other:?}"),
        }
    }
    starts
}

/// The positions of `bytes` to damage: every byte of every frame header, the bytes just before
/// each header, and every 23rd payload byte; all of them under `CTRACE_STRESS=full`.
fn positions_to_damage(bytes: &[u8]) -> Vec<usize> {
    if every_byte() {
        return (0..bytes.len()).collect();
    }
    let starts = frame_starts(bytes);
    (0..bytes.len())
        .filter(|&at| {
            at % 23 == 0
                || starts
                    .iter()
                    .any(|&start| at + 2 >= start && at < start + HEADER_BYTES)
        })
        .collect()
}

/// A torn write in the middle of the inbox: a writer killed inside a multi-page `write()`
/// leaves part of its frames (Linux stops copying at a page boundary when SIGKILL is pending),
/// and later hooks append after it. The later records were acknowledged and must be sealed.
///
/// The torn record (~8 KiB, three frames) is cut inside every frame header and at a sample of
/// payload bytes (at every byte under `CTRACE_STRESS=full`).
#[test]
fn torn_record_in_the_middle_loses_only_itself() {
    let records = sample_records();
    let (big_at, big) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.encode().unwrap().len() > FRAME_LIMIT as usize)
        .unwrap();
    let before = &records[..big_at];
    let after = &records[big_at + 1..big_at + 4];
    let mut head = Vec::new();
    for record in before {
        head.extend_from_slice(&framed(record));
    }
    let mut tail = Vec::new();
    for record in after {
        tail.extend_from_slice(&framed(record));
    }
    let torn = framed(big);
    let base = scratch();
    let cuts: Vec<usize> = positions_to_damage(&torn)
        .into_iter()
        .filter(|&cut| cut > 0)
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    par_for_each(&cuts, |&cut| {
        let root = base.path().join(format!("cut-{cut}"));
        let mut inbox = head.clone();
        inbox.extend_from_slice(&torn[..cut]);
        inbox.extend_from_slice(&tail);
        let store = store_with_inbox(&root, &inbox);
        let sealed = seal_and_read(&store).records;
        let expected: Vec<Record> = before.iter().chain(after).cloned().collect();
        if sealed != expected {
            failures.lock().unwrap().push(cut);
        }
        std::fs::remove_dir_all(&root).unwrap();
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cut positions of the torn record lost later records, e.g. cuts {:?}",
        failures.len(),
        cuts.len(),
        &failures[..failures.len().min(10)]
    );
}

/// Bit rot in one record of an unsealed inbox file costs that record only: the records before
/// and after it are sealed. (A flipped length that pointed past the end of the file used to
/// turn the rest of the file into a "torn tail", dropped at seal.)
///
/// Every byte of every frame header and a sample of payload bytes (every byte under
/// `CTRACE_STRESS=full`), each xor 0x01 and xor 0xff.
#[test]
fn every_byte_flip_in_an_inbox_file_loses_at_most_the_damaged_record() {
    let records = sample_records();
    let (bytes, ends) = inbox_bytes(&records);
    let base = scratch();
    let positions = positions_to_damage(&bytes);
    let failures = std::sync::Mutex::new(Vec::new());
    par_for_each(&positions, |&at| {
        let damaged_record = ends.iter().position(|end| at < *end).unwrap();
        for mask in [0x01u8, 0xff] {
            let root = base.path().join(format!("flip-{at}-{mask}"));
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            let store = store_with_inbox(&root, &damaged);
            let sealed = seal_and_read(&store).records;
            let lost: Vec<usize> = (0..records.len())
                .filter(|i| *i != damaged_record)
                .filter(|i| sealed.iter().filter(|r| **r == records[*i]).count() != 1)
                .collect();
            if !lost.is_empty() {
                failures.lock().unwrap().push((at, mask, lost));
            }
            std::fs::remove_dir_all(&root).unwrap();
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} flips lost records other than the damaged one, e.g. (byte, mask, lost records) {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
