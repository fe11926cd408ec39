//! `ctrace replay <session>`: plays a PTY session back on the terminal with its original
//! timing; sessions without terminal data get the timeline (`show`).
//!
//! Keys while playing (when stdin is a terminal): space pauses and resumes, `.` writes the next
//! chunk while paused, `]` jumps to the next marker, `q` quits.
//!
//! Markers are the session's own `marker` records (asciicast `m` events) and, with `--events`,
//! the hook events of the Claude sessions linked to it (hooks whose `pty_session` is this
//! session's id), merged in time order. A marker is shown in a status line on the last row
//! when stdout is a terminal, else written to stderr.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;

use clap::Args;

use super::UsageError;
use super::show::ShowArgs;
use crate::log::{LogError, Store};
use crate::model::{Body, PtyKind, Source, StoredRecord};
use crate::segments::Offset;

mod play;

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
    /// Start here: a time into the session (`90`, `1m30s`, `2.5s`) or a marker label; the
    /// output before it is written at once
    #[arg(long, value_name = "T", conflicts_with = "at")]
    pub from: Option<String>,
    /// Stop here: a time into the session or a marker label
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Start at the first record at or after this log offset; the output before it is written
    /// at once (for sessions without terminal data: the timeline from the item holding that
    /// record on; a Claude session that ran inside one terminal recording plays that recording
    /// from there, `--json` gives its timeline)
    #[arg(long, value_name = "OFFSET")]
    pub at: Option<u64>,
    /// Show the linked Claude session's hook events as markers
    #[arg(long)]
    pub events: bool,
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
pub(crate) fn session_ids(store: &Store) -> anyhow::Result<BTreeMap<String, bool>> {
    Ok(catalog(store)?.ids)
}

/// The length of the shortest full session id (`cast-` + 24 hex digits; UUIDs are 36).
const FULL_ID_LEN: usize = 29;

/// A hook event of a Claude session linked to a PTY session, shown as a marker.
#[derive(Debug, Clone)]
struct Marker {
    ts: u64,
    label: String,
}

/// What one pass over the store says about sessions: ids (with whether they have PTY records)
/// and the hook events carrying a `pty_session`, by that PTY session.
struct Catalog {
    ids: BTreeMap<String, bool>,
    linked_events: BTreeMap<String, Vec<Marker>>,
    /// Claude session → the PTY sessions its hooks ran in.
    recordings: BTreeMap<String, std::collections::BTreeSet<String>>,
}

fn catalog(store: &Store) -> anyhow::Result<Catalog> {
    super::refresh(store)?;
    let snapshot = store.snapshot()?;
    let mut ids: BTreeMap<String, bool> = BTreeMap::new();
    let mut linked_events: BTreeMap<String, Vec<Marker>> = BTreeMap::new();
    let mut recordings: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for stored in snapshot.iter() {
        let stored = stored?;
        if let Body::Hook(hook) = &stored.record.body
            && let Some(pty) = &hook.pty_session
        {
            if let Some(claude) = &stored.record.session
                && claude != pty
            {
                recordings
                    .entry(claude.clone())
                    .or_default()
                    .insert(pty.clone());
            }
            let mut label = hook.event.clone().unwrap_or_else(|| "hook".into());
            if let Some(tool) = &hook.tool_name {
                label.push(' ');
                label.push_str(tool);
            }
            linked_events.entry(pty.clone()).or_default().push(Marker {
                ts: stored.record.ts,
                label,
            });
        }
        if let Some(session) = stored.record.session {
            *ids.entry(session).or_default() |= stored.record.source == Source::Pty;
        }
    }
    for events in linked_events.values_mut() {
        events.sort_by_key(|m| m.ts);
    }
    Ok(Catalog {
        ids,
        linked_events,
        recordings,
    })
}

/// A `--from` / `--to` argument.
#[derive(Debug, Clone, PartialEq)]
enum Bound {
    /// ns since the start of the session.
    Time(u64),
    /// The first marker with this label.
    Marker(String),
}

