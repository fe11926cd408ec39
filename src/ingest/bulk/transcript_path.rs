//! Which transcripts a hook may make the compactor read (`docs/security.md`, "Transcripts
//! named by hooks"), and the ingester's tail of them (`Ingester::tail_transcripts`).
//!
//! A hook payload names its transcript (`transcript_path`, `agent_transcript_path`), and
//! payloads come from any process that runs `ctrace hook` and from `POST /ingest/hook` of
//! `ctrace serve`: the path is untrusted input. A named path is read only when all hold:
//!
//! 1. it is absolute and its file name ends in `.jsonl`;
//! 2. it resolves (`realpath(3)`: symlinks followed) to a path ending in `.jsonl` below one of
//!    the roots ([`TranscriptRoots`]): Claude Code's projects directories
//!    ([`crate::ingest::watch::projects_dirs`]), the demo's `<store>/demo-claude/projects`,
//!    and the `[ingest] transcript_roots` of the configuration, each resolved too;
//! 3. what is there is a regular file owned by the effective user, both by `lstat` of the
//!    resolved path and by `fstat` of the file opened there with `O_NOFOLLOW` (the same
//!    device and inode).
//!
//! Invariants:
//! - nothing of a refused file is read (the checks are on names and metadata, and the one open
//!   is of a regular file already checked);
//! - a refusal is logged once per path and rule per process ([`warn_once`]), never an error:
//!   the hook record is stored whatever its transcript path says;
//! - a transcript that cannot be opened or read is logged the same way and skipped, never an
//!   error of the pass (only store errors are).

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::files::special_kind;
use super::{FileKind, IngestError, Ingester, OpenedFile};

/// Where the demo (`ctrace demo`) writes its transcripts, relative to the store directory: a
/// projects directory of ctrace's own making.
pub const DEMO_PROJECTS_DIR: &str = "demo-claude/projects";

/// Why a transcript named by a hook was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The path is relative or does not end in `.jsonl`.
    #[error("not an absolute path to a .jsonl file")]
    Name,
    /// It resolves outside every root (or to a name not ending in `.jsonl`).
    #[error("resolves to {} which is not a .jsonl file below a transcript root ({})", resolved.display(), roots_text(roots))]
    OutsideRoots {
        /// The path with symlinks resolved.
        resolved: PathBuf,
        /// The roots, resolved.
        roots: Vec<PathBuf>,
    },
    /// It is not a regular file.
    #[error("not a regular file ({kind})")]
    NotRegularFile {
        /// What it is.
        kind: &'static str,
    },
    /// Another user owns it.
    #[error("owned by uid {owner}, not by this process's uid {expected}")]
    Owner {
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        expected: u32,
    },
    /// The file was replaced between its check and its open.
    #[error("replaced while it was checked")]
    Replaced,
    /// It could not be resolved, opened or read.
    #[error("cannot be read: {source}")]
    Unreadable {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Refusal {
    /// A short name of the rule, for logs and the once-per-process set.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::OutsideRoots { .. } => "outside-roots",
            Self::NotRegularFile { .. } => "not-regular-file",
            Self::Owner { .. } => "owner",
            Self::Replaced => "replaced",
            Self::Unreadable { .. } => "unreadable",
        }
    }
}

fn roots_text(roots: &[PathBuf]) -> String {
    if roots.is_empty() {
        return "none exists".to_owned();
    }
    let names: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    names.join(", ")
}

/// A transcript that passed the rules, open for reading.
#[derive(Debug)]
pub struct Admitted {
    /// The path with symlinks resolved (the file's MANIFEST cursor key).
    pub resolved: PathBuf,
    /// The file, open for reading.
    pub file: std::fs::File,
    /// Its metadata (`fstat`).
    pub meta: std::fs::Metadata,
}

/// The directories below which hooks' transcripts are read, resolved (those that do not exist
/// are left out: nothing resolves below them).
#[derive(Debug, Clone, Default)]
pub struct TranscriptRoots {
    roots: Vec<PathBuf>,
}

impl TranscriptRoots {
    /// Claude Code's projects directories of this process's environment, `store_root`'s
    /// [`DEMO_PROJECTS_DIR`], and `configured` (`[ingest] transcript_roots`).
    pub fn new(store_root: &Path, configured: &[PathBuf]) -> Self {
        let mut roots = Vec::new();
        let named = crate::ingest::watch::projects_dirs()
            .into_iter()
            .chain(std::iter::once(store_root.join(DEMO_PROJECTS_DIR)))
            .chain(configured.iter().cloned());
        for root in named {
            if let Ok(resolved) = std::fs::canonicalize(&root)
                && !roots.contains(&resolved)
            {
                roots.push(resolved);
            }
        }
        Self { roots }
    }

    /// The roots, resolved.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Opens `path` if it passes the rules (module docs); `Ok(None)` when nothing is there (a
    /// missing file is not refused: the next hook naming it tries again).
    ///
    /// # Errors
    /// The [`Refusal`] naming the rule that failed; nothing of the file was read.
    pub fn open(&self, path: &Path) -> Result<Option<Admitted>, Refusal> {
        if !path.is_absolute() || !is_jsonl(path) {
            return Err(Refusal::Name);
        }
        let resolved = match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Refusal::Unreadable { source }),
        };
        if !is_jsonl(&resolved) || !self.roots.iter().any(|root| resolved.starts_with(root)) {
            return Err(Refusal::OutsideRoots {
                resolved,
                roots: self.roots.clone(),
            });
        }
        let checked = match std::fs::symlink_metadata(&resolved) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Refusal::Unreadable { source }),
        };
        judge(&checked)?;
        // O_NONBLOCK: a FIFO swapped in after the check must not block the open (it is then
        // refused by the fstat below); O_NOFOLLOW: nor may a symlink be followed there.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | crate::log::private::NOFOLLOW)
            .open(&resolved)
            .map_err(|source| Refusal::Unreadable { source })?;
        let meta = file
            .metadata()
            .map_err(|source| Refusal::Unreadable { source })?;
        judge(&meta)?;
        if (meta.dev(), meta.ino()) != (checked.dev(), checked.ino()) {
            return Err(Refusal::Replaced);
        }
        Ok(Some(Admitted {
            resolved,
            file,
            meta,
        }))
    }
}

