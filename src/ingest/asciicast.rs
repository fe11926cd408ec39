//! asciicast v2 and v3 (asciinema's terminal recording format): parsing a cast into PTY
//! records. Writing records back out as a cast is [`crate::export::asciicast`].
//!
//! Mapping (documented in `docs/pty.md`):
//! - The header line becomes the session's `start` record: `data` holds the header line's bytes
//!   exactly as in the file (so every header field is kept, and an export in the same version
//!   writes it back byte for byte); `width`, `height`, `term` (`env.TERM`, else v3 `term.type`)
//!   and `command` are extracted.
//! - Events `o`, `i`, `r`, `m`, `x` become `output`, `input`, `resize`, `marker` and `exit`
//!   records; `data` is the event's string as UTF-8 bytes. Event codes this version does not
//!   know are ignored, as the v3 specification asks of players.
//! - Times: a record's `ts` is the session's start time plus the event's time since the start
//!   (v2 stores absolute times, v3 intervals), in ns. The start time is the header's
//!   `timestamp` when present, else the time given by the caller.
//!
//! Invariants: [`parse`] never panics and fails on the first invalid line, naming it, so a
//! caller can keep the store unchanged for a rejected file. Lines longer than
//! [`MAX_LINE_BYTES`] are rejected before they are parsed.

use serde_json::Value;

use crate::model::{Body, PtyBody, PtyKind, Record, Source};

/// Longest line accepted, in bytes (16 MiB).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Why a cast was rejected. Every variant carries the 1-based line ([`CastError::line`]); the
/// message does not repeat it, so callers print `FILE:LINE: message`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CastError {
    /// The file has no header line.
    #[error("no header line (the file is empty)")]
    Empty {
        /// The line after the last one.
        line: u64,
    },
    /// A line is not JSON.
    #[error("not JSON: {error}")]
    Json {
        /// The line.
        line: u64,
        /// The JSON parser's error.
        error: serde_json::Error,
    },
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("{len} bytes exceeds the limit of {limit} bytes")]
    LineTooLong {
        /// The line.
        line: u64,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The header is not a JSON object.
    #[error("the header is not a JSON object")]
    HeaderNotObject {
        /// The line.
        line: u64,
    },
    /// The header's `version` is missing or not 2 or 3.
    #[error("unsupported asciicast version {version} (expected 2 or 3)")]
    Version {
        /// The line.
        line: u64,
        /// The version found (`null` when missing).
        version: Value,
    },
    /// A header field is missing or has the wrong type or range.
    #[error("header field `{field}` is missing or invalid")]
    HeaderField {
        /// The line.
        line: u64,
        /// The field's path (`width`, `term.cols`, `theme.fg`, ...).
        field: &'static str,
    },
    /// An event is not a JSON array of three elements.
    #[error("an event must be an array of 3 elements, found {found}")]
    EventShape {
        /// The line.
        line: u64,
        /// What was found (`array of N`, `object`, ...).
        found: EventShape,
    },
    /// An event's time is not a non-negative number.
    #[error("event time must be a non-negative number, found {found}")]
    Time {
        /// The line.
        line: u64,
        /// The value found.
        found: Value,
    },
    /// An event's code is not a string.
    #[error("event code must be a string, found {found}")]
    Code {
        /// The line.
        line: u64,
        /// The value found.
        found: Value,
    },
    /// An event's data is not a string.
    #[error("event data must be a string, found {found}")]
    Data {
        /// The line.
        line: u64,
        /// The value found.
        found: Value,
    },
    /// A resize event's data is not `COLSxROWS`.
    #[error("resize data must be COLSxROWS, found {found:?}")]
    Resize {
        /// The line.
        line: u64,
        /// The data found.
        found: String,
    },
}

impl CastError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> u64 {
        match self {
            CastError::Empty { line }
            | CastError::Json { line, .. }
            | CastError::LineTooLong { line, .. }
            | CastError::HeaderNotObject { line }
            | CastError::Version { line, .. }
            | CastError::HeaderField { line, .. }
            | CastError::EventShape { line, .. }
            | CastError::Time { line, .. }
            | CastError::Code { line, .. }
            | CastError::Data { line, .. }
            | CastError::Resize { line, .. } => *line,
        }
    }
}

