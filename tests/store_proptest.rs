//! Property tests of the store's decoders and of the store against a model (`DESIGN.md` §8,
//! `STYLE.md` §5).
//!
//! - Decoders never panic, whatever the bytes: the frame decoder and scanner, the sealed
//!   segment parser and block reader (on arbitrary bytes, on damaged segments, and on segments
//!   whose fields are rewritten with valid checksums), the MANIFEST decoder, the config parser,
//!   the hook payload and transcript line parsers, and the record decoder. Where a decoder
//!   accepts its input, the result is checked too (canonical frames, the original records,
//!   values in range, raw bytes kept).
//! - Model test: random sequences of append, seal, reopen, recover and snapshot against a
//!   `Vec` of payloads, with 4 KiB blocks, 16 KiB segments and a 4 KiB frame limit so that
//!   blocks, segments and frame chains all roll.
//!
//! `CTRACE_STRESS=full` multiplies the number of cases by 8.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ctrace::claude::{hook_record, transcript_record};
use ctrace::config::Config;
use ctrace::log::manifest::{Cursor, Manifest, SegmentEntry};
use ctrace::log::{Body, Record, Store, verify};
use ctrace::model::{Malformed, Origin, RecordRef};
use ctrace::segments::frame::{
    Decoded, FRAME_MAGIC, HEADER_BYTES, MAX_FRAME_LIMIT_BYTES, ScanItem, Scanner, decode_frame,
    encode_frame, encode_record,
};
use ctrace::segments::segment::{
    BlockMeta, Footer, SegmentReader, SegmentWriter, parse_segment, read_block,
};
use ctrace::segments::{Offset, SegmentId};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tempfile::TempDir;

fn cases(default: u32) -> u32 {
    match std::env::var("CTRACE_STRESS").as_deref() {
        Ok("full") => default * 8,
        _ => default,
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A temp dir on tmpfs when possible (fsync is free there); `CTRACE_TEST_TMPDIR` overrides.
fn scratch() -> TempDir {
    let preferred = std::env::var_os("CTRACE_TEST_TMPDIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()));
    if let Some(dir) = preferred
        && let Ok(temp) = tempfile::Builder::new()
            .prefix("ctrace-proptest-")
            .tempdir_in(dir)
    {
        return temp;
    }
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Frames.

fn frame_limit() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        1..64u32,
        Just(4096),
        Just(MAX_FRAME_LIMIT_BYTES),
        Just(u32::MAX),
    ]
}

/// Inputs that look like frames often enough to exercise resynchronisation: random bytes,
/// the magic followed by random bytes, valid frames (any flags) and valid frames cut short.
fn frameish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let chunk = prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..32).prop_map(|tail| {
            let mut out = FRAME_MAGIC.to_le_bytes().to_vec();
            out.extend(tail);
            out
        }),
        // Any of the two low flag bits (continues / continued), so that chains, broken chains
        // and stray continuations all occur.
        (vec(any::<u8>(), 0..100), 0..4u8).prop_map(|(payload, flags)| {
            let mut out = Vec::new();
            encode_frame(&mut out, flags, &payload, 4096).unwrap();
            out
        }),
        (vec(any::<u8>(), 0..100), any::<prop::sample::Index>()).prop_map(|(payload, cut)| {
            let mut out = Vec::new();
            encode_frame(&mut out, 0, &payload, 4096).unwrap();
            out.truncate(cut.index(out.len()));
            out
        }),
    ];
    vec(chunk, 0..12).prop_map(|chunks| chunks.concat())
}

/// Scans `buf` and checks that the items tile it: each item starts where the previous one
/// ended, and the scan ends at the end of the buffer or at a torn tail.
fn scan_checked(buf: &[u8], limit: u32) -> Result<(Vec<Vec<u8>>, u64), TestCaseError> {
    let base = 1_000u64;
    let mut scanner = Scanner::new(buf, limit, base);
    let mut at = base;
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut last_record_end = 0usize;
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record {
                position,
                len,
                bytes,
            } => {
                prop_assert_eq!(position, at);
                prop_assert!(len >= HEADER_BYTES as u64);
                prop_assert!(bytes.len() as u64 <= len - HEADER_BYTES as u64);
                at += len;
                last_record_end = (at - base) as usize;
                records.push(bytes);
            }
            ScanItem::Skipped { position, len, .. } => {
                prop_assert_eq!(position, at);
                prop_assert!(len > 0);
                at += len;
                skipped += len;
            }
        }
    }
    let end = (at - base) as usize;
    prop_assert!(end <= buf.len());
    prop_assert!(end == buf.len() || scanner.torn_tail());
    prop_assert_eq!(scanner.valid_len(), last_record_end);
    prop_assert_eq!(scanner.tail_bytes(), buf.len() - last_record_end);
    Ok((records, skipped))
}

