//! Writing the index: a pass from the checkpoint to the end of the log (one batch of records
//! at a time, documents extracted in parallel, committed with the new checkpoint), a rebuild,
//! and deletions (retention, `forget`).

use std::time::{Duration, Instant};

use rayon::prelude::*;
use tantivy::schema::IndexRecordOption;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::{
    BATCH_RECORDS, CARRY_SEED_RECORDS, COMMIT_EVERY_BYTES, CatchUpOptions, Extracted, Fields,
    IndexError, IndexReport, MAX_DOCS_BEFORE_MERGE, Opened, PtyCarry, WRITER_HEAP_BYTES_PER_THREAD,
    WRITER_WAIT, commit, exists, extract, index_dir, open, open_or_create, read_payload,
    tantivy_err, writer_waiting,
};
use crate::log::read::TimeRange;
use crate::log::{LogError, Snapshot, Store, StorePaths};
use crate::model::StoredRecord;
use crate::segments::Offset;

/// Indexes the sealed records after the checkpoint, creating the index if missing; stops after
/// `budget` when given (the report says whether it caught up).
///
/// # Errors
/// [`IndexError::Busy`] when another process is writing the index; [`IndexError`] when the
/// index or the log cannot be read or written.
pub fn catch_up(store: &Store, budget: Option<Duration>) -> Result<IndexReport, IndexError> {
    catch_up_with(
        store,
        &CatchUpOptions {
            budget,
            ..CatchUpOptions::default()
        },
    )
}

/// Deletes the index and builds it again from the whole log.
///
/// # Errors
/// As [`catch_up_with`]; [`IndexError::Io`] when the old index cannot be removed.
pub fn rebuild(store: &Store, options: &CatchUpOptions<'_>) -> Result<IndexReport, IndexError> {
    let dir = index_dir(store.paths());
    if dir.exists() {
        // Take the writer lock first, so a rebuild does not pull the index from under a pass.
        let opened = open(store.paths());
        let guard = match &opened {
            Ok(opened) => Some(writer_waiting(opened, 1, 15_000_000, options)?),
            Err(_) => None,
        };
        drop(guard);
        std::fs::remove_dir_all(&dir).map_err(|source| IndexError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    catch_up_with(store, options)
}

fn indexing_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 4)
}

/// [`catch_up`] with options: a budget, commits every N records, progress.
///
/// # Errors
/// As [`catch_up`].
pub fn catch_up_with(
    store: &Store,
    options: &CatchUpOptions<'_>,
) -> Result<IndexReport, IndexError> {
    let snapshot = store.snapshot()?;
    catch_up_from(store.paths(), &snapshot, options)
}

/// [`catch_up_with`] on a snapshot the caller already holds (indexes its sealed records).
///
/// # Errors
/// As [`catch_up`].
pub fn catch_up_from(
    paths: &StorePaths,
    snapshot: &Snapshot,
    options: &CatchUpOptions<'_>,
) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let end = snapshot.manifest().next_offset.0;
    let opened = open_or_create(paths)?;
    let applied = read_payload(&opened)?;
    if applied >= end {
        return Ok(IndexReport {
            applied: Offset(applied),
            caught_up: true,
            elapsed: started.elapsed(),
            ..IndexReport::default()
        });
    }
    let threads = indexing_threads();
    let writer = writer_waiting(
        &opened,
        threads,
        threads * WRITER_HEAP_BYTES_PER_THREAD,
        options,
    )?;
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_max_docs_before_merge(MAX_DOCS_BEFORE_MERGE);
    writer.set_merge_policy(Box::new(policy));
    // Records below the first live segment were removed by retention: not unreadable.
    let first_live = snapshot.first_sealed_offset().map_or(end, |o| o.0);
    let mut pass = Pass {
        opened: &opened,
        writer,
        carry: seed_carry(snapshot, applied),
        started,
        applied,
        end,
        expected: applied.max(first_live),
        since_commit_bytes: 0,
        since_commit_records: 0,
        report: IndexReport {
            applied: Offset(applied),
            ..IndexReport::default()
        },
    };
    let mut batch: Vec<StoredRecord> = Vec::with_capacity(BATCH_RECORDS);
    let mut records = snapshot.scan(Offset(applied), TimeRange::default(), false);
    let mut stopped = false;
    loop {
        let batch_bytes = next_batch(&mut records, &mut batch);
        if batch.is_empty() {
            break;
        }
        if pass.add_batch(&batch, batch_bytes, options)? == Flow::Stop {
            stopped = true;
            break;
        }
    }
    pass.finish(stopped)
}