/// Parses `90`, `2.5` (seconds), `1m30s`, `500ms` (humantime); anything else is a marker label.
fn parse_bound(text: &str) -> Bound {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Bound::Time((secs * 1e9) as u64);
    }
    match humantime::parse_duration(trimmed) {
        Ok(d) => Bound::Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        Err(_) => Bound::Marker(trimmed.to_owned()),
    }
}

/// One step of playback: a PTY record or a linked hook event.
enum Item {
    Pty(Box<StoredRecord>),
    Event(Marker),
}

impl Item {
    fn ts(&self) -> u64 {
        match self {
            Item::Pty(stored) => stored.record.ts,
            Item::Event(marker) => marker.ts,
        }
    }
}

/// The session's PTY records with the linked hook events merged in by time (an event goes
/// before a record with the same or a later time).
struct Merged<I> {
    records: I,
    events: VecDeque<Marker>,
    pending: Option<StoredRecord>,
}

impl<I, E> Iterator for Merged<I>
where
    I: Iterator<Item = Result<StoredRecord, E>>,
{
    type Item = Result<Item, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending.is_none() {
            match self.records.next() {
                Some(Ok(stored)) => self.pending = Some(stored),
                Some(Err(error)) => return Some(Err(error)),
                None => {}
            }
        }
        let event_first = match (&self.pending, self.events.front()) {
            (Some(stored), Some(event)) => event.ts <= stored.record.ts,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if event_first {
            return self.events.pop_front().map(|e| Ok(Item::Event(e)));
        }
        self.pending.take().map(|s| Ok(Item::Pty(Box::new(s))))
    }
}

/// Runs `replay`.
///
/// # Errors
/// When the session is unknown, the arguments are out of range, or the store cannot be read.
pub fn run(store: &Store, args: &ReplayArgs) -> anyhow::Result<i32> {
    check_args(args)?;
    let Found {
        mut session,
        mut has_pty,
        mut linked_events,
        recordings,
    } = find_session(store, args)?;
    // A Claude session that ran inside one terminal recording: `--at` (a search hit's record)
    // plays that recording from the same point of the log (its records and the session's are
    // appended to one log as they happen).
    if !has_pty
        && !args.json
        && let (Some(at), [recording]) = (args.at, recordings.as_slice())
    {
        let record = store.snapshot()?.get(Offset(at))?;
        if record.and_then(|r| r.session).as_deref() != Some(session.as_str()) {
            return Err(UsageError(format!(
                "session {session} has no record at offset {at} (see `ctrace search` or `ctrace cat`)"
            ))
            .into());
        }
        eprintln!(
            "ctrace: replaying terminal recording {recording} (the one session {session} ran in) \
             from offset {at}; `--json` gives the session's timeline"
        );
        session = recording.clone();
        has_pty = true;
    }
    if !has_pty {
        if let Some(at) = args.at {
            return timeline_from(store, &session, Offset(at), args.json);
        }
        let show = ShowArgs {
            session,
            json: args.json,
        };
        return super::show::run(store, &show);
    }
    let events: VecDeque<Marker> = if args.events {
        linked_events.remove(&session).unwrap_or_default().into()
    } else {
        VecDeque::new()
    };
    let snapshot = store.snapshot()?;
    let pty_records = || {
        snapshot
            .session(&session, crate::log::read::TimeRange::default())
            .filter(|r| r.as_ref().map_or(true, |s| s.record.source == Source::Pty))
    };
    let mut bounds = Bounds {
        from: args.from.as_deref().map(parse_bound),
        to: args.to.as_deref().map(parse_bound),
        from_ts: None,
        to_ts: None,
    };
    // Marker labels need a first pass to find their time.
    if matches!(bounds.from, Some(Bound::Marker(_))) || matches!(bounds.to, Some(Bound::Marker(_)))
    {
        let markers = session_markers(pty_records(), &events)?;
        bounds.from_ts = markers.absolute(bounds.from.as_ref(), "--from")?;
        bounds.to_ts = markers.absolute(bounds.to.as_ref(), "--to")?;
    }
    let merged = Merged {
        records: pty_records(),
        events,
        pending: None,
    };
    play::play(args, bounds, merged)
}

