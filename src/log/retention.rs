//! Retention (`DESIGN.md` §5): deleting whole sealed segments by age and size, rewriting a
//! segment without the records a per-source rule expired (offsets preserved), pinned sessions,
//! and `forget`. Only segments every consumer (views, index) has passed are touched; the caller
//! passes that bound.
//!
//! How it runs (under the exclusive store lock, [`StoreLock::apply_retention`]):
//! 1. plan: read the record heads (time, source, session, size) of the segments a rule could
//!    touch and mark the records that go; pinned sessions never go (except by `forget`);
//! 2. a segment whose every record goes is dropped from the MANIFEST; a segment losing only
//!    some is rewritten as a *sparse* segment (format version 2: same offsets, some missing)
//!    under a new file name;
//! 3. one MANIFEST commit switches to the new segment list; then the old files are deleted.
//!
//! Invariants: a crash before the commit leaves the old MANIFEST and unlisted new files
//! (deleted at recovery); after it, unlisted old files (deleted at recovery). So the records a
//! run removes are either all there or all gone. Offsets are never reassigned: consumers'
//! checkpoints stay valid. Nothing here knows about views or the index.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::manifest::{NewSegment, SegmentEntry, sync_dir};
use super::{LogError, StoreLock, StorePaths, remove_file};
use crate::config::retention::RetentionConfig;
use crate::model::{RecordRef, Source};
use crate::segments::segment::{SegmentReader, SegmentWriter};
use crate::segments::{Offset, SegmentId};

/// Name of the pin list file in the store directory.
pub(crate) const PINS_FILE: &str = "PINS";

/// Limits of one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceLimits {
    /// Records of the source older than this go.
    pub max_age: Option<Duration>,
    /// Oldest records of the source go while its records take more raw bytes than this.
    pub max_bytes: Option<u64>,
}

/// A retention policy (from `[retention]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Sealed segments whose newest record is older than this go.
    pub max_age: Option<Duration>,
    /// Oldest segments go while sealed segment files take more bytes than this on disk.
    pub max_bytes: Option<u64>,
    /// Per-source limits.
    pub sources: BTreeMap<Source, SourceLimits>,
}

impl Policy {
    /// The policy a validated `[retention]` table describes.
    pub fn from_config(config: &RetentionConfig) -> Self {
        let global = config.global();
        let mut sources = BTreeMap::new();
        for (name, limits, ..) in config.sources() {
            if let (Some(limits), Ok(source)) = (limits, name.parse::<Source>()) {
                sources.insert(
                    source,
                    SourceLimits {
                        max_age: limits.age(),
                        max_bytes: limits.bytes(),
                    },
                );
            }
        }
        Self {
            max_age: global.age(),
            max_bytes: global.bytes(),
            sources,
        }
    }

    /// Whether the policy keeps everything.
    pub fn is_empty(&self) -> bool {
        self.max_age.is_none()
            && self.max_bytes.is_none()
            && self
                .sources
                .values()
                .all(|l| l.max_age.is_none() && l.max_bytes.is_none())
    }

    /// The store-wide age cutoff (ns) at `now_ns`: a segment whose newest record is older goes.
    fn global_cutoff(&self, now_ns: u64) -> Option<u64> {
        self.max_age.map(|d| cutoff(now_ns, d))
    }

    /// The age cutoff (ns) of `source`'s own rule at `now_ns`: its records older than this go.
    fn source_cutoff(&self, source: Source, now_ns: u64) -> Option<u64> {
        self.sources
            .get(&source)
            .and_then(|l| l.max_age)
            .map(|d| cutoff(now_ns, d))
    }

    /// The largest cutoff of any rule (a segment whose oldest record is newer is untouched
    /// by age rules).
    fn max_cutoff(&self, now_ns: u64) -> Option<u64> {
        Source::ALL
            .iter()
            .filter_map(|s| self.source_cutoff(*s, now_ns))
            .chain(self.global_cutoff(now_ns))
            .max()
    }

    fn has_source_sizes(&self) -> bool {
        self.sources.values().any(|l| l.max_bytes.is_some())
    }
}

/// `now_ns - age`, in ns, saturating at 0.
fn cutoff(now_ns: u64, age: Duration) -> u64 {
    now_ns.saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX))
}