proptest! {
    #![proptest_config(config(cases(1024)))]

    #[test]
    fn frame_decoder_never_panics_and_accepts_only_canonical_frames(
        buf in prop_oneof![vec(any::<u8>(), 0..200), frameish_bytes()],
        limit in frame_limit(),
    ) {
        if let Ok(Decoded::Frame(frame, size)) = decode_frame(&buf, limit, 0) {
            prop_assert_eq!(size, HEADER_BYTES + frame.payload.len());
            prop_assert!(size <= buf.len());
            prop_assert!(frame.payload.len() as u64 <= u64::from(limit));
            let mut again = Vec::new();
            encode_frame(&mut again, frame.flags, frame.payload, limit).unwrap();
            prop_assert_eq!(&again[..], &buf[..size]);
        }
    }

    #[test]
    fn frame_scanner_never_panics_and_tiles_its_input(
        buf in prop_oneof![vec(any::<u8>(), 0..2048), frameish_bytes()],
        limit in frame_limit(),
    ) {
        scan_checked(&buf, limit)?;
    }

    #[test]
    fn framed_records_survive_garbage_between_them(
        records in vec(prop_oneof![vec(any::<u8>(), 0..64), vec(any::<u8>(), 100..300)], 0..8),
        garbage in vec(vec(any::<u8>().prop_filter("no magic start", |b| *b != b'C'), 0..24), 8),
        limit in prop_oneof![1..64u32, Just(4096u32)],
    ) {
        let mut buf = Vec::new();
        let mut garbage_bytes = 0;
        for (i, record) in records.iter().enumerate() {
            buf.extend_from_slice(&garbage[i]);
            garbage_bytes += garbage[i].len() as u64;
            encode_record(&mut buf, record, limit);
        }
        let (found, skipped) = scan_checked(&buf, limit)?;
        prop_assert_eq!(found, records);
        prop_assert_eq!(skipped, garbage_bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// Sealed segments.

struct SampleSegment {
    bytes: Vec<u8>,
    records: Vec<Vec<u8>>,
}

/// A valid segment of 60 records in several 512-byte blocks, base offset 10.
fn sample_segment() -> &'static SampleSegment {
    static SAMPLE: OnceLock<SampleSegment> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.seg");
        let mut writer = SegmentWriter::create(&path, Offset(10), 512, 3, 4096).unwrap();
        let mut records = Vec::new();
        for i in 0..60u64 {
            let raw = format!(
                r#"{{"hook_event_name":"E{i}","n":"{}"}}"#,
                "q".repeat(i as usize)
            );
            let bytes = hook_record(raw.into_bytes(), 1_000 + i, None, None)
                .encode()
                .unwrap();
            writer.add(&bytes, 1_000 + i).unwrap();
            records.push(bytes);
        }
        writer.finish().unwrap();
        SampleSegment {
            bytes: std::fs::read(&path).unwrap(),
            records,
        }
    })
}

/// Parses `bytes` as segment `id` and reads every block; never panics. Returns the records
/// when everything checks.
fn open_segment(id: SegmentId, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (_, blocks) = parse_segment(id, bytes).ok()?;
    let mut records = Vec::new();
    let mut ok = true;
    for meta in &blocks {
        match read_block(id, bytes, meta) {
            Ok(found) => records.extend(found),
            Err(_) => ok = false,
        }
    }
    ok.then_some(records)
}