/// Refuses a speed or idle limit out of range.
fn check_args(args: &ReplayArgs) -> Result<(), UsageError> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(UsageError(format!(
            "--speed must be a positive number, not {}",
            args.speed
        )));
    }
    if args
        .idle_limit
        .is_some_and(|l| !(l.is_finite() && l >= 0.0))
    {
        return Err(UsageError(
            "--idle-limit must be a non-negative number of seconds".into(),
        ));
    }
    Ok(())
}

/// The session `replay` plays.
struct Found {
    /// Its full id.
    session: String,
    /// Whether it has PTY records.
    has_pty: bool,
    /// Hook events linked to PTY sessions, by PTY session (empty when not looked for).
    linked_events: BTreeMap<String, Vec<Marker>>,
    /// For a Claude session: the recordings (PTY sessions with terminal data) its hooks ran
    /// in.
    recordings: Vec<String>,
}

/// Finds the session named by `args.session`. A full id (not a prefix) of a PTY session,
/// without `--events`, needs no pass over the whole store first: the session's first record
/// says it is a recording.
fn find_session(store: &Store, args: &ReplayArgs) -> anyhow::Result<Found> {
    let full_id = !args.events && args.session.len() >= FULL_ID_LEN && {
        super::refresh(store)?;
        let snapshot = store.snapshot()?;
        let first = snapshot
            .scan(Offset(0), crate::log::read::TimeRange::default(), true)
            .find(|r| {
                r.as_ref()
                    .map_or(true, |s| s.record.session.as_deref() == Some(&args.session))
            })
            .transpose()?;
        first.is_some_and(|s| s.record.source == Source::Pty)
    };
    if full_id {
        return Ok(Found {
            session: args.session.clone(),
            has_pty: true,
            linked_events: BTreeMap::new(),
            recordings: Vec::new(),
        });
    }
    let catalog = catalog(store)?;
    let (session, has_pty) = resolve(&catalog.ids, &args.session)?;
    let recordings = catalog
        .recordings
        .get(session)
        .into_iter()
        .flatten()
        .filter(|pty| catalog.ids.get(*pty).copied().unwrap_or(false))
        .cloned()
        .collect();
    Ok(Found {
        session: session.to_owned(),
        has_pty: *has_pty,
        linked_events: catalog.linked_events,
        recordings,
    })
}

/// The markers of a session (its own and the linked hook events) in time order, with the time
/// of its first record.
struct SessionMarkers {
    start: u64,
    markers: Vec<Marker>,
}

fn session_markers(
    records: impl Iterator<Item = Result<StoredRecord, LogError>>,
    events: &VecDeque<Marker>,
) -> Result<SessionMarkers, LogError> {
    let mut start = None;
    let mut markers: Vec<Marker> = events.iter().cloned().collect();
    for stored in records {
        let stored = stored?;
        start.get_or_insert(stored.record.ts);
        if let Body::Pty(pty) = &stored.record.body
            && pty.kind == PtyKind::Marker
        {
            markers.push(Marker {
                ts: stored.record.ts,
                label: String::from_utf8_lossy(&pty.data).into_owned(),
            });
        }
    }
    markers.sort_by_key(|m| m.ts);
    Ok(SessionMarkers {
        start: start.unwrap_or(0),
        markers,
    })
}

impl SessionMarkers {
    /// The absolute time of a bound (ns); `flag` names it in the error.
    fn absolute(&self, bound: Option<&Bound>, flag: &str) -> Result<Option<u64>, UsageError> {
        match bound {
            None => Ok(None),
            Some(Bound::Time(ns)) => Ok(Some(self.start.saturating_add(*ns))),
            Some(Bound::Marker(label)) => self
                .markers
                .iter()
                .find(|m| m.label == *label)
                .map(|m| Some(m.ts))
                .ok_or_else(|| {
                    let known: Vec<&str> = self
                        .markers
                        .iter()
                        .take(10)
                        .map(|m| m.label.as_str())
                        .collect();
                    UsageError(format!(
                        "{flag} `{label}` is neither a time (90, 1m30s) nor a marker of this session{}",
                        if known.is_empty() {
                            String::from(" (it has none; --events adds the linked hook events)")
                        } else {
                            format!(" (markers: {})", known.join(", "))
                        }
                    ))
                }),
        }
    }
}

