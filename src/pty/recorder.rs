//! [`record`]: the child under a PTY, the output, input and signal threads, and the drain
//! after the child exits.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use portable_pty::{
    Child, CommandBuilder, MasterPty, PtyPair, PtySize, SlavePty, native_pty_system,
};

use super::writer::{Clock, Event, Writer, body, pty_record};
use super::{
    CHANNEL_CHUNKS, CHUNK_BYTES, DRAIN_QUIET, PTY_SESSION_ENV, RecordError, RecordOptions,
    Recording, command_line, new_session_id, raw_mode_guard, resolve_program, terminal_size,
};
use crate::log::Store;
use crate::model::{PtyBody, PtyKind};

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

/// What the `start` record says about the session.
struct StartInfo<'a> {
    /// The command line, quoted for a shell.
    command: String,
    /// `--name`: the header's `title`.
    name: Option<&'a str>,
    cwd: Option<&'a Path>,
    /// `$TERM`.
    term: Option<String>,
    /// Terminal size in cells.
    width: u16,
    height: u16,
}

impl StartInfo<'_> {
    /// The `start` body: an asciicast v2 header (`ts`, ns since the Unix epoch, gives its
    /// `timestamp`) as data, and the session's command, cwd, term and size as fields.
    fn into_body(self, ts: u64) -> PtyBody {
        let mut header = serde_json::Map::new();
        header.insert("version".into(), 2.into());
        header.insert("width".into(), self.width.into());
        header.insert("height".into(), self.height.into());
        header.insert("timestamp".into(), (ts / 1_000_000_000).into());
        header.insert("command".into(), self.command.clone().into());
        if let Some(name) = self.name {
            header.insert("title".into(), name.to_owned().into());
        }
        let mut env = serde_json::Map::new();
        if let Some(term) = &self.term {
            env.insert("TERM".into(), term.clone().into());
        }
        if let Ok(shell) = std::env::var("SHELL") {
            env.insert("SHELL".into(), shell.into());
        }
        header.insert("env".into(), env.into());
        PtyBody {
            data: serde_json::to_vec(&header).unwrap_or_default(),
            command: Some(self.command),
            cwd: self.cwd.map(|c| c.to_string_lossy().into_owned()),
            term: self.term,
            width: Some(self.width),
            height: Some(self.height),
            ..body(PtyKind::Start)
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
    let command = command_or_shell(options);
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
    let mut writer = Writer::new(store, &session);
    let start_ts = clock.now();
    let start = StartInfo {
        command: command_text,
        name: options.name.as_deref(),
        cwd: cwd.as_deref(),
        term,
        width,
        height,
    };
    write_start(&mut writer, &session, start_ts, start)?;

    // Registered before the child exists, so a SIGTERM that comes as soon as the child runs
    // (its first output seen) is forwarded, not the recorder's death by the default action.
    let signals = register_signals();
    let pair = open_pty(width, height)?;
    let spawned = spawn_child(
        pair.slave.as_ref(),
        &program,
        &command,
        cwd.as_deref(),
        &session,
    );
    drop(pair.slave);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            close_unstarted(writer, &session, clock.now());
            return Err(e);
        }
    };
    let io = pty_io(pair.master.as_ref())?;

    let raw = raw_mode_guard().map_err(RecordError::RawMode)?;

    let (events, receiver) = std::sync::mpsc::sync_channel::<Event>(CHANNEL_CHUNKS);
    let writer_thread = std::thread::Builder::new()
        .name("ctrace-record-writer".into())
        .spawn(move || writer.run(&receiver));

    // PTY → stdout and the writer.
    let (output_done, output_finished) = std::sync::mpsc::channel::<()>();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    spawn_output(
        io.reader,
        events.clone(),
        progress.clone(),
        output_done,
        clock,
    );

    // stdin → PTY (and the writer with --input).
    spawn_input(io.writer, events.clone(), options.input, clock);

    // Signals: window size changes and termination requests.
    spawn_signals(
        signals,
        pair.master,
        events.clone(),
        child.process_id(),
        clock,
    );

    let status = match child.wait() {
        Ok(status) => shell_status(&status),
        Err(e) => {
            tracing::error!(error = %e, "waiting for the recorded child");
            1
        }
    };
    drain_output(&progress, &output_finished);
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

/// The command to run: `options.command`, else `$SHELL`, else `/bin/sh`.
fn command_or_shell(options: &RecordOptions) -> Vec<OsString> {
    if options.command.is_empty() {
        vec![
            std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| OsString::from("/bin/sh")),
        ]
    } else {
        options.command.clone()
    }
}