/// Sessions kept whatever the policy: `<store>/PINS`, JSON, replaced atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    /// Format version (1).
    version: u32,
    /// Pinned session ids.
    sessions: BTreeSet<String>,
}

impl Pins {
    /// Reads the pin list; a missing file is an empty list.
    ///
    /// # Errors
    /// [`LogError::Io`]; [`LogError::PinsCorrupt`] when the file does not parse.
    pub fn load(paths: &StorePaths) -> Result<Self, LogError> {
        let path = paths.root.join(PINS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let pins: Pins = serde_json::from_slice(&bytes)
                    .map_err(|_| LogError::PinsCorrupt { path: path.clone() })?;
                if pins.version != 1 {
                    return Err(LogError::PinsCorrupt { path });
                }
                Ok(pins)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                version: 1,
                sessions: BTreeSet::new(),
            }),
            Err(source) => Err(LogError::Io { path, source }),
        }
    }

    /// Replaces the pin list atomically and durably (temp file, sync, rename, fsync the
    /// directory). Call it holding the store lock, so that no retention run reads a list
    /// being changed.
    ///
    /// # Errors
    /// [`LogError::Io`].
    pub fn save(&self, paths: &StorePaths) -> Result<(), LogError> {
        let path = paths.root.join(PINS_FILE);
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let mut pins = self.clone();
        pins.version = 1;
        let json = serde_json::to_vec_pretty(&pins).map_err(|e| LogError::Encode {
            what: "pins",
            message: e.to_string(),
        })?;
        let options = crate::fs::Replace {
            prefix: "PINS.",
            ..crate::fs::Replace::default()
        };
        crate::fs::write_atomic(&path, &json, &options).map_err(io)
    }

    /// Whether `session` is pinned.
    pub fn contains(&self, session: &str) -> bool {
        self.sessions.contains(session)
    }

    /// Pins `session`; returns false when it already was.
    pub fn insert(&mut self, session: &str) -> bool {
        self.sessions.insert(session.to_owned())
    }

    /// Unpins `session`; returns false when it was not pinned.
    pub fn remove(&mut self, session: &str) -> bool {
        self.sessions.remove(session)
    }

    /// Number of pinned sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Pinned sessions in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.sessions.iter().map(String::as_str)
    }
}

/// What a retention run removes.
#[derive(Debug, Clone, Copy)]
pub enum Removal<'a> {
    /// Records the policy expires at `now_ns` (ns since the epoch), pinned sessions excepted.
    Policy {
        /// The policy.
        policy: &'a Policy,
        /// The current time, ns since the epoch (injected for tests).
        now_ns: u64,
        /// Pinned sessions.
        pins: &'a Pins,
    },
    /// Every record of one session (`ctrace forget`).
    Session(&'a str),
    /// The records at these offsets (`ctrace forget --offset`): a record that does not decode,
    /// or any single record, removed without losing the rest.
    Offsets(&'a [Offset]),
}

/// One segment a run changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentChange {
    /// The segment as listed in the MANIFEST before the run.
    pub segment: SegmentEntry,
    /// Offsets of the records removed.
    pub removed: Vec<Offset>,
    /// Whether the whole segment goes (else it is rewritten without `removed`).
    pub delete: bool,
}

/// What a retention run removed (or, for a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whether the changes were applied (false for a dry run).
    pub applied: bool,
    /// Segments deleted or rewritten.
    pub changes: Vec<SegmentChange>,
    /// Records removed per session (records without a session under `""`).
    pub sessions: BTreeMap<String, u64>,
    /// Records removed.
    pub records: u64,
    /// Bytes of segment files on disk before the run.
    pub bytes_before: u64,
    /// Bytes of segment files on disk after the run (estimated for a dry run that rewrites).
    pub bytes_after: u64,
    /// The consumer bound used: only segments ending at or below it were considered.
    pub bound: Offset,
    /// Segments not considered because a consumer has not passed them yet.
    pub held_back_segments: u64,
}

impl RetentionReport {
    /// Bytes freed on disk.
    pub fn freed_bytes(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }

    /// Offsets of every removed record, ascending.
    pub fn removed_offsets(&self) -> Vec<Offset> {
        let mut all: Vec<Offset> = self
            .changes
            .iter()
            .flat_map(|c| c.removed.iter().copied())
            .collect();
        all.sort_unstable();
        all
    }

    /// Segments deleted whole.
    pub fn deleted_segments(&self) -> usize {
        self.changes.iter().filter(|c| c.delete).count()
    }

