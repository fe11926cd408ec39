//! Parsing one hook payload or one transcript line into a [`Record`], keeping the raw bytes.
//!
//! Field names come from the Claude Code hooks reference (common input fields `session_id`,
//! `transcript_path`, `cwd`, `hook_event_name`, plus per-event fields) and from transcript
//! lines as Claude Code writes them under `~/.claude/projects` (`type`, `uuid`, `parentUuid`,
//! `requestId`, `message.id`, `message.model`, `message.usage`, `isSidechain`, `agentId`).
//!
//! Invariant: every input gives exactly one record; nothing here fails or panics. Input that is
//! not a JSON object is flagged with [`Malformed`] and kept byte for byte.

use serde_json::{Map, Value};

use crate::model::{Body, HookBody, Malformed, Origin, Record, Source, TranscriptBody, Usage};

/// Result of a lenient JSON parse.
struct Parsed {
    object: Option<Map<String, Value>>,
    malformed: Option<Malformed>,
}

/// Parses `raw` as a JSON object, tolerating lone surrogate escapes (replaced by U+FFFD for
/// field extraction only) and invalid UTF-8 (replaced likewise).
fn parse_lenient(raw: &[u8]) -> Parsed {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Parsed {
            object: None,
            malformed: Some(Malformed::Empty),
        };
    }
    let (text, not_utf8) = match std::str::from_utf8(raw) {
        Ok(text) => (std::borrow::Cow::Borrowed(text), false),
        Err(_) => (String::from_utf8_lossy(raw), true),
    };
    let classify = |value: Value, flag: Option<Malformed>| match value {
        Value::Object(map) => Parsed {
            object: Some(map),
            malformed: flag,
        },
        _ => Parsed {
            object: None,
            malformed: Some(Malformed::NotObject),
        },
    };
    let not_utf8_flag = not_utf8.then_some(Malformed::NotUtf8);
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => classify(value, not_utf8_flag),
        Err(_) => {
            if let Some(fixed) = replace_lone_surrogates(&text)
                && let Ok(value) = serde_json::from_str::<Value>(&fixed)
            {
                return classify(
                    value,
                    Some(not_utf8_flag.unwrap_or(Malformed::LoneSurrogate)),
                );
            }
            // Damaged or cut short (a truncated payload): keep the top-level members that
            // parsed whole before the damage, so the event, session and tool still join.
            let partial = leading_members(&text);
            Parsed {
                object: (!partial.is_empty()).then_some(partial),
                malformed: Some(if not_utf8 {
                    Malformed::NotUtf8
                } else {
                    Malformed::InvalidJson
                }),
            }
        }
    }
}

/// The members of a top-level JSON object that parse whole before the text stops being valid
/// JSON (a payload cut at `storage.max_record_bytes`, or damaged in its middle); empty when the
/// text does not start an object.
fn leading_members(text: &str) -> Map<String, Value> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

    struct Members<'m>(&'m mut Map<String, Value>);

    impl<'de> DeserializeSeed<'de> for Members<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Members<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
            while let Some(key) = access.next_key::<String>()? {
                let value = access.next_value::<Value>()?;
                self.0.insert(key, value);
            }
            Ok(())
        }
    }

    let mut members = Map::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // The error is the point where the text stops; what was read before it is kept.
    let _ = Members(&mut members).deserialize(&mut deserializer);
    members
}