/// The PTY carry as it stood at `applied`: the records just before it are observed again.
fn seed_carry(snapshot: &Snapshot, applied: u64) -> PtyCarry {
    let mut carry = PtyCarry::new();
    if applied > 0 {
        let seed_from = Offset(applied.saturating_sub(CARRY_SEED_RECORDS));
        for stored in snapshot
            .scan(seed_from, TimeRange::default(), false)
            .flatten()
        {
            if stored.offset.is_none_or(|o| o.0 >= applied) {
                break;
            }
            carry.observe(&stored.record);
        }
    }
    carry
}

/// Fills `batch` (cleared first) with the next readable records, up to [`BATCH_RECORDS`] or
/// 16 MiB; records or blocks that cannot be read are passed over with a warning. Returns the
/// batch's raw bytes.
fn next_batch(
    records: &mut impl Iterator<Item = Result<StoredRecord, LogError>>,
    batch: &mut Vec<StoredRecord>,
) -> u64 {
    batch.clear();
    let mut batch_bytes = 0u64;
    for item in records.by_ref() {
        match item {
            Ok(stored) => {
                batch_bytes += stored.record.raw().len() as u64;
                batch.push(stored);
                if batch.len() >= BATCH_RECORDS || batch_bytes >= 16 << 20 {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "index: passing over a record or block that cannot be read");
            }
        }
    }
    batch_bytes
}

/// Whether an indexing pass goes on after a batch.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The budget ran out before the end of the log.
    Stop,
}

/// One indexing pass: the writer, the PTY carry, and where the pass stands.
struct Pass<'o> {
    opened: &'o Opened,
    writer: IndexWriter,
    carry: PtyCarry,
    started: Instant,
    /// The checkpoint the pass started from.
    applied: u64,
    /// The log's next offset when the pass started.
    end: u64,
    /// The next offset the pass expects (everything below it is indexed or unreadable).
    expected: u64,
    since_commit_bytes: u64,
    since_commit_records: u64,
    report: IndexReport,
}

