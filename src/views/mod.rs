//! Materialized views (`DESIGN.md` §4): `<store>/views/views.sqlite` (rusqlite, bundled SQLite)
//! with sessions, turns, spans, tasks and usage, and the applied log offset written in the same
//! transaction as the rows. Cost is computed at query time from the price table.
//!
//! Invariants:
//! - `meta.applied_offset` = N means every sealed record with an offset below N is folded in,
//!   and no record at or above N is. It is written in the same transaction as the rows, so a
//!   crash at any point leaves the views consistent with their checkpoint.
//! - Folding is idempotent per record only through the checkpoint: a record is applied once.
//! - Only sealed records are folded; inbox records wait for the next seal.
//! - The hook path never opens the database.
//!
//! The schema is in [`schema`] and documented for users in `docs/views.md`.

pub mod access;
pub mod check;
pub mod consumer;
pub mod cost;
pub mod cost_rows;
pub mod facts;
mod fold;
pub mod items;
pub mod listing;
mod packed;
pub mod pricing;
mod rebuild;
pub mod reconcile;
pub mod record_text;
pub mod schema;
pub mod shape;
mod shell;
pub mod summary;
pub mod task_detail;
pub mod tasks;
pub mod telemetry;
pub mod tree;
pub mod tree_mermaid;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::log::read::{Block, TimeRange};
use crate::log::{LogError, Snapshot, Store, StorePaths};
use crate::segments::Offset;

/// Records folded per transaction (`CTRACE_VIEWS_BATCH_RECORDS` overrides it, for tests).
const BATCH_RECORDS: usize = 50_000;

/// Records folded per transaction of a rebuild, whose fresh file has no reader to hand a
/// checkpoint to: larger batches merge more updates of the same spans, usage rows and sessions
/// in memory before writing them (measured: a rebuild of a million records of Claude Code
/// sessions peaks at about 590 MiB resident, 150 MiB more than with 50,000-record batches).
const REBUILD_BATCH_RECORDS: usize = 1_000_000;

