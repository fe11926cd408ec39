//! The full-text index (`DESIGN.md` §4): tantivy, one document per record, fed from the log
//! after its checkpoint (the next offset to index, kept in the tantivy commit payload).
//!
//! Tantivy types stay inside this module. The index lives in `<store>/index/`; it is optional:
//! a store without it works, and `ctrace reindex` / `ctrace compact` / `ctrace search` build it.
//!
//! Invariants:
//! - The commit payload is `{"version":1,"applied":N}`: every sealed record with an offset
//!   below `N` has exactly one document, and no record at or above `N` has one. Documents and
//!   checkpoint become durable together in one tantivy commit, so a pass killed at any point
//!   leaves the last commit intact and the next pass resumes from its checkpoint: nothing lost,
//!   nothing duplicated.
//! - Only sealed records are indexed (they have offsets). One writer at a time (tantivy's
//!   writer lock, released by the kernel when a process dies).
//! - Nothing but offsets, times and the inverted index are kept: the text is not stored;
//!   snippets are made from the record, read back from the log by offset.
//! - `ctrace hook` never reaches this module.

pub mod consumer;
mod extract;
mod hit_row;
mod read_only;
mod search;
pub mod tokenizer;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tantivy::directory::error::LockError;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{Index, IndexWriter, TantivyError};

pub use extract::{BLOB_MIN_BYTES, Extracted, PTY_CARRY_BYTES, PtyCarry, SKIPPED_KEYS, extract};
pub use hit_row::{HitRow, SNIPPET_CHARS, hit_rows, replay_command};
pub use search::{Highlighter, Hit, SearchRequest, SearchResults, Snippet, SortOrder, search};
pub use write::{catch_up, catch_up_from, catch_up_with, delete_offsets, forget_session, rebuild};

use crate::log::{LogError, StorePaths};
use crate::segments::Offset;

/// Version of the schema and payload; an index of another version must be rebuilt.
pub(crate) const INDEX_VERSION: u32 = 1;

/// Raw bytes (payload bytes of records) between two commits of a long pass.
pub const COMMIT_EVERY_BYTES: u64 = 256 << 20;

/// Records of the previous pass read again to seed the PTY carry when a pass resumes.
const CARRY_SEED_RECORDS: u64 = 256;

/// Indexing memory per writer thread, bytes (tantivy flushes a segment when it is full).
const WRITER_HEAP_BYTES_PER_THREAD: usize = 128 << 20;

/// Segments with more documents than this are not merged again (merges then make segments of
/// at most 8 times this): merging ever larger segments
/// costs indexing time and buys little for top-N queries.
const MAX_DOCS_BEFORE_MERGE: usize = 40_000;

/// Records extracted in parallel per batch.
const BATCH_RECORDS: usize = 4096;

/// Errors of the index layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The index is not built yet.
    #[error("the full-text index is not built yet")]
    NotBuilt,
    /// Another process is writing the index.
    #[error("the index at {} is being updated by another process", path.display())]
    Busy {
        /// The index directory.
        path: PathBuf,
    },
    /// A tantivy operation failed.
    #[error("index at {}: {what}", path.display())]
    Tantivy {
        /// The index directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// An I/O error on the index directory.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The commit payload is not a ctrace checkpoint of this version.
    #[error(
        "index at {} has checkpoint payload {payload:?}, not a version {INDEX_VERSION} checkpoint; run `ctrace reindex`",
        path.display()
    )]
    BadPayload {
        /// The index directory.
        path: PathBuf,
        /// The payload found.
        payload: String,
    },
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The query is empty.
    #[error("empty query: give words, \"phrases\" or field:value terms")]
    EmptyQuery,
    /// The query names a field the index does not have.
    #[error("unknown field `{field}` in query {query:?}; fields are: {}", search::FIELD_NAMES.join(", "))]
    UnknownField {
        /// The field named.
        field: String,
        /// The whole query.
        query: String,
    },
    /// The query does not parse.
    #[error("query {query:?} does not parse: {problem}")]
    BadQuery {
        /// The whole query.
        query: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl IndexError {
    /// Whether the error is in what the user asked (a bad query), not in the index.
    pub fn is_bad_query(&self) -> bool {
        matches!(
            self,
            IndexError::EmptyQuery | IndexError::UnknownField { .. } | IndexError::BadQuery { .. }
        )
    }
}

/// What one indexing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Documents added (records).
    pub indexed: u64,
    /// The checkpoint after the pass: every record below this offset is indexed.
    pub applied: Offset,
    /// False when the pass stopped at its time budget before the end of the log.
    pub caught_up: bool,
    /// Wall time of the pass.
    pub elapsed: Duration,
    /// Raw payload bytes of the records indexed.
    pub raw_bytes: u64,
    /// Sealed records still not indexed after the pass.
    pub remaining: u64,
    /// Records that could not be read (damaged blocks) and were passed over.
    pub unreadable: u64,
}

