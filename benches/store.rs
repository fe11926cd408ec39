//! Store benchmarks (criterion): inbox append, sealing, one record by offset, a full mmap scan
//! and hook-payload parsing.
//!
//! Records are built from the shared corpus (`../shared/corpus` next to the crate, or the
//! directory named by `CTRACE_CORPUS`): hook payloads from `hooks/` (`*.ndjson` lines, `*.json`
//! objects and arrays) and transcript lines from `claude-home/` and `transcripts/` (`*.jsonl`).
//! Without a corpus, synthetic payloads shaped like Claude Code's (same keys, nesting and size
//! spread, generated text) are used instead, and the output says so.
//!
//! Environment:
//! - `CTRACE_CORPUS`: corpus directory.
//! - `CTRACE_BENCH_DIR`: where temporary stores are made (default: the system temp dir).
//! - `CTRACE_BENCH_SEAL_MB`: raw inbox size in MB (10^6 bytes) for the seal bench
//!   (default 32 under criterion, 256 for the `seal` probe).
//! - `CTRACE_BENCH_BLOCK_KB`, `CTRACE_BENCH_ZSTD_LEVEL`: `storage.block_bytes` (KiB) and
//!   `storage.zstd_level` of the stores made, for trade-off experiments (default: the
//!   configuration defaults).
//! - `CTRACE_BENCH_PROBE`: run one dedicated measurement instead of criterion and print one
//!   JSON line (used by `scripts/bench.sh`):
//!   - `seal`: seal an inbox of `CTRACE_BENCH_SEAL_MB` on `CTRACE_BENCH_RUNS` (default 3) fresh
//!     stores; each run also times the parts of sealing on the same bytes (inbox read + scan +
//!     head decode, with and without copying records out; `SegmentWriter` alone; bare zstd over
//!     the same blocks), so noise hits the whole and its parts alike;
//!   - `get`: `Snapshot::get` at `CTRACE_BENCH_GETS` (default 20000) random offsets of a store
//!     sealed from `CTRACE_BENCH_GET_MB` (default 64) MB of records, each call timed on its own,
//!     after a warm-up; reports percentiles, and the median of `CTRACE_BENCH_LARGEST_GETS`
//!     (default 21) gets of the largest record stored;
//!   - `big`: `Snapshot::get` of one record of `CTRACE_BENCH_BIG_KB` (default 1024) KiB stored
//!     between ordinary records, next to a whole-block `read_block` of its block;
//!   - `synth`: write a synthetic corpus (`claude-home/`, `hooks/`) of about
//!     `CTRACE_BENCH_SYNTH_MB` (default 15) MB into `CTRACE_BENCH_OUT`.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use ctrace::claude::{hook_record, transcript_record};
use ctrace::config::Config;
use ctrace::ingest::bulk::session_from_path;
use ctrace::ingest::json_array::split_array;
use ctrace::log::{Record, Snapshot, Store};
use ctrace::model::{Origin, RecordRef};
use ctrace::segments::Offset;
use ctrace::segments::frame::{Decoded, MAX_FRAME_LIMIT_BYTES, ScanItem, Scanner, decode_frame};
use ctrace::segments::segment::{DEFAULT_BLOCK_BYTES, SegmentReader, SegmentWriter};
use serde_json::{Value, json};

mod common;
use common::OrExit;