/// The batch size: `CTRACE_VIEWS_BATCH_RECORDS` when set, else `default`.
fn batch_records(default: usize) -> usize {
    std::env::var("CTRACE_VIEWS_BATCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Errors of the views layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewsError {
    /// The views are not built yet.
    #[error("the views are not built yet")]
    NotBuilt,
    /// SQLite failed on the views database.
    #[error("views database {}: {what}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// File-system operation on the views directory failed.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the log failed.
    #[error("reading the log for the views")]
    Log(#[from] LogError),
    /// A reading thread of the fold stopped before reading all its blocks (it panicked). The
    /// batch in progress is rolled back; the checkpoint stays before `offset`.
    #[error("a reading thread of the views fold stopped before the block at offset {offset}")]
    ReaderStopped {
        /// First record of the block that never arrived.
        offset: Offset,
    },
    /// The stored checkpoint is not a number.
    #[error("views database {}: applied_offset {value:?} is not a number", path.display())]
    BadCheckpoint {
        /// The database file.
        path: PathBuf,
        /// The stored text.
        value: String,
    },
}

/// Attaches the database path and an action to a rusqlite error.
pub(crate) trait SqlContext<T> {
    /// Maps the error to [`ViewsError::Sqlite`].
    fn sql(self, path: &Path, what: &'static str) -> Result<T, ViewsError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn sql(self, path: &Path, what: &'static str) -> Result<T, ViewsError> {
        self.map_err(|source| ViewsError::Sqlite {
            path: path.to_path_buf(),
            what,
            source,
        })
    }
}

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewsReport {
    /// Records folded in.
    pub applied_records: u64,
    /// The checkpoint after the pass: every record below this offset is applied.
    pub applied: Offset,
    /// Wall time of the pass.
    pub elapsed: Duration,
    /// Records that could not be read or decoded (their blocks are damaged); skipped and listed
    /// in the `problems` table.
    pub unreadable_records: u64,
}

/// The views database file: `<store>/views/views.sqlite`, with the store root resolved
/// (SQLite refuses a path through a symlink, `access::open_flags`).
pub fn db_path(paths: &StorePaths) -> PathBuf {
    crate::log::private::canonical_store_path(&paths.root).join("views/views.sqlite")
}

/// An open views database.
#[derive(Debug)]
pub struct ViewsDb {
    conn: Connection,
    path: PathBuf,
}

impl ViewsDb {
    /// Opens (creating if missing) the views database of `paths` and its schema.
    ///
    /// # Errors
    /// [`ViewsError::Io`] when the directory cannot be created; [`ViewsError::Sqlite`].
    pub fn open(paths: &StorePaths) -> Result<Self, ViewsError> {
        let path = db_path(paths);
        if let Some(dir) = path.parent() {
            crate::log::inbox::create_dir_private(dir).map_err(|e| match e {
                LogError::Io { path, source } => ViewsError::Io { path, source },
                other => ViewsError::Log(other),
            })?;
            // Files of killed rebuilds; failing to delete one does not stop a query.
            if let Err(error) = rebuild::remove_stale(dir) {
                tracing::warn!(%error, "could not delete a stale rebuild file");
            }
        }
        let conn =
            Connection::open_with_flags(&path, access::open_flags()).sql(&path, "opening")?;
        conn.busy_timeout(Duration::from_secs(30))
            .sql(&path, "setting the busy timeout")?;
        conn.execute_batch(schema::PRAGMAS)
            .sql(&path, "setting pragmas")?;
        conn.execute_batch(schema::TABLES)
            .sql(&path, "creating the schema")?;
        conn.execute_batch(schema::INDEXES)
            .sql(&path, "creating the indexes")?;
        conn.execute_batch(schema::TRIGGERS)
            .sql(&path, "creating the triggers")?;
        let db = Self { conn, path };
        match db.meta("schema_version")? {
            Some(version) if version == schema::SCHEMA_VERSION => {}
            Some(_) => {
                drop(db);
                remove_db(paths)?;
                return Self::open(paths);
            }
            None => db.set_meta("schema_version", schema::SCHEMA_VERSION)?,
        }
        Ok(db)
    }

    /// Opens the database only if it exists.
    ///
    /// # Errors
    /// As [`ViewsDb::open`].
    pub fn open_existing(paths: &StorePaths) -> Result<Option<Self>, ViewsError> {
        if db_path(paths).exists() {
            Self::open(paths).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The SQLite connection (read queries).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, key: &str) -> Result<Option<String>, ViewsError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .sql(&self.path, "reading meta")
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), ViewsError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .sql(&self.path, "writing meta")
            .map(|_| ())
    }

    /// The checkpoint stored in the database (0 when nothing is applied yet).
    ///
    /// # Errors
    /// [`ViewsError::Sqlite`] or [`ViewsError::BadCheckpoint`].
    pub fn applied(&self) -> Result<Offset, ViewsError> {
        read_checkpoint(&self.conn, &self.path)
    }
}

fn read_checkpoint(conn: &Connection, path: &Path) -> Result<Offset, ViewsError> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'applied_offset'",
            [],
            |row| row.get(0),
        )
        .optional()
        .sql(path, "reading the checkpoint")?;
    match value {
        None => Ok(Offset(0)),
        Some(text) => text
            .parse()
            .map(Offset)
            .map_err(|_| ViewsError::BadCheckpoint {
                path: path.to_path_buf(),
                value: text,
            }),
    }
}

fn remove_db(paths: &StorePaths) -> Result<(), ViewsError> {
    let path = db_path(paths);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.clone().into_os_string();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ViewsError::Io { path: file, source }),
        }
    }
    Ok(())
}

/// The views checkpoint: every record with an offset below it is applied. `None` when the
/// views database does not exist.
///
/// # Errors
/// [`ViewsError`] when the database cannot be opened.
pub fn applied_offset(paths: &StorePaths) -> Result<Option<Offset>, ViewsError> {
    match ViewsDb::open_existing(paths)? {
        Some(db) => db.applied().map(Some),
        None => Ok(None),
    }
}

