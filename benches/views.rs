//! Views benchmarks (criterion): a full rebuild of the views from a store of synthetic Claude
//! Code records (transcript lines with usage, tool calls and results, hook payloads), and cost
//! queries over the result. `scripts/bench_views.sh` runs the end-to-end figures on a
//! generated store of a million records.
//!
//! Environment: `CTRACE_BENCH_VIEWS_RECORDS` (default 20000): records in the store.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use ctrace::claude::{hook_record, transcript_record};
use ctrace::config::Config;
use ctrace::log::Store;
use ctrace::model::Origin;
use ctrace::views::cost::{CostQuery, GroupBy};
use ctrace::views::pricing::PriceTable;
use serde_json::json;

mod common;
use common::{MODELS, OrExit};

/// A store with about `records` synthetic records, sealed.
fn make_store(dir: &std::path::Path, records: usize) -> Store {
    let store = Store::open(dir, Config::default()).or_exit("opening the store");
    let mut n = 0usize;
    let mut i = 0usize;
    let base_ns = 1_767_225_600_000_000_000u64;
    while n < records {
        let session = format!("bench-session-{}", i / 200);
        let ts = base_ns + i as u64 * 1_000_000_000;
        let stamp = ctrace::cli::time::format_ts(ts);
        let file = format!("/bench/projects/p{}/{session}.jsonl", i % 7);
        let origin = |k: usize| Origin {
            file: file.clone(),
            position: (i * 8 + k) as u64,
            len: 1,
        };
        let tool = format!("toolu_{i}");
        let lines = [
            json!({"type": "user", "uuid": format!("u{i}"), "sessionId": session, "cwd": "/w",
                "timestamp": stamp, "message": {"role": "user", "content": format!("step {i}")}}),
            json!({"type": "assistant", "uuid": format!("a{i}"), "sessionId": session,
                "requestId": format!("req_{i}"), "timestamp": stamp,
                "message": {"id": format!("msg_{i}"), "model": MODELS[i % 3],
                    "content": [{"type": "tool_use", "id": tool, "name": "Bash",
                        "input": {"command": format!("cargo test --lib {i}")}}],
                    "usage": {"input_tokens": 10, "output_tokens": 200 + i % 50,
                        "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 20000}}}),
            json!({"type": "user", "uuid": format!("r{i}"), "sessionId": session,
                "timestamp": stamp, "message": {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": tool, "content": "ok", "is_error": i.is_multiple_of(13)}]}}),
            json!({"type": "progress", "uuid": format!("p{i}"), "sessionId": session,
                "timestamp": stamp, "data": {"type": "hook_progress"}}),
        ];
        for (k, line) in lines.iter().enumerate() {
            let record = transcript_record(line.to_string().into_bytes(), origin(k), ts, None);
            store.append(&record).or_exit("appending");
            n += 1;
        }
        for event in ["PreToolUse", "PostToolUse"] {
            let payload = json!({"session_id": session, "hook_event_name": event,
                "tool_name": "Bash", "tool_use_id": tool, "cwd": "/w",
                "tool_input": {"command": "cargo test"}});
            let record = hook_record(payload.to_string().into_bytes(), ts, None, None);
            store.append(&record).or_exit("appending");
            n += 1;
        }
        i += 1;
    }
    store.lock().or_exit("locking").seal().or_exit("sealing");
    store
}

fn benches(c: &mut Criterion) {
    let records: usize = std::env::var("CTRACE_BENCH_VIEWS_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().or_exit("temp dir");
    let store = make_store(dir.path(), records);
    let mut group = c.benchmark_group("views");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records as u64));
    group.bench_function("rebuild", |b| {
        b.iter(|| black_box(ctrace::views::rebuild(&store).or_exit("rebuilding")));
    });
    group.finish();
    let db = ctrace::views::open_current(&store).or_exit("opening the views");
    let prices = PriceTable::new(&Default::default());
    let mut group = c.benchmark_group("cost");
    for (name, by) in [
        ("by_day", GroupBy::Day),
        ("by_session", GroupBy::Session),
        ("by_block", GroupBy::Block),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let q = CostQuery {
                    by,
                    since: None,
                    until: None,
                    session: None,
                    source: Default::default(),
                };
                black_box(ctrace::views::cost::query(&db, &prices, &q).or_exit("query"))
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