/// What an invalid event line held instead of a 3-element array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventShape {
    /// An array of this many elements.
    Array(usize),
    /// Not an array.
    NotArray,
}

impl std::fmt::Display for EventShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventShape::Array(n) => write!(f, "an array of {n}"),
            EventShape::NotArray => f.write_str("something else"),
        }
    }
}

/// A parsed cast header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// 2 or 3.
    pub version: u8,
    /// The header line's bytes exactly as in the file (without the line terminator).
    pub raw: Vec<u8>,
    /// Terminal columns.
    pub width: u16,
    /// Terminal rows.
    pub height: u16,
    /// `timestamp`: start time, ns since the Unix epoch.
    pub timestamp_ns: Option<u64>,
    /// `command`.
    pub command: Option<String>,
    /// `env.TERM`, else v3 `term.type`.
    pub term: Option<String>,
}

/// One event of a cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Time since the start of the recording, ns.
    pub time_ns: u64,
    /// Event kind (`output`, `input`, `resize`, `marker` or `exit`).
    pub kind: PtyKind,
    /// The event's data string as UTF-8 bytes.
    pub data: Vec<u8>,
    /// Columns and rows of a resize event.
    pub size: Option<(u16, u16)>,
    /// Exit status of an exit event, when its data is an integer.
    pub status: Option<i32>,
}

/// A parsed cast.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// The header.
    pub header: Header,
    /// The events, in file order.
    pub events: Vec<Event>,
}

/// Parses a whole asciicast v2 or v3 file held in memory ([`CastParser`] line by line).
///
/// Blank lines are ignored; lines starting with `#` are comments (v3).
///
/// # Errors
/// [`CastError`] for the first invalid line.
pub fn parse(bytes: &[u8]) -> Result<Cast, CastError> {
    let mut parser = CastParser::default();
    let mut header = None;
    let mut events = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        match parser.line(line, line.len() as u64)? {
            Some(Item::Header(h)) => header = Some(h),
            Some(Item::Event(event)) => events.push(event),
            None => {}
        }
    }
    // `split` yields an empty last piece after a final `\n`, counted as a line as before.
    let header = header.ok_or(CastError::Empty {
        line: parser.lines(),
    })?;
    Ok(Cast { header, events })
}

/// What one line of a cast holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The header (the first line that is not blank or a comment).
    Header(Header),
    /// An event.
    Event(Event),
}

/// A cast parsed one line at a time, so a file of any size is read with one line in memory
/// (the bulk ingester streams casts through it). Feed every line in order, `\n` removed, then
/// call [`CastParser::finish`].
#[derive(Debug, Default)]
pub struct CastParser {
    version: Option<u8>,
    clock_ns: u64,
    line_no: u64,
}