/// Folds the sealed records after the checkpoint into the views, creating them if missing
/// (through [`rebuild`]). Work is proportional to the new records (plus the sessions they
/// touch).
///
/// # Errors
/// [`ViewsError`].
pub fn catch_up(store: &Store) -> Result<ViewsReport, ViewsError> {
    if !db_path(store.paths()).exists() {
        return rebuild(store);
    }
    let mut db = ViewsDb::open(store.paths())?;
    catch_up_db(store, &mut db)
}

/// [`catch_up`] on an already open database.
///
/// # Errors
/// [`ViewsError`].
pub(crate) fn catch_up_db(store: &Store, db: &mut ViewsDb) -> Result<ViewsReport, ViewsError> {
    let started = Instant::now();
    let snapshot = store.snapshot()?;
    let end = snapshot.manifest().next_offset;
    let mut report = ViewsReport {
        applied: db.applied()?,
        ..ViewsReport::default()
    };
    if report.applied < end {
        fold_log(
            db,
            &snapshot,
            end,
            batch_records(BATCH_RECORDS),
            &mut report,
        )?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Blocks read ahead of the fold (bounded: memory stays a few blocks).
const READ_AHEAD_BLOCKS: usize = 8;

/// One block of records read, decompressed and JSON-extracted by a reading thread.
struct ReadBlock {
    /// Offset of the block's first record.
    first: Offset,
    /// Offset after the block's last record.
    end: Offset,
    /// Where the reader started in this block (records below were skipped).
    from: Offset,
    /// The records' view fields with their extracted JSON, or why the block could not be read.
    records: Result<packed::PackedBlock, String>,
}

/// The buffers of a folded block, handed back by the fold to be reused by the reading thread
/// that filled it (no allocation per block, and none freed across threads).
type Spent = packed::PackedBlock;

/// Reads `block` into `out`, decoding the records from `from` on. A damaged block is passed
/// over with the warning every reader of the log gives (the commands that read only the views
/// print it too).
///
/// # Errors
/// The block's damage, as text.
fn read_block_into(
    snapshot: &Snapshot,
    block: &Block,
    from: Offset,
    out: &mut packed::PackedBlock,
) -> Result<(), String> {
    snapshot
        .for_each_record_in(block, |offset, record| {
            out.push_block_record(offset, from, record);
        })
        .map_err(|damaged| {
            damaged.note();
            damaged.source.to_string()
        })
}

/// One block to read, from record `from` on (records below were folded already).
#[derive(Debug, Clone, Copy)]
struct BlockJob {
    block: Block,
    from: Offset,
}

/// The blocks holding records `from..end`, in offset order. Records below the first live
/// segment (removed by retention), in the gaps of a sparse segment, and past the last segment
/// are in no job.
fn block_jobs(snapshot: &Snapshot, from: Offset, end: Offset) -> Vec<BlockJob> {
    snapshot
        .blocks(from..end, TimeRange::default())
        .into_iter()
        .map(|block| BlockJob {
            block,
            from: from.max(block.first),
        })
        .collect()
}

/// Reading threads of [`fold_log`] beside the folding one: one per core, at least one, at
/// most 4; `CTRACE_VIEWS_READERS` sets the number (for measurements).
fn reader_threads() -> usize {
    if let Some(n) = std::env::var("CTRACE_VIEWS_READERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.clamp(1, 16);
    }
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 4)
}

/// A reading thread of [`fold_log`]: reads its share of the jobs (decompressed, decoded,
/// JSON extracted) and sends them in order. Stops early when the fold hangs up. The blocks
/// the fold hands back are cleared here, so their extracted values are freed by the thread
/// that allocated them.
fn read_ahead(
    snapshot: &Snapshot,
    jobs: impl Iterator<Item = BlockJob>,
    blocks: &std::sync::mpsc::SyncSender<ReadBlock>,
    spent: &std::sync::mpsc::Receiver<Spent>,
) {
    let mut free: Vec<packed::PackedBlock> = Vec::new();
    for job in jobs {
        while let Ok(mut buffers) = spent.try_recv() {
            buffers.clear();
            free.push(buffers);
        }
        let mut buffers = free.pop().unwrap_or_default();
        let records =
            read_block_into(snapshot, &job.block, job.from, &mut buffers).map(|()| buffers);
        let read = ReadBlock {
            first: job.block.first,
            end: job.block.end,
            from: job.from,
            records,
        };
        if blocks.send(read).is_err() {
            return;
        }
    }
}

/// The blocks of [`fold_log`]'s reading threads, received in offset order: job `k` comes from
/// reader `k % readers`, and its buffers go back to that reader.
struct OrderedBlocks<'j> {
    jobs: &'j [BlockJob],
    receivers: Vec<std::sync::mpsc::Receiver<ReadBlock>>,
    give_back: Vec<std::sync::mpsc::Sender<Spent>>,
    /// Jobs received so far.
    next: usize,
}

