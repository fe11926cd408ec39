//! Watching Claude Code's transcript directories (`~/.claude/projects`, and
//! `$CLAUDE_CONFIG_DIR/projects` when set) so a long-running service captures sessions
//! without hooks: a `*.jsonl` file created or written there is noted in a set shared with the
//! compactor, which tails it (from its MANIFEST cursor) in its next refresh through
//! [`WatchedTailer`].
//!
//! At start every `*.jsonl` already below the directories is noted too (the startup scan), so
//! what was written while the service was down, or before it ever ran, is tailed in the first
//! pass; files already in the store are read from their cursors, so nothing is stored twice. A
//! directory that does not exist yet (Claude Code never ran as this user) is looked for every
//! [`MISSING_DIR_POLL`] and watched, and scanned, once it appears.
//!
//! Invariants:
//! - the watcher thread only notes paths and wakes the compactor; the compactor thread is the
//!   only writer of the store;
//! - a burst of writes to one file is one entry of the set, so one tail per pass; the
//!   compactor loop's debounce merges the wakes;
//! - renames, removals, reads and metadata changes are ignored, so a pass never wakes the
//!   next one;
//! - a noted file is read only if the rules of [`super::bulk::transcript_path`] admit it, as
//!   for the transcripts hooks name (a symlink below the directories to a file elsewhere is
//!   not read).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

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
/// [`TranscriptWatcher`] saw change. A transcript that is refused or cannot be read is logged
/// and skipped by the tailer, not an error, and not noted again: it is tried once more on its
/// next change event (or the next hook naming it). When tailing fails for the store (a failed
/// seal or append), every file of the pass is noted again for the next pass (tailing is
/// idempotent: it starts at each file's cursor).
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
        // Only a store error gets here (unreadable transcripts are skipped inside), so the
        // files are not noted again forever because of one of them.
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

/// How often a transcript directory that does not exist yet is looked for.
pub const MISSING_DIR_POLL: Duration = Duration::from_secs(2);

/// What the watcher and the thread looking for missing directories share.
struct Shared {
    watcher: Mutex<notify::RecommendedWatcher>,
    /// The directories watched so far.
    dirs: Mutex<Vec<PathBuf>>,
    changed: ChangedFiles,
    trigger: Arc<Trigger>,
}

impl Shared {
    /// Watches `dir` recursively, then notes every transcript already below it (after the
    /// watch, so a file written in between is noted either way) and wakes the compactor.
    fn watch(&self, dir: &Path) -> Result<(), TranscriptWatchError> {
        self.watch_recursive(dir)?;
        self.dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dir.to_owned());
        let noted = self.note_below(dir);
        tracing::info!(dir = %dir.display(), transcripts = noted, "watching transcripts");
        Ok(())
    }

    /// Adds a recursive watch on `dir` (again, for a directory notify already watches: adding
    /// a watch twice is harmless, and it returns only after notify's event loop has handled
    /// every inotify event read before it, including adding its own watch on `dir`).
    fn watch_recursive(&self, dir: &Path) -> Result<(), TranscriptWatchError> {
        use notify::{RecursiveMode, Watcher};
        self.watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|source| TranscriptWatchError {
                path: dir.to_owned(),
                source,
            })
    }

    /// Notes every transcript below `dir` and wakes the compactor if there was one; returns
    /// how many were noted.
    fn note_below(&self, dir: &Path) -> usize {
        let existing = transcripts_below(dir);
        let noted = existing.len();
        for path in existing {
            self.changed.insert(path);
        }
        if noted > 0 {
            self.trigger.wake();
        }
        noted
    }
}

/// Watches transcript directories; dropping it stops watching (and stops looking for the
/// directories that did not exist).
pub struct TranscriptWatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TranscriptWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptWatcher")
            .field("dirs", &self.dirs())
            .finish_non_exhaustive()
    }
}