    /// Segments rewritten without some records.
    pub fn rewritten_segments(&self) -> usize {
        self.changes.iter().filter(|c| !c.delete).count()
    }
}

/// The head of one sealed record, as planning needs it.
#[derive(Debug, Clone)]
struct Head {
    offset: Offset,
    ts: u64,
    source: Option<Source>,
    session: Option<String>,
    raw_bytes: u64,
    remove: bool,
}

fn read_heads(paths: &StorePaths, entry: &SegmentEntry) -> Result<Vec<Head>, LogError> {
    let reader = SegmentReader::open(&paths.segments.join(&entry.file), entry.id)?;
    let mut heads = Vec::with_capacity(usize::try_from(entry.record_count).unwrap_or(0));
    for (i, meta) in reader.blocks().iter().enumerate() {
        for (j, bytes) in reader.read_block(i)?.into_iter().enumerate() {
            let head = RecordRef::decode(&bytes).ok();
            heads.push(Head {
                offset: Offset(meta.first_offset.0 + j as u64),
                ts: head.as_ref().map_or(meta.min_ts, |h| h.ts),
                source: head.as_ref().map(|h| h.source),
                session: head.and_then(|h| h.session.map(str::to_owned)),
                raw_bytes: bytes.len() as u64,
                remove: false,
            });
        }
    }
    Ok(heads)
}

/// Estimated file bytes of `entry` after removing the records marked in `heads`.
fn estimate_after(entry: &SegmentEntry, heads: &[Head]) -> u64 {
    let total: u64 = heads.iter().map(|h| h.raw_bytes).sum();
    let kept: u64 = heads
        .iter()
        .filter(|h| !h.remove)
        .map(|h| h.raw_bytes)
        .sum();
    if kept == 0 || total == 0 {
        return if kept == 0 && !heads.is_empty() {
            0
        } else {
            entry.file_bytes
        };
    }
    (u128::from(entry.file_bytes) * u128::from(kept) / u128::from(total)) as u64
}