impl OrderedBlocks<'_> {
    /// The next block in offset order, with the index of the reader that filled it; `None`
    /// after the last job.
    ///
    /// # Errors
    /// [`ViewsError::ReaderStopped`] when the reader of the next job hung up before sending it.
    fn recv(&mut self) -> Result<Option<(usize, ReadBlock)>, ViewsError> {
        let Some(job) = self.jobs.get(self.next) else {
            return Ok(None);
        };
        let reader = self.next % self.receivers.len();
        let block = self.receivers[reader]
            .recv()
            .map_err(|_| ViewsError::ReaderStopped { offset: job.from })?;
        self.next += 1;
        Ok(Some((reader, block)))
    }

    /// Hands a folded block's buffers back to `reader` (they are dropped here when that reader
    /// is done).
    fn give_back(&self, reader: usize, buffers: Spent) {
        let _ = self.give_back[reader].send(buffers);
    }
}

/// Folds the sealed records of `snapshot` from `report.applied` up to `end` into `db`, one
/// transaction per `batch` records, each with its checkpoint. Updates `report`.
///
/// Reading threads ([`reader_threads`]; each reads every n-th block: decompresses, decodes,
/// extracts JSON) run beside this one, which folds the blocks in offset order and writes
/// SQLite.
fn fold_log(
    db: &mut ViewsDb,
    snapshot: &Snapshot,
    end: Offset,
    batch: usize,
    report: &mut ViewsReport,
) -> Result<(), ViewsError> {
    let jobs = block_jobs(snapshot, report.applied, end);
    let readers = reader_threads().min(jobs.len().max(1));
    let jobs = &jobs;
    std::thread::scope(|scope| {
        let mut ordered = OrderedBlocks {
            jobs,
            receivers: Vec::with_capacity(readers),
            give_back: Vec::with_capacity(readers),
            next: 0,
        };
        let mut handles = Vec::with_capacity(readers);
        for reader in 0..readers {
            let (sender, blocks) =
                std::sync::mpsc::sync_channel(READ_AHEAD_BLOCKS.div_ceil(readers));
            let (give_back, spent) = std::sync::mpsc::channel();
            ordered.receivers.push(blocks);
            ordered.give_back.push(give_back);
            let mine = jobs.iter().copied().skip(reader).step_by(readers);
            handles.push(scope.spawn(move || read_ahead(snapshot, mine, &sender, &spent)));
        }
        let folded = fold_blocks(db, &mut ordered, end, batch, report);
        // Hanging up stops readers still reading ahead; joining them here turns a reader's
        // panic into the fold's error (`ReaderStopped`) instead of a panic of the scope.
        drop(ordered);
        let panicked = handles.into_iter().any(|h| h.join().is_err());
        match folded {
            Ok(()) if panicked => Err(ViewsError::ReaderStopped {
                offset: report.applied,
            }),
            other => other,
        }
    })
}