impl<T> OrExit<T> for Option<T> {
    fn or_exit(self, what: &str) -> T {
        match self {
            Some(value) => value,
            None => {
                eprintln!("bench store: {what}");
                std::process::exit(1);
            }
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: reproducible pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Hook payloads and transcript lines, raw bytes as Claude Code writes them.
struct Corpus {
    /// Where the payloads came from, for the output.
    label: String,
    hooks: Vec<Vec<u8>>,
    /// (source file, byte position, line).
    lines: Vec<(PathBuf, u64, Vec<u8>)>,
}

impl Corpus {
    fn raw_bytes(&self) -> u64 {
        let hooks: usize = self.hooks.iter().map(Vec::len).sum();
        let lines: usize = self.lines.iter().map(|(_, _, l)| l.len()).sum();
        (hooks + lines) as u64
    }

    /// The hook payload of median size (what a typical `ctrace hook` call parses).
    fn median_hook(&self) -> &[u8] {
        let mut sizes: Vec<(usize, usize)> = self
            .hooks
            .iter()
            .enumerate()
            .map(|(i, h)| (h.len(), i))
            .collect();
        sizes.sort_unstable();
        let (_, i) = sizes[sizes.len() / 2];
        &self.hooks[i]
    }
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CTRACE_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    ["hooks", "claude-home", "transcripts"]
        .iter()
        .any(|sub| dir.join(sub).is_dir())
        .then_some(dir)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Non-blank lines of `bytes` with their byte positions.
fn lines_of(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push((at as u64, line));
        }
        at += line.len() + 1;
    }
    out
}

fn load_corpus() -> Corpus {
    let Some(dir) = corpus_dir() else {
        return synthetic_corpus(15_000_000);
    };
    let mut corpus = Corpus {
        label: format!("corpus {}", dir.display()),
        hooks: Vec::new(),
        lines: Vec::new(),
    };
    for file in files_under(&dir.join("hooks")) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        match extension(&file) {
            "ndjson" | "jsonl" => corpus
                .hooks
                .extend(lines_of(&bytes).into_iter().map(|(_, l)| l.to_vec())),
            "json" if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') => {
                let split = split_array(&bytes);
                corpus
                    .hooks
                    .extend(split.elements.iter().map(|&(s, e)| bytes[s..e].to_vec()));
            }
            "json" => corpus.hooks.push(bytes.trim_ascii().to_vec()),
            _ => {}
        }
    }
    for sub in ["claude-home", "transcripts"] {
        for file in files_under(&dir.join(sub)) {
            if extension(&file) != "jsonl" {
                continue;
            }
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            for (at, line) in lines_of(&bytes) {
                corpus.lines.push((file.clone(), at, line.to_vec()));
            }
        }
    }
    if corpus.hooks.is_empty() || corpus.lines.is_empty() {
        eprintln!(
            "bench store: {} lacks hook payloads or transcript lines; using synthetic data",
            dir.display()
        );
        return synthetic_corpus(15_000_000);
    }
    corpus
}

// ---------------------------------------------------------------------------------------------
// Synthetic payloads shaped like Claude Code's (see the corpus NOTES.md for the shapes).

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "for",
    "that",
    "this",
    "it",
    "with",
    "on",
    "fn",
    "let",
    "mut",
    "self",
    "return",
    "pub",
    "use",
    "impl",
    "struct",
    "Result",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Option",
    "Some",
    "None",
    "match",
    "if",
    "else",
    "file",
    "test",
    "error",
    "path",
    "value",
    "config",
    "store",
    "record",
    "offset",
    "segment",
    "block",
    "frame",
    "index",
    "read",
    "write",
    "open",
    "close",
    "seal",
    "inbox",
    "hook",
    "session",
    "transcript",
    "tool",
    "user",
    "assistant",
    "message",
    "content",
    "const",
    "import",
    "from",
    "def",
    "class",
    "async",
    "await",
    "function",
    "=>",
    "{",
    "}",
    "(",
    ")",
    ";",
    "//",
    "#",
    "0",
    "1",
    "42",
    "let's",
    "check",
    "now",
    "update",
    "fix",
    "add",
    "run",
    "cargo",
    "build",
    "npm",
    "install",
    "git",
    "diff",
    "status",
    "commit",
    "I'll",
    "need",
    "should",
    "will",
    "can",
    "see",
    "here",
];
const TOOLS: &[&str] = &[
    "Bash",
    "Read",
    "Edit",
    "Write",
    "Grep",
    "Glob",
    "TodoWrite",
    "Task",
];
const MODELS: &[&str] = &["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"];

/// Zipf-like word text of about `len` bytes.
fn text(rng: &mut Rng, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        let r = rng.below(1 << 16) as f64 / f64::from(1u32 << 16);
        let i = ((r * r * r) * WORDS.len() as f64) as usize;
        out.push_str(WORDS[i.min(WORDS.len() - 1)]);
        out.push(if rng.below(12) == 0 { '\n' } else { ' ' });
    }
    out
}

/// Zipf-like word text of a log-uniform size between `lo` and `hi` bytes.
fn words(rng: &mut Rng, lo: usize, hi: usize) -> String {
    let len = size(rng, lo, hi);
    text(rng, len)
}

fn hex(rng: &mut Rng, len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        out.push_str(&format!("{:016x}", rng.next()));
    }
    out.truncate(len);
    out
}

fn uuid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Log-uniform size between `lo` and `hi` bytes.
fn size(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let r = rng.below(1 << 16) as f64 / f64::from(1u32 << 16);
    (lo as f64 * (hi as f64 / lo as f64).powf(r)) as usize
}

fn tool_input(rng: &mut Rng, tool: &str) -> Value {
    match tool {
        "Bash" => json!({"command": words(rng, 10, 200), "description": text(rng, 40)}),
        "Edit" => json!({
            "file_path": format!("/home/user/project/src/{}.rs", rng.pick(WORDS)),
            "old_string": words(rng, 20, 800),
            "new_string": words(rng, 20, 800),
        }),
        "Write" => json!({
            "file_path": format!("/home/user/project/src/{}.rs", rng.pick(WORDS)),
            "content": words(rng, 200, 6000),
        }),
        "Task" => json!({"description": text(rng, 30), "prompt": words(rng, 100, 2000),
            "subagent_type": "general-purpose"}),
        _ => json!({"file_path": format!("/home/user/project/src/{}.rs", rng.pick(WORDS)),
            "pattern": rng.pick(WORDS)}),
    }
}