/// The state of an index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStatus {
    /// Live documents.
    pub docs: u64,
    /// The checkpoint.
    pub applied: Offset,
    /// Bytes of the index directory on disk.
    pub size_bytes: u64,
}

/// Options of an indexing pass.
#[derive(Default)]
pub struct CatchUpOptions<'a> {
    /// Stop (after committing) once this much time has passed.
    pub budget: Option<Duration>,
    /// Commit after this many records (besides every [`COMMIT_EVERY_BYTES`]).
    pub commit_every_records: Option<u64>,
    /// Called after each batch with (records done, records to do in this pass).
    pub progress: Option<&'a dyn Fn(u64, u64)>,
    /// How long to wait for another process's index writer to finish before giving up with
    /// [`IndexError::Busy`] (`None`: do not wait). `ctrace compact` and `reindex` wait, as the
    /// seal waits for `ctrace.lock`; `search` does not.
    pub wait_for_writer: Option<Duration>,
    /// Called once when the writer has been busy for about a second (to tell the user).
    pub on_wait: Option<&'a dyn Fn()>,
}

/// How long `compact` and `reindex` wait for another process's index writer (10 minutes:
/// a full reindex of a large store takes minutes).
pub const WRITER_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    version: u32,
    applied: u64,
}

/// Field handles of the schema.
#[derive(Debug, Clone, Copy)]
struct Fields {
    offset: Field,
    ts: Field,
    session: Field,
    source: Field,
    event: Field,
    tool: Field,
    model: Field,
    agent: Field,
    project: Field,
    kind: Field,
    text: Field,
}

const KEYWORD_TOKENIZER: &str = "ctrace_keyword";

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let keyword = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(KEYWORD_TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer::TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        offset: builder.add_u64_field("offset", INDEXED | FAST),
        ts: builder.add_u64_field("ts", FAST),
        session: builder.add_text_field("session", keyword.clone()),
        source: builder.add_text_field("source", keyword.clone()),
        event: builder.add_text_field("event", keyword.clone()),
        tool: builder.add_text_field("tool", keyword.clone()),
        model: builder.add_text_field("model", keyword.clone()),
        agent: builder.add_text_field("agent", keyword.clone()),
        project: builder.add_text_field("project", keyword.clone()),
        kind: builder.add_text_field("type", keyword),
        text: builder.add_text_field("text", text),
    };
    (builder.build(), fields)
}

fn fields_of(schema: &Schema, path: &Path) -> Result<Fields, IndexError> {
    let get = |name: &'static str| {
        schema
            .get_field(name)
            .map_err(|source| IndexError::Tantivy {
                path: path.to_path_buf(),
                what: "reading the schema (run `ctrace reindex` to rebuild the index)",
                source,
            })
    };
    Ok(Fields {
        offset: get("offset")?,
        ts: get("ts")?,
        session: get("session")?,
        source: get("source")?,
        event: get("event")?,
        tool: get("tool")?,
        model: get("model")?,
        agent: get("agent")?,
        project: get("project")?,
        kind: get("type")?,
        text: get("text")?,
    })
}