impl CastParser {
    /// Parses the next line (without its `\n`; a trailing `\r` is removed here). `len` is the
    /// line's whole length in bytes: the caller may pass only the first bytes of a line longer
    /// than [`MAX_LINE_BYTES`], which is then rejected. `Ok(None)` for a blank, comment or
    /// unknown-event line.
    ///
    /// # Errors
    /// [`CastError`] naming this line.
    pub fn line(&mut self, line: &[u8], len: u64) -> Result<Option<Item>, CastError> {
        self.line_no += 1;
        let whole = line.len() as u64 >= len;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // The length without the `\r` when the whole line is here; a cut line is too long
        // either way.
        let len = if whole {
            line.len()
        } else {
            usize::try_from(len).unwrap_or(usize::MAX)
        };
        if len > MAX_LINE_BYTES {
            return Err(CastError::LineTooLong {
                line: self.line_no,
                len,
                limit: MAX_LINE_BYTES,
            });
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if line.first() == Some(&b'#') && self.version.is_none_or(|v| v >= 3) {
            return Ok(None);
        }
        let line_no = self.line_no;
        let value: Value = serde_json::from_slice(line).map_err(|error| CastError::Json {
            line: line_no,
            error,
        })?;
        let Some(version) = self.version else {
            let header = parse_header(line, value, line_no)?;
            self.version = Some(header.version);
            return Ok(Some(Item::Header(header)));
        };
        Ok(parse_event(value, version, &mut self.clock_ns, line_no)?.map(Item::Event))
    }

    /// Lines fed so far.
    pub fn lines(&self) -> u64 {
        self.line_no
    }

    /// Ends the cast.
    ///
    /// # Errors
    /// [`CastError::Empty`] when no header was seen.
    pub fn finish(&self) -> Result<(), CastError> {
        match self.version {
            Some(_) => Ok(()),
            None => Err(CastError::Empty { line: self.line_no }),
        }
    }
}

fn parse_header(raw: &[u8], value: Value, line: u64) -> Result<Header, CastError> {
    let Value::Object(map) = value else {
        return Err(CastError::HeaderNotObject { line });
    };
    let field = |field| CastError::HeaderField { line, field };
    let version = match map.get("version").and_then(Value::as_u64) {
        Some(2) => 2,
        Some(3) => 3,
        _ => {
            return Err(CastError::Version {
                line,
                version: map.get("version").cloned().unwrap_or(Value::Null),
            });
        }
    };
    let size = |value: Option<&Value>, name| {
        value
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(field(name))
    };
    let (width, height, term_type) = if version == 2 {
        check_theme(
            map.get("theme"),
            line,
            "theme.fg",
            "theme.bg",
            "theme.palette",
        )?;
        (
            size(map.get("width"), "width")?,
            size(map.get("height"), "height")?,
            None,
        )
    } else {
        let term = map
            .get("term")
            .and_then(Value::as_object)
            .ok_or(field("term"))?;
        check_theme(
            term.get("theme"),
            line,
            "term.theme.fg",
            "term.theme.bg",
            "term.theme.palette",
        )?;
        let term_type = optional_string(term.get("type")).map_err(|()| field("term.type"))?;
        (
            size(term.get("cols"), "term.cols")?,
            size(term.get("rows"), "term.rows")?,
            term_type,
        )
    };
    let timestamp_ns = match map.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(number_to_ns(n).ok_or(field("timestamp"))?),
        Some(_) => return Err(field("timestamp")),
    };
    match map.get("idle_time_limit") {
        None | Some(Value::Null | Value::Number(_)) => {}
        Some(_) => return Err(field("idle_time_limit")),
    }
    let command = optional_string(map.get("command")).map_err(|()| field("command"))?;
    optional_string(map.get("title")).map_err(|()| field("title"))?;
    let env_term = match map.get("env") {
        None | Some(Value::Null) => None,
        Some(Value::Object(env)) => {
            if env
                .values()
                .any(|v| !matches!(v, Value::String(_) | Value::Null))
            {
                return Err(field("env"));
            }
            env.get("TERM").and_then(Value::as_str).map(str::to_owned)
        }
        Some(_) => return Err(field("env")),
    };
    Ok(Header {
        version,
        raw: raw.to_vec(),
        width,
        height,
        timestamp_ns,
        command,
        term: env_term.or(term_type),
    })
}

fn optional_string(value: Option<&Value>) -> Result<Option<String>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A theme, when present, is an object whose `fg` and `bg` are `#rrggbb` and whose `palette` is
/// 8 or 16 `#rrggbb` colours separated by `:`; each key is optional.
fn check_theme(
    theme: Option<&Value>,
    line: u64,
    fg: &'static str,
    bg: &'static str,
    palette: &'static str,
) -> Result<(), CastError> {
    let map = match theme {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(CastError::HeaderField { line, field: fg }),
    };
    for (key, name) in [("fg", fg), ("bg", bg)] {
        match map.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if is_color(s) => {}
            Some(_) => return Err(CastError::HeaderField { line, field: name }),
        }
    }
    match map.get("palette") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            let colors: Vec<&str> = s.split(':').collect();
            if matches!(colors.len(), 8 | 16) && colors.iter().all(|c| is_color(c)) {
                Ok(())
            } else {
                Err(CastError::HeaderField {
                    line,
                    field: palette,
                })
            }
        }
        Some(_) => Err(CastError::HeaderField {
            line,
            field: palette,
        }),
    }
}