impl StoreLock<'_> {
    /// Applies `removal` to the sealed segments that end at or below `bound` (the smallest
    /// checkpoint of the consumers: they have applied every record below it), or with
    /// `dry_run` only reports what it would do.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] after a failed sync (as for sealing); [`LogError::Segment`] /
    /// [`LogError::Io`] when a segment cannot be read or written, which leaves the store as
    /// it was (recovery removes partial output).
    pub fn apply_retention(
        &mut self,
        removal: &Removal<'_>,
        bound: Offset,
        dry_run: bool,
    ) -> Result<RetentionReport, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned {
                path: self.store.paths.manifest.clone(),
                source: std::io::Error::other("an earlier sync failed"),
            });
        }
        let paths = self.store.paths.clone();
        let segments = self.manifest.segments.clone();
        let mut report = RetentionReport {
            bound,
            bytes_before: segments.iter().map(|s| s.file_bytes).sum(),
            ..RetentionReport::default()
        };
        let eligible: Vec<bool> = segments.iter().map(|s| s.end() <= bound).collect();
        report.held_back_segments = eligible.iter().filter(|e| !**e).count() as u64;
        let mut heads: Vec<Option<Vec<Head>>> = vec![None; segments.len()];
        match *removal {
            Removal::Session(session) => {
                for (i, entry) in segments.iter().enumerate() {
                    if !eligible[i] {
                        continue;
                    }
                    let mut list = read_heads(&paths, entry)?;
                    for head in &mut list {
                        head.remove = head.session.as_deref() == Some(session);
                    }
                    heads[i] = Some(list);
                }
            }
            Removal::Offsets(offsets) => {
                for (i, entry) in segments.iter().enumerate() {
                    let wanted = offsets
                        .iter()
                        .any(|o| entry.id.0 <= o.0 && o.0 < entry.end().0);
                    if !eligible[i] || !wanted {
                        continue;
                    }
                    let mut list = read_heads(&paths, entry)?;
                    for head in &mut list {
                        head.remove = offsets.contains(&head.offset);
                    }
                    heads[i] = Some(list);
                }
            }
            Removal::Policy {
                policy,
                now_ns,
                pins,
            } => plan_policy(
                &paths, &segments, &eligible, &mut heads, policy, now_ns, pins,
            )?,
        }
        let mut bytes_after = report.bytes_before;
        for (i, entry) in segments.iter().enumerate() {
            let Some(list) = &heads[i] else {
                continue;
            };
            let removed: Vec<Offset> = list.iter().filter(|h| h.remove).map(|h| h.offset).collect();
            if removed.is_empty() {
                continue;
            }
            for head in list.iter().filter(|h| h.remove) {
                *report
                    .sessions
                    .entry(head.session.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            report.records += removed.len() as u64;
            let delete = removed.len() == list.len();
            bytes_after = bytes_after - entry.file_bytes + estimate_after(entry, list);
            report.changes.push(SegmentChange {
                segment: entry.clone(),
                removed,
                delete,
            });
        }
        report.bytes_after = bytes_after;
        if dry_run || report.changes.is_empty() {
            return Ok(report);
        }
        self.commit_changes(&mut report)?;
        report.applied = true;
        Ok(report)
    }

    /// Writes the rewritten segments, commits the new MANIFEST, deletes the old files.
    fn commit_changes(&mut self, report: &mut RetentionReport) -> Result<(), LogError> {
        let paths = self.store.paths.clone();
        let generation = self.manifest.generation + 1;
        let mut replacement: BTreeMap<SegmentId, Option<SegmentEntry>> = BTreeMap::new();
        let mut written = Vec::new();
        for change in &report.changes {
            if change.delete {
                replacement.insert(change.segment.id, None);
                continue;
            }
            let entry = match self.rewrite(&change.segment, &change.removed, generation) {
                Ok(entry) => entry,
                Err(e) => {
                    for file in &written {
                        let _ = remove_file(&paths.segments.join(file));
                    }
                    return Err(e);
                }
            };
            written.push(entry.file.clone());
            replacement.insert(change.segment.id, Some(entry));
            crate::fault::crash("retention-rewritten");
        }
        if let Err(e) = sync_dir(&paths.segments) {
            self.poisoned = true;
            return Err(e);
        }
        let mut manifest = self.manifest.clone();
        manifest.generation = generation;
        manifest.segments = self
            .manifest
            .segments
            .iter()
            .filter_map(|s| match replacement.get(&s.id) {
                Some(new) => new.clone(),
                None => Some(s.clone()),
            })
            .collect();
        manifest.version = manifest.required_version();
        // Named so that recovery may delete them after a crash: no listed segment covers
        // their offsets any more, which otherwise marks a segment as one to keep.
        manifest.retired = report
            .changes
            .iter()
            .map(|change| change.segment.file.clone())
            .collect();
        if let Err(e) = manifest.commit(&paths.manifest) {
            self.poisoned = true;
            return Err(e);
        }
        self.manifest = manifest;
        crate::fault::crash("retention-committed");
        let after: u64 = self.manifest.segments.iter().map(|s| s.file_bytes).sum();
        report.bytes_after = after;
        for change in &report.changes {
            let old = paths.segments.join(&change.segment.file);
            super::fault_point("retention-delete", &old)?;
            remove_file(&old)?;
            crate::fault::crash("retention-deleted-one");
        }
        tracing::info!(
            records = report.records,
            deleted = report.deleted_segments(),
            rewritten = report.rewritten_segments(),
            freed_bytes = report.freed_bytes(),
            "retention applied"
        );
        Ok(())
    }

    /// Writes `entry` again without the records at `removed` (sorted): full blocks without a
    /// removed record are copied as they are, the others re-packed.
    fn rewrite(
        &self,
        entry: &SegmentEntry,
        removed: &[Offset],
        generation: u64,
    ) -> Result<SegmentEntry, LogError> {
        let paths = &self.store.paths;
        let storage = &self.store.config.storage;
        let reader = SegmentReader::open(&paths.segments.join(&entry.file), entry.id)?;
        let temp = paths.segments.join(format!(
            "{:020}.seg.{}.retention.tmp",
            entry.id.0,
            std::process::id()
        ));
        remove_file(&temp)?;
        let mut writer = SegmentWriter::create_sparse(
            &temp,
            Offset(entry.id.0),
            usize::try_from(storage.block_bytes).unwrap_or(usize::MAX),
            storage.zstd_level,
            self.store.config.frame_limit(),
        )?;
        let removed: BTreeSet<Offset> = removed.iter().copied().collect();
        for (i, meta) in reader.blocks().iter().enumerate() {
            let end = Offset(meta.first_offset.0 + u64::from(meta.count));
            if removed.range(meta.first_offset..end).next().is_none() {
                let start = meta.position as usize;
                let compressed = &reader.bytes()[start..start + meta.compressed_len as usize];
                writer.copy_block(meta, compressed)?;
                continue;
            }
            for (j, bytes) in reader.read_block(i)?.into_iter().enumerate() {
                let offset = Offset(meta.first_offset.0 + j as u64);
                if removed.contains(&offset) {
                    continue;
                }
                let ts = RecordRef::decode(&bytes).map_or(meta.min_ts, |r| r.ts);
                writer.add_at(offset, &bytes, ts)?;
            }
        }
        let finished = writer.finish()?;
        let file = entry.rewritten_file_name(generation);
        SegmentEntry::install(
            &paths.segments,
            NewSegment {
                id: entry.id,
                temp: &temp,
                file: &file,
                finished: &finished,
                created_ns: entry.created_ns,
                end: Some(entry.end()),
                level: None,
                fault_point: "retention-rename",
            },
        )
    }
}