/// The folding side of [`fold_log`].
fn fold_blocks(
    db: &mut ViewsDb,
    blocks: &mut OrderedBlocks,
    end: Offset,
    batch: usize,
    report: &mut ViewsReport,
) -> Result<(), ViewsError> {
    let path = db.path.clone();
    let batch = batch.max(1);
    let mut pos = report.applied;
    // A block whose records straddle two batches, with its reader.
    let mut carry: Option<(usize, ReadBlock)> = None;
    loop {
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql(&path, "starting a transaction")?;
        // Another process may have applied records since we looked: go on from its checkpoint.
        pos = pos.max(read_checkpoint(&tx, &path)?);
        if pos >= end {
            break;
        }
        let mut folder = fold::Folder::new(&tx, &path)?;
        let mut count = 0usize;
        while count < batch && pos < end {
            let (reader, mut block) = match carry.take() {
                Some(carried) => carried,
                None => match blocks.recv()? {
                    Some(received) => received,
                    None => {
                        // No more jobs: nothing more below `end` is in a live segment.
                        pos = end;
                        break;
                    }
                },
            };
            if block.end <= pos {
                continue;
            }
            match &mut block.records {
                Ok(records) => {
                    let window = Window { pos, batch };
                    let first = block.first;
                    if let Some(offset) =
                        fold_packed(&mut folder, records, first, window, &mut count, report)?
                    {
                        // Batches end at a record, not a block: the rest of this block
                        // opens the next one.
                        pos = offset;
                        carry = Some((reader, block));
                        break;
                    }
                }
                Err(error) => {
                    let from = pos.max(block.from);
                    let skipped = block.end.0 - from.0;
                    report.unreadable_records += skipped;
                    count += skipped as usize;
                    folder.problem(
                        Some(from.0),
                        None,
                        "unreadable_record",
                        &format!(
                            "{skipped} records from offset {from} in a damaged block: {error}"
                        ),
                    )?;
                }
            }
            pos = block.end;
            if let Ok(records) = block.records {
                // The reader may be done already; then the records are freed here.
                blocks.give_back(reader, records);
            }
        }
        folder.finish()?;
        drop(folder);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('applied_offset', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [pos.0.to_string()],
        )
        .sql(&path, "writing the checkpoint")?;
        crate::fault::sqlite("views-commit").sql(&path, "committing")?;
        tx.commit().sql(&path, "committing")?;
        report.applied_records += count as u64;
        report.applied = pos;
    }
    report.applied = pos;
    Ok(())
}

/// Where a batch of [`fold_blocks`] stands: the next offset to fold and the batch size.
#[derive(Debug, Clone, Copy)]
struct Window {
    pos: Offset,
    batch: usize,
}

/// Folds the records of one read block (its first record at `first`) from `window.pos` on,
/// until the batch holds `window.batch` records (`count` so far). Returns the offset of the
/// first record left for the next batch, when the batch filled up inside this block.
fn fold_packed(
    folder: &mut fold::Folder<'_>,
    records: &mut packed::PackedBlock,
    first: Offset,
    window: Window,
    count: &mut usize,
    report: &mut ViewsReport,
) -> Result<Option<Offset>, ViewsError> {
    let packed::PackedBlock { text, items } = records;
    for (k, item) in items.iter_mut().enumerate() {
        let offset = Offset(first.0 + k as u64);
        if offset < window.pos || matches!(item, packed::Item::Skipped) {
            continue;
        }
        if *count == window.batch {
            return Ok(Some(offset));
        }
        *count += 1;
        match item {
            packed::Item::Record(record, extracted) => {
                let view = text.view(record);
                folder.apply(offset, &view, extracted)?;
            }
            packed::Item::Skipped => {}
            packed::Item::Unreadable(error) => {
                report.unreadable_records += 1;
                folder.problem(
                    Some(offset.0),
                    None,
                    "unreadable_record",
                    &format!("record {offset} does not decode: {error}"),
                )?;
            }
        }
    }
    Ok(None)
}

/// Rebuilds the views from the whole log (`ctrace compact --rebuild`) into a fresh database
/// file beside the live one (`views.sqlite.rebuild-<pid>`: no journal, no fsync until the end,
/// secondary indexes built after the rows), then renames it over `views.sqlite`. The old
/// database stays valid until the rename, so a crash at any point leaves either the old views or
/// the new ones; a killed rebuild's file is deleted by the next [`ViewsDb::open`] or rebuild.
///
/// # Errors
/// [`ViewsError`].
pub fn rebuild(store: &Store) -> Result<ViewsReport, ViewsError> {
    rebuild::run(store)
}

