//! The PTY recorder behind `ctrace record`: runs a command under a pseudo-terminal
//! (portable-pty), passes the user's terminal through, and appends the terminal stream to the
//! recorder's own producer inbox file. It uses only the log's append API.
//!
//! Threads: *output* (PTY → stdout, then to the writer), *input* (stdin → PTY, and to the
//! writer with `--input`), *signals* (SIGWINCH → resize; SIGTERM, SIGHUP, SIGINT, SIGQUIT →
//! forwarded to the child), *writer* (encodes records and appends them), and the caller's
//! thread, which waits for the child.
//!
//! Invariants:
//! - The user's terminal is put in raw mode only when stdin is a terminal, and restored by a
//!   drop guard on every path out of [`record`] (return, error, panic unwinding).
//! - The first record is `start` and it is written before the child runs; `exit` is the last.
//! - Records are flushed to the inbox file at most [`FLUSH_AFTER`] after they were captured, or
//!   when [`FLUSH_BYTES`] are pending: a kill -9 of the recorder loses at most that.
//! - The recorder's current inbox file always holds at least one record once `start` is
//!   written: it is rolled (a new file created and written, then the old one closed, so that
//!   the sealer can take it) only when a batch is flushed, every [`ROLL_AFTER`] or
//!   [`ROLL_BYTES`]. So a session whose records are all sealed and which has no `exit` record
//!   was not finished by its recorder (`unfinished`).
//! - Memory is bounded: the channel to the writer holds at most [`CHANNEL_CHUNKS`] chunks of at
//!   most [`CHUNK_BYTES`]; a slow disk slows the child, it does not grow memory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::log::LogError;

/// Environment variable the recorder sets for the child: the recording's session id.
pub const PTY_SESSION_ENV: &str = "CTRACE_PTY_SESSION";
/// The HTTP header that carries [`PTY_SESSION_ENV`] from Claude Code's `"type": "http"` hooks to
/// `ctrace serve` (`install --http` writes `"X-Ctrace-Pty-Session": "$CTRACE_PTY_SESSION"`,
/// which Claude Code expands from its environment; empty outside a recording).
pub const PTY_SESSION_HEADER: &str = "x-ctrace-pty-session";
/// Pending records are flushed this long after the oldest was captured (100 ms).
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// Pending records are flushed when they reach this many bytes (64 KiB).
pub const FLUSH_BYTES: usize = 64 << 10;
/// The inbox file is rolled (closed for sealing, a new one started) after this long (5 s).
pub const ROLL_AFTER: Duration = Duration::from_secs(5);
/// The inbox file is rolled after this many bytes (8 MiB).
pub const ROLL_BYTES: u64 = 8 << 20;
/// Bytes read from the PTY or stdin at a time; one record holds at most this (64 KiB).
pub const CHUNK_BYTES: usize = 64 << 10;
/// Chunks that may wait for the writer thread.
pub const CHANNEL_CHUNKS: usize = 64;
/// After the child exited, output still arriving is drained until the PTY is quiet this long
/// (1 s). Only a PTY a background process keeps open waits for it (otherwise the end of file
/// comes at once); it is long enough that an output thread kept off the CPU on a busy machine
/// is not taken for a quiet PTY (its last chunk would follow the `exit` record).
const DRAIN_QUIET: Duration = Duration::from_secs(1);

mod recorder;
mod terminal;
mod writer;

pub use recorder::record;
pub use terminal::{raw_mode_guard, terminal_size};

/// Errors of the recorder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The command was not found (exit status 127, like a shell).
    #[error("{}: command not found", program.to_string_lossy())]
    NotFound {
        /// The program as given.
        program: OsString,
    },
    /// The command exists but cannot be run (exit status 126, like a shell).
    #[error("{}: permission denied or not an executable file", path.display())]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
    },
    /// The pseudo-terminal could not be opened or the child not spawned.
    #[error("pseudo-terminal: {action}")]
    Pty {
        /// What failed (`open`, `spawn`, `clone reader`, `take writer`).
        action: &'static str,
        /// portable-pty's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The terminal could not be switched to raw mode.
    #[error("setting the terminal to raw mode")]
    RawMode(#[source] std::io::Error),
    /// The store failed before the child started.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl RecordError {
    /// The exit status a shell would give for this error: 127 not found, 126 not executable,
    /// else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            RecordError::NotFound { .. } => 127,
            RecordError::NotExecutable { .. } => 126,
            _ => 1,
        }
    }
}