fn parse_event(
    value: Value,
    version: u8,
    clock_ns: &mut u64,
    line: u64,
) -> Result<Option<Event>, CastError> {
    let Value::Array(items) = value else {
        return Err(CastError::EventShape {
            line,
            found: EventShape::NotArray,
        });
    };
    let [time, code, data]: [Value; 3] =
        items
            .try_into()
            .map_err(|items: Vec<Value>| CastError::EventShape {
                line,
                found: EventShape::Array(items.len()),
            })?;
    let time_ns = match &time {
        Value::Number(n) => number_to_ns(n),
        _ => None,
    }
    .ok_or_else(|| CastError::Time {
        line,
        found: time.clone(),
    })?;
    let time_ns = if version >= 3 {
        clock_ns.checked_add(time_ns).ok_or(CastError::Time {
            line,
            found: time.clone(),
        })?
    } else {
        time_ns
    };
    *clock_ns = time_ns;
    let Value::String(code) = code else {
        return Err(CastError::Code { line, found: code });
    };
    let Value::String(data) = data else {
        return Err(CastError::Data { line, found: data });
    };
    let kind = match code.as_str() {
        "o" => PtyKind::Output,
        "i" => PtyKind::Input,
        "r" => PtyKind::Resize,
        "m" => PtyKind::Marker,
        "x" => PtyKind::Exit,
        _ => return Ok(None),
    };
    let size = if kind == PtyKind::Resize {
        Some(parse_size(&data).ok_or_else(|| CastError::Resize {
            line,
            found: data.clone(),
        })?)
    } else {
        None
    };
    let status = if kind == PtyKind::Exit {
        data.trim().parse().ok()
    } else {
        None
    };
    Ok(Some(Event {
        time_ns,
        kind,
        data: data.into_bytes(),
        size,
        status,
    }))
}

fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (cols, rows) = data.split_once('x')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(cols) || !digits(rows) {
        return None;
    }
    Some((cols.parse().ok()?, rows.parse().ok()?))
}

/// A non-negative JSON number of seconds, in ns: decimal text is converted exactly (up to ns
/// precision), other forms through `f64`. `None` when negative or beyond `u64` ns.
fn number_to_ns(n: &serde_json::Number) -> Option<u64> {
    if let Some(secs) = n.as_u64() {
        return secs.checked_mul(1_000_000_000);
    }
    let text = n.to_string();
    if let Some(ns) = decimal_to_ns(&text) {
        return Some(ns);
    }
    let secs = n.as_f64()?;
    if !(0.0..1.8e10).contains(&secs) {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "range checked above"
    )]
    Some((secs * 1e9).round() as u64)
}

