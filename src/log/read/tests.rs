//! Tests of the block-level read API (issue 15 item 4) over hand-written segments of both
//! block layouts.

use std::path::Path;
use std::sync::Arc;

use super::{Block, Snapshot, TimeRange, map_blocks};
use crate::log::manifest::Manifest;
use crate::model::{Body, HookBody, PtyBody, PtyKind, Record, Source};
use crate::segments::segment::{BlockLayout, SegmentReader, SegmentWriter};
use crate::segments::{Offset, SegmentError, SegmentId};

/// Record `n`: a hook record (even `n`) or a PTY record, at time `1000 + n`.
fn record(n: u64) -> Record {
    let (source, body) = if n.is_multiple_of(2) {
        let raw = format!(
            r#"{{"session_id":"s","n":{n},"pad":"{}"}}"#,
            "x".repeat(200)
        );
        (
            Source::Hook,
            Body::Hook(HookBody {
                event: Some("PreToolUse".into()),
                raw: raw.into_bytes(),
                ..HookBody::default()
            }),
        )
    } else {
        let pty = PtyBody {
            kind: PtyKind::Output,
            data: format!("output {n} {}\r\n", "y".repeat(200)).into_bytes(),
            command: None,
            cwd: None,
            term: None,
            width: None,
            height: None,
            status: None,
        };
        (Source::Pty, Body::Pty(pty))
    };
    Record {
        ts: 1000 + n,
        source,
        session: Some("s".into()),
        body,
        redactions: 0,
    }
}

/// A snapshot of one segment holding `offsets` (sparse when they skip), 1 KiB blocks.
fn snapshot(dir: &Path, layout: BlockLayout, offsets: &[u64]) -> Snapshot {
    let path = dir.join("seg");
    let sparse = offsets.windows(2).any(|w| w[1] != w[0] + 1) || offsets.first() != Some(&0);
    let mut writer =
        SegmentWriter::create_layout(&path, Offset(0), 1024, 1, 1 << 20, sparse, layout).unwrap();
    for &n in offsets {
        let bytes = record(n).encode().unwrap();
        if sparse {
            writer.add_at(Offset(n), &bytes, 1000 + n).unwrap();
        } else {
            writer.add(&bytes, 1000 + n).unwrap();
        }
    }
    writer.finish().unwrap();
    let reader = SegmentReader::open(&path, SegmentId(0)).unwrap();
    Snapshot {
        manifest: Manifest::default(),
        segments: vec![Arc::new(reader)],
        unsealed: Vec::new(),
        unsealed_records: 0,
        unsealed_bytes: 0,
        unsealed_skipped_bytes: 0,
    }
}

fn offsets_of(snapshot: &Snapshot, blocks: &[Block]) -> Vec<u64> {
    let mut out = Vec::new();
    for block in blocks {
        for (k, bytes) in snapshot.read_block(block).unwrap().iter().enumerate() {
            let record = Record::decode(bytes).unwrap();
            assert_eq!(record.ts, 1000 + block.first.0 + k as u64);
            out.push(block.first.0 + k as u64);
        }
    }
    out
}

/// Offset and time ranges select only the blocks that hold them, in order; every record of
/// the log is in exactly one block of the full listing.
#[test]
fn blocks_select_offset_and_time_ranges() {
    for layout in [BlockLayout::Frames, BlockLayout::Columnar] {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<u64> = (0..60).collect();
        let snapshot = snapshot(dir.path(), layout, &all);
        let blocks = snapshot.blocks(.., TimeRange::default());
        assert!(blocks.len() > 4, "{layout:?}: {}", blocks.len());
        assert_eq!(offsets_of(&snapshot, &blocks), all);
        let some = snapshot.blocks(Offset(25)..Offset(35), TimeRange::default());
        assert!(some.len() < blocks.len());
        assert!(some[0].offsets().contains(&Offset(25)), "{some:?}");
        assert!(some.last().unwrap().offsets().contains(&Offset(34)));
        let time = TimeRange {
            since: Some(1050),
            until: None,
        };
        let late = snapshot.blocks(.., time);
        assert!(late.iter().all(|b| b.max_ts >= 1050) && late.len() < blocks.len());
        assert!(late[0].offsets().contains(&Offset(50)));
        assert!(
            snapshot
                .blocks(Offset(60).., TimeRange::default())
                .is_empty()
        );
    }
}