impl TranscriptWatcher {
    /// The directories being watched (a directory that appears later is added when found).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.shared
            .dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts watching `dirs` recursively: a `*.jsonl` file created or written below them is
/// added to `changed` and wakes `trigger`; a directory created below them has its `*.jsonl`
/// files added too (they may have been written before the watch reached it). Every `*.jsonl`
/// already below a directory is added when its watch starts (the startup scan). A directory
/// that does not exist is looked for every [`MISSING_DIR_POLL`] on a thread of its own and
/// watched once it appears; a watch that then fails is logged.
///
/// # Errors
/// [`TranscriptWatchError`] when inotify refuses the watch (e.g. the
/// `fs.inotify.max_user_watches` limit).
pub fn watch_transcripts(
    dirs: &[PathBuf],
    changed: ChangedFiles,
    trigger: Arc<Trigger>,
) -> Result<TranscriptWatcher, TranscriptWatchError> {
    use notify::{EventKind, event::CreateKind, event::ModifyKind};
    let (new_dirs, new_dirs_rx) = std::sync::mpsc::channel::<PathBuf>();
    let shared_changed = changed.clone();
    let shared_trigger = Arc::clone(&trigger);
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
                // notify calls this handler before it watches the new directory, so a scan
                // here would miss a file written between the scan and that watch: the scan
                // is done by `scan_new_dirs` once the directory is watched.
                for dir in &event.paths {
                    // Fails only when that thread is gone (the watcher is being dropped).
                    let _ = new_dirs.send(dir.clone());
                }
                false
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
    let watcher = notify::recommended_watcher(handler).map_err(|source| TranscriptWatchError {
        path: dirs.first().cloned().unwrap_or_default(),
        source,
    })?;
    let shared = Arc::new(Shared {
        watcher: Mutex::new(watcher),
        dirs: Mutex::new(Vec::new()),
        changed: shared_changed,
        trigger: shared_trigger,
    });
    let weak = Arc::downgrade(&shared);
    let spawned = std::thread::Builder::new()
        .name("ctrace-transcript-new-dirs".into())
        .spawn(move || scan_new_dirs(&weak, &new_dirs_rx));
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot scan new transcript directories");
    }
    let mut missing = Vec::new();
    for dir in dirs {
        if dir.is_dir() {
            shared.watch(dir)?;
        } else {
            tracing::info!(dir = %dir.display(), "no transcript directory yet; watched once it appears");
            missing.push(dir.clone());
        }
    }
    if !missing.is_empty() {
        let weak = Arc::downgrade(&shared);
        let spawned = std::thread::Builder::new()
            .name("ctrace-transcript-dirs".into())
            .spawn(move || look_for(&weak, missing));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot look for the missing transcript directories");
        }
    }
    Ok(TranscriptWatcher { shared })
}

/// Until the watcher is dropped: for each directory created below a watched one (sent by the
/// event handler), waits until notify watches it, then notes the transcripts already in it
/// (written before the watch reached it: `mkdir -p` then a write, as Claude Code does for a
/// new project). A directory removed in between is skipped.
fn scan_new_dirs(shared: &Weak<Shared>, new_dirs: &std::sync::mpsc::Receiver<PathBuf>) {
    while let Ok(dir) = new_dirs.recv() {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.watch_recursive(&dir) {
            Ok(()) => {
                shared.note_below(&dir);
            }
            Err(error) if !dir.is_dir() => {
                tracing::debug!(error = %error, "a new transcript directory went away");
            }
            Err(error) => {
                // notify watches what it can itself; note what is there now anyway.
                tracing::warn!(error = %error, cause = %error.source, "transcripts are not watched");
                shared.note_below(&dir);
            }
        }
    }
}