fn hook_payload(rng: &mut Rng, session: &str, tool_use_id: &str) -> Value {
    let cwd = "/home/user/project";
    let transcript = format!("/home/user/.claude/projects/-home-user-project/{session}.jsonl");
    let tool = rng.pick(TOOLS);
    let mut payload = json!({
        "session_id": session,
        "transcript_path": transcript,
        "cwd": cwd,
        "permission_mode": "default",
    });
    let extra = match rng.below(10) {
        0..=3 => json!({"hook_event_name": "PreToolUse", "tool_name": tool,
            "tool_input": tool_input(rng, tool), "tool_use_id": tool_use_id}),
        4..=7 => json!({"hook_event_name": "PostToolUse", "tool_name": tool,
            "tool_input": tool_input(rng, tool), "tool_use_id": tool_use_id,
            "tool_response": {"stdout": words(rng, 20, 20_000), "stderr": "",
                "interrupted": false, "isImage": false}}),
        8 => {
            json!({"hook_event_name": "UserPromptSubmit", "prompt": words(rng, 20, 600)})
        }
        _ => json!({"hook_event_name": "Stop", "stop_hook_active": false,
            "last_assistant_message": words(rng, 50, 1500)}),
    };
    if let (Some(map), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        map.extend(extra);
    }
    payload
}

fn transcript_line(
    rng: &mut Rng,
    session: &str,
    parent: &str,
    uuid_now: &str,
    ts_ms: u64,
) -> Value {
    let secs = ts_ms / 1000;
    let timestamp = format!(
        "2025-09-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + (secs / 86_400) % 28,
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        ts_ms % 1000
    );
    let mut line = json!({
        "parentUuid": parent, "isSidechain": false, "userType": "external",
        "cwd": "/home/user/project", "sessionId": session, "version": "2.0.14",
        "gitBranch": "main", "uuid": uuid_now, "timestamp": timestamp,
    });
    let extra = match rng.below(3) {
        0 => {
            let id = format!("toolu_01{}", hex(rng, 22));
            json!({"type": "user", "message": {"role": "user", "content": [{
                "tool_use_id": id, "type": "tool_result",
                "content": words(rng, 50, 15_000)}]},
                "toolUseResult": {"stdout": words(rng, 20, 4000), "stderr": "",
                    "interrupted": false}})
        }
        _ => {
            let tool = rng.pick(TOOLS);
            let block = if rng.below(2) == 0 {
                json!({"type": "text", "text": words(rng, 20, 3000)})
            } else {
                json!({"type": "tool_use", "id": format!("toolu_01{}", hex(rng, 22)),
                    "name": tool, "input": tool_input(rng, tool)})
            };
            json!({"type": "assistant", "requestId": format!("req_011C{}", hex(rng, 20)),
                "message": {"id": format!("msg_01{}", hex(rng, 22)), "type": "message",
                    "role": "assistant", "model": rng.pick(MODELS), "content": [block],
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": rng.below(50), "output_tokens": rng.below(2000),
                        "cache_creation_input_tokens": rng.below(20_000),
                        "cache_read_input_tokens": rng.below(150_000),
                        "cache_creation": {"ephemeral_5m_input_tokens": rng.below(20_000),
                            "ephemeral_1h_input_tokens": 0},
                        "service_tier": "standard"}}})
        }
    };
    if let (Some(map), Value::Object(extra)) = (line.as_object_mut(), extra) {
        map.extend(extra);
    }
    line
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).or_exit("serializing a synthetic payload")
}

/// Synthetic hook payloads and transcript lines, about `target` raw bytes in all, one hook
/// payload for every four transcript lines (the corpus has about one for eight).
fn synthetic_corpus(target: u64) -> Corpus {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut corpus = Corpus {
        label: "synthetic payloads (no corpus found)".into(),
        hooks: Vec::new(),
        lines: Vec::new(),
    };
    let mut total = 0u64;
    let mut session = uuid(&mut rng);
    let mut file = PathBuf::from(format!("/synthetic/{session}.jsonl"));
    let mut position = 0u64;
    let mut parent = uuid(&mut rng);
    let mut ts_ms = 1_000_000u64;
    while total < target {
        if rng.below(400) == 0 {
            session = uuid(&mut rng);
            file = PathBuf::from(format!("/synthetic/{session}.jsonl"));
            position = 0;
        }
        let now = uuid(&mut rng);
        ts_ms += rng.below(5000);
        let line = to_json(&transcript_line(&mut rng, &session, &parent, &now, ts_ms));
        parent = now;
        total += line.len() as u64;
        let len = line.len() as u64;
        corpus.lines.push((file.clone(), position, line));
        position += len + 1;
        if rng.below(4) == 0 {
            let id = format!("toolu_01{}", hex(&mut rng, 22));
            let hook = to_json(&hook_payload(&mut rng, &session, &id));
            total += hook.len() as u64;
            corpus.hooks.push(hook);
        }
    }
    corpus
}

