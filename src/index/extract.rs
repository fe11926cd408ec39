//! What a record contributes to the index: its searchable text and its keyword fields.
//!
//! Text (the `text` field):
//! - hook payloads and transcript lines (JSON): every string value, depth first in document
//!   order, joined by `\n` — prompts, tool inputs and responses, assistant text and thinking,
//!   error messages, tool names, file contents shown to the model — except the values of
//!   [`SKIPPED_KEYS`] (ids, paths of ctrace's own bookkeeping, signatures, the
//!   `toolUseResult` copy of a tool result that the line's `tool_result` block already holds,
//!   token usage) and strings that look like binary blobs (over [`BLOB_MIN_BYTES`] bytes with
//!   no whitespace in them: base64 images). Payloads that are not valid JSON contribute their
//!   bytes as text (invalid UTF-8 replaced by U+FFFD).
//! - PTY `output`: the bytes with ANSI escape sequences stripped, preceded by the tail of the
//!   same session's previous output chunk (its last line, at most [`PTY_CARRY_BYTES`] bytes) so
//!   that text split across chunks is indexed as one phrase where it was contiguous on screen.
//!   PTY `input` and `marker`: the bytes, escapes stripped. `start`: the command and cwd.
//! - internal records: event and detail.
//!
//! Keyword fields: `event` (hook event name, transcript line type, `pty/<kind>`, internal event),
//! `tool` (hook `tool_name`; names of transcript `tool_use` blocks), `model`, `agent`
//! (`agent_id`, `agent_type`), `project` (the record's `cwd` and its last path component),
//! `type` (transcript line type / subtype).

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{Body, PtyKind, Record};

/// JSON keys whose values contribute no text: Claude Code's bookkeeping members
/// ([`crate::claude::BOOKKEEPING_KEYS`]).
pub const SKIPPED_KEYS: &[&str] = crate::claude::BOOKKEEPING_KEYS;

/// Strings at least this long (bytes) with no whitespace are treated as blobs and skipped.
pub const BLOB_MIN_BYTES: usize = 256;

/// Most bytes of a PTY output chunk's last line carried into the next chunk's text.
pub const PTY_CARRY_BYTES: usize = 512;

/// What one record contributes to the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Searchable text.
    pub text: String,
    /// Event or line type (see the module documentation).
    pub event: Option<String>,
    /// Tool names.
    pub tools: Vec<String>,
    /// Model.
    pub model: Option<String>,
    /// Agent id and type.
    pub agents: Vec<String>,
    /// Working directory and its last component.
    pub projects: Vec<String>,
    /// Transcript line type and subtype, PTY kind.
    pub types: Vec<String>,
}

/// Per-session tails of PTY output, carried into the next chunk's text.
#[derive(Debug, Default)]
pub struct PtyCarry {
    tails: HashMap<String, Vec<u8>>,
}

impl PtyCarry {
    /// An empty carry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a record without extracting anything (to seed the carry before a resumed pass).
    pub fn observe(&mut self, record: &Record) {
        let _ = self.prepare(record);
    }

    /// For a PTY output record: the raw bytes to index (the session's carried tail, then the
    /// chunk), updating the carry. `None` for any other record.
    pub fn prepare(&mut self, record: &Record) -> Option<Vec<u8>> {
        let Body::Pty(pty) = &record.body else {
            return None;
        };
        if pty.kind != PtyKind::Output {
            return None;
        }
        let session = record.session.clone().unwrap_or_default();
        let mut joined = self.tails.remove(&session).unwrap_or_default();
        joined.extend_from_slice(&pty.data);
        self.tails.insert(session, tail(&joined));
        Some(joined)
    }
}

/// The last line of `bytes` (after the last `\n`), at most [`PTY_CARRY_BYTES`] bytes.
fn tail(bytes: &[u8]) -> Vec<u8> {
    let start = memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1);
    let start = start.max(bytes.len().saturating_sub(PTY_CARRY_BYTES));
    bytes[start..].to_vec()
}