/// Little-endian re-encoding of a segment's header, index and footer around its blocks, with
/// every checksum recomputed (so that only the structural checks can object).
fn rebuild_segment(
    base: u64,
    blocks_bytes: &[u8],
    blocks: &[BlockMeta],
    footer: &Footer,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    out.extend_from_slice(&32u32.to_le_bytes());
    let content_at = out.len();
    out.extend_from_slice(b"CTRACSEG");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&out[content_at..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(blocks_bytes);
    out.extend_from_slice(&0x184D_2A51u32.to_le_bytes());
    out.extend_from_slice(&((blocks.len() * 48 + 4) as u32).to_le_bytes());
    let entries_at = out.len();
    for b in blocks {
        out.extend_from_slice(&b.position.to_le_bytes());
        out.extend_from_slice(&b.compressed_len.to_le_bytes());
        out.extend_from_slice(&b.raw_len.to_le_bytes());
        out.extend_from_slice(&b.first_offset.0.to_le_bytes());
        out.extend_from_slice(&b.count.to_le_bytes());
        out.extend_from_slice(&b.crc32.to_le_bytes());
        out.extend_from_slice(&b.min_ts.to_le_bytes());
        out.extend_from_slice(&b.max_ts.to_le_bytes());
    }
    let crc = crc32fast::hash(&out[entries_at..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0x184D_2A52u32.to_le_bytes());
    out.extend_from_slice(&64u32.to_le_bytes());
    let footer_at = out.len();
    out.extend_from_slice(&footer.index_position.to_le_bytes());
    out.extend_from_slice(&footer.index_len.to_le_bytes());
    out.extend_from_slice(&footer.block_count.to_le_bytes());
    out.extend_from_slice(&footer.base_offset.0.to_le_bytes());
    out.extend_from_slice(&footer.record_count.to_le_bytes());
    out.extend_from_slice(&footer.min_ts.to_le_bytes());
    out.extend_from_slice(&footer.max_ts.to_le_bytes());
    out.extend_from_slice(&footer.raw_bytes.to_le_bytes());
    out.extend_from_slice(b"CTSF");
    let crc = crc32fast::hash(&out[footer_at..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// One field of the header, the block index or the footer, set to a new value.
#[derive(Debug, Clone)]
enum FieldEdit {
    Base(u64),
    Position(prop::sample::Index, u64),
    CompressedLen(prop::sample::Index, u32),
    RawLen(prop::sample::Index, u32),
    FirstOffset(prop::sample::Index, u64),
    Count(prop::sample::Index, u32),
    BlockCrc(prop::sample::Index, u32),
    MinTs(prop::sample::Index, u64),
    IndexPosition(u64),
    IndexLen(u32),
    BlockCount(u32),
    RecordCount(u64),
    RawBytes(u64),
    DropBlock(prop::sample::Index),
}

/// Values near the edges and in range. (A count near `u32::MAX` once made `read_block`
/// allocate ~96 GiB up front and abort the whole test binary; an offset near `u64::MAX` made
/// `parse_segment` overflow. See the regression tests at the end of this file.)
fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        0..100_000u64,
        any::<u64>(),
        (u64::MAX - 100_000)..=u64::MAX,
    ]
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        0..5_000u32,
        Just(u32::MAX),
        any::<u32>()
    ]
}

/// Applies one edit to the decoded header base, footer and block index.
fn apply_edit(edit: &FieldEdit, base: &mut u64, footer: &mut Footer, blocks: &mut Vec<BlockMeta>) {
    let n = blocks.len().max(1);
    let block = |blocks: &mut Vec<BlockMeta>, i: &prop::sample::Index| -> Option<usize> {
        (!blocks.is_empty()).then(|| i.index(n))
    };
    match edit {
        FieldEdit::Base(v) => {
            *base = *v;
            footer.base_offset = Offset(*v);
        }
        FieldEdit::Position(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].position = *v;
            }
        }
        FieldEdit::CompressedLen(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].compressed_len = *v;
            }
        }
        FieldEdit::RawLen(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].raw_len = *v;
            }
        }
        FieldEdit::FirstOffset(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].first_offset = Offset(*v);
            }
        }
        FieldEdit::Count(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].count = *v;
            }
        }
        FieldEdit::BlockCrc(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].crc32 = *v;
            }
        }
        FieldEdit::MinTs(i, v) => {
            if let Some(b) = block(blocks, i) {
                blocks[b].min_ts = *v;
            }
        }
        FieldEdit::IndexPosition(v) => footer.index_position = *v,
        FieldEdit::IndexLen(v) => footer.index_len = *v,
        FieldEdit::BlockCount(v) => footer.block_count = *v,
        FieldEdit::RecordCount(v) => footer.record_count = *v,
        FieldEdit::RawBytes(v) => footer.raw_bytes = *v,
        FieldEdit::DropBlock(i) => {
            if let Some(b) = block(blocks, i) {
                blocks.remove(b);
            }
        }
    }
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        edge_u64().prop_map(FieldEdit::Base),
        (i(), edge_u64()).prop_map(|(i, v)| FieldEdit::Position(i, v)),
        (i(), edge_u32()).prop_map(|(i, v)| FieldEdit::CompressedLen(i, v)),
        (i(), edge_u32()).prop_map(|(i, v)| FieldEdit::RawLen(i, v)),
        (i(), edge_u64()).prop_map(|(i, v)| FieldEdit::FirstOffset(i, v)),
        (i(), edge_u32()).prop_map(|(i, v)| FieldEdit::Count(i, v)),
        (i(), any::<u32>()).prop_map(|(i, v)| FieldEdit::BlockCrc(i, v)),
        (i(), any::<u64>()).prop_map(|(i, v)| FieldEdit::MinTs(i, v)),
        edge_u64().prop_map(FieldEdit::IndexPosition),
        edge_u32().prop_map(FieldEdit::IndexLen),
        edge_u32().prop_map(FieldEdit::BlockCount),
        edge_u64().prop_map(FieldEdit::RecordCount),
        edge_u64().prop_map(FieldEdit::RawBytes),
        i().prop_map(FieldEdit::DropBlock),
    ]
}