/// Writes `corpus` as files: `claude-home/projects/synthetic/<session>.jsonl` and
/// `hooks/synthetic--all-payloads.ndjson`.
fn write_corpus(corpus: &Corpus, out: &Path) {
    let projects = out.join("claude-home/projects/synthetic");
    let hooks = out.join("hooks");
    for dir in [&projects, &hooks] {
        std::fs::create_dir_all(dir).or_exit("creating the synthetic corpus directories");
    }
    let mut files: std::collections::BTreeMap<PathBuf, Vec<u8>> = Default::default();
    for (file, _, line) in &corpus.lines {
        let name = file.file_name().or_exit("synthetic file name");
        let buf = files.entry(projects.join(name)).or_default();
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }
    let mut payloads = Vec::new();
    for hook in &corpus.hooks {
        payloads.extend_from_slice(hook);
        payloads.push(b'\n');
    }
    files.insert(hooks.join("synthetic--all-payloads.ndjson"), payloads);
    for (path, bytes) in files {
        std::fs::write(&path, bytes).or_exit("writing the synthetic corpus");
    }
}

// ---------------------------------------------------------------------------------------------
// Records and stores.

/// The corpus as records, in the order a store would see them: transcript lines with their
/// origin (as bulk ingest makes them) with the hook payloads spread evenly among them (as
/// `ctrace hook` makes them, without origin).
fn records(corpus: &Corpus) -> Vec<Record> {
    let now = ctrace::now_ns();
    let every = (corpus.lines.len() / corpus.hooks.len().max(1)).max(1);
    let mut hooks = corpus.hooks.iter();
    let mut out = Vec::with_capacity(corpus.lines.len() + corpus.hooks.len());
    for (i, (file, position, line)) in corpus.lines.iter().enumerate() {
        let origin = Origin {
            file: file.to_string_lossy().into_owned(),
            position: *position,
            len: line.len() as u64,
        };
        let session = session_from_path(file);
        out.push(transcript_record(
            line.clone(),
            origin,
            now,
            session.as_deref(),
        ));
        if i % every == 0
            && let Some(hook) = hooks.next()
        {
            out.push(hook_record(hook.clone(), now, None, None));
        }
    }
    out.extend(hooks.map(|hook| hook_record(hook.clone(), now, None, None)));
    out
}

fn encoded(records: &[Record]) -> Vec<Vec<u8>> {
    records
        .iter()
        .map(|r| r.encode().or_exit("encoding a record"))
        .collect()
}

fn bench_dir() -> PathBuf {
    std::env::var_os("CTRACE_BENCH_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(std::env::temp_dir, PathBuf::from)
}

/// The store configuration: defaults, except `storage.block_bytes` from
/// `CTRACE_BENCH_BLOCK_KB` (KiB) and `storage.zstd_level` from `CTRACE_BENCH_ZSTD_LEVEL`, for
/// trade-off experiments.
fn config() -> Config {
    let mut config = Config::default();
    config.storage.block_bytes =
        env_u64("CTRACE_BENCH_BLOCK_KB", config.storage.block_bytes >> 10) << 10;
    config.storage.zstd_level = std::env::var("CTRACE_BENCH_ZSTD_LEVEL")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(config.storage.zstd_level);
    config
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::Builder::new()
        .prefix("ctrace-bench-")
        .tempdir_in(bench_dir())
        .or_exit("creating a temporary store directory");
    let store = Store::open(dir.path(), config()).or_exit("opening a store");
    (dir, store)
}

/// Fills a producer inbox file with `encoded` records, cycling, until it holds at least
/// `target` bytes; returns its size in bytes (frames included).
fn fill_inbox(store: &Store, encoded: &[Vec<u8>], target: u64) -> u64 {
    let mut producer = store.producer("bench").or_exit("creating an inbox file");
    for record in encoded.iter().cycle() {
        if producer.len_bytes() >= target {
            break;
        }
        producer.append(record).or_exit("appending to the inbox");
    }
    let path = producer.close().or_exit("closing the inbox file");
    std::fs::metadata(path).or_exit("inbox size").len()
}

/// A store with `target` bytes of records sealed; returns it with its record count.
fn sealed_store(encoded: &[Vec<u8>], target: u64) -> (tempfile::TempDir, Store, u64) {
    let (dir, store) = temp_store();
    fill_inbox(&store, encoded, target);
    let report = store
        .lock()
        .or_exit("locking the store")
        .seal()
        .or_exit("sealing");
    (dir, store, report.next_offset.0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Criterion benches.

fn bench_append(c: &mut Criterion, corpus: &Corpus) {
    let record = hook_record(corpus.median_hook().to_vec(), ctrace::now_ns(), None, None);
    let bytes = record.encode().or_exit("encoding").len() as u64;
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("encode_hook_{bytes}B"), |b| {
        b.iter(|| black_box(&record).encode());
    });
    let (_dir, store) = temp_store();
    let active = store.paths().inbox.join("active.wal");
    group.bench_function(format!("store_append_hook_{bytes}B"), |b| {
        // Appends in chunks, truncating the inbox between them (untimed) so it stays small.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(10_000);
                let started = Instant::now();
                for _ in 0..chunk {
                    store.append(black_box(&record)).or_exit("appending");
                }
                total += started.elapsed();
                left -= chunk;
                let _ = std::fs::remove_file(&active);
            }
            total
        });
    });
    group.finish();
}