fn strip_ansi(bytes: &[u8]) -> String {
    let stripped = strip_ansi_escapes::strip(bytes);
    match String::from_utf8(stripped) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn push_some(list: &mut Vec<String>, value: Option<&String>) {
    if let Some(value) = value.filter(|v| !v.is_empty())
        && !list.contains(value)
    {
        list.push(value.clone());
    }
}

fn push_project(extracted: &mut Extracted, cwd: &str) {
    if cwd.is_empty() {
        return;
    }
    let cwd = cwd.trim_end_matches(['/', '\\']);
    push_some(&mut extracted.projects, Some(&cwd.to_owned()));
    if let Some(last) = cwd.rsplit(['/', '\\']).next() {
        push_some(&mut extracted.projects, Some(&last.to_owned()));
    }
}

/// Extracts the text and keyword fields of `record`; PTY output uses and updates `carry`.
pub fn extract(record: &Record, carry: &mut PtyCarry) -> Extracted {
    let joined = carry.prepare(record);
    extract_prepared(record, joined.as_deref())
}

/// [`extract`] for a record whose PTY output bytes were joined with the carry already
/// ([`PtyCarry::prepare`]); `joined` is ignored for other records.
pub(crate) fn extract_prepared(record: &Record, joined: Option<&[u8]>) -> Extracted {
    let mut out = Extracted::default();
    match &record.body {
        Body::Hook(hook) => {
            out.event.clone_from(&hook.event);
            push_some(&mut out.tools, hook.tool_name.as_ref());
            push_some(&mut out.agents, hook.agent_id.as_ref());
            push_some(&mut out.agents, hook.agent_type.as_ref());
            let found = json_text(&hook.raw, &mut out.text);
            if let Some(cwd) = hook.cwd.as_deref().or(found.cwd.as_deref()) {
                push_project(&mut out, cwd);
            }
            for tool in &found.tools {
                push_some(&mut out.tools, Some(tool));
            }
        }
        Body::Transcript(line) => {
            out.event.clone_from(&line.line_type);
            push_some(&mut out.types, line.line_type.as_ref());
            push_some(&mut out.types, line.subtype.as_ref());
            out.model.clone_from(&line.model);
            push_some(&mut out.agents, line.agent_id.as_ref());
            let found = json_text(&line.raw, &mut out.text);
            if let Some(cwd) = found.cwd.as_deref() {
                push_project(&mut out, cwd);
            }
            for tool in &found.tools {
                push_some(&mut out.tools, Some(tool));
            }
        }
        Body::Pty(pty) => {
            let kind = format!("{:?}", pty.kind).to_lowercase();
            out.event = Some(format!("pty/{kind}"));
            out.types.push(kind);
            match pty.kind {
                PtyKind::Output => out.text = strip_ansi(joined.unwrap_or(&pty.data)),
                PtyKind::Input | PtyKind::Marker => out.text = strip_ansi(&pty.data),
                PtyKind::Start => {
                    for part in [&pty.command, &pty.cwd].into_iter().flatten() {
                        out.text.push_str(part);
                        out.text.push('\n');
                    }
                    if let Some(cwd) = &pty.cwd {
                        push_project(&mut out, cwd);
                    }
                }
                PtyKind::Resize | PtyKind::Exit => {}
            }
        }
        Body::Otlp(otlp) => {
            let signal = otlp.signal.as_str();
            out.event = Some(match &otlp.name {
                Some(name) => format!("{signal}/{name}"),
                None => signal.to_owned(),
            });
            out.types.push(signal.to_owned());
            out.text = crate::otlp::text(otlp.signal, &otlp.raw);
        }
        Body::Internal(internal) => {
            out.event = Some(internal.event.clone());
            out.text.push_str(&internal.event);
            out.text.push('\n');
            out.text.push_str(&internal.detail);
        }
    }
    out
}

/// What the JSON walk finds besides text.
#[derive(Debug, Default)]
struct Found {
    cwd: Option<String>,
    tools: Vec<String>,
}

/// Appends the string values of the JSON in `raw` to `text`; bytes that are not JSON are
/// appended as text.
fn json_text(raw: &[u8], text: &mut String) -> Found {
    let start = text.len();
    let mut found = Found::default();
    let mut de = serde_json::Deserializer::from_slice(raw);
    let ok = Walk {
        text: &mut *text,
        found: &mut found,
        top: true,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .is_ok();
    if !ok {
        text.truncate(start);
        found = Found::default();
        text.push_str(&String::from_utf8_lossy(raw));
    }
    found
}

struct Walk<'a> {
    text: &'a mut String,
    found: &'a mut Found,
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Appends one string value to the text, unless it is empty or a blob.
fn push_text(text: &mut String, v: &str) {
    if !v.is_empty() && !is_blob(v) {
        text.push_str(v);
        text.push('\n');
    }
}

/// The walk's rules applied to an already parsed value (a `name` that is not a string).
fn push_value_text(value: &serde_json::Value, text: &mut String) {
    match value {
        serde_json::Value::String(s) => push_text(text, s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| push_value_text(v, text)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if !SKIPPED_KEYS.contains(&key.as_str()) && key != "type" {
                    push_value_text(v, text);
                }
            }
        }
        _ => {}
    }
}

fn is_blob(s: &str) -> bool {
    s.len() >= BLOB_MIN_BYTES && !s.as_bytes().iter().any(u8::is_ascii_whitespace)
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        push_text(self.text, v);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walk {
                text: &mut *self.text,
                found: &mut *self.found,
                top: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Whether the object's `type` is `tool_use`.
        let mut kind: Option<bool> = None;
        let mut name: Option<String> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => {
                    kind = map.next_value_seed(MaybeStr)?.map(|s| s == "tool_use");
                }
                "name" => match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::String(s) => {
                        push_text(self.text, &s);
                        name = Some(s);
                    }
                    other => push_value_text(&other, self.text),
                },
                "cwd" if self.top => {
                    if let Some(s) = map.next_value_seed(MaybeStr)? {
                        self.found.cwd = Some(s.into_owned());
                    }
                }
                k if SKIPPED_KEYS.contains(&k) => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => map.next_value_seed(Walk {
                    text: &mut *self.text,
                    found: &mut *self.found,
                    top: false,
                })?,
            }
        }
        if kind == Some(true)
            && let Some(name) = name
            && !self.found.tools.contains(&name)
        {
            self.found.tools.push(name);
        }
        Ok(())
    }
}