/// Marks the records `policy` expires: age rules first, then per-source sizes, then the
/// store size (oldest segments first). The store-wide rules take whole segments (a segment
/// goes by `max_age` once its newest record is older than the cutoff; pinned records are kept
/// by rewriting it); per-source rules take single records.
fn plan_policy(
    paths: &StorePaths,
    segments: &[SegmentEntry],
    eligible: &[bool],
    heads: &mut [Option<Vec<Head>>],
    policy: &Policy,
    now_ns: u64,
    pins: &Pins,
) -> Result<(), LogError> {
    let keep = |head: &Head| head.session.as_deref().is_some_and(|s| pins.contains(s));
    let max_cutoff = policy.max_cutoff(now_ns);
    // Age.
    for (i, entry) in segments.iter().enumerate() {
        let aged = max_cutoff.is_some_and(|cutoff| entry.min_ts < cutoff);
        if !eligible[i] || !(aged || policy.has_source_sizes()) {
            continue;
        }
        let whole = policy
            .global_cutoff(now_ns)
            .is_some_and(|cutoff| entry.max_ts < cutoff);
        let mut list = read_heads(paths, entry)?;
        for head in &mut list {
            let own = head
                .source
                .and_then(|s| policy.source_cutoff(s, now_ns))
                .is_some_and(|c| head.ts < c);
            head.remove = (whole || own) && !keep(head);
        }
        heads[i] = Some(list);
    }
    // Per-source sizes: totals over every segment, removal only in eligible ones.
    for (source, limits) in &policy.sources {
        let Some(limit) = limits.max_bytes else {
            continue;
        };
        let mut total = 0u64;
        for (i, entry) in segments.iter().enumerate() {
            let list = match &heads[i] {
                Some(list) => list,
                None => heads[i].insert(read_heads(paths, entry)?),
            };
            total += list
                .iter()
                .filter(|h| h.source == Some(*source) && !h.remove)
                .map(|h| h.raw_bytes)
                .sum::<u64>();
        }
        for (i, list) in heads.iter_mut().enumerate() {
            if total <= limit {
                break;
            }
            let Some(list) = list.as_mut().filter(|_| eligible[i]) else {
                continue;
            };
            for head in list.iter_mut() {
                if total <= limit {
                    break;
                }
                if head.source == Some(*source) && !head.remove && !keep(head) {
                    head.remove = true;
                    total -= head.raw_bytes;
                }
            }
        }
    }
    // Store size, oldest segments first.
    if let Some(limit) = policy.max_bytes {
        let mut total: u64 = segments
            .iter()
            .zip(heads.iter())
            .map(|(entry, list)| {
                list.as_ref()
                    .map_or(entry.file_bytes, |l| estimate_after(entry, l))
            })
            .sum();
        for (i, entry) in segments.iter().enumerate() {
            if total <= limit {
                break;
            }
            if !eligible[i] {
                continue;
            }
            let list = match &mut heads[i] {
                Some(list) => list,
                None => heads[i].insert(read_heads(paths, entry)?),
            };
            let before = estimate_after(entry, list);
            for head in list.iter_mut() {
                if !keep(head) {
                    head.remove = true;
                }
            }
            total = total - before + estimate_after(entry, list);
        }
    }
    Ok(())
}
