//! Playing a PTY session on the terminal: the clock (speed, idle limit, pauses, steps, jumps
//! to the next marker), the keys read from stdin, and the markers shown in a status line or on
//! stderr.

use std::io::{IsTerminal, Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{Bounds, Item, ReplayArgs};
use crate::log::LogError;
use crate::model::{Body, PtyKind};
use crate::segments::Offset;

enum Key {
    Pause,
    Step,
    NextMarker,
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
                    b']' => Key::NextMarker,
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

/// Where markers go: a status line on the terminal's last row, or stderr.
enum MarkerSink {
    StatusLine,
    Stderr,
}

fn show_marker(
    out: &mut impl Write,
    sink: &MarkerSink,
    since_start_ns: u64,
    label: &str,
) -> std::io::Result<()> {
    let at = format!("{:.3}s", since_start_ns as f64 / 1e9);
    let label: String = label.chars().filter(|c| !c.is_control()).collect();
    match sink {
        MarkerSink::StatusLine => {
            let (width, height) = crate::pty::terminal_size().unwrap_or((80, 24));
            let text: String = format!(" [{at}] {label} ")
                .chars()
                .take(usize::from(width.max(1)))
                .collect();
            // Save the cursor, last row, clear it, reverse video, restore.
            write!(out, "\x1b7\x1b[{height};1H\x1b[2K\x1b[7m{text}\x1b[0m\x1b8")
        }
        MarkerSink::Stderr => {
            out.flush()?;
            let mut err = std::io::stderr().lock();
            writeln!(err, "ctrace: marker at {at}: {label}")
        }
    }
}

/// Whether playback goes on after an item.
enum Flow {
    Continue,
    Stop,
}

/// Plays the merged items on stdout, then warns when the terminal is smaller than the
/// recording.
pub(super) fn play(
    args: &ReplayArgs,
    bounds: Bounds,
    merged: impl Iterator<Item = Result<Item, LogError>>,
) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let is_terminal = stdout.is_terminal();
    let sink = if is_terminal {
        MarkerSink::StatusLine
    } else {
        MarkerSink::Stderr
    };
    let keys = if args.no_timing { None } else { key_events() };
    let raw = if keys.is_some() {
        crate::pty::raw_mode_guard()?
    } else {
        None
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut player = Player {
        args,
        idle_limit_ns: args.idle_limit.map(|l| (l * 1e9) as u64),
        keys,
        sink,
        anchor: Instant::now(),
        virtual_ns: 0.0,
        emitted_ns: 0.0,
        previous_ts: None,
        start_ts: None,
        paused: false,
        // Before the start point (`--from`, `--at`) and while jumping to the next marker,
        // items are written at once.
        seeking: bounds.from.is_some() || args.at.is_some(),
        skipping_to_marker: false,
        starting: false,
        largest: TerminalSize::default(),
        bounds,
    };
    for item in merged {
        if let Flow::Stop = player.step(&mut out, &item?)? {
            break;
        }
    }
    out.flush()?;
    drop(out);
    drop(raw);
    let largest = player.largest;
    if let Some((width, height)) = crate::pty::terminal_size()
        && is_terminal
        && (width < largest.width || height < largest.height)
    {
        eprintln!(
            "ctrace: the recording used up to {}x{}, this terminal is {width}x{height}: lines may wrap",
            largest.width, largest.height
        );
    }
    Ok(0)
}

/// A terminal size in columns and rows.
#[derive(Debug, Default, Clone, Copy)]
struct TerminalSize {
    width: u16,
    height: u16,
}

/// Playback state: the clock, the keys, and where playback stands.
struct Player<'a> {
    args: &'a ReplayArgs,
    bounds: Bounds,
    idle_limit_ns: Option<u64>,
    keys: Option<Receiver<Key>>,
    sink: MarkerSink,
    /// When virtual time 0 was (moved on a pause, a step or a jump).
    anchor: Instant,
    /// The time of the current item in playback time (ns, after speed and idle limit).
    virtual_ns: f64,
    /// The playback time written so far (ns).
    emitted_ns: f64,
    previous_ts: Option<u64>,
    start_ts: Option<u64>,
    paused: bool,
    seeking: bool,
    skipping_to_marker: bool,
    starting: bool,
    /// The largest terminal size of the recording.
    largest: TerminalSize,
}

impl Player<'_> {
    /// Plays one item: waits for its time (unless seeking or untimed), writes its output and
    /// shows its marker.
    fn step(&mut self, out: &mut impl Write, item: &Item) -> anyhow::Result<Flow> {
        let ts = item.ts();
        let start = *self.start_ts.get_or_insert(ts);
        let since_start = ts.saturating_sub(start);
        if self.bounds.past_end(ts, since_start) {
            return Ok(Flow::Stop);
        }
        let marker_label = match item {
            Item::Event(marker) => Some(marker.label.clone()),
            Item::Pty(stored) => match &stored.record.body {
                Body::Pty(pty) if pty.kind == PtyKind::Marker => {
                    Some(String::from_utf8_lossy(&pty.data).into_owned())
                }
                _ => None,
            },
        };
        if self.seeking {
            let reached = match (item, self.args.at) {
                (Item::Pty(stored), Some(at)) => stored.offset.is_none_or(|o| o >= Offset(at)),
                (Item::Event(_), Some(_)) => false,
                (_, None) => self.bounds.reached_start(ts, since_start),
            };
            if reached {
                self.seeking = false;
                self.starting = true;
            }
        }
        self.advance_clock(ts, marker_label.is_some());
        let data = match item {
            Item::Pty(stored) => match &stored.record.body {
                Body::Pty(pty) => {
                    if let (Some(w), Some(h)) = (pty.width, pty.height) {
                        self.largest.width = self.largest.width.max(w);
                        self.largest.height = self.largest.height.max(h);
                    }
                    (pty.kind == PtyKind::Output).then_some(&pty.data)
                }
                _ => None,
            },
            Item::Event(_) => None,
        };
        if data.is_none() && marker_label.is_none() {
            return Ok(Flow::Continue);
        }
        // The start point itself plays at once, and the clock runs from it.
        if self.seeking || self.starting || self.skipping_to_marker || self.args.no_timing {
            self.starting = false;
            self.anchor = Instant::now() - Duration::from_nanos(self.virtual_ns as u64);
            self.emitted_ns = self.virtual_ns;
        } else if let Flow::Stop = self.wait(out, marker_label.is_some())? {
            return Ok(Flow::Stop);
        }
        if let Some(data) = data {
            out.write_all(data)?;
        }
        if let Some(label) = marker_label
            && !self.seeking
            && (self.args.events || !self.args.no_timing)
        {
            show_marker(out, &self.sink, since_start, &label)?;
        }
        Ok(Flow::Continue)
    }

    /// Moves playback time to the item at `ts` (the gap scaled by the speed, capped by the idle
    /// limit); a marker ends a jump to the next marker, and the clock resumes from it.
    fn advance_clock(&mut self, ts: u64, is_marker: bool) {
        let mut gap = self.previous_ts.map_or(0, |p| ts.saturating_sub(p));
        self.previous_ts = Some(ts);
        if let Some(limit) = self.idle_limit_ns {
            gap = gap.min(limit);
        }
        self.virtual_ns += gap as f64 / self.args.speed;
        if self.skipping_to_marker && is_marker {
            self.skipping_to_marker = false;
            // Resume the clock from this marker.
            self.anchor = Instant::now() - Duration::from_nanos(self.virtual_ns as u64);
            self.emitted_ns = self.virtual_ns;
        }
    }

    /// Waits until the current item is due, answering keys meanwhile; `Stop` on `q`.
    fn wait(&mut self, out: &mut impl Write, is_marker: bool) -> std::io::Result<Flow> {
        out.flush()?;
        loop {
            if self.paused {
                let Some(keys) = &self.keys else { break };
                match keys.recv() {
                    Ok(Key::Pause) => {
                        self.paused = false;
                        self.anchor = Instant::now() - Duration::from_nanos(self.emitted_ns as u64);
                    }
                    Ok(Key::Step) => break,
                    Ok(Key::NextMarker) => {
                        self.skipping_to_marker = !is_marker;
                        break;
                    }
                    Ok(Key::Quit) | Err(_) => return Ok(Flow::Stop),
                }
                continue;
            }
            let due = self.anchor + Duration::from_nanos(self.virtual_ns as u64);
            let now = Instant::now();
            if now >= due {
                break;
            }
            match &self.keys {
                Some(keys) => match keys.recv_timeout(due - now) {
                    Ok(Key::Pause) => self.paused = true,
                    Ok(Key::Step) => {}
                    Ok(Key::NextMarker) => {
                        self.skipping_to_marker = !is_marker;
                        break;
                    }
                    Ok(Key::Quit) => return Ok(Flow::Stop),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(due - now),
                },
                None => std::thread::sleep(due - now),
            }
        }
        self.emitted_ns = self.virtual_ns;
        if self.paused || self.skipping_to_marker {
            // A step or a jump: the clock restarts from this item.
            self.anchor = Instant::now() - Duration::from_nanos(self.emitted_ns as u64);
        }
        Ok(Flow::Continue)
    }
}