/// A JSON value read as a string when it is one (borrowed when it has no escapes), skipped
/// otherwise.
struct MaybeStr;

impl<'de> DeserializeSeed<'de> for MaybeStr {
    type Value = Option<std::borrow::Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MaybeStr {
    type Value = Option<std::borrow::Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(std::borrow::Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(std::borrow::Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HookBody, PtyBody, Source, TranscriptBody};

    fn hook(raw: &str) -> Record {
        Record {
            ts: 1,
            source: Source::Hook,
            session: Some("s".into()),
            body: Body::Hook(HookBody {
                event: Some("PostToolUse".into()),
                tool_name: Some("Bash".into()),
                raw: raw.as_bytes().to_vec(),
                ..HookBody::default()
            }),
            redactions: 0,
        }
    }

    fn pty(data: &[u8]) -> Record {
        Record {
            ts: 1,
            source: Source::Pty,
            session: Some("p".into()),
            body: Body::Pty(PtyBody {
                kind: PtyKind::Output,
                data: data.to_vec(),
                command: None,
                cwd: None,
                term: None,
                width: None,
                height: None,
                status: None,
            }),
            redactions: 0,
        }
    }

    #[test]
    fn hook_text_is_string_values_without_ids() {
        let record = hook(
            r#"{"session_id":"abc","cwd":"/home/u/proj","tool_input":{"command":"cargo build"},"tool_response":{"stderr":"error: E0308","code":1},"tool_use_id":"toolu_1"}"#,
        );
        let out = extract(&record, &mut PtyCarry::new());
        assert_eq!(out.text, "cargo build\nerror: E0308\n");
        assert_eq!(out.projects, ["/home/u/proj", "proj"]);
        assert_eq!(out.tools, ["Bash"]);
        assert_eq!(out.event.as_deref(), Some("PostToolUse"));
    }

    #[test]
    fn transcript_tool_use_names_are_tools() {
        let raw = r#"{"type":"assistant","cwd":"/w","message":{"model":"m","content":[{"type":"text","text":"Let me look"},{"type":"tool_use","id":"x","name":"Read","input":{"file_path":"/a/b.rs"}}]}}"#;
        let record = Record {
            ts: 1,
            source: Source::Transcript,
            session: Some("s".into()),
            body: Body::Transcript(TranscriptBody {
                line_type: Some("assistant".into()),
                raw: raw.as_bytes().to_vec(),
                ..TranscriptBody::default()
            }),
            redactions: 0,
        };
        let out = extract(&record, &mut PtyCarry::new());
        assert_eq!(out.tools, ["Read"]);
        assert_eq!(out.text, "m\nLet me look\nRead\n/a/b.rs\n");
    }

    #[test]
    fn name_that_is_not_a_string_contributes_its_strings() {
        let out = extract(
            &hook(r#"{"name":{"first":"Ada","id":"x1"},"x":"y"}"#),
            &mut PtyCarry::new(),
        );
        assert_eq!(out.text, "Ada\ny\n");
    }

    #[test]
    fn invalid_json_is_text() {
        let out = extract(&hook("{\"prompt\": \"half"), &mut PtyCarry::new());
        assert_eq!(out.text, "{\"prompt\": \"half");
    }

    #[test]
    fn blobs_are_skipped() {
        let blob = "A".repeat(BLOB_MIN_BYTES);
        let out = extract(
            &hook(&format!(r#"{{"data":"{blob}","x":"keep me"}}"#)),
            &mut PtyCarry::new(),
        );
        assert_eq!(out.text, "keep me\n");
    }

    #[test]
    fn pty_text_is_stripped_and_carried_across_chunks() {
        let mut carry = PtyCarry::new();
        let first = extract(&pty(b"$ cargo te\x1b[1"), &mut carry);
        assert_eq!(first.text, "$ cargo te");
        let second = extract(&pty(b"mst\r\nrunning 3 tests\r\nok"), &mut carry);
        assert_eq!(second.text, "$ cargo test\nrunning 3 tests\nok");
        let third = extract(&pty(b"!\n"), &mut carry);
        assert_eq!(third.text, "ok!\n");
    }
}
