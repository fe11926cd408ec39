//! `ctrace replay <session>`: plays a PTY session back on the terminal with its original
//! timing; sessions without terminal data get the timeline (`show`).
//!
//! Keys while playing (when stdin is a terminal): space pauses and resumes, `.` writes the next
//! chunk while paused, `q` quits.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::Args;

use super::UsageError;
use super::show::ShowArgs;
use crate::log::Store;
use crate::log::record::{Body, PtyKind, Source};

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Session id, or a unique prefix of one
    pub session: String,
    /// Playback speed factor (2 = twice as fast)
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub speed: f64,
    /// Shorten pauses longer than this to this, in seconds
    #[arg(long, value_name = "SECS")]
    pub idle_limit: Option<f64>,
    /// Write the terminal output straight out, without timing
    #[arg(long)]
    pub no_timing: bool,
    /// For sessions without terminal data: the timeline as JSON (as `show --json`)
    #[arg(long)]
    pub json: bool,
}

/// Finds the session named by `wanted` (exact id or unique prefix) among `ids`.
///
/// # Errors
/// [`UsageError`] when no session or several sessions match.
pub fn resolve<'a, V>(
    ids: &'a BTreeMap<String, V>,
    wanted: &str,
) -> Result<(&'a str, &'a V), UsageError> {
    if let Some((id, value)) = ids.get_key_value(wanted) {
        return Ok((id.as_str(), value));
    }
    let matches: Vec<(&String, &V)> = ids
        .range(wanted.to_owned()..)
        .take_while(|(id, _)| id.starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [(id, value)] => Ok((id.as_str(), value)),
        [] => Err(UsageError(format!(
            "no session `{wanted}` in the store (see `ctrace sessions`)"
        ))),
        many => Err(UsageError(format!(
            "`{wanted}` matches {} sessions: {}",
            many.len(),
            many.iter()
                .take(5)
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Every session id in the store, with whether it has PTY records.
///
/// # Errors
/// When the store cannot be read.
pub fn session_ids(store: &Store) -> anyhow::Result<BTreeMap<String, bool>> {
    super::refresh(store)?;
    let snapshot = store.snapshot()?;
    let mut ids: BTreeMap<String, bool> = BTreeMap::new();
    for stored in snapshot.iter() {
        let stored = stored?;
        if let Some(session) = stored.record.session {
            *ids.entry(session).or_default() |= stored.record.source == Source::Pty;
        }
    }
    Ok(ids)
}

enum Key {
    Pause,
    Step,
    Quit,
}

fn key_events() -> Option<Receiver<Key>> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return None;
    }
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ctrace-replay-keys".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut byte = [0u8; 1];
            while let Ok(1) = stdin.read(&mut byte) {
                let key = match byte[0] {
                    b' ' => Key::Pause,
                    b'.' => Key::Step,
                    b'q' | 3 => Key::Quit,
                    _ => continue,
                };
                if send.send(key).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some(receive)
}

/// Runs `replay`.
///
/// # Errors
/// When the session is unknown, the arguments are out of range, or the store cannot be read.
pub fn run(store: &Store, args: &ReplayArgs) -> anyhow::Result<i32> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(UsageError(format!(
            "--speed must be a positive number, not {}",
            args.speed
        ))
        .into());
    }
    if args
        .idle_limit
        .is_some_and(|l| !(l.is_finite() && l >= 0.0))
    {
        return Err(
            UsageError("--idle-limit must be a non-negative number of seconds".into()).into(),
        );
    }
    let ids = session_ids(store)?;
    let (session, has_pty) = resolve(&ids, &args.session)?;
    if !has_pty {
        let show = ShowArgs {
            session: session.to_owned(),
            json: args.json,
        };
        return super::show::run(store, &show);
    }
    let snapshot = store.snapshot()?;
    let records = snapshot
        .session(session, crate::log::read::TimeRange::default())
        .filter(|r| r.as_ref().map_or(true, |s| s.record.source == Source::Pty));
    let stdout = std::io::stdout();
    if args.no_timing {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        for stored in records {
            let stored = stored?;
            if let Body::Pty(pty) = &stored.record.body
                && pty.kind == PtyKind::Output
            {
                out.write_all(&pty.data)?;
            }
        }
        out.flush()?;
        return Ok(0);
    }
    let keys = key_events();
    let raw = if keys.is_some() {
        crate::record::raw_mode_guard()?
    } else {
        None
    };
    let idle_limit_ns = args.idle_limit.map(|l| (l * 1e9) as u64);
    let mut out = stdout.lock();
    let mut anchor = Instant::now();
    let mut virtual_ns: f64 = 0.0;
    let mut emitted_ns: f64 = 0.0;
    let mut previous_ts: Option<u64> = None;
    let mut paused = false;
    let mut largest = (0u16, 0u16);
    'records: for stored in records {
        let stored = stored?;
        let Body::Pty(pty) = &stored.record.body else {
            continue;
        };
        if let (Some(w), Some(h)) = (pty.width, pty.height) {
            largest = (largest.0.max(w), largest.1.max(h));
        }
        let mut gap = previous_ts.map_or(0, |p| stored.record.ts.saturating_sub(p));
        previous_ts = Some(stored.record.ts);
        if let Some(limit) = idle_limit_ns {
            gap = gap.min(limit);
        }
        virtual_ns += gap as f64 / args.speed;
        if pty.kind != PtyKind::Output {
            continue;
        }
        loop {
            if paused {
                let Some(keys) = &keys else { break };
                match keys.recv() {
                    Ok(Key::Pause) => {
                        paused = false;
                        anchor = Instant::now() - Duration::from_nanos(emitted_ns as u64);
                    }
                    Ok(Key::Step) => break,
                    Ok(Key::Quit) | Err(_) => break 'records,
                }
                continue;
            }
            let due = anchor + Duration::from_nanos(virtual_ns as u64);
            let now = Instant::now();
            if now >= due {
                break;
            }
            match &keys {
                Some(keys) => match keys.recv_timeout(due - now) {
                    Ok(Key::Pause) => paused = true,
                    Ok(Key::Step) => {}
                    Ok(Key::Quit) => break 'records,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(due - now),
                },
                None => std::thread::sleep(due - now),
            }
        }
        emitted_ns = virtual_ns;
        if paused {
            // A step: the clock restarts from this chunk on resume.
            anchor = Instant::now() - Duration::from_nanos(emitted_ns as u64);
        }
        out.write_all(&pty.data)?;
        out.flush()?;
    }
    drop(raw);
    if let Some((width, height)) = crate::record::terminal_size()
        && std::io::stdout().is_terminal()
        && (width < largest.0 || height < largest.1)
    {
        eprintln!(
            "ctrace: the recording used up to {}x{}, this terminal is {width}x{height}: lines may wrap",
            largest.0, largest.1
        );
    }
    Ok(0)
}