impl Pass<'_> {
    /// Indexes one batch (documents extracted in parallel), commits when a limit is reached.
    fn add_batch(
        &mut self,
        batch: &[StoredRecord],
        batch_bytes: u64,
        options: &CatchUpOptions<'_>,
    ) -> Result<Flow, IndexError> {
        let opened = self.opened;
        let (dir, fields) = (&opened.dir, &opened.fields);
        let prepared: Vec<Option<Vec<u8>>> = batch
            .iter()
            .map(|s| self.carry.prepare(&s.record))
            .collect();
        let docs: Vec<TantivyDocument> = batch
            .par_iter()
            .zip(prepared.par_iter())
            .map(|(stored, joined)| {
                let extracted = extract::extract_prepared(&stored.record, joined.as_deref());
                document(fields, stored, &extracted)
            })
            .collect();
        for doc in docs {
            self.writer
                .add_document(doc)
                .map_err(tantivy_err(dir, "adding a document"))?;
        }
        let last = batch
            .last()
            .and_then(|s| s.offset)
            .map_or(self.expected, |o| o.0 + 1);
        self.report.unreadable += (last - self.expected).saturating_sub(batch.len() as u64);
        self.expected = last;
        self.report.indexed += batch.len() as u64;
        self.report.raw_bytes += batch_bytes;
        self.since_commit_bytes += batch_bytes;
        self.since_commit_records += batch.len() as u64;
        if let Some(progress) = options.progress {
            progress(self.expected - self.applied, self.end - self.applied);
        }
        let over_budget = options.budget.is_some_and(|b| self.started.elapsed() >= b);
        if over_budget
            || self.since_commit_bytes >= COMMIT_EVERY_BYTES
            || options
                .commit_every_records
                .is_some_and(|n| self.since_commit_records >= n)
        {
            commit(&mut self.writer, dir, self.expected)?;
            self.report.applied = Offset(self.expected);
            self.since_commit_bytes = 0;
            self.since_commit_records = 0;
        }
        Ok(if over_budget && self.expected < self.end {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    /// The last commit and the report. Without a stop, every offset up to the end that had no
    /// readable record counts as unreadable.
    fn finish(mut self, stopped: bool) -> Result<IndexReport, IndexError> {
        let mut expected = self.expected;
        if !stopped {
            self.report.unreadable += self.end.saturating_sub(expected);
            expected = self.end;
        }
        let dir = &self.opened.dir;
        commit(&mut self.writer, dir, expected)?;
        self.writer
            .wait_merging_threads()
            .map_err(tantivy_err(dir, "finishing merges"))?;
        let mut report = self.report;
        report.applied = Offset(expected);
        report.caught_up = expected >= self.end;
        report.remaining = self.end - expected;
        report.elapsed = self.started.elapsed();
        Ok(report)
    }
}

fn document(fields: &Fields, stored: &StoredRecord, extracted: &Extracted) -> TantivyDocument {
    let record = &stored.record;
    let mut doc = TantivyDocument::default();
    doc.add_u64(fields.offset, stored.offset.map_or(u64::MAX, |o| o.0));
    doc.add_u64(fields.ts, record.ts);
    if let Some(session) = &record.session {
        doc.add_text(fields.session, session);
    }
    doc.add_text(fields.source, record.source.as_str());
    if let Some(event) = &extracted.event {
        doc.add_text(fields.event, event);
    }
    for tool in &extracted.tools {
        doc.add_text(fields.tool, tool);
    }
    if let Some(model) = &extracted.model {
        doc.add_text(fields.model, model);
    }
    for agent in &extracted.agents {
        doc.add_text(fields.agent, agent);
    }
    for project in &extracted.projects {
        doc.add_text(fields.project, project);
    }
    for kind in &extracted.types {
        doc.add_text(fields.kind, kind);
    }
    if !extracted.text.is_empty() {
        doc.add_text(fields.text, &extracted.text);
    }
    doc
}

fn delete_where(
    paths: &StorePaths,
    queries: impl Fn(&Fields) -> Vec<Box<dyn tantivy::query::Query>>,
) -> Result<u64, IndexError> {
    if !exists(paths) {
        return Ok(0);
    }
    let opened = open(paths)?;
    let queries = queries(&opened.fields);
    if queries.is_empty() {
        return Ok(0);
    }
    let applied = read_payload(&opened)?;
    let reader = opened
        .index
        .reader()
        .map_err(tantivy_err(&opened.dir, "opening a reader"))?;
    let searcher = reader.searcher();
    let mut matched = 0u64;
    for query in &queries {
        matched += searcher
            .search(query.as_ref(), &tantivy::collector::Count)
            .map_err(tantivy_err(&opened.dir, "counting documents"))? as u64;
    }
    if matched == 0 {
        return Ok(0);
    }
    let mut writer = writer_waiting(
        &opened,
        1,
        15_000_000,
        &CatchUpOptions {
            wait_for_writer: Some(WRITER_WAIT),
            ..CatchUpOptions::default()
        },
    )?;
    for query in queries {
        writer
            .delete_query(query)
            .map_err(tantivy_err(&opened.dir, "deleting documents"))?;
    }
    commit(&mut writer, &opened.dir, applied)?;
    writer
        .wait_merging_threads()
        .map_err(tantivy_err(&opened.dir, "finishing merges"))?;
    Ok(matched)
}

/// Deletes the documents of the given records (retention). Returns documents deleted. The
/// checkpoint is unchanged. Contiguous offsets are deleted as one range.
///
/// # Errors
/// [`IndexError::Busy`] when another process writes the index; [`IndexError`] otherwise.
pub fn delete_offsets(paths: &StorePaths, offsets: &[Offset]) -> Result<u64, IndexError> {
    let mut sorted: Vec<u64> = offsets.iter().map(|o| o.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<OffsetRange> = Vec::new();
    for o in sorted {
        match ranges.last_mut() {
            Some(range) if range.last + 1 == o => range.last = o,
            _ => ranges.push(OffsetRange { first: o, last: o }),
        }
    }
    delete_where(paths, |fields| {
        ranges
            .iter()
            .map(|range| {
                Box::new(tantivy::query::RangeQuery::new(
                    std::ops::Bound::Included(Term::from_field_u64(fields.offset, range.first)),
                    std::ops::Bound::Included(Term::from_field_u64(fields.offset, range.last)),
                )) as Box<dyn tantivy::query::Query>
            })
            .collect()
    })
}

/// Contiguous offsets, both ends included.
struct OffsetRange {
    first: u64,
    last: u64,
}

/// Deletes every document of one session (`ctrace forget`). Returns documents deleted. The
/// checkpoint is unchanged.
///
/// # Errors
/// [`IndexError::Busy`] when another process writes the index; [`IndexError`] otherwise.
pub fn forget_session(paths: &StorePaths, session: &str) -> Result<u64, IndexError> {
    let session = session.to_lowercase();
    delete_where(paths, |fields| {
        vec![Box::new(tantivy::query::TermQuery::new(
            Term::from_field_text(fields.session, &session),
            IndexRecordOption::Basic,
        )) as Box<dyn tantivy::query::Query>]
    })
}
