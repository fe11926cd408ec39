//! Writing a session's PTY records as an asciicast v2 or v3 file (asciinema's terminal
//! recording format, <https://docs.asciinema.org/manual/asciicast/v2/> and `…/v3/`): the
//! inverse of [`crate::ingest::asciicast`], mapping documented in `docs/pty.md`.

use std::io::Write;

use serde_json::{Map, Value};

use crate::model::{Body, PtyBody, PtyKind, Record};

/// What [`write()`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Event lines written.
    pub events: u64,
    /// Records not representable in the chosen version and left out (`exit` in v2).
    pub dropped: u64,
    /// Bytes that were not valid UTF-8 and were written as U+FFFD.
    pub replaced_bytes: u64,
}

/// Incremental UTF-8 decoding of one byte stream split into chunks: a character split across
/// chunks is carried into the next one; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
struct Utf8Stream {
    carry: Vec<u8>,
    replaced: u64,
}

impl Utf8Stream {
    fn decode(&mut self, data: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(data);
        let mut out = String::with_capacity(bytes.len());
        let mut rest: &[u8] = &bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{fffd}');
                            self.replaced += n as u64;
                            rest = &after[n..];
                        }
                        None => {
                            self.carry = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    fn finish(&mut self) -> Option<String> {
        if self.carry.is_empty() {
            return None;
        }
        self.replaced += self.carry.len() as u64;
        self.carry.clear();
        Some("\u{fffd}".to_owned())
    }
}

/// Writes a session's PTY records (in order; the first should be its `start` record) as an
/// asciicast of `version` 2 or 3.
///
/// The header is the `start` record's original header line when it is a cast header of the
/// same version, otherwise one converted from it (or built from the `start` record's fields).
/// Times are written in µs, rounded; v3 intervals are differences of rounded absolute times, so
/// errors do not accumulate.
///
/// # Errors
/// I/O errors of `out`.
pub fn write<'r>(
    out: &mut impl Write,
    records: impl IntoIterator<Item = &'r Record>,
    version: u8,
) -> std::io::Result<WriteSummary> {
    let mut records = records.into_iter().peekable();
    let mut summary = WriteSummary::default();
    let first = records.peek().copied();
    let start_ts = first.map_or(0, |r| r.ts);
    let start = first.and_then(|r| match &r.body {
        Body::Pty(pty) if pty.kind == PtyKind::Start => Some((r, pty)),
        _ => None,
    });
    let header_line = header_for(start, version);
    out.write_all(&header_line)?;
    out.write_all(b"\n")?;
    if start.is_some() {
        records.next();
    }
    let mut output = Utf8Stream::default();
    let mut input = Utf8Stream::default();
    let mut previous_us: u64 = 0;
    for record in records {
        let Body::Pty(pty) = &record.body else {
            continue;
        };
        let (code, data) = match pty.kind {
            PtyKind::Output => ("o", output.decode(&pty.data)),
            PtyKind::Input => ("i", input.decode(&pty.data)),
            PtyKind::Marker => ("m", String::from_utf8_lossy(&pty.data).into_owned()),
            PtyKind::Resize => (
                "r",
                match (std::str::from_utf8(&pty.data), pty.width, pty.height) {
                    (Ok(text), _, _) if !text.is_empty() => text.to_owned(),
                    (_, Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => {
                        summary.dropped += 1;
                        continue;
                    }
                },
            ),
            PtyKind::Exit if version >= 3 => (
                "x",
                match (std::str::from_utf8(&pty.data), pty.status) {
                    (Ok(text), _) if !text.is_empty() => text.to_owned(),
                    (_, Some(status)) => status.to_string(),
                    _ => "0".to_owned(),
                },
            ),
            PtyKind::Exit | PtyKind::Start => {
                summary.dropped += 1;
                continue;
            }
        };
        if data.is_empty() && matches!(pty.kind, PtyKind::Output | PtyKind::Input) {
            // Everything was carried into the next chunk.
            continue;
        }
        let us = (record.ts.saturating_sub(start_ts) + 500) / 1000;
        let time = if version >= 3 {
            let interval = us.saturating_sub(previous_us);
            previous_us = previous_us.max(us);
            interval
        } else {
            us
        };
        write_event(out, time, code, &data)?;
        summary.events += 1;
    }
    for (code, stream) in [("o", &mut output), ("i", &mut input)] {
        if let Some(rest) = stream.finish() {
            write_event(out, if version >= 3 { 0 } else { previous_us }, code, &rest)?;
            summary.events += 1;
        }
    }
    summary.replaced_bytes = output.replaced + input.replaced;
    Ok(summary)
}

fn write_event(out: &mut impl Write, time_us: u64, code: &str, data: &str) -> std::io::Result<()> {
    let data = serde_json::to_string(data).map_err(std::io::Error::other)?;
    writeln!(
        out,
        "[{}.{:06}, \"{code}\", {data}]",
        time_us / 1_000_000,
        time_us % 1_000_000
    )
}

/// The header line for an export in `version`.
fn header_for(start: Option<(&Record, &PtyBody)>, version: u8) -> Vec<u8> {
    let stored: Option<Map<String, Value>> = start.and_then(|(_, pty)| {
        serde_json::from_slice::<Value>(&pty.data)
            .ok()
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            })
    });
    let stored_version = stored
        .as_ref()
        .and_then(|m| m.get("version"))
        .and_then(Value::as_u64);
    if let (Some(stored_version), Some((_, pty))) = (stored_version, start)
        && stored_version == u64::from(version)
    {
        return pty.data.clone();
    }
    let stored = stored.unwrap_or_default();
    let (width, height) = start.map_or((80, 24), |(_, pty)| {
        (pty.width.unwrap_or(80), pty.height.unwrap_or(24))
    });
    let timestamp = stored
        .get("timestamp")
        .cloned()
        .or_else(|| start.map(|(record, _)| Value::from(record.ts / 1_000_000_000)));
    let theme = stored
        .get("theme")
        .or_else(|| stored.get("term").and_then(|t| t.get("theme")))
        .cloned();
    let term_type = start
        .and_then(|(_, pty)| pty.term.clone())
        .map(Value::String);
    let mut header = Map::new();
    header.insert("version".into(), Value::from(version));
    if version >= 3 {
        let mut term = Map::new();
        term.insert("cols".into(), Value::from(width));
        term.insert("rows".into(), Value::from(height));
        if let Some(term_type) = term_type.clone() {
            term.insert("type".into(), term_type);
        }
        if let Some(theme) = theme {
            term.insert("theme".into(), theme);
        }
        header.insert("term".into(), Value::Object(term));
    } else {
        header.insert("width".into(), Value::from(width));
        header.insert("height".into(), Value::from(height));
    }
    if let Some(timestamp) = timestamp {
        header.insert("timestamp".into(), timestamp);
    }
    for key in ["idle_time_limit", "command", "title"] {
        if let Some(value) = stored.get(key) {
            header.insert(key.into(), value.clone());
        }
    }
    if let (None, Some((_, pty))) = (stored.get("command"), start)
        && let Some(command) = &pty.command
    {
        header.insert("command".into(), Value::String(command.clone()));
    }
    match stored.get("env") {
        Some(env) => {
            header.insert("env".into(), env.clone());
        }
        None => {
            if let Some(term_type) = term_type {
                let mut env = Map::new();
                env.insert("TERM".into(), term_type);
                header.insert("env".into(), Value::Object(env));
            }
        }
    }
    if version < 3
        && let Some(theme) = stored.get("term").and_then(|t| t.get("theme"))
    {
        header.insert("theme".into(), theme.clone());
    }
    if version >= 3
        && let Some(tags) = stored.get("tags")
    {
        header.insert("tags".into(), tags.clone());
    }
    serde_json::to_vec(&Value::Object(header)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::asciicast::{parse, records};

    #[test]
    fn split_utf8_is_carried_to_the_next_chunk() {
        let mut stream = Utf8Stream::default();
        let bytes = "żółć".as_bytes();
        let first = stream.decode(&bytes[..3]);
        let second = stream.decode(&bytes[3..]);
        assert_eq!(format!("{first}{second}"), "żółć");
        assert_eq!(stream.decode(b"\xff!"), "\u{fffd}!");
    }

    #[test]
    fn export_round_trip_keeps_header_and_events() {
        let cast = b"{\"version\": 2, \"width\": 96, \"height\": 26, \"title\": \"t\"}\n[1.234567, \"o\", \"foo\"]\n[2.0, \"i\", \"\\r\"]\n";
        let parsed = parse(cast).unwrap();
        let records = records(&parsed, "s", 7);
        let mut out = Vec::new();
        write(&mut out, &records, 2).unwrap();
        let again = parse(&out).unwrap();
        assert_eq!(again.header.raw, parsed.header.raw);
        assert_eq!(again.events, parsed.events);
        let mut v3 = Vec::new();
        write(&mut v3, &records, 3).unwrap();
        let again = parse(&v3).unwrap();
        assert_eq!(again.header.version, 3);
        assert_eq!(again.events, parsed.events);
    }
}