/// `--from` and `--to`, with their absolute times when they name markers.
struct Bounds {
    from: Option<Bound>,
    to: Option<Bound>,
    /// The absolute time of `from` (ns), when a first pass found it.
    from_ts: Option<u64>,
    /// The absolute time of `to` (ns), when a first pass found it.
    to_ts: Option<u64>,
}

impl Bounds {
    /// Whether an item at `ts` (`since_start` into the session) is past `--to`.
    fn past_end(&self, ts: u64, since_start: u64) -> bool {
        match (&self.to, self.to_ts) {
            (_, Some(limit)) => ts > limit,
            (Some(Bound::Time(ns)), None) => since_start > *ns,
            _ => false,
        }
    }

    /// Whether an item at `ts` (`since_start` into the session) is at or past `--from`.
    fn reached_start(&self, ts: u64, since_start: u64) -> bool {
        match (&self.from, self.from_ts) {
            (_, Some(limit)) => ts >= limit,
            (Some(Bound::Time(ns)), None) => since_start >= *ns,
            _ => true,
        }
    }
}

/// The timeline of a session without terminal data from the item that holds the record at
/// `at` (or, when that record is not a timeline item of its own, the first item after it).
///
/// # Errors
/// [`UsageError`] when the session has no record at `at`; store read errors.
fn timeline_from(store: &Store, session: &str, at: Offset, json: bool) -> anyhow::Result<i32> {
    use super::items::Item;
    let timeline = super::show::timeline(store, session)?;
    let Some(target) = timeline.records.iter().find(|r| r.offset == Some(at)) else {
        return Err(UsageError(format!(
            "session {session} has no record at offset {at} (see `ctrace search` or `ctrace cat`)"
        ))
        .into());
    };
    let target_ts = target.record.ts;
    let items = timeline.items;
    // The item holding the record: the one with its offset, or the last one started at or
    // before it whose span (a tool call's Pre→Post) reaches it.
    fn has_offset(item: &Item, at: Offset) -> bool {
        item.offset == Some(at.0) || item.children.iter().any(|c| has_offset(c, at))
    }
    let holds = |item: &Item| {
        has_offset(item, at)
            || (item.ts <= target_ts
                && item
                    .duration_ns
                    .is_some_and(|d| item.ts.saturating_add(d) >= target_ts))
    };
    let start = items
        .iter()
        .position(holds)
        .or_else(|| items.iter().position(|item| item.ts >= target_ts))
        .unwrap_or(items.len());
    let shown = &items[start..];
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, shown).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "session {session} from offset {at} ({}): {} of {} timeline items",
        super::time::format_ts(target_ts),
        shown.len(),
        items.len()
    )?;
    fn print(out: &mut impl Write, item: &Item, depth: usize) -> std::io::Result<()> {
        let indent = "  ".repeat(depth);
        let timing = match (item.duration_ns, item.status) {
            (Some(ns), Some(status)) => {
                format!("  [{} {status}]", super::time::format_duration(ns))
            }
            (None, Some(status)) => format!("  [{status}]"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}  {indent}{:<20} {}{timing}",
            item.time, item.event, item.summary
        )?;
        for child in &item.children {
            print(out, child, depth + 1)?;
        }
        Ok(())
    }
    for item in shown {
        print(&mut out, item, 0)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_times_or_marker_labels() {
        assert_eq!(parse_bound("90"), Bound::Time(90_000_000_000));
        assert_eq!(parse_bound("2.5"), Bound::Time(2_500_000_000));
        assert_eq!(parse_bound("1m30s"), Bound::Time(90_000_000_000));
        assert_eq!(parse_bound("500ms"), Bound::Time(500_000_000));
        assert_eq!(
            parse_bound("PreToolUse Bash"),
            Bound::Marker("PreToolUse Bash".into())
        );
        assert_eq!(parse_bound("chapter 2"), Bound::Marker("chapter 2".into()));
    }
}