fn register_tokenizers(index: &Index) {
    let manager = index.tokenizers();
    manager.register(
        tokenizer::TOKENIZER_NAME,
        tokenizer::WordsCjkTokenizer::default(),
    );
    manager.register(
        KEYWORD_TOKENIZER,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

/// The index directory of a store.
pub fn index_dir(paths: &StorePaths) -> PathBuf {
    paths.root.join("index")
}

/// Whether `<store>/index/` holds an index.
pub fn exists(paths: &StorePaths) -> bool {
    index_dir(paths).join("meta.json").exists()
}

fn tantivy_err<'p>(
    path: &'p Path,
    what: &'static str,
) -> impl FnOnce(TantivyError) -> IndexError + 'p {
    move |source| IndexError::Tantivy {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// An open index with its field handles.
struct Opened {
    index: Index,
    fields: Fields,
    dir: PathBuf,
}

fn open(paths: &StorePaths) -> Result<Opened, IndexError> {
    let dir = index_dir(paths);
    if !exists(paths) {
        return Err(IndexError::NotBuilt);
    }
    check_index_dir(&dir)?;
    let index = Index::open_in_dir(&dir).map_err(tantivy_err(&dir, "opening"))?;
    register_tokenizers(&index);
    let fields = fields_of(&index.schema(), &dir)?;
    Ok(Opened { index, fields, dir })
}

/// Refuses an index directory that is a symlink or another user's, or that holds a symlink
/// (tantivy opens its files itself, following symlinks).
fn check_index_dir(dir: &Path) -> Result<(), IndexError> {
    use crate::log::private;
    private::check_dir(dir, private::DirRule::Owned)?;
    let entries = std::fs::read_dir(dir).map_err(|source| IndexError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            return Err(IndexError::Log(LogError::Unsafe {
                path: entry.path(),
                reason: private::Unsafe::Symlink,
            }));
        }
    }
    Ok(())
}

fn open_or_create(paths: &StorePaths) -> Result<Opened, IndexError> {
    if exists(paths) {
        return open(paths);
    }
    let dir = index_dir(paths);
    crate::log::inbox::create_dir_private(&dir).map_err(|e| match e {
        LogError::Io { path, source } => IndexError::Io { path, source },
        other => IndexError::Log(other),
    })?;
    let (schema, fields) = schema();
    let index = Index::create_in_dir(&dir, schema).map_err(tantivy_err(&dir, "creating"))?;
    register_tokenizers(&index);
    Ok(Opened { index, fields, dir })
}

fn read_payload(opened: &Opened) -> Result<u64, IndexError> {
    let metas = opened
        .index
        .load_metas()
        .map_err(tantivy_err(&opened.dir, "reading meta.json"))?;
    let Some(text) = metas.payload else {
        return Ok(0);
    };
    match serde_json::from_str::<Payload>(&text) {
        Ok(payload) if payload.version == INDEX_VERSION => Ok(payload.applied),
        _ => Err(IndexError::BadPayload {
            path: opened.dir.clone(),
            payload: text,
        }),
    }
}

/// [`writer`], retrying every 50 ms while another process holds the writer lock, for up to
/// `options.wait_for_writer`; `options.on_wait` is called once after about a second.
fn writer_waiting(
    opened: &Opened,
    threads: usize,
    heap_bytes: usize,
    options: &CatchUpOptions<'_>,
) -> Result<IndexWriter, IndexError> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match writer(opened, threads, heap_bytes) {
            Err(IndexError::Busy { .. })
                if options
                    .wait_for_writer
                    .is_some_and(|wait| started.elapsed() < wait) =>
            {
                if !told && started.elapsed() >= Duration::from_secs(1) {
                    told = true;
                    tracing::info!(dir = %opened.dir.display(), "waiting for another process's index writer");
                    if let Some(on_wait) = options.on_wait {
                        on_wait();
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn writer(opened: &Opened, threads: usize, heap_bytes: usize) -> Result<IndexWriter, IndexError> {
    match opened.index.writer_with_num_threads(threads, heap_bytes) {
        Ok(writer) => Ok(writer),
        Err(TantivyError::LockFailure(LockError::LockBusy, _)) => Err(IndexError::Busy {
            path: opened.dir.clone(),
        }),
        Err(source) => Err(IndexError::Tantivy {
            path: opened.dir.clone(),
            what: "opening the writer",
            source,
        }),
    }
}

fn commit(writer: &mut IndexWriter, dir: &Path, applied: u64) -> Result<(), IndexError> {
    let payload = serde_json::to_string(&Payload {
        version: INDEX_VERSION,
        applied,
    })
    .unwrap_or_default();
    let mut prepared = writer
        .prepare_commit()
        .map_err(tantivy_err(dir, "preparing a commit"))?;
    prepared.set_payload(&payload);
    crate::fault::point("index-commit").map_err(|e| tantivy_err(dir, "committing")(e.into()))?;
    prepared.commit().map_err(tantivy_err(dir, "committing"))?;
    Ok(())
}

/// The index checkpoint: every record with an offset below it is indexed. `None` when there is
/// no index.
///
/// # Errors
/// [`IndexError`] when the index cannot be opened.
pub fn applied_offset(paths: &StorePaths) -> Result<Option<Offset>, IndexError> {
    if !exists(paths) {
        return Ok(None);
    }
    let opened = open(paths)?;
    Ok(Some(Offset(read_payload(&opened)?)))
}

/// Documents, checkpoint and size of the index; `None` when there is none.
///
/// # Errors
/// [`IndexError`] when the index cannot be opened or its directory listed.
pub fn status(paths: &StorePaths) -> Result<Option<IndexStatus>, IndexError> {
    if !exists(paths) {
        return Ok(None);
    }
    let opened = open(paths)?;
    let applied = Offset(read_payload(&opened)?);
    let metas = opened
        .index
        .load_metas()
        .map_err(tantivy_err(&opened.dir, "reading meta.json"))?;
    let docs = metas.segments.iter().map(|s| u64::from(s.num_docs())).sum();
    Ok(Some(IndexStatus {
        docs,
        applied,
        size_bytes: dir_bytes(&opened.dir)?,
    }))
}

/// `verify` for the index (`docs/search.md`, "What verify checks"): tantivy's own checksum of
/// every file of the live segments (`Index::validate_checksum`), the checkpoint not past the
/// log's end (`next_offset`), and each indexed record indexed once and at or below the
/// checkpoint. Returns `None` when there is no index, else the damage found (empty: clean).
///
/// # Errors
/// None in practice: an index that does not open is reported as damage.
pub fn check(paths: &StorePaths, next_offset: Offset) -> Result<Option<Vec<String>>, IndexError> {
    if !exists(paths) {
        return Ok(None);
    }
    let mut damage = Vec::new();
    let opened = match open(paths) {
        Ok(opened) => opened,
        Err(error) => {
            damage.push(format!("does not open: {error}"));
            return Ok(Some(damage));
        }
    };
    match opened.index.validate_checksum() {
        Ok(files) => {
            let mut files: Vec<_> = files.into_iter().collect();
            files.sort();
            damage.extend(
                files
                    .into_iter()
                    .map(|f| format!("file {} fails its checksum", f.display())),
            );
        }
        Err(error) => damage.push(format!("checksums do not read: {error}")),
    }
    if !damage.is_empty() {
        return Ok(Some(damage));
    }
    let applied = match read_payload(&opened) {
        Ok(applied) => applied,
        Err(error) => {
            damage.push(format!("checkpoint does not read: {error}"));
            return Ok(Some(damage));
        }
    };
    if applied > next_offset.0 {
        damage.push(format!(
            "checkpoint {applied} is past the log's end {next_offset}"
        ));
    }
    match indexed_offsets(paths) {
        Ok(offsets) => {
            if let Some(w) = offsets.windows(2).find(|w| w[0] == w[1]) {
                damage.push(format!("record {} is indexed more than once", w[0]));
            }
            if let Some(last) = offsets.last().filter(|&&o| o >= applied) {
                damage.push(format!(
                    "record {last} is indexed but the checkpoint is {applied}"
                ));
            }
        }
        // A reader needs its lock file, which a store that cannot be written does not allow:
        // then the documents are not compared (the checksums above were checked).
        Err(error) => tracing::warn!(%error, "verify: index documents not compared"),
    }
    Ok(Some(damage))
}

/// The offsets of every live document, sorted (duplicates kept), for checks.
///
/// # Errors
/// [`IndexError`] when the index cannot be opened or read.
pub fn indexed_offsets(paths: &StorePaths) -> Result<Vec<u64>, IndexError> {
    let opened = open(paths)?;
    let reader = opened
        .index
        .reader()
        .map_err(tantivy_err(&opened.dir, "opening a reader"))?;
    let searcher = reader.searcher();
    let mut out = Vec::new();
    for segment in searcher.segment_readers() {
        let column = segment
            .fast_fields()
            .u64("offset")
            .map_err(tantivy_err(&opened.dir, "reading the offset column"))?;
        for doc in segment.doc_ids_alive() {
            out.extend(column.first(doc));
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn dir_bytes(dir: &Path) -> Result<u64, IndexError> {
    let io = |source| IndexError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let meta = entry.map_err(io)?.metadata().map_err(io)?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