/// Until the watcher is dropped or every directory of `missing` is watched: every
/// [`MISSING_DIR_POLL`], watches (and scans) those that exist now.
fn look_for(shared: &Weak<Shared>, mut missing: Vec<PathBuf>) {
    while !missing.is_empty() {
        std::thread::sleep(MISSING_DIR_POLL);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        missing.retain(|dir| {
            if !dir.is_dir() {
                return true;
            }
            if let Err(error) = shared.watch(dir) {
                tracing::warn!(error = %error, cause = %error.source, "transcripts are not watched");
            }
            false
        });
    }
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

    /// Takes what `changed` notes into `seen` until every path of `expected` is in it (60 s).
    fn wait_noted(changed: &ChangedFiles, seen: &mut BTreeSet<PathBuf>, expected: &[PathBuf]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            seen.extend(changed.take());
            let missed: Vec<_> = expected.iter().filter(|p| !seen.contains(*p)).collect();
            if missed.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "never noted: {missed:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

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
        assert_eq!(watcher.dirs(), vec![projects.clone()]);
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

    /// A file written into a new directory right after it is made (before notify's watch on
    /// it exists) is noted: the new directory is scanned only once it is watched. Before,
    /// the scan ran ahead of the watch and such a file was lost until its next write.
    #[test]
    fn files_in_directories_made_in_a_burst_are_noted() {
        let dir = tempfile::tempdir().unwrap();
        let projects = dir.path().join("projects");
        std::fs::create_dir(&projects).unwrap();
        let changed = ChangedFiles::new();
        let trigger = Arc::new(Trigger::new());
        let _watcher =
            watch_transcripts(std::slice::from_ref(&projects), changed.clone(), trigger).unwrap();
        // Busy threads make the watcher thread lose the CPU between its steps, and the writes
        // come 0 to 1 ms after each directory, so some land inside that window.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let mut expected = Vec::new();
        for i in 0..200 {
            let project = projects.join(format!("-p{i}/sub"));
            std::fs::create_dir_all(&project).unwrap();
            let start = Instant::now();
            for j in 0..8_u64 {
                while start.elapsed() < Duration::from_micros(j * j * 20) {
                    std::hint::spin_loop();
                }
                let transcript = project.join(format!("s{j}.jsonl"));
                std::fs::write(&transcript, b"{}\n").unwrap();
                expected.push(transcript);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in busy {
            thread.join().unwrap();
        }
        wait_noted(&changed, &mut BTreeSet::new(), &expected);
    }

    /// Issue 16, transcript watcher item: transcripts written before the watch started are
    /// noted at once (the startup scan), and a transcript directory that did not exist at
    /// start is watched, and scanned, once it appears.
    #[test]
    fn existing_and_late_directories_are_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let early = dir.path().join("early/projects");
        std::fs::create_dir_all(early.join("-p")).unwrap();
        let old = early.join("-p/old.jsonl");
        std::fs::write(&old, b"{}\n").unwrap();
        let late = dir.path().join("late/projects");
        let changed = ChangedFiles::new();
        let trigger = Arc::new(Trigger::new());
        let watcher =
            watch_transcripts(&[early.clone(), late.clone()], changed.clone(), trigger).unwrap();
        assert_eq!(changed.take(), BTreeSet::from([old]));
        assert_eq!(watcher.dirs(), vec![early.clone()]);

        std::fs::create_dir_all(late.join("-q")).unwrap();
        let first = late.join("-q/first.jsonl");
        std::fs::write(&first, b"{}\n").unwrap();
        let mut seen = BTreeSet::new();
        wait_noted(&changed, &mut seen, std::slice::from_ref(&first));
        // Listed right after its watch starts (a write just then may be noted a moment before).
        let deadline = Instant::now() + Duration::from_secs(60);
        while watcher.dirs() != [early.clone(), late.clone()] {
            assert!(Instant::now() < deadline, "{:?}", watcher.dirs());
            std::thread::sleep(Duration::from_millis(20));
        }
        // And it is watched from then on.
        let second = late.join("-q/second.jsonl");
        std::fs::write(&second, b"{}\n").unwrap();
        wait_noted(&changed, &mut seen, &[second]);
    }
}