/// Opens a PTY of `width` × `height` cells.
///
/// # Errors
/// [`RecordError::Pty`] when the system has no PTY to give.
fn open_pty(width: u16, height: u16) -> Result<PtyPair, RecordError> {
    native_pty_system()
        .openpty(PtySize {
            rows: height,
            cols: width,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| RecordError::Pty {
            action: "open",
            source: e.into(),
        })
}

/// Starts `program` on the PTY's slave side, with `command[0]` as argv[0] (as the user typed
/// it), the rest of `command` as arguments, in `cwd`, with [`PTY_SESSION_ENV`] set to
/// `session`.
///
/// # Errors
/// [`RecordError::Pty`] when the child cannot be started.
fn spawn_child(
    slave: &(dyn SlavePty + Send),
    program: &Path,
    command: &[OsString],
    cwd: Option<&Path>,
    session: &str,
) -> Result<Box<dyn Child + Send + Sync>, RecordError> {
    let mut builder = CommandBuilder::new(program);
    builder.get_argv_mut()[0] = command[0].clone();
    for arg in &command[1..] {
        builder.arg(arg);
    }
    if let Some(cwd) = cwd {
        builder.cwd(cwd);
    }
    builder.env(PTY_SESSION_ENV, session);
    slave.spawn_command(builder).map_err(|e| RecordError::Pty {
        action: "spawn",
        source: e.into(),
    })
}

/// The two ends of a PTY master: what the child writes, and where its input goes.
struct PtyIo {
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
}

/// The PTY master's reading and writing ends.
///
/// # Errors
/// [`RecordError::Pty`] when either cannot be had.
fn pty_io(master: &(dyn MasterPty + Send)) -> Result<PtyIo, RecordError> {
    let reader = master.try_clone_reader().map_err(|e| RecordError::Pty {
        action: "clone reader",
        source: e.into(),
    })?;
    let writer = master.take_writer().map_err(|e| RecordError::Pty {
        action: "take writer",
        source: e.into(),
    })?;
    Ok(PtyIo { reader, writer })
}

/// Starts the output thread: PTY → stdout (unbuffered), and each chunk to the writer.
/// `progress` counts the chunks; `done` is told when the PTY reaches end of file.
fn spawn_output(
    mut reader: Box<dyn Read + Send>,
    events: SyncSender<Event>,
    progress: Arc<AtomicU64>,
    output_done: Sender<()>,
    clock: Clock,
) {
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

/// Starts the input thread: stdin → PTY, and each chunk to the writer when `record_input`.
fn spawn_input(
    mut pty_writer: Box<dyn Write + Send>,
    events: SyncSender<Event>,
    record_input: bool,
    clock: Clock,
) {
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

/// The signals the recorder handles (SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT), caught from
/// now on and queued until [`spawn_signals`] reads them; `None` (default actions) when they
/// cannot be registered.
fn register_signals() -> Option<signal_hook::iterator::Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
    match signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT]) {
        Ok(signals) => Some(signals),
        Err(error) => {
            tracing::warn!(%error, "signals are not forwarded to the recorded command");
            None
        }
    }
}

/// Starts the signal thread: SIGWINCH resizes the PTY (and is recorded); SIGTERM, SIGHUP,
/// SIGINT and SIGQUIT (also those caught before the child started) are forwarded to the
/// child. Without signal handling, nothing starts.
fn spawn_signals(
    signals: Option<signal_hook::iterator::Signals>,
    master: Box<dyn MasterPty + Send>,
    events: SyncSender<Event>,
    child_pid: Option<u32>,
    clock: Clock,
) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
    let Some(mut signals) = signals else {
        return;
    };
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

/// Drains what the child wrote before it exited: waits until the output thread reaches end of
/// file, or the PTY goes quiet for [`DRAIN_QUIET`] (a background process may keep it open).
fn drain_output(progress: &AtomicU64, output_finished: &Receiver<()>) {
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
}

/// Writes and flushes the `start` record (redacted like every record) before the child runs.
///
/// # Errors
/// The store's error when the record cannot be written.
fn write_start(
    writer: &mut Writer,
    session: &str,
    ts: u64,
    start: StartInfo<'_>,
) -> Result<(), RecordError> {
    let mut start = pty_record(session, ts, start.into_body(ts));
    writer.redactor.redact_record(&mut start);
    writer.push(&start);
    writer.flush();
    match writer.error.take() {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// Closes a session whose child never ran: an `exit` record with status 126 at `ts`.
fn close_unstarted(mut writer: Writer, session: &str, ts: u64) {
    writer.push(&pty_record(
        session,
        ts,
        PtyBody {
            status: Some(126),
            data: b"126".to_vec(),
            ..body(PtyKind::Exit)
        },
    ));
    writer.close();
}