fn bench_seal(c: &mut Criterion, encoded: &[Vec<u8>]) {
    let target = env_u64("CTRACE_BENCH_SEAL_MB", 32) * 1_000_000;
    // Size the throughput by a trial fill (the same records every time).
    let bytes = {
        let (_dir, store) = temp_store();
        fill_inbox(&store, encoded, target)
    };
    let mut group = c.benchmark_group("seal");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(format!("inbox_{}MB", target / 1_000_000), |b| {
        b.iter_batched_ref(
            || {
                let (dir, store) = temp_store();
                fill_inbox(&store, encoded, target);
                (dir, store)
            },
            |(_dir, store)| {
                store
                    .lock()
                    .or_exit("locking the store")
                    .seal()
                    .or_exit("sealing")
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bench_read(c: &mut Criterion, encoded: &[Vec<u8>]) {
    let (_dir, store, records) = sealed_store(encoded, 16_000_000);
    let snapshot: Snapshot = store.snapshot().or_exit("taking a snapshot");
    let raw: u64 = snapshot
        .manifest()
        .segments
        .iter()
        .map(|s| s.raw_bytes)
        .sum();
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(1));
    let mut rng = Rng(42);
    group.bench_function("get_random_offset_warm", |b| {
        b.iter(|| {
            snapshot
                .get(Offset(rng.below(records)))
                .or_exit("reading a record")
        });
    });
    group.throughput(Throughput::Bytes(raw));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function(format!("scan_all_{}MB", raw / 1_000_000), |b| {
        b.iter(|| {
            let mut n = 0u64;
            for record in snapshot.iter() {
                black_box(record.or_exit("scanning"));
                n += 1;
            }
            n
        });
    });
    group.finish();
}

fn bench_parse(c: &mut Criterion, corpus: &Corpus) {
    let mut group = c.benchmark_group("parse");
    let median = corpus.median_hook().to_vec();
    group.throughput(Throughput::Bytes(median.len() as u64));
    group.bench_function(format!("hook_record_median_{}B", median.len()), |b| {
        b.iter(|| hook_record(black_box(median.clone()), 1, None, None));
    });
    let total: usize = corpus.hooks.iter().map(Vec::len).sum();
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function(format!("hook_record_all_{}", corpus.hooks.len()), |b| {
        b.iter(|| {
            for hook in &corpus.hooks {
                black_box(hook_record(hook.clone(), 1, None, None));
            }
        });
    });
    let total: usize = corpus.lines.iter().map(|(_, _, l)| l.len()).sum();
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function(
        format!("transcript_record_all_{}", corpus.lines.len()),
        |b| {
            b.iter(|| {
                for (_, position, line) in &corpus.lines {
                    let origin = Origin {
                        file: String::new(),
                        position: *position,
                        len: line.len() as u64,
                    };
                    black_box(transcript_record(line.clone(), origin, 1, None));
                }
            });
        },
    );
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Probes for scripts/bench.sh.

/// Timings of one seal run and of its parts, each on the same inbox contents, in seconds.
struct SealRun {
    seal: f64,
    scan_copy: f64,
    scan_borrowed: f64,
    segment_writer: f64,
    zstd_only: f64,
    stored_bytes: u64,
}

/// One run: seal a fresh store's inbox, then time the parts of sealing on the same bytes, so
/// that machine noise hits the whole and its parts alike.
fn seal_run(encoded: &[Vec<u8>], target: u64) -> (u64, u64, SealRun) {
    let (dir, store) = temp_store();
    let inbox_bytes = fill_inbox(&store, encoded, target);
    let inbox_file = std::fs::read_dir(&store.paths().inbox)
        .or_exit("listing the inbox")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .or_exit("no inbox file");
    let copy = dir.path().join("inbox-copy.wal");
    std::fs::copy(&inbox_file, &copy).or_exit("copying the inbox");
    // The seal itself: lock (with recovery) and seal, as `ctrace` does.
    let started = Instant::now();
    let report = store
        .lock()
        .or_exit("locking the store")
        .seal()
        .or_exit("sealing");
    let seal = started.elapsed().as_secs_f64();
    let stored_bytes = std::fs::read_dir(dir.path().join("segments"))
        .or_exit("listing segments")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    // (a) The sealer's first phase: read the inbox file, scan frames (copying each record out),
    // decode each record head.
    let started = Instant::now();
    let bytes = std::fs::read(&copy).or_exit("reading the inbox");
    let mut pending = Vec::new();
    for item in Scanner::new(&bytes, MAX_FRAME_LIMIT_BYTES, 0) {
        if let ScanItem::Record { bytes, .. } = item {
            let ts = RecordRef::decode(&bytes).map_or(0, |r| r.ts);
            pending.push((bytes, ts));
        }
    }
    let scan_copy = started.elapsed().as_secs_f64();
    // (b) The same walk without copying records out of the buffer (what a borrowing scanner
    // would cost): decode each frame in place, then the record head. Every record here fits in
    // one frame.
    let started = Instant::now();
    let mut at = 0;
    let mut heads = 0u64;
    while let Ok(Decoded::Frame(frame, size)) =
        decode_frame(&bytes[at..], MAX_FRAME_LIMIT_BYTES, at as u64)
    {
        heads += RecordRef::decode(frame.payload).map_or(0, |r| r.ts & 1);
        at += size;
    }
    black_box(heads);
    let scan_borrowed = started.elapsed().as_secs_f64();
    drop(bytes);
    // (c) SegmentWriter alone: frame encode + CRC, zstd, write, index, footer, sync.
    let storage = &store.config().storage;
    let block_bytes = usize::try_from(storage.block_bytes).unwrap_or(DEFAULT_BLOCK_BYTES);
    let started = Instant::now();
    let mut writer = SegmentWriter::create(
        &dir.path().join("probe.seg"),
        Offset(0),
        block_bytes,
        storage.zstd_level,
        store.config().frame_limit(),
    )
    .or_exit("creating a segment");
    for (bytes, ts) in &pending {
        writer.add(bytes, *ts).or_exit("adding to a segment");
    }
    writer.finish().or_exit("finishing a segment");
    let segment_writer = started.elapsed().as_secs_f64();
    // (d) Bare zstd over the same blocks (framed records cut at the block size).
    let mut raw = Vec::with_capacity(block_bytes + (1 << 20));
    let mut blocks = Vec::new();
    for (bytes, _) in &pending {
        ctrace::segments::frame::encode_record(&mut raw, bytes, store.config().frame_limit());
        if raw.len() >= block_bytes {
            blocks.push(std::mem::take(&mut raw));
        }
    }
    blocks.push(raw);
    drop(pending);
    let mut compressor = zstd::bulk::Compressor::new(storage.zstd_level).or_exit("zstd");
    let started = Instant::now();
    for block in &blocks {
        black_box(compressor.compress(block).or_exit("zstd"));
    }
    let zstd_only = started.elapsed().as_secs_f64();
    let run = SealRun {
        seal,
        scan_copy,
        scan_borrowed,
        segment_writer,
        zstd_only,
        stored_bytes,
    };
    (inbox_bytes, report.records, run)
}

fn probe_seal(corpus: &Corpus, encoded: &[Vec<u8>]) {
    let target = env_u64("CTRACE_BENCH_SEAL_MB", 256) * 1_000_000;
    let runs = env_u64("CTRACE_BENCH_RUNS", 3).max(1);
    let mut inbox_bytes = 0;
    let mut records = 0;
    let mut all = Vec::new();
    for _ in 0..runs {
        let (bytes, n, run) = seal_run(encoded, target);
        inbox_bytes = bytes;
        records = n;
        all.push(run);
    }
    let mb_s = |secs: f64| inbox_bytes as f64 / 1e6 / secs;
    let median = |f: &dyn Fn(&SealRun) -> f64| {
        let mut values: Vec<f64> = all.iter().map(f).collect();
        median_f64(&mut values)
    };
    let runs_json: Vec<Value> = all
        .iter()
        .map(|r| {
            json!({"seal_mb_s": mb_s(r.seal), "seal_s": r.seal, "scan_copy_s": r.scan_copy,
                "scan_borrowed_s": r.scan_borrowed, "segment_writer_s": r.segment_writer,
                "zstd_only_s": r.zstd_only, "seal_over_zstd": r.seal / r.zstd_only})
        })
        .collect();
    let config = config();
    println!(
        "{}",
        json!({
            "probe": "seal", "data": corpus.label, "inbox_bytes": inbox_bytes, "records": records,
            "block_bytes": config.storage.block_bytes, "zstd_level": config.storage.zstd_level,
            "stored_bytes": all.first().map_or(0, |r| r.stored_bytes),
            "median_mb_s": mb_s(median(&|r| r.seal)),
            "median_seal_over_zstd": median(&|r| r.seal / r.zstd_only),
            "breakdown_mb_s": {
                "read_scan_head_decode": mb_s(median(&|r| r.scan_copy)),
                "scan_head_decode_borrowed": mb_s(median(&|r| r.scan_borrowed)),
                "segment_writer": mb_s(median(&|r| r.segment_writer)),
                "zstd_only": mb_s(median(&|r| r.zstd_only)),
            },
            "runs": runs_json,
        })
    );
}

fn probe_get(corpus: &Corpus, encoded: &[Vec<u8>]) {
    let target = env_u64("CTRACE_BENCH_GET_MB", 64) * 1_000_000;
    let gets = env_u64("CTRACE_BENCH_GETS", 20_000).max(1);
    let (_dir, store, records) = sealed_store(encoded, target);
    let started = Instant::now();
    let snapshot = store.snapshot().or_exit("taking a snapshot");
    let snapshot_ns = started.elapsed().as_nanos() as u64;
    let mut rng = Rng(7);
    for _ in 0..gets / 10 {
        black_box(
            snapshot
                .get(Offset(rng.below(records)))
                .or_exit("reading a record"),
        );
    }
    let mut times = Vec::with_capacity(gets as usize);
    for _ in 0..gets {
        let offset = Offset(rng.below(records));
        let started = Instant::now();
        let record = snapshot.get(offset).or_exit("reading a record");
        times.push(started.elapsed().as_nanos() as u64);
        if record.is_none() {
            eprintln!("bench store: no record at offset {offset}");
            std::process::exit(1);
        }
    }
    times.sort_unstable();
    // The largest record (offsets follow the order `fill_inbox` appended in, starting at 0):
    // reading it exercises the partial-record path of the streaming decode.
    let sealed = usize::try_from(records)
        .unwrap_or(usize::MAX)
        .min(encoded.len());
    let (largest, largest_bytes) = encoded[..sealed]
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64, e.len()))
        .max_by_key(|&(_, len)| len)
        .unwrap_or((0, 0));
    let mut largest_times: Vec<u64> = (0..env_u64("CTRACE_BENCH_LARGEST_GETS", 21).max(1))
        .map(|_| {
            let started = Instant::now();
            black_box(snapshot.get(Offset(largest)).or_exit("reading a record"));
            started.elapsed().as_nanos() as u64
        })
        .collect();
    largest_times.sort_unstable();
    let segments = open_segments(&store, &snapshot);
    let blocks: Vec<_> = segments
        .iter()
        .flat_map(|s| s.blocks().iter().copied())
        .collect();
    let block_raw: u64 = blocks.iter().map(|b| u64::from(b.raw_len)).sum();
    // The cost of decompressing one whole block, for attribution.
    let mut decompress = Vec::new();
    if let Some(segment) = segments.first() {
        for meta in segment.blocks().iter().take(200) {
            let start = meta.position as usize;
            let bytes = &segment.bytes()[start..start + meta.compressed_len as usize];
            let started = Instant::now();
            black_box(zstd::bulk::decompress(bytes, meta.raw_len as usize).or_exit("zstd"));
            decompress.push(started.elapsed().as_nanos() as u64);
        }
    }
    decompress.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "probe": "get", "data": corpus.label, "records": records, "gets": gets,
            "segments": segments.len(), "blocks": blocks.len(),
            "block_bytes": store.config().storage.block_bytes,
            "zstd_level": store.config().storage.zstd_level,
            "raw_bytes": block_raw,
            "stored_bytes": snapshot.manifest().segments.iter().map(|s| s.file_bytes).sum::<u64>(),
            "avg_block_raw_bytes": block_raw / blocks.len().max(1) as u64,
            "avg_records_per_block": records as f64 / blocks.len().max(1) as f64,
            "snapshot_us": us(snapshot_ns),
            "p50_us": us(percentile(&times, 50.0)), "p90_us": us(percentile(&times, 90.0)),
            "p99_us": us(percentile(&times, 99.0)), "max_us": us(percentile(&times, 100.0)),
            "mean_us": us(times.iter().sum::<u64>() / times.len().max(1) as u64),
            "whole_block_decompress_p50_us": us(percentile(&decompress, 50.0)),
            "largest_record_bytes": largest_bytes,
            "largest_record_get_p50_us": us(percentile(&largest_times, 50.0)),
        })
    );
}