impl Ingester<'_, '_> {
    /// Ingests the transcripts hooks pointed at, from their cursors. Only paths that
    /// the rules (module docs) admit are opened; a refused path, or one that cannot be
    /// opened or read, is logged once ([`warn_once`]) and skipped, and a
    /// missing one is skipped quietly: none of them fails the run (a later hook, or a watcher's
    /// change event, names the file again).
    ///
    /// # Errors
    /// [`IngestError::Log`] when the store fails.
    pub(crate) fn tail_transcripts(
        &mut self,
        paths: &BTreeSet<PathBuf>,
    ) -> Result<(), IngestError> {
        let store = self.lock.store();
        let roots =
            TranscriptRoots::new(&store.paths().root, &store.config().ingest.transcript_roots);
        for path in paths {
            let admitted = match roots.open(path) {
                Ok(Some(admitted)) => admitted,
                Ok(None) => {
                    tracing::debug!(path = %path.display(), "transcript named by a hook is not here");
                    continue;
                }
                Err(refusal) => {
                    warn_once(path, &refusal);
                    continue;
                }
            };
            let opened = OpenedFile {
                path,
                key: admitted.resolved.to_string_lossy().into_owned(),
                file: admitted.file,
                meta: admitted.meta,
            };
            match self.ingest_opened(opened, Some(FileKind::TranscriptLines), true) {
                Ok(()) => {}
                // What was read before the error is kept (its records carry their origins, so
                // the cursor moves past them when they are sealed).
                Err(IngestError::Io { source, .. }) => {
                    warn_once(path, &Refusal::Unreadable { source });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Rule 3: a regular file owned by the effective user.
fn judge(meta: &std::fs::Metadata) -> Result<(), Refusal> {
    if !meta.is_file() {
        return Err(Refusal::NotRegularFile {
            kind: if meta.is_dir() {
                "a directory"
            } else {
                special_kind(&meta.file_type())
            },
        });
    }
    let expected = crate::log::private::euid();
    if meta.uid() != expected {
        return Err(Refusal::Owner {
            owner: meta.uid(),
            expected,
        });
    }
    Ok(())
}

/// Whether the file name of `path` ends in `.jsonl` (as Claude Code names transcripts).
fn is_jsonl(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "jsonl")
}

/// The (path, rule) pairs already logged by this process.
static WARNED: Mutex<BTreeSet<(PathBuf, &'static str)>> = Mutex::new(BTreeSet::new());

/// Logs that the transcript at `path` was not read, and why: once per path and rule per
/// process (a hook flood naming one file logs it once).
pub fn warn_once(path: &Path, refusal: &Refusal) {
    let first = WARNED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((path.to_path_buf(), refusal.rule()));
    if first {
        tracing::warn!(
            path = %path.display(),
            rule = refusal.rule(),
            reason = %refusal,
            "transcript named by a hook not read"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dirs: &[&Path]) -> TranscriptRoots {
        TranscriptRoots {
            roots: dirs.iter().map(|d| d.canonicalize().unwrap()).collect(),
        }
    }

    /// Each rule refuses its case, without reading it; a good transcript opens.
    #[test]
    fn rules() {
        let dir = tempfile::tempdir().unwrap();
        let projects = dir.path().join("projects");
        let project = projects.join("-p");
        std::fs::create_dir_all(&project).unwrap();
        let roots = roots(&[&projects]);

        let good = project.join("s.jsonl");
        std::fs::write(&good, b"{}\n").unwrap();
        let admitted = roots.open(&good).unwrap().unwrap();
        assert_eq!(admitted.resolved, good.canonicalize().unwrap());
        assert!(
            roots
                .open(&project.join("missing.jsonl"))
                .unwrap()
                .is_none()
        );

        let secret = dir.path().join("secret.jsonl");
        std::fs::write(&secret, b"{}\n").unwrap();
        let txt = project.join("notes.txt");
        std::fs::write(&txt, b"{}\n").unwrap();
        let link = project.join("link.jsonl");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let dot_dot = project.join("../../secret.jsonl");
        let folder = project.join("folder.jsonl");
        std::fs::create_dir(&folder).unwrap();
        let cases: [(&Path, &str); 6] = [
            (Path::new("-p/s.jsonl"), "name"),
            (&txt, "name"),
            (&secret, "outside-roots"),
            (&link, "outside-roots"),
            (&dot_dot, "outside-roots"),
            (&folder, "not-regular-file"),
        ];
        for (path, rule) in cases {
            let refusal = roots.open(path).unwrap_err();
            assert_eq!(refusal.rule(), rule, "{}: {refusal}", path.display());
        }
        // A symlink inside the projects directory to another transcript there is followed.
        let inner = project.join("inner.jsonl");
        std::os::unix::fs::symlink(&good, &inner).unwrap();
        assert!(roots.open(&inner).unwrap().is_some());
        // Without any root nothing is admitted.
        let none = TranscriptRoots::default();
        assert_eq!(none.open(&good).unwrap_err().rule(), "outside-roots");
    }
}