/// What to record.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// The command and its arguments; empty means `$SHELL` (else `/bin/sh`).
    pub command: Vec<OsString>,
    /// A name for the recording (kept as the `title` of its header).
    pub name: Option<String>,
    /// Also record keystrokes (`input` records). Off by default: they can hold passwords.
    pub input: bool,
}

/// The outcome of a recording.
#[derive(Debug)]
pub struct Recording {
    /// The session id (also exported to the child as `CTRACE_PTY_SESSION`).
    pub session: String,
    /// The child's exit status as a shell reports it: its exit code, or 128 + the signal number
    /// when a signal killed it.
    pub status: i32,
    /// Records appended, including `start` and `exit`.
    pub records: u64,
    /// The first store error met while the child ran; recording stopped there, the terminal
    /// kept working.
    pub store_error: Option<LogError>,
}

/// A new random session id: a UUID v4 (`uuid` crate, OS random source), lowercase and
/// hyphenated like Claude Code's own session ids (`8-4-4-4-12` hex digits).
pub(crate) fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Finds `program` like a shell, with the `which` crate: a name with a `/` is taken as a path
/// (relative to the working directory), others are searched in `PATH`.
///
/// # Errors
/// [`RecordError::NotExecutable`] (the shell's 126) when no executable was found but the path,
/// or a file of that name in a `PATH` directory, exists; else [`RecordError::NotFound`] (127).
pub(crate) fn resolve_program(program: &std::ffi::OsStr) -> Result<PathBuf, RecordError> {
    if !program.is_empty()
        && let Ok(path) = which::which(program)
    {
        return Ok(path);
    }
    let path = Path::new(program);
    let exists = if program.as_encoded_bytes().contains(&b'/') {
        path.exists().then(|| path.to_path_buf())
    } else if program.is_empty() {
        None
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(path))
                .find(|candidate| candidate.is_file())
        })
    };
    Err(match exists {
        Some(path) => RecordError::NotExecutable { path },
        None => RecordError::NotFound {
            program: program.to_owned(),
        },
    })
}

/// The command line as one string, arguments quoted for a POSIX shell where needed (`shlex`).
pub(crate) fn command_line(command: &[OsString]) -> String {
    let args: Vec<String> = command
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    // An argument never holds a NUL byte (execve's strings end at one), the only thing
    // `try_join` refuses; were one there, it is dropped rather than losing the line.
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| {
        let args = args.iter().map(|arg| arg.replace('\0', ""));
        let args: Vec<String> = args.collect();
        shlex::try_join(args.iter().map(String::as_str)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_look_like_uuids() {
        let id = new_session_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, new_session_id());
        // Issue 15: the `uuid` crate's v4 keeps the textual shape: lowercase, hyphenated,
        // RFC 4122 variant.
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(parsed.hyphenated().to_string(), id);
        assert!(
            id.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        assert_eq!(
            id.match_indices('-').map(|(i, _)| i).collect::<Vec<_>>(),
            [8, 13, 18, 23]
        );
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let args: Vec<OsString> = ["bash", "-c", "echo 'hi' there"]
            .into_iter()
            .map(Into::into)
            .collect();
        let line = command_line(&args);
        // Issue 15: quoted by shlex; a shell splits the line back into the same arguments.
        assert_eq!(
            shlex::split(&line),
            Some(vec!["bash".into(), "-c".into(), "echo 'hi' there".into()])
        );
        assert!(line.starts_with("bash -c "), "{line}");
    }

    #[test]
    fn missing_programs_are_127() {
        let error = resolve_program("ctrace-no-such-program-xyz".as_ref()).unwrap_err();
        assert_eq!(error.exit_code(), 127);
        assert!(resolve_program("sh".as_ref()).is_ok());
    }

    /// Issue 15: `resolve_program` goes through `which`; a path that exists but is not
    /// executable is still the shell's 126, a missing path or empty name 127, and an
    /// executable path is found.
    #[test]
    fn not_executable_programs_are_126() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = resolve_program(plain.as_os_str()).unwrap_err();
        assert_eq!(error.exit_code(), 126, "{error}");
        let missing = dir.path().join("missing");
        assert_eq!(
            resolve_program(missing.as_os_str())
                .unwrap_err()
                .exit_code(),
            127
        );
        assert_eq!(resolve_program("".as_ref()).unwrap_err().exit_code(), 127);
        let runnable = dir.path().join("runnable");
        std::fs::write(&runnable, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&runnable, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(resolve_program(runnable.as_os_str()).unwrap(), runnable);
    }
}