/// The predicate sees compact payloads (hook records of columnar blocks) or encoded records,
/// and only the records it keeps come back, decoded as the full read gives them.
#[test]
fn read_block_selected_decodes_only_kept_records() {
    for layout in [BlockLayout::Frames, BlockLayout::Columnar] {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<u64> = (0..60).collect();
        let snapshot = snapshot(dir.path(), layout, &all);
        let mut kept = Vec::new();
        for block in snapshot.blocks(.., TimeRange::default()) {
            let full = snapshot.read_block(&block).unwrap();
            let selected = snapshot
                .read_block_selected(&block, |c| {
                    if layout == BlockLayout::Columnar && c.offset.0 % 2 == 0 {
                        assert!(!c.encoded, "a hook record of a columnar block is compact");
                        assert!(c.bytes.starts_with(b"{\"session_id\""));
                    }
                    if layout == BlockLayout::Frames {
                        assert!(c.encoded);
                    }
                    let text = String::from_utf8_lossy(c.bytes);
                    text.contains("\"n\":2") || text.contains("output 3")
                })
                .unwrap();
            for (offset, bytes) in selected {
                assert_eq!(bytes, full[(offset.0 - block.first.0) as usize]);
                kept.push(offset.0);
            }
        }
        let expected: Vec<u64> = all
            .iter()
            .copied()
            .filter(|n| {
                (n % 2 == 0 && n.to_string().starts_with('2'))
                    || (n % 2 == 1 && n.to_string().starts_with('3'))
            })
            .collect();
        assert_eq!(kept, expected, "{layout:?}");
    }
}

/// A flipped byte in one block: that block is a `DamagedBlock` naming the file and its offsets
/// by every reading function; the other blocks read.
#[test]
fn a_damaged_block_is_a_typed_error_naming_file_and_offsets() {
    for layout in [BlockLayout::Frames, BlockLayout::Columnar] {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<u64> = (0..60).collect();
        let snapshot = {
            let intact = snapshot(dir.path(), layout, &all);
            let block = intact.blocks(.., TimeRange::default())[1];
            let position = intact.segments[0].blocks()[1].position;
            drop(intact);
            let path = dir.path().join("seg");
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[position as usize + 10] ^= 0x20;
            std::fs::write(&path, bytes).unwrap();
            let reader = SegmentReader::open(&path, SegmentId(0)).unwrap();
            (block, reader)
        };
        let (victim, reader) = snapshot;
        let snapshot = Snapshot {
            manifest: Manifest::default(),
            segments: vec![Arc::new(reader)],
            unsealed: Vec::new(),
            unsealed_records: 0,
            unsealed_bytes: 0,
            unsealed_skipped_bytes: 0,
        };
        let blocks = snapshot.blocks(.., TimeRange::default());
        assert_eq!(blocks[1], victim);
        let errors = [
            snapshot.read_block(&victim).err(),
            snapshot.read_block_selected(&victim, |_| true).err(),
            snapshot.for_each_record_in(&victim, |_, _| {}).err(),
        ];
        for error in errors {
            let error = error.unwrap();
            assert_eq!(error.file, dir.path().join("seg"));
            assert_eq!((error.first, error.end), (victim.first, victim.end));
            assert!(matches!(
                error.source,
                SegmentError::ChecksumMismatch { .. }
            ));
            assert_eq!(error.skipped().first, victim.first);
        }
        for block in blocks.iter().filter(|b| **b != victim) {
            snapshot.read_block(block).unwrap();
        }
    }
}

/// A sparse segment with a leading gap and a gap between blocks: only blocks that exist are
/// listed, and a range inside a gap selects nothing.
#[test]
fn sparse_segments_list_only_present_blocks() {
    for layout in [BlockLayout::Frames, BlockLayout::Columnar] {
        let dir = tempfile::tempdir().unwrap();
        let present: Vec<u64> = (30..50).chain(80..100).collect();
        let snapshot = snapshot(dir.path(), layout, &present);
        let blocks = snapshot.blocks(.., TimeRange::default());
        assert_eq!(offsets_of(&snapshot, &blocks), present);
        assert!(
            snapshot
                .blocks(..Offset(30), TimeRange::default())
                .is_empty()
        );
        assert!(
            snapshot
                .blocks(Offset(50)..Offset(80), TimeRange::default())
                .is_empty()
        );
        let after_gap = snapshot.blocks(Offset(10)..Offset(35), TimeRange::default());
        assert_eq!(after_gap[0].first, Offset(30));
        let mut seen = Vec::new();
        for block in &blocks {
            snapshot
                .for_each_record_in(block, |offset, _| seen.push(offset.0))
                .unwrap();
        }
        assert_eq!(seen, present);
    }
}

/// The parallel driver hands results over in block order and stops when told.
#[test]
fn map_blocks_keeps_order_and_stops_early() {
    let blocks: Vec<Block> = (0..50)
        .map(|k| Block::detached(Offset(k * 10), Offset(k * 10 + 10)))
        .collect();
    let mut seen = Vec::new();
    let flow = map_blocks(
        &blocks,
        7,
        |b| b.first.0,
        |first| {
            seen.push(first);
            if first == 300 {
                std::ops::ControlFlow::Break(first)
            } else {
                std::ops::ControlFlow::Continue(())
            }
        },
    );
    assert_eq!(flow, std::ops::ControlFlow::Break(300));
    assert_eq!(seen, (0..=30).map(|k| k * 10).collect::<Vec<_>>());
}
