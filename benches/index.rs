//! Index benchmarks (criterion): text extraction, the tokenizer, a whole indexing pass
//! (`index::catch_up` of a sealed store) and a search.
//!
//! Records are transcript lines and hook payloads from the shared corpus (`../shared/corpus`
//! next to the crate, or `CTRACE_CORPUS`); without it, synthetic lines stand in and the output
//! says so. `scripts/bench_search.sh` measures the acceptance figures on a generated store of a
//! million records; these benches time the parts.
//!
//! Environment: `CTRACE_BENCH_INDEX_MB` (payload MB of the indexed store, default 16).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use ctrace::claude::{hook_record, transcript_record};
use ctrace::config::Config;
use ctrace::index::{self, PtyCarry, SearchRequest, SortOrder};
use ctrace::log::{Record, Store};
use ctrace::model::Origin;

/// Exits with a message on error: a bench has nobody to return an error to.
fn or_exit<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("bench index: {what}: {error}");
            std::process::exit(1)
        }
    }
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CTRACE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.join("transcripts").is_dir().then_some(dir)
}

fn lines_under(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            lines_under(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "ndjson")
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.extend(
                bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
    }
}

/// Records to index: the corpus lines, or synthetic ones.
fn records() -> Vec<Record> {
    let mut lines = Vec::new();
    match corpus_dir() {
        Some(dir) => {
            for sub in ["transcripts", "claude-home", "hooks"] {
                lines_under(&dir.join(sub), &mut lines);
            }
        }
        None => {
            eprintln!("bench index: no corpus; using synthetic lines");
            for i in 0..5000u64 {
                lines.push(format!(
                    r#"{{"type":"assistant","sessionId":"s{}","message":{{"content":[{{"type":"text","text":"line {i}: the build failed with error E0308 in src/main.rs; retrying cargo test"}}]}}}}"#,
                    i % 50
                ).into_bytes());
            }
        }
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            if raw.windows(17).any(|w| w == b"\"hook_event_name\"") {
                hook_record(raw, 1_700_000_000_000_000_000 + i as u64, None, None)
            } else {
                transcript_record(
                    raw,
                    Origin::default(),
                    1_700_000_000_000_000_000 + i as u64,
                    Some("bench"),
                )
            }
        })
        .collect()
}

fn payload_bytes(records: &[Record]) -> u64 {
    records.iter().map(|r| r.raw().len() as u64).sum()
}

/// A sealed store of about `target` payload bytes.
fn sealed_store(records: &[Record], target: u64) -> (tempfile::TempDir, Store, u64) {
    let dir = or_exit(tempfile::tempdir(), "temp dir");
    let store = or_exit(
        Store::open(dir.path(), Config::default()),
        "opening a store",
    );
    let mut written = 0;
    'fill: loop {
        for record in records {
            or_exit(store.append(record), "appending");
            written += record.raw().len() as u64;
            if written >= target {
                break 'fill;
            }
        }
    }
    let mut lock = or_exit(store.lock(), "locking");
    or_exit(lock.seal(), "sealing");
    drop(lock);
    (dir, store, written)
}

fn main() {
    let records = records();
    let bytes = payload_bytes(&records);
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));

    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.bench_function("all corpus records", |b| {
        b.iter(|| {
            let mut carry = PtyCarry::new();
            for record in &records {
                black_box(index::extract(record, &mut carry));
            }
        });
    });
    group.finish();

    let texts: Vec<String> = {
        let mut carry = PtyCarry::new();
        records
            .iter()
            .map(|r| index::extract(r, &mut carry).text)
            .collect()
    };
    let text_bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let mut group = c.benchmark_group("tokenize");
    group.throughput(Throughput::Bytes(text_bytes));
    group.sample_size(10);
    group.bench_function("extracted text", |b| {
        let mut tokens = Vec::new();
        b.iter(|| {
            for text in &texts {
                tokens.clear();
                index::tokenizer::tokenize(text, &mut tokens);
                black_box(tokens.len());
            }
        });
    });
    group.finish();

    let target = std::env::var("CTRACE_BENCH_INDEX_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(16)
        * 1_000_000;
    let (dir, store, written) = sealed_store(&records, target);
    let mut group = c.benchmark_group("catch_up");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Bytes(written));
    group.bench_function("whole store", |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(dir.path().join("index"));
            black_box(or_exit(index::catch_up(&store, None), "indexing"));
        });
    });
    group.finish();

    let mut group = c.benchmark_group("search");
    for (name, sort) in [
        ("error by time", SortOrder::Time),
        ("error by score", SortOrder::Score),
    ] {
        let request = SearchRequest {
            query: "error".into(),
            limit: 20,
            sort,
            ..SearchRequest::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(or_exit(index::search(store.paths(), &request), "searching").total)
            });
        });
    }
    group.finish();
    c.final_summary();
}
