//! Watching Claude Code's transcript directories (`~/.claude/projects`, and
//! `$CLAUDE_CONFIG_DIR/projects` when set) so a long-running service captures sessions
//! without hooks: a `*.jsonl` file created or written there is noted in a set shared with the
//! compactor, which tails it (from its MANIFEST cursor) in its next refresh through
//! [`WatchedTailer`].
//!
//! Invariants:
//! - the watcher thread only notes paths and wakes the compactor; the compactor thread is the
//!   only writer of the store;
//! - a burst of writes to one file is one entry of the set, so one tail per pass; the
//!   compactor loop's debounce merges the wakes;
//! - renames, removals, reads and metadata changes are ignored, so a pass never wakes the
//!   next one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::tail::TranscriptTailer;
use crate::compactor::service::Trigger;
use crate::compactor::{ConsumerError, Tailer};
use crate::log::{SealReport, StoreLock};

/// The transcript directories to watch: `$CLAUDE_CONFIG_DIR/projects` when that variable is
/// set, and `$HOME/.claude/projects` (each once), whether they exist or not.
pub fn projects_dirs() -> Vec<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let mut dirs = Vec::new();
    if let Some(dir) = env("CLAUDE_CONFIG_DIR") {
        dirs.push(PathBuf::from(dir).join("projects"));
    }
    if let Some(home) = env("HOME") {
        let dir = PathBuf::from(home).join(".claude").join("projects");
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Transcripts seen changing and not tailed yet, shared by a [`TranscriptWatcher`] and a
/// [`WatchedTailer`].
#[derive(Debug, Clone, Default)]
pub struct ChangedFiles(Arc<Mutex<BTreeSet<PathBuf>>>);

impl ChangedFiles {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes `path` as changed.
    pub fn insert(&self, path: PathBuf) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path);
    }

    /// Takes every path noted since the last call.
    pub fn take(&self) -> BTreeSet<PathBuf> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The transcript tailer of the service: the transcripts hooks name, plus the files a
/// [`TranscriptWatcher`] saw change. When tailing fails, the watched files are noted again
/// for the next pass (tailing is idempotent: it starts at each file's cursor).
#[derive(Debug, Clone, Default)]
pub struct WatchedTailer {
    changed: ChangedFiles,
}

impl WatchedTailer {
    /// A tailer taking its extra transcripts from `changed`.
    pub fn new(changed: ChangedFiles) -> Self {
        Self { changed }
    }
}

impl Tailer for WatchedTailer {
    fn tail(
        &self,
        lock: &mut StoreLock<'_>,
        transcripts: &BTreeSet<PathBuf>,
    ) -> Result<(u64, Vec<SealReport>), ConsumerError> {
        let tailed = TranscriptTailer.tail(lock, transcripts);
        if tailed.is_err() {
            for path in transcripts {
                self.changed.insert(path.clone());
            }
        }
        tailed
    }

    fn take_changed(&self) -> BTreeSet<PathBuf> {
        self.changed.take()
    }
}

/// Errors of [`watch_transcripts`].
#[derive(Debug, thiserror::Error)]
#[error("watching {} for transcripts", path.display())]
pub struct TranscriptWatchError {
    /// The directory.
    pub path: PathBuf,
    /// Why the watch failed.
    #[source]
    pub source: notify::Error,
}

/// Watches transcript directories; dropping it stops watching.
pub struct TranscriptWatcher {
    _watcher: notify::RecommendedWatcher,
    dirs: Vec<PathBuf>,
}

impl std::fmt::Debug for TranscriptWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptWatcher")
            .field("dirs", &self.dirs)
            .finish_non_exhaustive()
    }
}

impl TranscriptWatcher {
    /// The directories being watched.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

/// Starts watching `dirs` recursively: a `*.jsonl` file created or written below them is
/// added to `changed` and wakes `trigger`; a directory created below them has its `*.jsonl`
/// files added too (they may have been written before the watch reached it). A directory that
/// does not exist is skipped with a log line.
///
/// # Errors
/// [`TranscriptWatchError`] when inotify refuses the watch (e.g. the
/// `fs.inotify.max_user_watches` limit).
pub fn watch_transcripts(
    dirs: &[PathBuf],
    changed: ChangedFiles,
    trigger: Arc<Trigger>,
) -> Result<TranscriptWatcher, TranscriptWatchError> {
    use notify::{EventKind, RecursiveMode, Watcher, event::CreateKind, event::ModifyKind};
    let handler = move |event: notify::Result<notify::Event>| {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "transcript watcher");
                return;
            }
        };
        let noted = match event.kind {
            EventKind::Create(CreateKind::Folder) => {
                let mut noted = false;
                for dir in &event.paths {
                    for path in transcripts_below(dir) {
                        changed.insert(path);
                        noted = true;
                    }
                }
                noted
            }
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                let mut noted = false;
                for path in event.paths.iter().filter(|p| is_transcript(p)) {
                    changed.insert(path.clone());
                    noted = true;
                }
                noted
            }
            _ => false,
        };
        if noted {
            trigger.wake();
        }
    };
    let mut watcher =
        notify::recommended_watcher(handler).map_err(|source| TranscriptWatchError {
            path: dirs.first().cloned().unwrap_or_default(),
            source,
        })?;
    let mut watched = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            tracing::info!(dir = %dir.display(), "no transcript directory here; not watched");
            continue;
        }
        watcher
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|source| TranscriptWatchError {
                path: dir.clone(),
                source,
            })?;
        tracing::info!(dir = %dir.display(), "watching transcripts");
        watched.push(dir.clone());
    }
    Ok(TranscriptWatcher {
        _watcher: watcher,
        dirs: watched,
    })
}

/// Whether `path` names a transcript (`*.jsonl`).
fn is_transcript(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "jsonl")
}

/// The `*.jsonl` regular files below `dir` (symlinks not followed).
fn transcripts_below(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file() && is_transcript(entry.path()))
        .map(walkdir::DirEntry::into_path)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::compactor::service::Wake;

    /// Issue 16, transcript watcher item: a write to a `*.jsonl` below a watched directory
    /// (also in a directory made after the watch started) is noted and wakes the trigger;
    /// other files are not noted.
    #[test]
    fn writes_to_transcripts_are_noted() {
        let dir = tempfile::tempdir().unwrap();
        let projects = dir.path().join("projects");
        std::fs::create_dir(&projects).unwrap();
        let changed = ChangedFiles::new();
        let trigger = Arc::new(Trigger::new());
        let watcher = watch_transcripts(
            &[projects.clone(), dir.path().join("missing")],
            changed.clone(),
            Arc::clone(&trigger),
        )
        .unwrap();
        assert_eq!(watcher.dirs(), std::slice::from_ref(&projects));
        let project = projects.join("-work-p");
        std::fs::create_dir(&project).unwrap();
        let transcript = project.join("s.jsonl");
        std::fs::write(project.join("notes.txt"), b"x").unwrap();
        std::fs::write(&transcript, b"{}\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = BTreeSet::new();
        while !seen.contains(&transcript) {
            assert!(Instant::now() < deadline, "never noted: {seen:?}");
            assert_ne!(trigger.wait(Duration::from_secs(1)), Wake::Stopped);
            seen.extend(changed.take());
        }
        assert!(seen.iter().all(|p| is_transcript(p)), "{seen:?}");
    }
}
