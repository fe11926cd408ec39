//! Lenient JSON parsing of payloads as Claude Code (or a damaged file) gives them: lone
//! surrogate escapes and invalid UTF-8 tolerated for field extraction, a payload cut short
//! keeps the members that parsed whole.

use serde_json::{Map, Value};

use crate::model::Malformed;

/// Result of a lenient JSON parse.
pub(super) struct Parsed {
    pub(super) object: Option<Map<String, Value>>,
    pub(super) malformed: Option<Malformed>,
}

/// Parses `raw` as a JSON object, tolerating lone surrogate escapes (replaced by U+FFFD for
/// field extraction only) and invalid UTF-8 (replaced likewise).
pub(super) fn parse_lenient(raw: &[u8]) -> Parsed {
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

pub(super) fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}
