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
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::ingest::redact::{Redactor, StreamRedactor};
use crate::log::inbox::ProducerInbox;
use crate::log::{LogError, Store};
use crate::model::{Body, PtyBody, PtyKind, Record, Source};

/// Environment variable the recorder sets for the child: the recording's session id.
pub const PTY_SESSION_ENV: &str = "CTRACE_PTY_SESSION";
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
/// After the child exited, output still arriving is drained until the PTY is quiet this long.
const DRAIN_QUIET: Duration = Duration::from_millis(300);

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

/// An event sent to the writer thread.
enum Event {
    Chunk {
        ts: u64,
        kind: PtyKind,
        data: Vec<u8>,
    },
    Resize {
        ts: u64,
        width: u16,
        height: u16,
    },
    Exit {
        ts: u64,
        status: i32,
    },
}

/// Wall-clock ns that never go backwards: the start time plus a monotonic clock.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall_ns: u64,
    started: Instant,
}

impl Clock {
    fn now(&self) -> u64 {
        self.wall_ns
            .saturating_add(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Restores the terminal's settings when dropped.
struct RawMode {
    original: rustix::termios::Termios,
}

impl RawMode {
    fn enable() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let original = rustix::termios::tcgetattr(stdin.as_fd())?;
        let mut raw = original.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw)?;
        Ok(Self { original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = rustix::termios::tcsetattr(
            stdin.as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.original,
        );
    }
}

/// Puts stdin in raw mode (when it is a terminal) until the guard is dropped; `None` when stdin
/// is not a terminal.
///
/// # Errors
/// When stdin is a terminal whose settings cannot be read or changed.
pub fn raw_mode_guard() -> std::io::Result<Option<impl Drop>> {
    if std::io::stdin().is_terminal() {
        RawMode::enable().map(Some)
    } else {
        Ok(None)
    }
}

/// The size of the user's terminal (stdout, else stdin, else /dev/tty), columns × rows;
/// `None` when there is no terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    let from = |fd: std::os::fd::BorrowedFd<'_>| {
        rustix::termios::tcgetwinsize(fd)
            .ok()
            .map(|w| (w.ws_col, w.ws_row))
    };
    let stdout = std::io::stdout();
    let stdin = std::io::stdin();
    from(stdout.as_fd())
        .or_else(|| from(stdin.as_fd()))
        .or_else(|| {
            std::fs::File::open("/dev/tty")
                .ok()
                .and_then(|tty| from(tty.as_fd()))
        })
}

/// A new random session id: a UUID v4 (`uuid` crate, OS random source), lowercase and
/// hyphenated like Claude Code's own session ids (`8-4-4-4-12` hex digits).
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Finds `program` like a shell, with the `which` crate: a name with a `/` is taken as a path
/// (relative to the working directory), others are searched in `PATH`.
///
/// # Errors
/// [`RecordError::NotExecutable`] (the shell's 126) when no executable was found but the path,
/// or a file of that name in a `PATH` directory, exists; else [`RecordError::NotFound`] (127).
pub fn resolve_program(program: &std::ffi::OsStr) -> Result<PathBuf, RecordError> {
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
pub fn command_line(command: &[OsString]) -> String {
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

/// Maps portable-pty's exit status to what a shell reports: the code, or 128 + signal number.
fn shell_status(status: &portable_pty::ExitStatus) -> i32 {
    let Some(signal) = status.signal() else {
        return i32::try_from(status.exit_code()).unwrap_or(1);
    };
    // portable-pty gives the signal's strsignal(3) description; map the usual ones back.
    const NAMES: [(&str, i32); 15] = [
        ("Hangup", 1),
        ("Interrupt", 2),
        ("Quit", 3),
        ("Illegal instruction", 4),
        ("Trace/breakpoint trap", 5),
        ("Aborted", 6),
        ("Bus error", 7),
        ("Floating point exception", 8),
        ("Killed", 9),
        ("User defined signal 1", 10),
        ("Segmentation fault", 11),
        ("User defined signal 2", 12),
        ("Broken pipe", 13),
        ("Alarm clock", 14),
        ("Terminated", 15),
    ];
    let number = NAMES
        .iter()
        .find(|(name, _)| signal.starts_with(name))
        .map(|&(_, n)| n)
        .or_else(|| {
            signal
                .strip_prefix("Signal ")
                .and_then(|n| n.trim().parse().ok())
        });
    number.map_or(1, |n| 128 + n)
}

fn pty_record(session: &str, ts: u64, body: PtyBody) -> Record {
    Record {
        ts,
        source: Source::Pty,
        session: Some(session.to_owned()),
        body: Body::Pty(body),
        redactions: 0,
    }
}

fn body(kind: PtyKind) -> PtyBody {
    PtyBody {
        kind,
        data: Vec::new(),
        command: None,
        cwd: None,
        term: None,
        width: None,
        height: None,
        status: None,
    }
}

fn encode(record: &Record) -> Result<Vec<u8>, LogError> {
    record.encode().map_err(|e| LogError::Encode {
        what: "record",
        message: e.to_string(),
    })
}

/// Appends records to the recorder's producer inbox, in batches, rolling the file.
struct Writer {
    store: Store,
    session: String,
    file: Option<ProducerInbox>,
    file_started: Instant,
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    oldest_pending: Option<Instant>,
    records: u64,
    error: Option<LogError>,
    redactor: Redactor,
    output: StreamRedactor,
    input: StreamRedactor,
}

impl Writer {
    fn push(&mut self, record: &Record) {
        if self.error.is_some() {
            return;
        }
        match encode(record) {
            Ok(bytes) => {
                self.pending_bytes += bytes.len();
                self.pending.push(bytes);
                self.oldest_pending.get_or_insert_with(Instant::now);
                self.records += 1;
            }
            Err(e) => self.error = Some(e),
        }
        if self.pending_bytes >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Writes pending records; rolls the file first when it is due, writing the batch to the new
    /// file before closing the old one.
    fn flush(&mut self) {
        if self.pending.is_empty() || self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_flush() {
            tracing::error!(error = %e, session = %self.session, "PTY recording stopped: store error");
            self.error = Some(e);
        }
        self.pending.clear();
        self.pending_bytes = 0;
        self.oldest_pending = None;
    }

    fn try_flush(&mut self) -> Result<(), LogError> {
        let due = self.file.as_ref().is_none_or(|file| {
            self.file_started.elapsed() >= ROLL_AFTER || file.len_bytes() >= ROLL_BYTES
        });
        let old = if due {
            let new = self.store.producer("pty")?;
            self.file_started = Instant::now();
            self.file.replace(new)
        } else {
            None
        };
        if let Some(file) = self.file.as_mut() {
            for bytes in &self.pending {
                file.append(bytes)?;
            }
            file.flush()?;
        }
        if let Some(old) = old {
            old.close()?;
        }
        Ok(())
    }

    fn close(mut self) -> (u64, Option<LogError>) {
        self.flush();
        if let Some(file) = self.file.take()
            && let Err(e) = file.close()
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        (self.records, self.error)
    }

    /// Runs until an `Exit` event or until every sender is gone.
    fn run(mut self, events: &Receiver<Event>) -> (u64, Option<LogError>) {
        loop {
            let event = match self.oldest_pending {
                Some(oldest) => {
                    let wait = FLUSH_AFTER.saturating_sub(oldest.elapsed());
                    match events.recv_timeout(wait) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => {
                            self.flush();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match events.recv() {
                    Ok(event) => event,
                    Err(_) => break,
                },
            };
            let (ts, body, last) = match event {
                Event::Chunk { ts, kind, data } => {
                    let stream = match kind {
                        PtyKind::Input => &mut self.input,
                        _ => &mut self.output,
                    };
                    let (data, redactions) = stream.push(&self.redactor, &data);
                    if data.is_empty() {
                        // All of it held back as a possible start of a secret.
                        continue;
                    }
                    let mut record = pty_record(&self.session, ts, PtyBody { data, ..body(kind) });
                    record.redactions = redactions;
                    self.push(&record);
                    continue;
                }
                Event::Resize { ts, width, height } => (
                    ts,
                    PtyBody {
                        width: Some(width),
                        height: Some(height),
                        data: format!("{width}x{height}").into_bytes(),
                        ..body(PtyKind::Resize)
                    },
                    false,
                ),
                Event::Exit { ts, status } => (
                    ts,
                    PtyBody {
                        status: Some(status),
                        data: status.to_string().into_bytes(),
                        ..body(PtyKind::Exit)
                    },
                    true,
                ),
            };
            if last {
                self.drain_streams(ts);
            }
            let mut record = pty_record(&self.session, ts, body);
            self.redactor.redact_record(&mut record);
            self.push(&record);
            if last {
                break;
            }
        }
        self.drain_streams(crate::now_ns());
        self.close()
    }

    /// Writes the tails the redaction streams held back, as records at `ts`.
    fn drain_streams(&mut self, ts: u64) {
        for kind in [PtyKind::Output, PtyKind::Input] {
            let stream = match kind {
                PtyKind::Input => &mut self.input,
                _ => &mut self.output,
            };
            let (data, redactions) = stream.finish(&self.redactor);
            if data.is_empty() {
                continue;
            }
            let mut record = pty_record(&self.session, ts, PtyBody { data, ..body(kind) });
            record.redactions = redactions;
            self.push(&record);
        }
    }
}

/// Runs `options.command` under a PTY and records it into `store`. Blocks until the child
/// exits and its output is drained.
///
/// # Errors
/// [`RecordError`] when the command cannot be found or started, the PTY cannot be opened, or
/// the store fails before the child starts (the `start` record is written first). Store errors
/// while the child runs do not stop the child: they end up in [`Recording::store_error`].
pub fn record(store: &Store, options: &RecordOptions) -> Result<Recording, RecordError> {
    let command = if options.command.is_empty() {
        vec![
            std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| OsString::from("/bin/sh")),
        ]
    } else {
        options.command.clone()
    };
    let program = resolve_program(&command[0])?;
    let session = new_session_id();
    let clock = Clock {
        wall_ns: crate::now_ns(),
        started: Instant::now(),
    };
    let (width, height) = terminal_size().unwrap_or((80, 24));
    let cwd = std::env::current_dir().ok();
    let term = std::env::var("TERM").ok();
    let command_text = command_line(&command);

    // The start record, written and flushed before the child runs.
    let mut writer = Writer {
        store: store.clone(),
        session: session.clone(),
        file: None,
        file_started: Instant::now(),
        pending: Vec::new(),
        pending_bytes: 0,
        oldest_pending: None,
        records: 0,
        error: None,
        redactor: Redactor::new(&store.config().redaction),
        output: StreamRedactor::default(),
        input: StreamRedactor::default(),
    };
    let start_ts = clock.now();
    let mut header = serde_json::Map::new();
    header.insert("version".into(), 2.into());
    header.insert("width".into(), width.into());
    header.insert("height".into(), height.into());
    header.insert("timestamp".into(), (start_ts / 1_000_000_000).into());
    header.insert("command".into(), command_text.clone().into());
    if let Some(name) = &options.name {
        header.insert("title".into(), name.clone().into());
    }
    let mut env = serde_json::Map::new();
    if let Some(term) = &term {
        env.insert("TERM".into(), term.clone().into());
    }
    if let Ok(shell) = std::env::var("SHELL") {
        env.insert("SHELL".into(), shell.into());
    }
    header.insert("env".into(), env.into());
    let start = PtyBody {
        data: serde_json::to_vec(&header).unwrap_or_default(),
        command: Some(command_text),
        cwd: cwd.as_ref().map(|c| c.to_string_lossy().into_owned()),
        term,
        width: Some(width),
        height: Some(height),
        ..body(PtyKind::Start)
    };
    let mut start = pty_record(&session, start_ts, start);
    writer.redactor.redact_record(&mut start);
    writer.push(&start);
    writer.flush();
    if let Some(error) = writer.error.take() {
        return Err(error.into());
    }

    let pty = native_pty_system();
    let pair = pty
        .openpty(PtySize {
            rows: height,
            cols: width,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| RecordError::Pty {
            action: "open",
            source: e.into(),
        })?;
    let mut builder = CommandBuilder::new(&program);
    // argv[0] as the user typed it.
    builder.get_argv_mut()[0] = command[0].clone();
    for arg in &command[1..] {
        builder.arg(arg);
    }
    if let Some(cwd) = &cwd {
        builder.cwd(cwd);
    }
    builder.env(PTY_SESSION_ENV, &session);
    let spawned = pair.slave.spawn_command(builder);
    drop(pair.slave);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            // Close the session: it never ran.
            writer.push(&pty_record(
                &session,
                clock.now(),
                PtyBody {
                    status: Some(126),
                    data: b"126".to_vec(),
                    ..body(PtyKind::Exit)
                },
            ));
            writer.close();
            return Err(RecordError::Pty {
                action: "spawn",
                source: e.into(),
            });
        }
    };
    let mut reader = pair
        .master
        .try_clone_reader()
        .map_err(|e| RecordError::Pty {
            action: "clone reader",
            source: e.into(),
        })?;
    let mut pty_writer = pair.master.take_writer().map_err(|e| RecordError::Pty {
        action: "take writer",
        source: e.into(),
    })?;

    let raw = raw_mode_guard().map_err(RecordError::RawMode)?;

    let (events, receiver) = std::sync::mpsc::sync_channel::<Event>(CHANNEL_CHUNKS);
    let writer_thread = std::thread::Builder::new()
        .name("ctrace-record-writer".into())
        .spawn(move || writer.run(&receiver));

    // PTY → stdout and the writer.
    let (output_done, output_finished) = std::sync::mpsc::channel::<()>();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let events = events.clone();
        let progress = progress.clone();
        let _ = std::thread::Builder::new()
            .name("ctrace-record-output".into())
            .spawn(move || {
                let mut buffer = vec![0u8; CHUNK_BYTES];
                // Unbuffered: std's stdout is line-buffered, which would write a chunk holding
                // a newline in two system calls (up to the last newline, then the rest).
                let mut stdout: Box<dyn Write + Send> =
                    match std::io::stdout().as_fd().try_clone_to_owned() {
                        Ok(fd) => Box::new(std::fs::File::from(fd)),
                        Err(_) => Box::new(std::io::stdout()),
                    };
                loop {
                    let n = match reader.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let ts = clock.now();
                    let _ = stdout.write_all(&buffer[..n]);
                    let _ = stdout.flush();
                    progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let chunk = Event::Chunk {
                        ts,
                        kind: PtyKind::Output,
                        data: buffer[..n].to_vec(),
                    };
                    if events.send(chunk).is_err() {
                        break;
                    }
                }
                let _ = output_done.send(());
            });
    }

    // stdin → PTY (and the writer with --input).
    {
        let events = events.clone();
        let record_input = options.input;
        let _ = std::thread::Builder::new()
            .name("ctrace-record-input".into())
            .spawn(move || {
                let mut buffer = vec![0u8; 4096];
                let mut stdin = std::io::stdin();
                // Whether the child's current input line is empty (EOF is only seen there).
                let mut at_line_start = true;
                loop {
                    let n = match stdin.read(&mut buffer) {
                        Ok(0) => {
                            // End of stdin (not a terminal): end of file for the child. One
                            // VEOF ends a pending partial line, a second one is then EOF.
                            let eof: &[u8] = if at_line_start { b"\x04" } else { b"\x04\x04" };
                            let _ = pty_writer.write_all(eof);
                            let _ = pty_writer.flush();
                            break;
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let ts = clock.now();
                    if pty_writer.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    let _ = pty_writer.flush();
                    at_line_start = matches!(buffer[n - 1], b'\n' | b'\r');
                    if record_input {
                        let chunk = Event::Chunk {
                            ts,
                            kind: PtyKind::Input,
                            data: buffer[..n].to_vec(),
                        };
                        if events.send(chunk).is_err() {
                            break;
                        }
                    }
                }
                // portable-pty's writer sends "\n" and VEOF when dropped, which would add a
                // line the user never typed: keep it open until the process ends instead.
                std::mem::forget(pty_writer);
            });
    }

    // Signals: window size changes and termination requests.
    let child_pid = child.process_id();
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
        let events = events.clone();
        let master = pair.master;
        if let Ok(mut signals) =
            signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT])
        {
            let _ = std::thread::Builder::new()
                .name("ctrace-record-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        if signal == SIGWINCH {
                            let Some((width, height)) = terminal_size() else {
                                continue;
                            };
                            let _ = master.resize(PtySize {
                                rows: height,
                                cols: width,
                                pixel_width: 0,
                                pixel_height: 0,
                            });
                            let resize = Event::Resize {
                                ts: clock.now(),
                                width,
                                height,
                            };
                            if events.send(resize).is_err() {
                                break;
                            }
                            continue;
                        }
                        let forward = match signal {
                            SIGTERM => rustix::process::Signal::TERM,
                            SIGHUP => rustix::process::Signal::HUP,
                            SIGINT => rustix::process::Signal::INT,
                            _ => rustix::process::Signal::QUIT,
                        };
                        if let Some(pid) = child_pid
                            .and_then(|p| i32::try_from(p).ok())
                            .and_then(rustix::process::Pid::from_raw)
                        {
                            let _ = rustix::process::kill_process(pid, forward);
                        }
                    }
                });
        }
    }

    let status = match child.wait() {
        Ok(status) => shell_status(&status),
        Err(e) => {
            tracing::error!(error = %e, "waiting for the recorded child");
            1
        }
    };
    // Drain what the child wrote before it exited, until EOF or the PTY goes quiet (a
    // background process may keep it open).
    let mut seen = progress.load(std::sync::atomic::Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        match output_finished.recv_timeout(Duration::from_millis(20)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let now = progress.load(std::sync::atomic::Ordering::Relaxed);
                if now != seen {
                    seen = now;
                    quiet_since = Instant::now();
                } else if quiet_since.elapsed() >= DRAIN_QUIET {
                    break;
                }
            }
        }
    }
    let _ = events.send(Event::Exit {
        ts: clock.now(),
        status,
    });
    drop(events);
    let (records, store_error) = match writer_thread {
        Ok(handle) => handle.join().unwrap_or((0, None)),
        Err(_) => (0, None),
    };
    drop(raw);
    Ok(Recording {
        session,
        status,
        records,
        store_error,
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