/// Replaces `\uD800`–`\uDFFF` escapes that do not form a valid surrogate pair with `\uFFFD`.
/// Returns `None` when there were none.
pub fn replace_lone_surrogates(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        let digits = bytes.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u16> {
        if bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u') {
            hex(at + 2)
        } else {
            None
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(i) {
            Some(high @ 0xD800..=0xDBFF) => {
                if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) {
                    i += 12;
                } else {
                    out.push_str(&text[last..i]);
                    out.push_str("\\uFFFD");
                    let _ = high;
                    i += 6;
                    last = i;
                    changed = true;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.push_str(&text[last..i]);
                out.push_str("\\uFFFD");
                i += 6;
                last = i;
                changed = true;
            }
            Some(_) => i += 6,
            // Any other escape: skip the backslash and the escaped character.
            None => i += 2,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[last.min(text.len())..]);
    Some(out)
}

fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Builds a hook record from a payload as received on stdin.
///
/// `ts` is the capture time (ns); `pty_session` is `CTRACE_PTY_SESSION` of the hook's
/// environment; `origin` is set when the payload was read from a file.
pub fn hook_record(
    raw: Vec<u8>,
    ts: u64,
    pty_session: Option<String>,
    origin: Option<Origin>,
) -> Record {
    let parsed = parse_lenient(&raw);
    let map = parsed.object.unwrap_or_default();
    // Payloads read from hook logs may carry the logger's time; live hooks use capture time.
    // A logged payload without one only has the time it was read: marked as such.
    let logged = origin.is_some().then(|| {
        ["timestamp", "logged_at"].iter().find_map(|k| {
            map.get(*k)
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
        })
    });
    let (ts, arrival_time) = match logged {
        Some(Some(logged)) => (logged, false),
        Some(None) => (ts, true),
        None => (ts, false),
    };
    let body = HookBody {
        event: string(&map, "hook_event_name"),
        tool_name: string(&map, "tool_name"),
        tool_use_id: string(&map, "tool_use_id"),
        agent_id: string(&map, "agent_id"),
        agent_type: string(&map, "agent_type"),
        prompt_id: string(&map, "prompt_id"),
        cwd: string(&map, "cwd"),
        transcript_path: string(&map, "transcript_path"),
        agent_transcript_path: string(&map, "agent_transcript_path"),
        pty_session,
        malformed: parsed.malformed,
        origin,
        truncated: None,
        arrival_time,
        raw,
    };
    Record {
        ts,
        source: Source::Hook,
        session: string(&map, "session_id"),
        body: Body::Hook(body),
        redactions: 0,
    }
}

fn usage(value: &Value) -> Option<Usage> {
    let map = value.as_object()?;
    let n = |key: &str| map.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cache = map.get("cache_creation").and_then(Value::as_object);
    let c = |key: &str| {
        cache
            .and_then(|c| c.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Some(Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_creation_input_tokens: n("cache_creation_input_tokens"),
        cache_read_input_tokens: n("cache_read_input_tokens"),
        ephemeral_5m_input_tokens: c("ephemeral_5m_input_tokens"),
        ephemeral_1h_input_tokens: c("ephemeral_1h_input_tokens"),
    })
}

/// Parses an RFC 3339 UTC timestamp (`2025-06-26T11:45:51.979Z`) into ns since the epoch.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    let nanos = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    u64::try_from(nanos).ok()
}

/// Builds a transcript record from one line (without its terminator).
///
/// The record's `ts` is the line's `timestamp` when it has one, else `fallback_ts`; its
/// session is the line's `sessionId`, else `fallback_session` (derived from the file path).
pub fn transcript_record(
    raw: Vec<u8>,
    origin: Origin,
    fallback_ts: u64,
    fallback_session: Option<&str>,
) -> Record {
    let parsed = parse_lenient(&raw);
    let map = parsed.object.unwrap_or_default();
    let message = map.get("message").and_then(Value::as_object);
    let line_type = string(&map, "type");
    let subtype = string(&map, "subtype").or_else(|| {
        map.get("data")
            .and_then(Value::as_object)
            .and_then(|data| string(data, "type"))
    });
    let ts = map
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .unwrap_or(fallback_ts);
    let body = TranscriptBody {
        line_type,
        subtype,
        uuid: string(&map, "uuid"),
        parent_uuid: string(&map, "parentUuid"),
        request_id: string(&map, "requestId"),
        message_id: message.and_then(|m| string(m, "id")),
        model: message.and_then(|m| string(m, "model")),
        usage: message.and_then(|m| m.get("usage")).and_then(usage),
        is_sidechain: map.get("isSidechain").and_then(Value::as_bool),
        agent_id: string(&map, "agentId"),
        malformed: parsed.malformed,
        origin,
        truncated: None,
        raw,
    };
    Record {
        ts,
        source: Source::Transcript,
        session: string(&map, "sessionId").or_else(|| fallback_session.map(str::to_owned)),
        body: Body::Transcript(body),
        redactions: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(raw: &[u8]) -> HookBody {
        match hook_record(raw.to_vec(), 1, None, None).body {
            Body::Hook(body) => body,
            _ => unreachable!(),
        }
    }

    #[test]
    fn extracts_join_keys() {
        let raw = br#"{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","cwd":"/x","agent_id":"a1","prompt_id":"p1"}"#;
        let record = hook_record(raw.to_vec(), 5, None, None);
        assert_eq!(record.session.as_deref(), Some("s1"));
        let Body::Hook(body) = record.body else {
            unreachable!()
        };
        assert_eq!(body.event.as_deref(), Some("PreToolUse"));
        assert_eq!(body.tool_use_id.as_deref(), Some("t1"));
        assert_eq!(body.agent_id.as_deref(), Some("a1"));
        assert_eq!(body.prompt_id.as_deref(), Some("p1"));
        assert_eq!(body.raw, raw.to_vec());
        assert_eq!(body.malformed, None);
    }

    #[test]
    fn malformed_inputs_are_kept_and_flagged() {
        assert_eq!(hook(b"").malformed, Some(Malformed::Empty));
        assert_eq!(hook(b"  \n").malformed, Some(Malformed::Empty));
        assert_eq!(hook(b"{not json").malformed, Some(Malformed::InvalidJson));
        assert_eq!(hook(b"[1,2]").malformed, Some(Malformed::NotObject));
        assert_eq!(hook(b"\"x\"").malformed, Some(Malformed::NotObject));
        assert_eq!(
            hook(b"{\"a\":\"\xff\"}").malformed,
            Some(Malformed::NotUtf8)
        );
        let lone = hook(br#"{"hook_event_name":"Stop","x":"\udc8f and \ud83d"}"#);
        assert_eq!(lone.malformed, Some(Malformed::LoneSurrogate));
        assert_eq!(lone.event.as_deref(), Some("Stop"));
        assert_eq!(hook(b"{not json").raw, b"{not json".to_vec());
    }

    #[test]
    fn surrogate_pairs_are_left_alone() {
        assert_eq!(replace_lone_surrogates(r#""\ud83d\ude00""#), None);
        assert_eq!(replace_lone_surrogates(r#""\\udc8f""#), None);
        assert_eq!(
            replace_lone_surrogates(r#""a\udc8fb""#).as_deref(),
            Some(r#""a\uFFFDb""#)
        );
    }

    #[test]
    fn transcript_fields_and_usage() {
        let raw = br#"{"type":"assistant","uuid":"u2","parentUuid":"u1","requestId":"r1","sessionId":"s","isSidechain":false,"timestamp":"2025-06-26T11:45:51.979Z","message":{"id":"m1","model":"claude-opus-4-6","usage":{"input_tokens":3,"output_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":0}}}}"#;
        let record = transcript_record(raw.to_vec(), Origin::default(), 0, None);
        assert_eq!(record.ts, 1_750_938_351_979_000_000);
        let Body::Transcript(body) = record.body else {
            unreachable!()
        };
        assert_eq!(body.message_id.as_deref(), Some("m1"));
        assert_eq!(body.model.as_deref(), Some("claude-opus-4-6"));
        let usage = body.usage.unwrap();
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.ephemeral_5m_input_tokens
            ),
            (3, 10, 5)
        );
        assert_eq!(usage.total(), 25);
    }
}