/// `123` or `123.456789` (no sign, no exponent) in ns, rounded to the nearest ns.
fn decimal_to_ns(text: &str) -> Option<u64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = int.parse().ok()?;
    let mut nanos: u64 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        nanos += u64::from(digit - b'0') * 10u64.pow(8 - i as u32);
    }
    if frac.as_bytes().get(9).is_some_and(|&d| d >= b'5') {
        nanos += 1;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Prefix of the session ids of ingested casts.
pub const SESSION_PREFIX: &str = "cast-";

/// A session id for a cast, derived from its bytes (so ingesting the same file twice names the
/// same session): [`SESSION_PREFIX`] and 24 hex digits.
pub fn session_id(bytes: &[u8]) -> String {
    let mut hasher = SessionHasher::default();
    hasher.update(bytes);
    hasher.session_id()
}

/// [`session_id`] computed over a file read in pieces.
#[derive(Debug, Clone)]
pub(crate) struct SessionHasher {
    fnv: u64,
    crc: crc32fast::Hasher,
}

impl Default for SessionHasher {
    fn default() -> Self {
        Self {
            fnv: 0xcbf2_9ce4_8422_2325,
            crc: crc32fast::Hasher::new(),
        }
    }
}

impl SessionHasher {
    /// Feeds the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) {
        // FNV-1a 64 and CRC-32 together: an identifier, not a security property.
        for &b in bytes {
            self.fnv ^= u64::from(b);
            self.fnv = self.fnv.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.crc.update(bytes);
    }

    /// The session id of the bytes fed.
    pub fn session_id(&self) -> String {
        format!(
            "{SESSION_PREFIX}{:016x}{:08x}",
            self.fnv,
            self.crc.clone().finalize()
        )
    }
}

/// The records of a cast: a `start` record, then one record per event.
///
/// `fallback_start_ns` is the start time used when the header has no `timestamp`.
pub fn records(cast: &Cast, session: &str, fallback_start_ns: u64) -> Vec<Record> {
    let start = cast.header.timestamp_ns.unwrap_or(fallback_start_ns);
    let mut out = Vec::with_capacity(cast.events.len() + 1);
    out.push(start_record(&cast.header, session, start));
    out.extend(
        cast.events
            .iter()
            .map(|event| event_record(event.clone(), session, start)),
    );
    out
}

/// The `start` record of a cast whose recording started at `start_ns` (the header's
/// `timestamp`, else a fallback chosen by the caller).
pub(crate) fn start_record(header: &Header, session: &str, start_ns: u64) -> Record {
    pty_record(
        start_ns,
        session,
        PtyBody {
            kind: PtyKind::Start,
            data: header.raw.clone(),
            command: header.command.clone(),
            cwd: None,
            term: header.term.clone(),
            width: Some(header.width),
            height: Some(header.height),
            status: None,
        },
    )
}

/// The record of one event of a cast whose recording started at `start_ns`.
pub(crate) fn event_record(event: Event, session: &str, start_ns: u64) -> Record {
    pty_record(
        start_ns.saturating_add(event.time_ns),
        session,
        PtyBody {
            kind: event.kind,
            data: event.data,
            command: None,
            cwd: None,
            term: None,
            width: event.size.map(|(w, _)| w),
            height: event.size.map(|(_, h)| h),
            status: event.status,
        },
    )
}

fn pty_record(ts: u64, session: &str, body: PtyBody) -> Record {
    Record {
        ts,
        source: Source::Pty,
        session: Some(session.to_owned()),
        body: Body::Pty(body),
        redactions: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v2_and_v3_with_the_same_absolute_times() {
        let v2 = b"{\"version\":2,\"width\":80,\"height\":24}\n[1.5, \"o\", \"a\"]\n[2.25, \"r\", \"90x30\"]\n";
        let v3 = b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n# comment\n[1.5, \"o\", \"a\"]\n[0.75, \"r\", \"90x30\"]\n";
        let a = parse(v2).unwrap();
        let b = parse(v3).unwrap();
        assert_eq!(a.events, b.events);
        assert_eq!(a.events[1].time_ns, 2_250_000_000);
        assert_eq!(a.events[1].size, Some((90, 30)));
    }

    #[test]
    fn rejects_with_the_line_number() {
        let cases: [(&[u8], u64); 6] = [
            (b"", 1),
            (b"{\"version\":1}\n", 1),
            (
                b"{\"version\":2,\"width\":80,\"height\":24}\n[1, \"o\", \"a\"]\nlol\n",
                3,
            ),
            (
                b"{\"version\":2,\"width\":80,\"height\":24}\n[-1, \"o\", \"a\"]\n",
                2,
            ),
            (
                b"{\"version\":2,\"width\":80,\"height\":24}\n[1, \"r\", \"-1x0\"]\n",
                2,
            ),
            (
                b"{\"version\":2,\"width\":80,\"height\":24,\"theme\":{\"fg\":\"white\"}}\n",
                1,
            ),
        ];
        for (bytes, line) in cases {
            let error = parse(bytes).unwrap_err();
            assert_eq!(error.line(), line, "{error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_damaged_casts(flip in 0usize..200, byte in proptest::prelude::any::<u8>()) {
            let mut cast = b"{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24}}\n[0.5, \"o\", \"a\\u001b[1m\"]\n[1e-3, \"r\", \"90x30\"]\n[0.1, \"x\", \"0\"]\n".to_vec();
            let at = flip % cast.len();
            cast[at] = byte;
            let _ = parse(&cast);
        }
    }

    #[test]
    fn decimal_times_are_exact() {
        assert_eq!(decimal_to_ns("8.456789"), Some(8_456_789_000));
        assert_eq!(decimal_to_ns("0.0000000015"), Some(2));
        assert_eq!(decimal_to_ns("12"), Some(12_000_000_000));
        assert_eq!(decimal_to_ns("-1"), None);
    }
}