/// `get` of one large record (`CTRACE_BENCH_BIG_KB`, default 1024 KiB of JSON text) stored
/// between ordinary records, next to a whole-block read of the same block.
fn probe_big(corpus: &Corpus, encoded: &[Vec<u8>]) {
    let big_bytes = env_u64("CTRACE_BENCH_BIG_KB", 1024) << 10;
    let mut rng = Rng(11);
    let payload = to_json(
        &json!({"session_id": "big", "hook_event_name": "PostToolUse",
        "tool_name": "Bash", "tool_response": {"stdout": text(&mut rng, big_bytes as usize)}}),
    );
    let big = hook_record(payload, ctrace::now_ns(), None, None)
        .encode()
        .or_exit("encoding");
    let (_dir, store) = temp_store();
    let mut producer = store.producer("bench").or_exit("creating an inbox file");
    let before = encoded.len().min(50);
    for record in &encoded[..before] {
        producer.append(record).or_exit("appending");
    }
    producer.append(&big).or_exit("appending");
    for record in encoded.iter().take(50) {
        producer.append(record).or_exit("appending");
    }
    producer.close().or_exit("closing the inbox file");
    store
        .lock()
        .or_exit("locking the store")
        .seal()
        .or_exit("sealing");
    let snapshot = store.snapshot().or_exit("taking a snapshot");
    let offset = Offset(before as u64);
    let time = |f: &dyn Fn()| {
        let mut times: Vec<u64> = (0..11)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed().as_nanos() as u64
            })
            .collect();
        times.sort_unstable();
        percentile(&times, 50.0) as f64 / 1000.0
    };
    let get_us = time(&|| {
        let record = snapshot.get(offset).or_exit("reading a record");
        if record.is_none() {
            eprintln!("bench store: no record at offset {offset}");
            std::process::exit(1);
        }
    });
    let segments = open_segments(&store, &snapshot);
    let segment = segments.first().or_exit("no segment");
    let block = segment.block_of(offset).or_exit("no block");
    let block_us = time(&|| {
        black_box(segment.read_block(block).or_exit("reading a block"));
    });
    println!(
        "{}",
        json!({"probe": "big", "data": corpus.label, "record_bytes": big.len(),
            "block_raw_bytes": segment.blocks()[block].raw_len,
            "get_p50_us": get_us, "read_block_p50_us": block_us})
    );
}