proptest! {
    #![proptest_config(config(cases(512)))]

    #[test]
    fn segment_parser_never_panics_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..600),
        id in prop_oneof![Just(0u64), any::<u64>()],
    ) {
        prop_assert!(open_segment(SegmentId(id), &bytes).is_none());
    }

    #[test]
    fn damaged_segments_are_rejected_without_panicking(
        flips in vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        insert in prop::option::of((any::<prop::sample::Index>(), vec(any::<u8>(), 1..16))),
    ) {
        let sample = sample_segment();
        let mut bytes = sample.bytes.clone();
        for (at, mask) in &flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Some((at, extra)) = &insert {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, extra.iter().copied());
        }
        let damaged = !flips.is_empty() || cut.is_some() || insert.is_some();
        match open_segment(SegmentId(10), &bytes) {
            Some(records) => {
                prop_assert!(!damaged, "damaged segment accepted");
                prop_assert_eq!(&records, &sample.records);
            }
            None => prop_assert!(damaged, "intact segment rejected"),
        }
    }

    /// Fields rewritten with valid checksums: only the structural checks stand between them and
    /// the reader. Whatever is accepted must still yield the original records.
    #[test]
    fn segments_with_rewritten_fields_never_panic(
        edits in vec(field_edit(), 1..4),
        fix_totals in any::<bool>(),
        record in any::<prop::sample::Index>(),
    ) {
        let sample = sample_segment();
        let (mut footer, mut blocks) = parse_segment(SegmentId(10), &sample.bytes).unwrap();
        let blocks_bytes = &sample.bytes[40..footer.index_position as usize];
        let mut base = footer.base_offset.0;
        for edit in &edits {
            apply_edit(edit, &mut base, &mut footer, &mut blocks);
        }
        if fix_totals {
            let mut offset = base;
            for b in &mut blocks {
                b.first_offset = Offset(offset);
                offset = offset.wrapping_add(u64::from(b.count));
            }
            footer.block_count = blocks.len() as u32;
            footer.index_len = (8 + blocks.len() * 48 + 4) as u32;
            footer.record_count = offset.wrapping_sub(base);
            footer.raw_bytes = blocks.iter().map(|b| u64::from(b.raw_len)).sum();
            footer.index_position = 40 + blocks_bytes.len() as u64;
        }
        let bytes = rebuild_segment(base, blocks_bytes, &blocks, &footer);
        for id in [SegmentId(base), SegmentId(10), SegmentId(u64::MAX)] {
            if let Some(records) = open_segment(id, &bytes) {
                // Accepted: then it is the original content, possibly at another base offset.
                prop_assert_eq!(&records, &sample.records);
            }
        }
        // The streaming single-record reader goes through the same checks.
        let dir = scratch();
        let path = dir.path().join("edited.seg");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(reader) = SegmentReader::open(&path, SegmentId(base)) {
            for block in 0..reader.blocks().len() {
                let count = reader.blocks()[block].count as usize;
                let _ = reader.read_record_in_block(block, record.index(count.max(1)));
                let _ = reader.read_record_in_block(block, count);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MANIFEST.

fn wrap_manifest(json: &[u8]) -> Vec<u8> {
    let mut out = b"CTMANIF1".to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(json).to_le_bytes());
    out.extend_from_slice(json);
    out
}

fn manifest_strategy() -> impl Strategy<Value = Manifest> {
    let counts = vec((1..1_000u64, "[a-z0-9.-]{1,30}", any::<u32>()), 0..5);
    (
        0..(1u64 << 62),
        0..(1u64 << 62),
        counts,
        vec("[ -~]{0,20}", 0..3),
        vec(("[ -~]{0,20}", any::<u64>()), 0..3),
    )
        .prop_map(|(generation, base, segments, consumed, cursors)| {
            let mut offset = base;
            let segments: Vec<SegmentEntry> = segments
                .into_iter()
                .map(|(count, file, crc32)| {
                    let entry = SegmentEntry {
                        id: SegmentId(offset),
                        file,
                        record_count: count,
                        min_ts: 1,
                        max_ts: 2,
                        raw_bytes: 3,
                        file_bytes: 4,
                        crc32,
                        created_ns: 5,
                        end: None,
                        level: (crc32 % 3 == 0).then_some(9),
                    };
                    offset += count;
                    entry
                })
                .collect();
            Manifest {
                version: 1,
                generation,
                next_offset: Offset(offset),
                segments,
                consumed_inbox: consumed,
                cursors: cursors
                    .into_iter()
                    .map(|(k, end)| (k, Cursor { end }))
                    .collect(),
                retired: Vec::new(),
            }
        })
}

proptest! {
    #![proptest_config(config(cases(512)))]

    #[test]
    fn manifest_decoder_never_panics_on_arbitrary_bytes(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..300),
            vec(any::<u8>(), 0..300).prop_map(|json| wrap_manifest(&json)),
            "\\PC{0,200}".prop_map(|json| wrap_manifest(json.as_bytes())),
        ],
    ) {
        let _ = Manifest::decode(&bytes);
    }

    #[test]
    fn manifest_round_trips_and_edited_json_never_panics(
        manifest in manifest_strategy(),
        flips in vec((any::<prop::sample::Index>(), 1..=255u8), 0..3),
    ) {
        let bytes = manifest.encode().unwrap();
        prop_assert_eq!(Manifest::decode(&bytes).unwrap(), manifest.clone());
        // Flip JSON bytes but keep the checksum valid: the JSON and structure checks remain.
        let mut json = bytes[16..].to_vec();
        for (at, mask) in &flips {
            let at = at.index(json.len());
            json[at] ^= mask;
        }
        if let Ok(decoded) = Manifest::decode(&wrap_manifest(&json)) {
            let mut expected = decoded.segments.first().map_or(0, |s| s.id.0);
            for segment in &decoded.segments {
                prop_assert_eq!(segment.id.0, expected);
                expected = segment.id.0.wrapping_add(segment.record_count);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Config.

fn config_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "\"[0-9.]{0,12} ?[kKmMgGtTiIbB]{0,3}\"",
        "\"[0-9]{1,30}[a-z]{0,3}\"",
        "\"-?[0-9]{0,25}(ns|us|ms|s|m|h|d|w|y|M|x)? ?([0-9]+(s|m))?\"",
        "\"(none|fsync|Fsync|sometimes|)\"",
        Just("true".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        "\"\\PC{0,12}\"",
    ]
}

fn config_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("segment_bytes"),
        Just("segment_age"),
        Just("block_bytes"),
        Just("zstd_level"),
        Just("durability"),
        Just("frame_limit"),
        Just("bogus"),
    ];
    prop_oneof![
        "\\PC{0,200}",
        any::<String>(),
        vec((key, config_value()), 0..7).prop_map(|lines| {
            let mut text = "[storage]\n".to_owned();
            for (key, value) in lines {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text
        }),
    ]
}

proptest! {
    #![proptest_config(config(cases(1024)))]

    #[test]
    fn config_parser_never_panics_and_accepts_only_valid_values(text in config_text()) {
        if let Ok(config) = Config::parse(&text, Path::new("config.toml")) {
            let s = &config.storage;
            prop_assert!((1..=22).contains(&s.zstd_level));
            prop_assert!((4096..=64 << 20).contains(&s.block_bytes));
            prop_assert!(s.segment_bytes >= s.block_bytes);
            prop_assert!((4096..=u64::from(MAX_FRAME_LIMIT_BYTES)).contains(&s.frame_limit));
            prop_assert!(!s.segment_age.is_zero());
            prop_assert_eq!(u64::from(config.frame_limit()), s.frame_limit);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hook payloads, transcript lines, records.

/// Payload-like bytes: anything, JSON-ish text with escapes (lone and paired surrogates), and
/// JSON objects with the fields hooks carry.
fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("hook_event_name"),
        Just("session_id"),
        Just("tool_name"),
        Just("tool_use_id"),
        Just("cwd"),
        Just("transcript_path"),
        Just("type"),
        Just("uuid"),
        Just("timestamp"),
        Just("message"),
        Just("x"),
    ];
    let value = prop_oneof![
        "\"([a-zA-Z0-9 ]|\\\\u[dD][89aAbBcCdDeEfF][0-9a-fA-F]{2}|\\\\u00[0-9a-f]{2}|\\\\[nt\"\\\\/]){0,12}\"",
        "\"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?Z?\"",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("{\"id\":\"m\",\"model\":\"x\",\"usage\":{\"input_tokens\":1}}".to_owned()),
        Just("[1,{\"a\":[]}]".to_owned()),
    ];
    prop_oneof![
        vec(any::<u8>(), 0..300),
        "[{}\\[\\]\":,a-z0-9 \\\\u]{0,80}".prop_map(String::into_bytes),
        vec((field, value), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(",")).into_bytes()
        }),
    ]
}

/// Checks what every parsed record must satisfy: raw bytes kept, the encoding round-trips,
/// the head decodes to the same timestamp, and the malformed flag matches serde_json.
fn check_record(
    record: &Record,
    raw: &[u8],
    malformed: Option<Malformed>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(record.raw(), raw);
    let bytes = record.encode().unwrap();
    prop_assert_eq!(&Record::decode(&bytes).unwrap(), record);
    prop_assert_eq!(RecordRef::decode(&bytes).unwrap().ts, record.ts);
    let is_object = serde_json::from_slice::<serde_json::Value>(raw).is_ok_and(|v| v.is_object());
    if is_object {
        prop_assert_eq!(malformed, None);
    } else {
        prop_assert!(malformed.is_some(), "non-object payload not flagged");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(cases(1024)))]

    #[test]
    fn hook_payloads_are_kept_and_never_panic(raw in payload_bytes(), ts in any::<u64>()) {
        let record = hook_record(raw.clone(), ts, None, None);
        let Body::Hook(hook) = &record.body else {
            return Err(TestCaseError::fail("not a hook body"));
        };
        prop_assert_eq!(record.ts, ts);
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&raw) {
            prop_assert_eq!(
                hook.event.as_deref(),
                map.get("hook_event_name").and_then(|v| v.as_str())
            );
            prop_assert_eq!(
                record.session.as_deref(),
                map.get("session_id").and_then(|v| v.as_str())
            );
        }
        check_record(&record, &raw, hook.malformed)?;
        // Through the bulk-ingest path too (logged payloads may carry their own time).
        let origin = Origin {
            file: "/logs/hooks.jsonl".into(),
            position: 7,
            len: raw.len() as u64,
        };
        let record = hook_record(raw.clone(), ts, Some("pty".into()), Some(origin));
        let Body::Hook(hook) = &record.body else {
            return Err(TestCaseError::fail("not a hook body"));
        };
        prop_assert_eq!(hook.pty_session.as_deref(), Some("pty"));
        check_record(&record, &raw, hook.malformed)?;
    }

    #[test]
    fn transcript_lines_are_kept_and_never_panic(
        raw in payload_bytes(),
        ts in any::<u64>(),
        position in any::<u64>(),
        session in prop::option::of("[a-z0-9-]{0,12}"),
    ) {
        let origin = Origin { file: "/p/s.jsonl".into(), position, len: raw.len() as u64 };
        let record = transcript_record(raw.clone(), origin.clone(), ts, session.as_deref());
        let Body::Transcript(line) = &record.body else {
            return Err(TestCaseError::fail("not a transcript body"));
        };
        prop_assert_eq!(&line.origin, &origin);
        check_record(&record, &raw, line.malformed)?;
    }

    #[test]
    fn record_decoder_never_panics(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..300),
            (payload_bytes(), vec((any::<prop::sample::Index>(), 1..=255u8), 1..4)).prop_map(
                |(raw, flips)| {
                    let mut bytes = hook_record(raw, 5, None, None).encode().unwrap();
                    for (at, mask) in flips {
                        let at = at.index(bytes.len());
                        bytes[at] ^= mask;
                    }
                    bytes
                }
            ),
        ],
    ) {
        let full = Record::decode(&bytes);
        let head = RecordRef::decode(&bytes);
        if let Ok(record) = full {
            // Whatever decodes as a record re-encodes and decodes to the same record.
            let again = record.encode().unwrap();
            prop_assert_eq!(Record::decode(&again).unwrap(), record);
            prop_assert!(head.is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Model test: the store against a Vec of payloads.

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Seal,
    /// A new `Store` handle on the same directory.
    Reopen,
    /// Take the lock (recovery) and release it without sealing.
    Recover,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => prop_oneof![
            8 => vec(any::<u8>(), 0..200),
            2 => "\\{\"hook_event_name\":\"[A-Za-z]{1,12}\",\"session_id\":\"s[0-9]\"\\}"
                .prop_map(String::into_bytes),
            1 => vec(any::<u8>(), 3_000..9_000),
        ]
        .prop_map(Op::Append),
        3 => Just(Op::Seal),
        1 => Just(Op::Reopen),
        1 => Just(Op::Recover),
        2 => Just(Op::Snapshot),
    ]
}

fn model_config() -> Config {
    let mut config = Config::default();
    config.storage.frame_limit = 4096;
    config.storage.block_bytes = 4096;
    config.storage.segment_bytes = 16384;
    config
}

/// The snapshot equals the model: sealed payloads at dense offsets from 0, then the unsealed
/// ones in append order; `get` and `scan` agree with iteration.
fn check_against_model(
    store: &Store,
    model: &[Vec<u8>],
    sealed: usize,
    from: usize,
) -> Result<(), TestCaseError> {
    let snapshot = store.snapshot().unwrap();
    prop_assert_eq!(snapshot.sealed_records(), sealed as u64);
    prop_assert_eq!(snapshot.unsealed_records(), (model.len() - sealed) as u64);
    let mut records = Vec::new();
    for (i, stored) in snapshot.iter().enumerate() {
        let stored = stored.unwrap();
        let expected_offset = (i < sealed).then_some(Offset(i as u64));
        prop_assert_eq!(stored.offset, expected_offset, "record {}", i);
        records.push(stored.record);
    }
    let raws: Vec<&[u8]> = records.iter().map(Record::raw).collect();
    let expected: Vec<&[u8]> = model.iter().map(Vec::as_slice).collect();
    prop_assert_eq!(raws, expected);
    for (i, record) in records.iter().take(sealed).enumerate() {
        let got = snapshot.get(Offset(i as u64)).unwrap();
        prop_assert_eq!(got.as_ref(), Some(record), "get({})", i);
    }
    prop_assert_eq!(snapshot.get(Offset(sealed as u64)).unwrap(), None);
    let from = from.min(sealed);
    let scanned: Vec<Record> = snapshot
        .scan(Offset(from as u64), Default::default(), false)
        .map(|r| r.unwrap().record)
        .collect();
    prop_assert_eq!(&scanned[..], &records[from..sealed]);
    // Segments tile the offsets and respect the configured size.
    let mut next = 0;
    for segment in &snapshot.manifest().segments {
        prop_assert_eq!(segment.id.0, next);
        next = segment.end().0;
    }
    prop_assert_eq!(next, sealed as u64);
    Ok(())
}

proptest! {
    #![proptest_config(config(cases(96)))]

    #[test]
    fn store_matches_a_vec_model(ops in vec(op(), 1..150), from in any::<prop::sample::Index>()) {
        let dir = scratch();
        let root = dir.path().join("store");
        let mut store = Store::open(&root, model_config()).unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut sealed = 0usize;
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Append(raw) => {
                    store.append(&hook_record(raw.clone(), step as u64, None, None)).unwrap();
                    model.push(raw.clone());
                }
                Op::Seal => {
                    let report = store.lock().unwrap().seal().unwrap();
                    prop_assert_eq!(report.records, (model.len() - sealed) as u64);
                    prop_assert_eq!(report.first_offset, Offset(sealed as u64));
                    prop_assert_eq!(report.skipped_bytes + report.torn_bytes, 0);
                    sealed = model.len();
                    prop_assert_eq!(report.next_offset, Offset(sealed as u64));
                }
                Op::Reopen => store = Store::open(&root, model_config()).unwrap(),
                Op::Recover => drop(store.lock().unwrap()),
                Op::Snapshot => {
                    check_against_model(&store, &model, sealed, from.index(sealed.max(1)))?;
                }
            }
        }
        check_against_model(&store, &model, sealed, from.index(sealed.max(1)))?;
        store.lock().unwrap().seal().unwrap();
        sealed = model.len();
        check_against_model(&store, &model, sealed, from.index(sealed.max(1)))?;
        let report = verify(&store);
        prop_assert!(report.is_clean(), "{:?}", report.damage);
        prop_assert_eq!(report.records, sealed as u64);
        // Blocks and segments rolled as configured.
        let snapshot = store.snapshot().unwrap();
        // (A segment or block is cut once it reaches its target, so it exceeds the target by
        // less than one framed record, at most ~9.2 KiB here.)
        for entry in &snapshot.manifest().segments {
            let path = store.paths().segments.join(&entry.file);
            let reader = SegmentReader::open(&path, entry.id).unwrap();
            let footer = reader.footer();
            prop_assert!(
                footer.raw_bytes < 16384 + 9_600,
                "segment of {} raw bytes",
                footer.raw_bytes
            );
            for block in reader.blocks() {
                prop_assert!(
                    block.raw_len < 4096 + 9_600,
                    "block of {} raw bytes",
                    block.raw_len
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: decoder crashes these tests found (fixed in src/segments/segment.rs and
// src/log/manifest.rs).

/// A segment whose header, index and footer agree on a base offset near `u64::MAX` (checksums
/// valid): `parse_segment` must return an error, not overflow.
#[test]
fn segment_with_huge_offsets_does_not_panic() {
    let sample = sample_segment();
    let (mut footer, mut blocks) = parse_segment(SegmentId(10), &sample.bytes).unwrap();
    let base = u64::MAX - 5;
    let mut offset = base;
    for b in &mut blocks {
        b.first_offset = Offset(offset);
        offset = offset.wrapping_add(u64::from(b.count));
    }
    footer.base_offset = Offset(base);
    footer.record_count = offset.wrapping_sub(base);
    let blocks_bytes = &sample.bytes[40..footer.index_position as usize];
    let bytes = rebuild_segment(base, blocks_bytes, &blocks, &footer);
    let outcome = std::panic::catch_unwind(|| parse_segment(SegmentId(base), &bytes).is_ok());
    assert!(outcome.is_ok(), "parse_segment panicked");
}

/// A MANIFEST (valid checksum) naming a segment whose `id + record_count` overflows.
#[test]
fn manifest_with_huge_offsets_does_not_panic() {
    let json = format!(
        r#"{{"version":1,"generation":1,"next_offset":0,"segments":[{{"id":{},"file":"x.seg","record_count":2,"min_ts":0,"max_ts":0,"raw_bytes":0,"file_bytes":0,"crc32":0,"created_ns":0}}]}}"#,
        u64::MAX
    );
    let bytes = wrap_manifest(json.as_bytes());
    let outcome = std::panic::catch_unwind(|| Manifest::decode(&bytes).is_ok());
    assert!(outcome.is_ok(), "Manifest::decode panicked");
}

/// A block whose index entry claims 2^32-1 records (checksums valid, totals consistent):
/// `read_block` must return an error. It used to ask for `count` × 24 bytes up front
/// (`Vec::with_capacity(meta.count)`), ~96 GiB, and the allocation failure aborted the process,
/// so the read runs in a child process (this test binary, re-run with an env var).
#[test]
fn block_with_huge_count_does_not_abort() {
    const CHILD: &str = "CTRACE_PROPTEST_HUGE_COUNT_CHILD";
    let sample = sample_segment();
    let (mut footer, mut blocks) = parse_segment(SegmentId(10), &sample.bytes).unwrap();
    blocks.truncate(1);
    blocks[0].count = u32::MAX;
    let compressed_end = blocks[0].position + u64::from(blocks[0].compressed_len);
    let blocks_bytes = &sample.bytes[40..compressed_end as usize];
    footer.block_count = 1;
    footer.index_len = 8 + 48 + 4;
    footer.index_position = compressed_end;
    footer.record_count = u64::from(u32::MAX);
    footer.raw_bytes = u64::from(blocks[0].raw_len);
    let bytes = rebuild_segment(10, blocks_bytes, &blocks, &footer);
    let (_, parsed) = parse_segment(SegmentId(10), &bytes).unwrap();
    if std::env::var_os(CHILD).is_some() {
        assert!(read_block(SegmentId(10), &bytes, &parsed[0]).is_err());
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["block_with_huge_count_does_not_abort", "--exact", "-q"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "read_block of a block claiming u32::MAX records killed the process: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
