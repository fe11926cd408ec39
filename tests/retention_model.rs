//! Model test (issue 6): random sequences of append + seal, reopen, age rules (store-wide and
//! per source), pins and `forget` against a `Vec` of `(offset, record)`; after every step the
//! log holds exactly the model's records at the model's offsets, and `verify` is clean.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use ctrace::config::Config;
use ctrace::log::retention::{Pins, Policy, Removal, SourceLimits};
use ctrace::log::{Record, Source, Store, verify};
use ctrace::model::{Body, HookBody, PtyBody, PtyKind};
use ctrace::segments::Offset;
use proptest::prelude::*;

const HOUR: u64 = 3_600 * 1_000_000_000;
const EPOCH: u64 = 1_767_225_600 * 1_000_000_000;
/// The clock of every retention step: 100 h after the first record.
const NOW: u64 = EPOCH + 100 * HOUR;

#[derive(Debug, Clone)]
enum Op {
    /// Append records `(hour, is_pty, session)` and seal them (a new segment).
    Append(Vec<(u64, bool, u8)>),
    /// Drop the handle and open the store again.
    Reopen,
    /// Records older than `hours` go (for one source when given).
    Age {
        hours: u64,
        pty_only: Option<bool>,
    },
    Pin(u8),
    Unpin(u8),
    Forget(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u64..100, any::<bool>(), 0u8..3), 1..30).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        2 => (1u64..100, prop::option::of(any::<bool>()))
            .prop_map(|(hours, pty_only)| Op::Age { hours, pty_only }),
        1 => (0u8..3).prop_map(Op::Pin),
        1 => (0u8..3).prop_map(Op::Unpin),
        1 => (0u8..3).prop_map(Op::Forget),
    ]
}

fn record(hour: u64, pty: bool, session: u8, n: usize) -> Record {
    let session = format!("s{session}");
    let body = if pty {
        Body::Pty(PtyBody {
            kind: PtyKind::Output,
            data: format!("{n} {}", "o".repeat(n % 50)).into_bytes(),
            command: None,
            cwd: None,
            term: None,
            width: None,
            height: None,
            status: None,
        })
    } else {
        Body::Hook(HookBody {
            raw: format!(r#"{{"session_id":"{session}","n":{n}}}"#).into_bytes(),
            ..HookBody::default()
        })
    };
    Record {
        ts: EPOCH + hour * HOUR + n as u64,
        source: if pty { Source::Pty } else { Source::Hook },
        session: Some(session),
        body,
        redactions: 0,
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.storage.segment_age = Duration::from_nanos(1);
    config.storage.block_bytes = 4096;
    config
}

fn sealed(store: &Store) -> Vec<(Offset, Record)> {
    store
        .snapshot()
        .unwrap()
        .scan(Offset(0), Default::default(), false)
        .map(|r| {
            let r = r.unwrap();
            (r.offset.unwrap(), r.record)
        })
        .collect()
}

fn run(dir: &Path, ops: &[Op]) {
    let mut store = Store::open(dir, config()).unwrap();
    // `(offset, record, segment)`: every append + seal writes one new segment.
    let mut model: Vec<(Offset, Record, usize)> = Vec::new();
    let mut segment = 0usize;
    let mut next = 0u64;
    let mut pinned: BTreeSet<String> = BTreeSet::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Append(records) => {
                for &(hour, pty, session) in records {
                    let record = record(hour, pty, session, n);
                    n += 1;
                    store.append(&record).unwrap();
                    model.push((Offset(next), record, segment));
                    next += 1;
                }
                segment += 1;
                store.lock().unwrap().seal().unwrap();
            }
            Op::Reopen => store = Store::open(dir, config()).unwrap(),
            Op::Age { hours, pty_only } => {
                let age = Duration::from_secs(hours * 3600);
                let mut policy = Policy::default();
                match pty_only {
                    None => policy.max_age = Some(age),
                    Some(pty) => {
                        let source = if *pty { Source::Pty } else { Source::Hook };
                        policy.sources.insert(
                            source,
                            SourceLimits {
                                max_age: Some(age),
                                max_bytes: None,
                            },
                        );
                    }
                }
                let cutoff = NOW - hours * HOUR;
                let pins = Pins::load(store.paths()).unwrap();
                let mut lock = store.lock().unwrap();
                let bound = lock.manifest().next_offset;
                let removal = Removal::Policy {
                    policy: &policy,
                    now_ns: NOW,
                    pins: &pins,
                };
                lock.apply_retention(&removal, bound, false).unwrap();
                // The store-wide age takes segments whose newest record expired; a source's age
                // takes single records.
                let newest = |seg: usize| {
                    model
                        .iter()
                        .filter(|(_, _, s)| *s == seg)
                        .map(|(_, r, _)| r.ts)
                        .max()
                        .unwrap_or(0)
                };
                let expired_segments: BTreeSet<usize> = (0..segment)
                    .filter(|seg| pty_only.is_none() && newest(*seg) < cutoff)
                    .collect();
                model.retain(|(_, r, seg)| {
                    let expired = match pty_only {
                        None => expired_segments.contains(seg),
                        Some(pty) => (r.source == Source::Pty) == *pty && r.ts < cutoff,
                    };
                    !expired || pinned.contains(r.session.as_deref().unwrap())
                });
            }
            Op::Pin(s) | Op::Unpin(s) => {
                let session = format!("s{s}");
                let _lock = store.lock().unwrap();
                let mut pins = Pins::load(store.paths()).unwrap();
                if matches!(op, Op::Pin(_)) {
                    pins.insert(&session);
                    pinned.insert(session);
                } else {
                    pins.remove(&session);
                    pinned.remove(&session);
                }
                pins.save(store.paths()).unwrap();
            }
            Op::Forget(s) => {
                let session = format!("s{s}");
                let mut lock = store.lock().unwrap();
                let bound = lock.manifest().next_offset;
                lock.apply_retention(&Removal::Session(&session), bound, false)
                    .unwrap();
                model.retain(|(_, r, _)| r.session.as_deref() != Some(session.as_str()));
            }
        }
        let expected: Vec<(Offset, Record)> =
            model.iter().map(|(o, r, _)| (*o, r.clone())).collect();
        assert_eq!(sealed(&store), expected, "after {op:?}");
        assert_eq!(
            store.snapshot().unwrap().manifest().next_offset,
            Offset(next)
        );
    }
    let report = verify(&store);
    assert!(report.is_clean(), "{:?}", report.damage);
    for (offset, record, _) in &model {
        assert_eq!(
            store.snapshot().unwrap().get(*offset).unwrap().as_ref(),
            Some(record)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn retention_matches_the_model(ops in prop::collection::vec(op(), 1..10)) {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), &ops);
    }
}