/// Deletes one session's rows from every view (`ctrace forget`). Returns rows deleted.
///
/// # Errors
/// [`ViewsError`].
pub fn forget_session(paths: &StorePaths, session: &str) -> Result<u64, ViewsError> {
    let Some(mut db) = ViewsDb::open_existing(paths)? else {
        return Ok(0);
    };
    let path = db.path.clone();
    let tx = db
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql(&path, "starting a transaction")?;
    let mut deleted = 0u64;
    for table in schema::SESSION_TABLES {
        deleted += tx
            .execute(
                &format!("DELETE FROM {table} WHERE session = ?1"),
                [session],
            )
            .sql(&path, "forgetting a session")? as u64;
    }
    tx.commit().sql(&path, "committing")?;
    Ok(deleted)
}

/// Brings the views up to date and opens them for a query: seals nothing itself (callers run
/// `cli::refresh` first), then folds new sealed records.
///
/// # Errors
/// [`ViewsError`].
pub fn open_current(store: &Store) -> Result<ViewsDb, ViewsError> {
    if !db_path(store.paths()).exists() {
        rebuild(store)?;
    }
    let mut db = ViewsDb::open(store.paths())?;
    catch_up_db(store, &mut db)?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::{BlockJob, OrderedBlocks, ReadBlock, ViewsError};
    use crate::log::read::Block;
    use crate::segments::Offset;

    fn job(k: u64) -> BlockJob {
        BlockJob {
            block: Block::detached(Offset(k * 10), Offset(k * 10 + 10)),
            from: Offset(k * 10),
        }
    }

    fn read(job: &BlockJob) -> ReadBlock {
        ReadBlock {
            first: job.block.first,
            end: job.block.end,
            from: job.from,
            records: Err("test".to_owned()),
        }
    }

    /// Blocks come back in job order across readers, each tagged with its reader; a reader
    /// that hangs up before its last job is an error naming the missing block, not the end.
    #[test]
    fn ordered_blocks_interleave_readers_and_report_a_stopped_one() {
        let jobs: Vec<BlockJob> = (0..5).map(job).collect();
        let mut ordered = OrderedBlocks {
            jobs: &jobs,
            receivers: Vec::new(),
            give_back: Vec::new(),
            next: 0,
        };
        let mut senders = Vec::new();
        for _ in 0..2 {
            let (sender, receiver) = std::sync::mpsc::sync_channel(8);
            let (give_back, _spent) = std::sync::mpsc::channel();
            ordered.receivers.push(receiver);
            ordered.give_back.push(give_back);
            senders.push(sender);
        }
        // Reader 1 sends first: order comes from the job index, not arrival.
        senders[1].send(read(&jobs[1])).unwrap();
        senders[0].send(read(&jobs[0])).unwrap();
        senders[0].send(read(&jobs[2])).unwrap();
        senders[1].send(read(&jobs[3])).unwrap();
        // Reader 0 stops before job 4.
        drop(senders.remove(0));
        for (k, expected_reader) in [(0u64, 0usize), (1, 1), (2, 0), (3, 1)] {
            let (reader, block) = ordered.recv().unwrap().unwrap();
            assert_eq!((reader, block.first), (expected_reader, Offset(k * 10)));
        }
        match ordered.recv() {
            Err(ViewsError::ReaderStopped { offset }) => assert_eq!(offset, Offset(40)),
            other => panic!(
                "expected ReaderStopped, got {:?}",
                other.map(|b| b.is_some())
            ),
        }
    }

    #[test]
    fn ordered_blocks_end_after_the_last_job() {
        let jobs = vec![job(0)];
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let (give_back, _spent) = std::sync::mpsc::channel();
        let mut ordered = OrderedBlocks {
            jobs: &jobs,
            receivers: vec![receiver],
            give_back: vec![give_back],
            next: 0,
        };
        sender.send(read(&jobs[0])).unwrap();
        assert!(ordered.recv().unwrap().is_some());
        // The sender is still alive: the end comes from the job count, not a hang-up.
        assert!(ordered.recv().unwrap().is_none());
        drop(sender);
    }
}