/// The sealed segments of `snapshot`, opened from their files (the bench looks inside them).
fn open_segments(store: &Store, snapshot: &Snapshot) -> Vec<SegmentReader> {
    snapshot
        .manifest()
        .segments
        .iter()
        .map(|entry| {
            let path = store.paths().segments.join(&entry.file);
            SegmentReader::open(&path, entry.id).or_exit("opening a segment")
        })
        .collect()
}

fn main() {
    let probe = std::env::var("CTRACE_BENCH_PROBE").unwrap_or_default();
    if probe == "synth" {
        let out = std::env::var_os("CTRACE_BENCH_OUT").or_exit("CTRACE_BENCH_OUT is not set");
        let corpus = synthetic_corpus(env_u64("CTRACE_BENCH_SYNTH_MB", 15) * 1_000_000);
        write_corpus(&corpus, Path::new(&out));
        println!(
            "{}",
            json!({"probe": "synth", "out": Path::new(&out), "bytes": corpus.raw_bytes(),
                "hooks": corpus.hooks.len(), "lines": corpus.lines.len()})
        );
        return;
    }
    let corpus = load_corpus();
    let encoded = encoded(&records(&corpus));
    match probe.as_str() {
        "seal" => return probe_seal(&corpus, &encoded),
        "get" => return probe_get(&corpus, &encoded),
        "big" => return probe_big(&corpus, &encoded),
        "" => {}
        other => {
            eprintln!("bench store: unknown CTRACE_BENCH_PROBE `{other}` (seal, get, big, synth)");
            std::process::exit(2);
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "bench store: {} ({} hook payloads, {} transcript lines, {:.1} MB)",
        corpus.label,
        corpus.hooks.len(),
        corpus.lines.len(),
        corpus.raw_bytes() as f64 / 1e6
    );
    let mut c = Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_parse(&mut c, &corpus);
    bench_append(&mut c, &corpus);
    bench_read(&mut c, &encoded);
    bench_seal(&mut c, &encoded);
    c.final_summary();
}
